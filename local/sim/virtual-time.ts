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

/** Driver steps queued at once: they run in one turn of the real event loop (see onVirtualTime). */
const STEPS_PER_TURN = 64;

/** The clock methods the timer queue below stands in for. */
const TIMER_METHODS = [
  'setTimeout',
  'clearTimeout',
  'setInterval',
  'clearInterval',
  'setImmediate',
  'clearImmediate',
] as const;

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
  // @sinonjs/fake-timers installs the clock: it replaces the globals (and node:timers, timers/promises)
  // with functions that call the clock's methods, and fakes Date, performance and hrtime from clock.now.
  // The timer methods themselves are then the queue below: the same order and the same instants as the
  // library's, at a fraction of its cost per timer (a simulated run sets and fires thousands).
  const clock = FakeTimers.install({
    now: startMs,
    toFake: [...TIMER_METHODS, 'Date', 'performance', 'hrtime'],
    loopLimit: 1_000_000,
  });
  const libraryMethods = TIMER_METHODS.map((name) => [name, clock[name]] as const);
  const queue = new TimerQueue(clock);
  queue.install();
  Math.random = options.random;
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
    // A step runs in a real setImmediate callback, and Node drains every microtask (and nextTick) after
    // each immediate callback: a step sees the run only once nothing is runnable, then fires the next
    // timer. Steps are queued STEPS_PER_TURN at a time, all run in one turn of the real event loop, with
    // those drains between them: a turn of the loop per timer cost several times the step itself.
    await new Promise<void>((resolve, reject) => {
      let ended = false;
      let queued = 0;
      const step = () => {
        queued -= 1;
        if (ended) return;
        try {
          if (outcome !== undefined) {
            ended = true;
            resolve();
            return;
          }
          // Whatever reached the library's own queue (util.promisify(setTimeout)) would never fire here.
          if (clock.countTimers() > 0) {
            throw new Error('a timer was set on the fake clock behind the virtual one');
          }
          if (queue.size === 0) {
            throw new Error(
              'virtual time is stuck: the run waits on something that is no timer (real I/O in a virtual run?)',
            );
          }
          queue.fireNext();
          stats.timersFired += 1;
          if (clock.now - startMs > limitMs) {
            throw new Error(`virtual time passed its limit of ${limitMs} ms without the run ending`);
          }
          if (queued === 0) queueSteps();
        } catch (error) {
          ended = true;
          reject(error);
        }
      };
      const queueSteps = () => {
        for (let i = 0; i < STEPS_PER_TURN; i++) realSetImmediate(step);
        queued = STEPS_PER_TURN;
      };
      queueSteps();
    });
    if (outcome === undefined) throw new Error('virtual time ended before the run did');
    stats.virtualMs = clock.now - startMs;
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  } finally {
    Math.random = realRandom;
    // The library restores each global by its own methods' marks: they go back before it uninstalls.
    for (const [name, method] of libraryMethods) Object.assign(clock, { [name]: method });
    clock.uninstall();
    active = false;
  }
}

type TimerType = 'Timeout' | 'Interval' | 'Immediate';

/** The clock the library installs. */
type LibraryClock = ReturnType<typeof FakeTimers.install>;

/** The largest delay a timer takes as is (a signed 32-bit int); longer ones fire after 1 ms, as in Node. */
const MAX_TIMEOUT = 2 ** 31 - 1;
/**
 * Timer ids, counted across runs as the library counts them, from where it starts (far from any native
 * timer's): a handle kept from an earlier run never clears a timer of this one.
 */
let nextTimerId = 1e12;

/**
 * One timer, and its handle: what setTimeout returns in Node (`ref`, `unref`, `hasRef`, `refresh`, its id
 * as its primitive value), as the library's handles are.
 */
class VirtualTimer {
  heapIndex = -1;
  refed = true;

  constructor(
    private readonly queue: TimerQueue,
    readonly id: number,
    readonly type: TimerType,
    readonly func: (...args: unknown[]) => unknown,
    readonly args: unknown[],
    /** The delay as normalized (Timeout and Interval); undefined for an Immediate. */
    readonly delay: number | undefined,
    readonly interval: number | undefined,
    public callAt: number,
    public order: number,
  ) {}

  ref(): this {
    this.refed = true;
    return this;
  }

