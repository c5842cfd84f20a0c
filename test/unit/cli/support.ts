import type { CliHost } from '../../../cli/context';
import { runHalo } from '../../../cli/program';
import { resolveTarget } from '../../../cli/target';

/** What one `halo` run wrote and returned. */
export interface HaloRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link haloRunner}. */
export interface RunnerOptions {
  /** The environment the CLI reads (HALO_URL, HALO_LOCAL_TOKEN_FILE…); the AWS chain reads process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The instant the CLI renders against; the wall clock by default. */
  readonly now?: () => number;
  readonly isTTY?: boolean;
  /** Answers to the CLI's questions, in order; none means there is no terminal to ask on. */
  readonly answers?: readonly string[];
  /** Replaces target resolution (the real resolveTarget over `env` by default). */
  readonly resolveTarget?: CliHost['resolveTarget'];
}

/** Runs the real `halo` program in-process (real target resolution, real HTTP), capturing its output. */
export function haloRunner(
  options: RunnerOptions = {},
): (...argv: string[]) => Promise<HaloRun & { prompts: string[] }> {
  return async (...argv) => {
    let stdout = '';
    let stderr = '';
    const prompts: string[] = [];
    const answers = [...(options.answers ?? [])];
    const env = options.env ?? {};
    const host: CliHost = {
      io: {
        stdout: (text) => {
          stdout += text;
        },
        stderr: (text) => {
          stderr += text;
        },
      },
      env,
      now: options.now ?? (() => Date.now()),
      timeZone: 'UTC',
      isTTY: options.isTTY ?? false,
      canPrompt: options.answers !== undefined,
      prompt: async (question) => {
        prompts.push(question);
        return answers.shift() ?? null;
      },
      user: 'alice',
      resolveTarget: options.resolveTarget ?? ((target) => resolveTarget(target, env)),
    };
    const code = await runHalo(argv, host);
    return { code, stdout, stderr, prompts };
  };
}
