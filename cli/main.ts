import { userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import type { CliHost } from './context';
import { runHalo } from './program';
import { resolveTarget } from './target';
import { localTimeZone } from './time';

/** The operating-system user, or `unknown` where there is none (a container without a passwd entry). */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** Asks on the terminal (the question on stderr, so that stdout stays clean); null without a terminal. */
async function prompt(question: string): Promise<string | null> {
  if (!process.stdin.isTTY) return null;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

const host: CliHost = {
  io: {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  },
  env: process.env,
  now: () => Date.now(),
  timeZone: localTimeZone(),
  isTTY: process.stdout.isTTY === true,
  canPrompt: process.stdin.isTTY === true,
  prompt,
  user: osUser(),
  resolveTarget: (options) => resolveTarget(options, process.env),
};

// exitCode rather than exit(): a long report piped to another program is flushed before Node exits.
process.exitCode = await runHalo(process.argv.slice(2), host);
