import type { CommandResult } from '../../contracts/relay-protocol';
import { type FenceResult, type StartResult, WORKFLOW_ERROR } from '../../contracts/workflow';
import type { AppContext } from '../context';
import type { CommandRecord } from '../ports';
import { settleTask } from '../shared/callbacks';
import { appendEvent } from '../shared/events';

/**
 * Records each command result once and completes the command's callback task. A repeated or unknown result
 * (the store returns null) changes nothing. Only a power status read back as `off` resolves a fence
 * (safety rule 1): an acknowledged power-off alone fails the task with FenceNotConfirmedError.
 */
export async function recordResults(
  ctx: AppContext,
  args: { readonly siteId: string; readonly results: readonly CommandResult[] },
): Promise<void> {
  for (const result of args.results) {
    const command = await ctx.ports.commands.complete(args.siteId, result.commandId, result);
    if (command === null) continue;
    const outcome = outcomeOf(command, result);
    await settleTask(ctx, command.taskToken, outcome);
    // The state machine retries a failed fence without a step of its own: the timeline keeps why.
    if (command.command.kind === 'fence' && 'error' in outcome) {
      await appendEvent(
        ctx,
        command.command.incidentId,
        'fence-failed',
        `fence not confirmed: ${outcome.cause}`,
        {
          commandId: command.command.commandId,
          relayId: command.relayId,
          outcome: result.outcome,
          powerState: result.powerState ?? null,
        },
      );
    }
  }
}

function outcomeOf(
  record: CommandRecord,
  result: CommandResult,
): { output: FenceResult | StartResult } | { error: string; cause: string } {
  const { command } = record;
  const said = `${result.outcome}${result.detail === undefined ? '' : `: ${result.detail}`}`;
  switch (command.kind) {
    case 'fence': {
      if (result.outcome === 'succeeded' && result.powerState === 'off') {
        const output: FenceResult = {
          commandId: command.commandId,
          relayId: record.relayId,
          powerState: 'off',
          finishedAt: result.finishedAt,
          ...(result.detail === undefined ? {} : { detail: result.detail }),
        };
        return { output };
      }
      return {
        error: WORKFLOW_ERROR.FenceNotConfirmed,
        cause: `relay ${record.relayId} fence ${command.commandId} of ${command.hostId}: ${said}; power read back ${result.powerState ?? 'not at all'}`,
      };
    }
    case 'start-vm': {
      if (result.outcome === 'succeeded') {
        const output: StartResult = {
          commandId: command.commandId,
          vmId: command.vm.id,
          hostId: command.hostId,
          finishedAt: result.finishedAt,
        };
        return { output };
      }
      return {
        error: WORKFLOW_ERROR.VmStartFailed,
        cause: `relay ${record.relayId} start of ${command.vm.id} on ${command.hostId}: ${said}`,
      };
    }
    default:
      return unreachable(command);
  }
}

function unreachable(value: never): never {
  throw new Error(`unhandled command kind: ${JSON.stringify(value)}`);
}
