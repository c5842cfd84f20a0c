import type { CommandResult, FenceCommand } from '../../contracts/relay-protocol';
import type { Clock } from '../ports';
import { type CommandRun, describeError, finished, NOT_FINISHED, type StepOutcome } from './command-run';
import { DEFAULT_LEVEL_TIMEOUT_MS, type FenceLevel } from './config';

/** What a fence needs from the relay. */
export interface FenceDeps {
  readonly clock: Clock;
  readonly pollMs: number;
  /**
   * The boot the relay hears the host alive in now (heard within the silence threshold), or null when it
   * does not hear it. Left out, the fence never refuses a stale boot.
   */
  readonly aliveBoot?: () => string | null;
}

/**
 * A level that fails this many calls in a row (no answer, power-off refused) gives way to the next level
 * at once: a BMC that died with its host's power will not answer the next call either, and every level
 * powers off the same host, so moving on is always safe.
 */
export const LEVEL_ERRORS_BEFORE_NEXT = 2;

/** How one level is doing within the command. */
interface LevelAttempt {
  readonly startedAt: number;
  lastRead: 'on' | 'unknown';
  offAcknowledged: boolean;
  errorsInRow: number;
  lastError: string | null;
}

/**
 * A fence: power the host off and read its power status back until it says `off`, through the host's
 * fence levels in order (Pacemaker's fencing topology: a BMC first, a switched PDU after it…).
 *
 * Each step reads the current level's status first, so a host already off is reported fenced without a
 * power-off being sent; the step that sends the power-off reads the status again straight after it is
 * acknowledged. Only a status read back as `off` is a success (safety rule 1): an acknowledged power-off
 * is not. A level that cannot confirm `off` (it does not answer, refuses the power-off, or still reads
 * `on` past its timeout) hands over to the next level within the same command; after the last level the
 * first is tried again, until notAfter. The result names the level that read `off`, or every level's
 * failure.
 */
export class FenceRun implements CommandRun {
  dueAt: number;
  private index = 0;
  private attempt: LevelAttempt;
  /** Why each level failed so far (by level number), for the failure's detail. */
  private readonly failures = new Map<number, string>();
  /** Some level read `on` at its last read: a failure then reports `on`, not `unknown`. */
  private readOn = false;

  constructor(
    private readonly command: FenceCommand,
    private readonly levels: readonly FenceLevel[],
    private readonly deps: FenceDeps,
  ) {
    if (levels.length === 0) throw new Error(`no fence level configured for ${command.hostId}`);
    this.dueAt = deps.clock.now();
    this.attempt = this.freshAttempt();
  }

  async step(): Promise<StepOutcome> {
    const { clock } = this.deps;
    if (clock.now() > this.command.notAfter) return finished(this.notConfirmed());
    // Checked before every call to the BMC: a host that boots again while its BMC did not answer (the
    // usual case of a crash and a reboot) must not have its new boot powered off by a late success.
    const stale = this.staleBoot();
    if (stale !== null) return finished(stale);
    if (clock.now() > this.attempt.startedAt + this.levelTimeout()) {
      this.nextLevel(this.timedOutReason());
      if (clock.now() > this.command.notAfter) return finished(this.notConfirmed());
    }
    const device = this.level().device;
    const attempt = this.attempt;
    try {
      const status = await device.powerStatus();
      if (status === 'off') return finished(this.confirmed());
      attempt.lastRead = 'on';
      this.readOn = true;
    } catch (error) {
      return this.levelError(`power status: ${describeError(error)}`);
    }
    if (attempt.offAcknowledged) return this.pollAgain();
    // Checked again after the read: a BMC can take seconds to answer, and a host heard in a new boot
    // meanwhile must not have that boot powered off.
    const rebooted = this.staleBoot();
    if (rebooted !== null) return finished(rebooted);
    // Sent again after a refusal only: once acknowledged, the device is taking its time, and reads decide.
    try {
      await device.powerOff();
      attempt.offAcknowledged = true;
      attempt.errorsInRow = 0;
      attempt.lastError = null;
    } catch (error) {
      return this.levelError(`power off: ${describeError(error)}`);
    }
    // Most BMCs read off as soon as they acknowledge a hard power-off: read it back at once rather than
    // a poll interval later, which would sit on every failover's critical path.
    try {
      if ((await device.powerStatus()) === 'off') return finished(this.confirmed());
    } catch (error) {
      // Still acknowledged: the next poll reads again.
      attempt.lastError = `power status: ${describeError(error)}`;
    }
    return this.pollAgain();
  }

