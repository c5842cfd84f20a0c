import type { CommandResult } from '../../contracts/relay-protocol';
import { type FenceResult, type StartResult, WORKFLOW_ERROR } from '../../contracts/workflow';
import type { AppContext } from '../context';
import type { CommandRecord } from '../ports';
import { METRIC } from './metrics';

/**
 * Completes a callback task on behalf of a relay report. A failure is counted, not thrown: the report has
 * already recorded the result, and the rest of it (liveness, other hosts, incident opening) must not be
 * lost to one callback; the workflow's task timeout then retries through another attempt.
 */
export async function settleTask(
  ctx: AppContext,
  taskToken: string,
  outcome: { readonly output: unknown } | { readonly error: string; readonly cause: string },
): Promise<boolean> {
  const { workflow, metrics } = ctx.ports;
  try {
    if ('output' in outcome) await workflow.sendTaskSuccess(taskToken, outcome.output);
    else await workflow.sendTaskFailure(taskToken, outcome.error, outcome.cause);
    return true;
  } catch {
    metrics.count(METRIC.CallbackFailed);
    return false;
  }
}

/** What a finished command's result means for its callback task: an output, or a named error. */
export function outcomeOf(
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
          ...fenceLevelOf(result),
          finishedAt: result.finishedAt,
          ...(result.detail === undefined ? {} : { detail: result.detail }),
        };
        return { output };
      }
      const level = fenceLevelText(result);
      return {
        error: WORKFLOW_ERROR.FenceNotConfirmed,
        cause: `relay ${record.relayId} fence ${command.commandId} of ${command.hostId}: ${said}; power read back ${result.powerState ?? 'not at all'}${level === null ? '' : `, through ${level}`}`,
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

/** The fence level and driver a result names, as fields to copy (none from relays that predate levels). */
export function fenceLevelOf(result: {
  readonly level?: number | undefined;
  readonly driver?: string | undefined;
}): { level?: number; driver?: string } {
  return {
    ...(result.level === undefined ? {} : { level: result.level }),
    ...(result.driver === undefined ? {} : { driver: result.driver }),
  };
}

/** The fence level of a result for a timeline line, e.g. `level 2 (fence_apc_snmp)`; null when not given. */
export function fenceLevelText(result: {
  readonly level?: number | undefined;
  readonly driver?: string | undefined;
}): string | null {
  if (result.level === undefined && result.driver === undefined) return null;
  const level = result.level === undefined ? 'a fence level' : `level ${result.level}`;
  return result.driver === undefined ? level : `${level} (${result.driver})`;
}

function unreachable(value: never): never {
  throw new Error(`unhandled command kind: ${JSON.stringify(value)}`);
}
