import { availableParallelism } from 'node:os';

/** How one job ended: its value, or the error it threw (captured, never rethrown by the pool). */
export type JobResult<R> =
  | { readonly index: number; readonly ok: true; readonly value: R; readonly durationMs: number }
  | { readonly index: number; readonly ok: false; readonly error: unknown; readonly durationMs: number };

/** Progress of a pool: how many jobs ended so far, of how many, and the one that just ended. */
export interface PoolProgress<R> {
  readonly done: number;
  readonly total: number;
  readonly result: JobResult<R>;
}

/** Options of {@link runPool}. */
export interface PoolOptions<R> {
  /** Jobs in flight at once; defaults to {@link defaultConcurrency}. */
  readonly concurrency?: number;
  /** Called as each job ends, in the order they end. */
  readonly onProgress?: (progress: PoolProgress<R>) => void;
}

/**
 * Four runs per CPU, at most 8: a run mostly waits (heartbeats, timeouts, in real time), but every run's
 * control plane shares one dynalite thread, and VM-level HA reads and writes more per report. At 16 on two
 * cores, relays got start commands after their one-second deadline and restarts ran late for no fault of
 * the control plane; at 8 they did not. A loop late by a good part of a heartbeat also turns healthy hosts
 * silent (the summary prints the delay it saw).
 */
export function defaultConcurrency(): number {
  return Math.max(1, Math.min(8, 4 * availableParallelism()));
}

/**
 * Runs `job` over `items` with at most `concurrency` in flight; resolves with every result in input order.
 * A job that throws is captured as `ok: false`, so one failure neither stops nor hides the others.
 */
export async function runPool<T, R>(
  items: readonly T[],
  job: (item: T, index: number) => Promise<R>,
  options: PoolOptions<R> = {},
): Promise<JobResult<R>[]> {
  const concurrency = options.concurrency ?? defaultConcurrency();
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const results = new Array<JobResult<R>>(items.length);
  let next = 0;
  let done = 0;

  const runOne = async (index: number, item: T): Promise<JobResult<R>> => {
    const start = performance.now();
    try {
      // Awaited inside the try so that a job throwing synchronously is captured like a rejection.
      const value = await job(item, index);
      return { index, ok: true, value, durationMs: performance.now() - start };
    } catch (error) {
      return { index, ok: false, error, durationMs: performance.now() - start };
    }
  };

  // Each worker takes the next unclaimed index until none is left: at most `concurrency` jobs run at once.
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      const result = await runOne(index, items[index] as T);
      results[index] = result;
      done++;
      options.onProgress?.({ done, total: items.length, result });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