  /**
   * The refusal of a fence for a boot that has ended: the relay hears the host alive in another boot than
   * the command's. Null when the command names no boot, or the relay hears the host silent or in that boot
   * (a half-dead host in the boot being fenced is fenced).
   */
  staleBoot(): CommandResult | null {
    const target = this.command.bootId;
    const alive = this.deps.aliveBoot?.() ?? null;
    if (target === undefined || alive === null || alive === target) return null;
    return {
      commandId: this.command.commandId,
      incidentId: this.command.incidentId,
      outcome: 'failed',
      refused: 'stale-boot',
      detail:
        `${this.command.hostId} is alive in boot ${alive}, not boot ${target} the fence was for: ` +
        'refused, no power-off sent' +
        (this.failures.size > 0 ? ` (before: ${this.describeFailures()})` : ''),
      finishedAt: this.deps.clock.now(),
    };
  }

  private level(): FenceLevel {
    const level = this.levels[this.index];
    if (level === undefined) throw new Error('fence level index out of range');
    return level;
  }

  private levelTimeout(): number {
    return this.level().timeoutMs ?? DEFAULT_LEVEL_TIMEOUT_MS;
  }

  private freshAttempt(): LevelAttempt {
    return {
      startedAt: this.deps.clock.now(),
      lastRead: 'unknown',
      offAcknowledged: false,
      errorsInRow: 0,
      lastError: null,
    };
  }

  /** A failed call: the same level polls again, or gives way to the next one after too many in a row. */
  private levelError(message: string): StepOutcome {
    const attempt = this.attempt;
    attempt.lastError = message;
    attempt.lastRead = 'unknown';
    attempt.errorsInRow += 1;
    if (attempt.errorsInRow < LEVEL_ERRORS_BEFORE_NEXT) return this.pollAgain();
    this.nextLevel(message);
    // The next level is tried at once: the host may still be writing to shared storage.
    this.dueAt = this.deps.clock.now();
    return NOT_FINISHED;
  }

  private timedOutReason(): string {
    const a = this.attempt;
    if (a.lastRead === 'on') {
      return a.offAcknowledged
        ? `power-off acknowledged but still read on after ${this.levelTimeout()} ms`
        : `read on; power-off not acknowledged (${a.lastError ?? 'no answer'})`;
    }
    return `no power status read within ${this.levelTimeout()} ms (${a.lastError ?? 'no answer'})`;
  }

  private nextLevel(reason: string): void {
    this.failures.set(this.index + 1, `${this.level().device.driver}: ${reason}`);
    this.index = (this.index + 1) % this.levels.length;
    this.attempt = this.freshAttempt();
  }

  private pollAgain(): StepOutcome {
    const now = this.deps.clock.now();
    // The last step falls just past notAfter, so the failure is reported as soon as it is certain.
    this.dueAt = Math.min(now + this.deps.pollMs, this.command.notAfter + 1);
    return NOT_FINISHED;
  }

  private confirmed(): CommandResult {
    const n = this.index + 1;
    const driver = this.level().device.driver;
    const how = this.attempt.offAcknowledged
      ? 'powered off: status read back off'
      : 'was already off (status read off); no power-off sent';
    const before = this.failures.size > 0 ? ` after ${this.describeFailures()}` : '';
    return {
      ...this.result('succeeded', 'off', `${this.command.hostId} ${how} by level ${n} (${driver})${before}`),
      level: n,
      driver,
    };
  }

  private notConfirmed(): CommandResult {
    const current = this.attempt;
    if (current.lastRead === 'on' || current.lastError !== null) {
      this.failures.set(this.index + 1, `${this.level().device.driver}: ${this.timedOutReasonAtDeadline()}`);
    }
    // `on` when any level read the host on: it was seen powered, which `unknown` would hide.
    const powerState = this.readOn ? 'on' : 'unknown';
    return this.result(
      'failed',
      powerState,
      `${this.command.hostId}: power-off not confirmed before notAfter; ${this.describeFailures()}`,
    );
  }

  private timedOutReasonAtDeadline(): string {
    const a = this.attempt;
    if (a.lastRead === 'on') {
      return a.offAcknowledged
        ? 'power-off acknowledged but status still read on at notAfter'
        : `status read on and power-off not acknowledged (${a.lastError ?? 'no answer'})`;
    }
    return `did not answer before notAfter (${a.lastError ?? 'no status read'})`;
  }

  private describeFailures(): string {
    return [...this.failures.entries()]
      .sort(([a], [b]) => a - b)
      .map(([n, why]) => `level ${n} ${why}`)
      .join('; ');
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
