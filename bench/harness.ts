import { renderTable } from '../cli/format';

/** Timing of one benchmark, in milliseconds. */
export interface Measurement {
  readonly name: string;
  readonly median: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
  /**
   * CPU time of the main thread per run (process.threadCpuUsage), median and p99: the work itself, without
   * the time the thread waited for a core on a loaded machine. Absent where Node lacks the call.
   */
  readonly cpu?: { readonly median: number; readonly p99: number };
}

/** How often to run: `warmup` untimed runs let the JIT settle before `runs` timed ones. */
export interface MeasureOptions {
  readonly runs: number;
  readonly warmup: number;
}

// Nearest-rank percentile: with 20 runs, p99 is the slowest run, which is the honest reading.
function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Times `fn` with `performance.now()` after a warm-up; reports median, p99, min and max in ms. */
export function measure(name: string, fn: () => unknown, options: MeasureOptions): Measurement {
  if (options.runs < 1) throw new Error(`measure(${name}): runs must be at least 1`);
  // Only the latest result stays reachable: keeping every run's output alive would time the GC too.
  let last: unknown;
  for (let i = 0; i < options.warmup; i++) last = fn();
  const times: number[] = [];
  // With --expose-gc (npm run bench), each run starts on a clean heap: the previous runs' garbage is not
  // collected on this run's clock. What a run allocates itself is still collected, and timed, inside it.
  const gc = (globalThis as { gc?: () => void }).gc;
  const threadCpu = (
    process as { threadCpuUsage?: (since?: NodeJS.CpuUsage) => NodeJS.CpuUsage }
  ).threadCpuUsage?.bind(process);
  const cpuTimes: number[] = [];
  for (let i = 0; i < options.runs; i++) {
    gc?.();
    const cpuStart = threadCpu?.();
    const start = performance.now();
    last = fn();
    times.push(performance.now() - start);
    if (threadCpu !== undefined && cpuStart !== undefined) {
      const used = threadCpu(cpuStart);
      cpuTimes.push((used.user + used.system) / 1000);
    }
  }
  times.sort((a, b) => a - b);
  cpuTimes.sort((a, b) => a - b);
  void last;
  return {
    name,
    median: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    min: times[0] ?? Number.NaN,
    max: times[times.length - 1] ?? Number.NaN,
    runs: times.length,
    ...(cpuTimes.length === 0
      ? {}
      : { cpu: { median: percentile(cpuTimes, 0.5), p99: percentile(cpuTimes, 0.99) } }),
  };
}

/** One measured benchmark against its target, with a word on what the workload produced. */
export interface BenchResult {
  readonly measurement: Measurement;
  /** p99 must stay under this, in ms: a failover waits on the slow runs, not the typical one. */
  readonly targetMs: number;
  /** What one run produced (e.g. "9,950 placed, 50 unplaced"): shows the workload did real work. */
  readonly outcome: string;
}

/** A group of benchmarks printed as one table; bench/run.ts runs every registered suite. */
export interface BenchSuite {
  readonly title: string;
  readonly run: () => readonly BenchResult[];
}

/** A table cell: numbers are right-aligned and shown to two decimals when fractional. */
export type Cell = string | number;

const showCell = (cell: Cell): string =>
  typeof cell === 'number' ? (Number.isInteger(cell) ? String(cell) : cell.toFixed(2)) : cell;

/** Prints a titled table whose columns are the keys of the first row. */
export function printTable(title: string, rows: readonly Readonly<Record<string, Cell>>[]): void {
  const headers = Object.keys(rows[0] ?? {});
  const columns = headers.map((header) => ({
    header,
    align: rows.some((r) => typeof r[header] === 'number') ? ('right' as const) : ('left' as const),
  }));
  const body = rows.map((r) => headers.map((h) => showCell(r[h] ?? '')));
  console.log(`\n${title}\n`);
  for (const line of renderTable(columns, body, '  ')) console.log(line);
}

/** Rows of a suite's table: median and p99 against the target, PASS when p99 is under it. */
export function resultRows(results: readonly BenchResult[]): Record<string, Cell>[] {
  return results.map(({ measurement: m, targetMs, outcome }) => ({
    benchmark: m.name,
    runs: m.runs,
    'median ms': m.median,
    'p99 ms': m.p99,
    'min ms': m.min,
    'max ms': m.max,
    'thread CPU median / p99 ms':
      m.cpu === undefined ? '' : `${m.cpu.median.toFixed(2)} / ${m.cpu.p99.toFixed(2)}`,
    target: `< ${targetMs} ms`,
    result: m.p99 < targetMs ? 'PASS' : 'MISS',
    workload: outcome,
  }));
}
