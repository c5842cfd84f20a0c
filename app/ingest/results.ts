import type { CommandResult } from '../../contracts/relay-protocol';
import type { AppContext } from '../context';
import type { SiteControl } from '../ports';
import { recordRecoveryStart } from '../recovery/start-result';
import { fenceLevelOf, outcomeOf, settleTask } from '../shared/callbacks';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { appendEvent } from '../shared/events';

/**
 * Records each command result once and completes the command's callback task. A repeated or unknown result
 * (the store returns null) changes nothing, and so does a result for a command sent to another relay: only
 * the relay that was told to fence can have read the power back. Only a power status read back as `off`
 * resolves a fence (safety rule 1): an acknowledged power-off alone fails the task with
 * FenceNotConfirmedError. A start VM-level HA sent (no task token) goes to the VM's recovery instead, which
 * may send the next attempt at once: the count of such starts is returned, for delivery in this response.
 */
export async function recordResults(
  ctx: AppContext,
  args: {
    readonly siteId: string;
    /** The reporting relay: results count only for commands addressed to it. */
    readonly relayId: string;
    readonly results: readonly CommandResult[];
    /** The site's control items, as the report read them (for VM-level HA's results). */
    readonly control?: SiteControl;
  },
): Promise<{ readonly ordered: number }> {
  let ordered = 0;
  // Each result is its own command's: they are recorded and their tasks completed side by side.
  await forEachConcurrently(args.results, STEP_WRITE_CONCURRENCY, async (result) => {
    // The conditional write itself refuses a result from a relay the command was not sent to.
    const command = await ctx.ports.commands.complete(args.siteId, result.commandId, result, args.relayId);
    if (command === null) return;
    if (command.taskToken === null) {
      const control = args.control ?? (await ctx.ports.sites.loadControl(args.siteId));
      if (control === null) return;
      const done = await recordRecoveryStart(ctx, {
        control,
        record: command,
        result,
        relayId: args.relayId,
      });
      ordered += done.ordered;
      return;
    }
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
          ...fenceLevelOf(result),
        },
      );
    }
  });
  return { ordered };
}