  unref(): this {
    this.refed = false;
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  refresh(): this {
    this.queue.refresh(this);
    return this;
  }

  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

/**
 * The timers of a virtual run, earliest first: by the instant they are due, an Immediate before a timeout
 * due at the same instant, then in the order they were set (@sinonjs/fake-timers' order, which the
 * simulator's byte-for-byte replays were recorded with). As in the library, a timer set without a delay
 * while a timer fires is due 1 ms later, not at once (`duringTick`); one set from a promise continuation
 * after it is due at once.
 */
class TimerQueue {
  private readonly heap: VirtualTimer[] = [];
  private readonly byId = new Map<number, VirtualTimer>();
  private nextOrder = 0;
  private duringTick = false;
  /** The library's own clear methods: the answer for a handle that is none of this queue's. */
  private readonly libraryClear: Readonly<Record<`clear${TimerType}`, (handle: unknown) => void>>;

  constructor(private readonly clock: LibraryClock) {
    const library = clock as unknown as Record<`clear${TimerType}`, (handle: unknown) => void>;
    this.libraryClear = {
      clearTimeout: library.clearTimeout,
      clearInterval: library.clearInterval,
      clearImmediate: library.clearImmediate,
    };
  }

  get size(): number {
    return this.heap.length;
  }

  /** Puts this queue's methods on the clock, which the installed globals call. */
  install(): void {
    const methods = {
      setTimeout: (func: unknown, timeout?: unknown, ...args: unknown[]) =>
        this.add(func, args, 'Timeout', timeout, undefined),
      setInterval: (func: unknown, timeout?: unknown, ...args: unknown[]) => {
        const parsed = Number.parseInt(String(timeout), 10);
        return this.add(func, args, 'Interval', parsed, parsed);
      },
      setImmediate: (func: unknown, ...args: unknown[]) =>
        this.add(func, args, 'Immediate', undefined, undefined),
      clearTimeout: (id: unknown) => this.clear(id, 'Timeout'),
      clearInterval: (id: unknown) => this.clear(id, 'Interval'),
      clearImmediate: (id: unknown) => this.clear(id, 'Immediate'),
    };
    Object.assign(this.clock, methods);
  }

  /** Fires the earliest timer: the clock moves to its instant, then it runs (an interval is set again first). */
  fireNext(): void {
    const timer = this.heap[0];
    if (timer === undefined) return;
    this.duringTick = true;
    try {
      this.clock.now = timer.callAt;
      this.remove(timer);
      if (timer.interval !== undefined) {
        timer.callAt += timer.interval;
        timer.order = this.nextOrder++;
        this.push(timer);
      } else {
        this.byId.delete(timer.id);
      }
      timer.func.apply(null, timer.args);
    } finally {
      this.duringTick = false;
    }
  }

  refresh(timer: VirtualTimer): void {
    timer.callAt = this.clock.now + this.delayOf(timer.delay);
    this.remove(timer);
    timer.order = this.nextOrder++;
    this.byId.set(timer.id, timer);
    this.push(timer);
  }

  private add(
    func: unknown,
    args: unknown[],
    type: TimerType,
    timeout: unknown,
    interval: number | undefined,
  ): VirtualTimer {
    if (func === undefined) throw new Error('Callback must be provided to timer calls');
    if (typeof func !== 'function') {
      throw new TypeError(
        `[ERR_INVALID_CALLBACK]: Callback must be a function. Received ${String(func)} of type ${typeof func}`,
      );
    }
    let delay: number | undefined;
    if (type !== 'Immediate') {
      let d = typeof timeout === 'number' ? timeout : Number.parseInt(timeout as string, 10);
      if (!Number.isFinite(d)) d = 0;
      d = d > MAX_TIMEOUT ? 1 : d;
      delay = Math.max(0, d);
    }
    let every = interval;
    if (every !== undefined) {
      if (!Number.isFinite(every)) every = 1;
      every = every > MAX_TIMEOUT ? 1 : every;
    }
    const timer = new VirtualTimer(
      this,
      nextTimerId++,
      type,
      func as (...a: unknown[]) => unknown,
      args,
      delay,
      every,
      this.clock.now + this.delayOf(delay),
      this.nextOrder++,
    );
    this.byId.set(timer.id, timer);
    this.push(timer);
    return timer;
  }

  /** The library's delay rule, quirks included: `parseInt(String(delay))`, and 0 → 1 ms during a tick. */
  private delayOf(delay: number | undefined): number {
    // A whole delay (nearly every one) parses as itself: no string is made for it.
    const whole =
      delay !== undefined && Number.isInteger(delay) && delay < 1e21
        ? delay
        : Number.parseInt(String(delay), 10);
    return whole || (this.duringTick ? 1 : 0);
  }

  private clear(handle: unknown, type: TimerType): void {
    if (!handle) return;
    const timer = this.byId.get(Number(handle));
    if (timer === undefined) {
      // Not one of these (a native timer, one that fired): the library's own answer, warning included.
      this.libraryClear[`clear${type}`](handle);
      return;
    }
    const compatible =
      timer.type === type ||
      (timer.type === 'Timeout' && type === 'Interval') ||
      (timer.type === 'Interval' && type === 'Timeout');
    if (!compatible) {
      throw new Error(
        `Cannot clear timer: timer created with set${timer.type}() but cleared with clear${type}()`,
      );
    }
    this.byId.delete(timer.id);
    this.remove(timer);
  }

  private static before(a: VirtualTimer, b: VirtualTimer): boolean {
    if (a.callAt !== b.callAt) return a.callAt < b.callAt;
    const ai = a.type === 'Immediate';
    if (ai !== (b.type === 'Immediate')) return ai;
    return a.order < b.order;
  }

  private push(timer: VirtualTimer): void {
    this.heap.push(timer);
    this.up(this.heap.length - 1);
  }

  private remove(timer: VirtualTimer): void {
    const index = timer.heapIndex;
    if (index < 0 || this.heap[index] !== timer) return;
    const last = this.heap.pop() as VirtualTimer;
    timer.heapIndex = -1;
    if (last === timer) return;
    this.heap[index] = last;
    last.heapIndex = index;
    this.up(index);
    this.down(last.heapIndex);
  }

  private up(index: number): void {
    const heap = this.heap;
    const timer = heap[index] as VirtualTimer;
    let i = index;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex] as VirtualTimer;
      if (!TimerQueue.before(timer, parent)) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    heap[i] = timer;
    timer.heapIndex = i;
  }

  private down(index: number): void {
    const heap = this.heap;
    const n = heap.length;
    const timer = heap[index] as VirtualTimer;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && TimerQueue.before(heap[right] as VirtualTimer, heap[left] as VirtualTimer))
        child = right;
      const c = heap[child] as VirtualTimer;
      if (!TimerQueue.before(c, timer)) break;
      heap[i] = c;
      c.heapIndex = i;
      i = child;
    }
    heap[i] = timer;
    timer.heapIndex = i;
  }
}
