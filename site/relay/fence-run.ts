import type { CommandResult, FenceCommand } from '../../contracts/relay-protocol';
import type { BmcPower, BmcTarget, Clock } from '../ports';
import { type CommandRun, describeError, finished, NOT_FINISHED, type StepOutcome } from './command-run';

/** What a fence needs from the relay. */
export interface FenceDeps {
  readonly bmc: BmcPower;
  readonly clock: Clock;
  readonly pollMs: number;
}

/**
 * A fence: power the host off through its BMC and read the power status back until it says `off`.
 *
 * Each step reads the status first, so a host already off is reported fenced without a power-off being
 * sent; the step that sends the power-off reads the status again straight after it is acknowledged. Only
 * a status read back as `off` is a success (safety rule 1): an acknowledged power-off is not.
 * At notAfter it gives up with the last status read: `on`, or `unknown` when the BMC did not answer.
 */
export class FenceRun implements CommandRun {
  dueAt: number;
  private lastRead: 'on' | 'unknown' = 'unknown';
  private offAcknowledged = false;
  private lastError: string | null = null;

  constructor(
    private readonly command: FenceCommand,
    private readonly target: BmcTarget,
    private readonly deps: FenceDeps,
  ) {
    this.dueAt = deps.clock.now();
  }

  async step(): Promise<StepOutcome> {
    const { bmc, clock } = this.deps;
    if (clock.now() > this.command.notAfter) return finished(this.notConfirmed());
    try {
      const status = await bmc.powerStatus(this.target);
      if (status === 'off') return finished(this.confirmed());
      this.lastRead = 'on';
    } catch (error) {
      this.lastRead = 'unknown';
      this.lastError = `power status: ${describeError(error)}`;
      return this.pollAgain();
    }
    if (this.offAcknowledged) return this.pollAgain();
    // Sent again after a refusal only: once acknowledged, the BMC is taking its time, and the reads decide.
    try {
      await bmc.powerOff(this.target);
      this.offAcknowledged = true;
      this.lastError = null;
    } catch (error) {
      this.lastError = `power off: ${describeError(error)}`;
      return this.pollAgain();
    }
    // Most BMCs read off as soon as they acknowledge a hard power-off: read it back at once rather than
    // a poll interval later, which would sit on every failover's critical path.
    return this.readBack();
  }

  private async readBack(): Promise<StepOutcome> {
    try {
      if ((await this.deps.bmc.powerStatus(this.target)) === 'off') return finished(this.confirmed());
    } catch (error) {
      // Still acknowledged: the next poll reads again.
      this.lastError = `power status: ${describeError(error)}`;
    }
    return this.pollAgain();
  }

  private pollAgain(): StepOutcome {
    const now = this.deps.clock.now();
    // The last step falls just past notAfter, so the failure is reported as soon as it is certain.
    this.dueAt = Math.min(now + this.deps.pollMs, this.command.notAfter + 1);
    return NOT_FINISHED;
  }

  private confirmed(): CommandResult {
    const detail = this.offAcknowledged
      ? `${this.command.hostId} powered off: status read back off`
      : `${this.command.hostId} was already off (status read off); no power-off sent`;
    return this.result('succeeded', 'off', detail);
  }

  private notConfirmed(): CommandResult {
    const hostId = this.command.hostId;
    if (this.lastRead === 'on') {
      const detail = this.offAcknowledged
        ? `${hostId}: power-off acknowledged but status still read on at notAfter`
        : `${hostId}: status read on and power-off not acknowledged (${this.lastError ?? 'no answer'})`;
      return this.result('failed', 'on', detail);
    }
    return this.result(
      'failed',
      'unknown',
      `${hostId}: BMC did not answer before notAfter (${this.lastError ?? 'no status read'})`,
    );
  }

  private result(outcome: CommandResult['outcome'], powerState: 'off' | 'on' | 'unknown', detail: string) {
    return {
      commandId: this.command.commandId,
      incidentId: this.command.incidentId,
      outcome,
      powerState,
      detail,
      finishedAt: this.deps.clock.now(),
    } satisfies CommandResult;
  }
}
