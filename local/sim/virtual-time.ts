import FakeTimers from '@sinonjs/fake-timers';

/**
 * Virtual time for the deterministic simulator (FoundationDB's and TigerBeetle's answer to flaky
 * distributed tests): while `fn` runs, the timers, `Date` and `performance` of this thread are a simulated
 * clock that jumps to the next timer as soon as nothing else is runnable, and `Math.random` is a seeded
 * generator. Everything the run touches (site programs, handlers, memory stores, the Step Functions runner)
 * then behaves as a pure function of its inputs and seed: a run replays exactly, and a minute of scenario
 * passes in as long as its work takes.
 *
 * "Nothing else is runnable" means the microtask queue is empty: the driver yields one real macrotask turn
 * between timers, which drains every promise chain. Real I/O would not be waited for, so `fn` must do
 * none (no sockets, files, threads or child processes); the driver fails loudly when time cannot advance
 * while `fn` is still pending, which is what waiting on real I/O looks like.
 *
 * One run per thread at a time: the clock is the thread's global one. The simulator's pool runs many
 * threads for throughput.
 */

// Captured when this module loads, before any clock is installed: the driver's own way to yield.
const realSetImmediate = globalThis.setImmediate;

/** Epoch of every virtual run (2026-01-01T00:00:00Z): timestamps in reports are the same on every machine. */
export const VIRTUAL_EPOCH_MS = Date.UTC(2026, 0, 1);

/** Options of {@link onVirtualTime}. */
export interface VirtualTimeOptions {
  /** Seeded `Math.random` for the run's duration (libraries' jitter included). */
  readonly random: () => number;
  /** Where the clock starts; {@link VIRTUAL_EPOCH_MS} by default. */
  readonly startMs?: number;
  /** The run fails once virtual time passes this (a run that never ends); 24 h by default. */
  readonly limitMs?: number;
}

/** What the driver counted: timers fired and virtual time passed. */
export interface VirtualTimeStats {
  timersFired: number;
  virtualMs: number;
}

let active = false;

/** True while a virtual-time run is in progress on this thread. */
export function onVirtualTimeNow(): boolean {
  return active;
}

/** Runs `fn` on virtual time (see the module's note); resolves or rejects as `fn` does. */
export async function onVirtualTime<T>(
  fn: () => Promise<T>,
  options: VirtualTimeOptions,
  stats: VirtualTimeStats = { timersFired: 0, virtualMs: 0 },
): Promise<T> {
  if (active) throw new Error('a virtual-time run is already in progress on this thread');
  active = true;
  const startMs = options.startMs ?? VIRTUAL_EPOCH_MS;
  const limitMs = options.limitMs ?? 24 * 3_600_000;
  const realRandom = Math.random;
  const clock = FakeTimers.install({
    now: startMs,
    toFake: [
      'setTimeout',
      'clearTimeout',
      'setInterval',
      'clearInterval',
      'setImmediate',
      'clearImmediate',
      'Date',
      'performance',
      'hrtime',
    ],
    loopLimit: 1_000_000,
  });
  Math.random = options.random;
  const yieldReal = () => new Promise<void>((resolve) => realSetImmediate(resolve));
  try {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    fn().then(
      (value) => {
        outcome = { ok: true, value };
      },
      (error: unknown) => {
        outcome = { ok: false, error };
      },
    );
    for (;;) {
      await yieldReal();
      if (outcome !== undefined) break;
      if (clock.countTimers() === 0) {
        throw new Error(
          'virtual time is stuck: the run waits on something that is no timer (real I/O in a virtual run?)',
        );
      }
      clock.next();
      stats.timersFired += 1;
      if (clock.now - startMs > limitMs) {
        throw new Error(`virtual time passed its limit of ${limitMs} ms without the run ending`);
      }
    }
    stats.virtualMs = clock.now - startMs;
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  } finally {
    Math.random = realRandom;
    clock.uninstall();
    active = false;
  }
}
