import type { OperatorClient } from './client';
import type { Io } from './format';
import type { Style } from './style';
import type { Target, TargetOptions } from './target';
import type { TimeContext } from './time';

/** The process around the CLI: streams, environment, clock and terminal, all replaceable in tests. */
export interface CliHost {
  readonly io: Io;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Epoch milliseconds now. */
  readonly now: () => number;
  /** Time zone instants are shown in (the process's by default). */
  readonly timeZone: string;
  /** stdout is a terminal: colour may be on. */
  readonly isTTY: boolean;
  /** There is a terminal to ask questions on (stdin is a TTY). */
  readonly canPrompt: boolean;
  /** Asks a question on the terminal and returns the answer; null when there is no terminal to ask on. */
  readonly prompt: (question: string) => Promise<string | null>;
  /** The operating-system user, the witness a local confirmation records by default. */
  readonly user: string;
  /** Finds the control plane (resolveTarget in production; tests may point it anywhere). */
  readonly resolveTarget: (options: TargetOptions) => Promise<Target>;
}

/** What every command gets: where to write, how, and the control plane (resolved on first use). */
export interface CommandContext {
  readonly host: CliHost;
  readonly io: Io;
  readonly json: boolean;
  readonly style: Style;
  readonly time: TimeContext;
  /** The target, resolved once, on the first call. */
  target(): Promise<Target>;
  /** Shorthand for `(await target()).client`. */
  client(): Promise<OperatorClient>;
}

/** Writes a value as indented JSON, for scripts. */
export function writeJson(ctx: CommandContext, value: unknown): void {
  ctx.io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes lines, each ending in a newline. */
export function writeLines(ctx: CommandContext, lines: readonly string[]): void {
  if (lines.length > 0) ctx.io.stdout(`${lines.join('\n')}\n`);
}
