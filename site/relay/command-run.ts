import type { CommandResult } from '../../contracts/relay-protocol';

/** What one step of a command left behind. */
export type StepOutcome =
  | { readonly finished: false }
  /** `result` null: finished with nothing true to report (the control plane's timeout decides). */
  | { readonly finished: true; readonly result: CommandResult | null };

/**
 * One command being carried out, advanced a step at a time by the relay's ticks: no step waits for long,
 * so reports keep going out while a fence polls its BMC.
 */
export interface CommandRun {
  /** When the next step is due, on the relay's clock. */
  readonly dueAt: number;
  /** Takes the next step. Never throws: a failing port is part of the outcome. */
  step(): Promise<StepOutcome>;
}

/** A step after which the command goes on. */
export const NOT_FINISHED: StepOutcome = { finished: false };

/** A step that finished the command. */
export function finished(result: CommandResult | null): StepOutcome {
  return { finished: true, result };
}

/** The message of anything thrown. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
