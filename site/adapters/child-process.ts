import { spawn } from 'node:child_process';

/** One program run: what to run, with what, for how long. */
export interface RunRequest {
  /** The program: a path, or a name looked up on `env.PATH` (else the relay's own PATH). */
  readonly file: string;
  readonly args: readonly string[];
  /** Added to the minimal environment (PATH, LANG=C); overrides it. Nothing else is inherited. */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to the program's standard input, which is then closed (closed at once when absent). */
  readonly stdin?: string;
  /** The program (and anything it started) is killed with SIGKILL after this long. */
  readonly timeoutMs: number;
}

/** How a run ended. A non-zero exit is an answer, not an error: the caller decides what it means. */
export interface RunResult {
  /** Exit code; null when killed by a signal (the timeout, or someone else). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** More output than any fence tool prints: a runaway program cannot fill the relay's memory. */
const MAX_OUTPUT_CHARS = 1 << 20;

/**
 * After the kill, how long to wait for the pipes to close before answering anyway: a process stuck in the
 * kernel (D state) never dies, and the caller's deadline matters more than its last words.
 */
const KILL_GRACE_MS = 2000;

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Runs a program with no shell (arguments are never re-parsed), a minimal explicit environment (the
 * relay's own holds its credential; a child gets PATH, LANG=C and what it is given) and a hard deadline.
 * Resolves with the exit code and output; throws only when the program cannot be started at all.
 */
export function runProcess(request: RunRequest): Promise<RunResult> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? DEFAULT_PATH, LANG: 'C', ...request.env };
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(request.file, [...request.args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so the timeout kills what it started too (a fence agent's ipmitool).
      detached: true,
      windowsHide: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;

    const settle = (outcome: { result: RunResult } | { error: Error }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      clearTimeout(graceTimer);
      if ('result' in outcome) resolve(outcome.result);
      else reject(outcome.error);
    };

    const killTimer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
      graceTimer = setTimeout(
        () => settle({ result: { code: null, stdout, stderr, timedOut } }),
        KILL_GRACE_MS,
      );
    }, request.timeoutMs);

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT_CHARS) stdout += chunk;
    });
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT_CHARS) stderr += chunk;
    });
    // A program that exits without reading its input breaks the pipe: that is its answer, not ours.
    child.stdin.on('error', () => {});
    child.stdin.end(request.stdin ?? '');

    child.on('error', (error: NodeJS.ErrnoException) => {
      // 'error' after a successful spawn comes from a failed kill: the exit still decides the result.
      if (child.pid !== undefined) return;
      const why = error.code === 'ENOENT' ? 'not found' : (error.code ?? error.message);
      settle({ error: new Error(`cannot run ${request.file}: ${why}`) });
    });
    child.on('close', (code) => settle({ result: { code, stdout, stderr, timedOut } }));
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
