import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ConfigError } from './config/config-file';
import type { Clock } from './ports';

/** What the site programs' mains share: the process clock, the entry-point test, signals and exit codes. */

/** The process's clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

/** Where a program writes, and how it is told to stop. */
export interface MainIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Aborted when the program should stop (SIGTERM/SIGINT in production). */
  readonly stopSignal: AbortSignal;
}

/** Whether the module at `moduleUrl` is the process's entry point (run directly or as a bundle). */
export function isEntryPoint(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/** Runs a program's main in this process: SIGTERM/SIGINT stop it, its exit code ends the process. */
export async function runProgram(
  name: string,
  main: (argv: readonly string[], io: MainIo) => Promise<number>,
  argv: readonly string[],
): Promise<never> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let code: number;
  try {
    code = await main(argv, {
      stdout: (text) => void process.stdout.write(text),
      stderr: (text) => void process.stderr.write(text),
      stopSignal: stop.signal,
    });
  } catch (error) {
    process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    code = 1;
  }
  process.exit(code);
}

/** A program's command line: commander writing to `io`, its usage errors thrown rather than exiting. */
export function newCommand(name: string, description: string, io: MainIo): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
}

/**
 * Runs a command line built by newCommand; resolves with the exit code its action set (`code()`). A usage
 * error or a ConfigError is exit 2, with the configuration's message (naming the field or file) on stderr.
 */
export async function parseCommand(
  program: Command,
  argv: readonly string[],
  io: MainIo,
  code: () => number,
): Promise<number> {
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code();
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ConfigError) {
      io.stderr(`${program.name()}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/**
 * The `--config` of a program's main action. Not a commander `requiredOption` on the program itself, which
 * would demand it before dispatching to a subcommand too; missing, it is a usage error (exit 2).
 */
export function configOption(opts: { readonly config?: string | undefined }): string {
  if (opts.config === undefined) throw new ConfigError("required option '-c, --config <file>' not specified");
  return opts.config;
}
