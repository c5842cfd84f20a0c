import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { renderTable } from '../../cli/format';
import type { Scenario, ScenarioReport, ViolationRule } from '../../contracts/scenario';
import { generateScenario } from './generate';
import { runPool } from './pool';
import type { RunOptions, RunResult } from './runner';
import { runSeedsOnThreads } from './seed-pool';
import { type ScenarioSize, shrinkScenario } from './shrink';

/**
 * Random simulation: many generated scenarios, each run on virtual time on its own in-process control
 * plane (simulator threads, one per CPU), and a summary that names the seed of every broken safety rule
 * and of every run the harness itself could not finish. A seed's run is the same on every machine.
 */

/** An incident outcome as the report gives it. */
export type Outcome = ScenarioReport['incidents'][number]['outcome'];

/** What one run came to, for the progress line and the summary. */
export interface RandomRun {
  readonly seed: number;
  readonly scenario: string;
  readonly outcomes: readonly Outcome[];
  readonly violations: ScenarioReport['violations'];
  /** Site programs (agents, relays, the simulated operator) that failed during the run. */
  readonly programErrors: readonly string[];
  readonly wallMs: number;
}

/** A run the harness could not finish: it threw, so it proved nothing either way. */
export interface HarnessError {
  readonly seed: number;
  readonly scenario: string;
  readonly error: string;
}

/** A broken safety rule, with the command that runs its scenario again. */
export interface SeededViolation {
  readonly seed: number;
  readonly scenario: string;
  readonly rule: ViolationRule;
  readonly detail: string;
  readonly reproduce: string;
}

/** The result of {@link runRandom}. */
export interface RandomSummary {
  readonly count: number;
  readonly firstSeed: number;
  readonly concurrency: number;
  readonly wallMs: number;
  /** CPU time of the whole process (every thread: the simulator threads, GC, this one) over the runs. */
  readonly cpuMs: number;
  /** Every run that finished, in seed order. */
  readonly runs: readonly RandomRun[];
  /** Incidents per outcome across all runs (a run may have several incidents, or none). */
  readonly outcomes: Readonly<Record<Outcome, number>>;
  readonly runsWithoutIncident: number;
  readonly harnessErrors: readonly HarnessError[];
  readonly violations: readonly SeededViolation[];
  /** 0 when no rule was broken and every run finished; 1 otherwise. */
  readonly exitCode: 0 | 1;
}

/** One finished run, as {@link RandomOptions.onProgress} sees it. */
export interface RandomProgress {
  readonly done: number;
  readonly total: number;
  readonly seed: number;
  readonly run: RandomRun | null;
  readonly error: HarnessError | null;
}

/** Runs one scenario; the simulator's runner unless a test substitutes its own. */
export type ScenarioRunner = (scenario: Scenario, options: RunOptions) => Promise<RunResult>;

/** Options of {@link runRandom}. */
export interface RandomOptions {
  readonly count: number;
  /** Schedule i runs with seed `seed + i`, for the generator and the simulator alike. */
  readonly seed: number;
  /** Simulator threads (runs at once); one per CPU by default. */
  readonly concurrency?: number;
  readonly onProgress?: (progress: RandomProgress) => void;
  /** Runs the scenarios in this thread with this runner instead (a test's stub). */
  readonly runner?: ScenarioRunner;
}

const OUTCOMES: readonly Outcome[] = [
  'recovered',
  'partially-recovered',
  'false-alarm',
  'fencing-suppressed',
  'awaiting-operator',
  'in-progress',
];

const PROGRAM_ERROR = 'site program error: ';

/** The command that reruns one seed's scenario alone. */
export const reproduceCommand = (seed: number): string => `npm run sim -- --random 1 --seed ${seed}`;

/** Generates and runs `count` scenarios (seeds `seed`, `seed + 1`, …) with bounded concurrency. */
export async function runRandom(options: RandomOptions): Promise<RandomSummary> {
  const { count, seed } = options;
  if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`count must be ≥ 1, got ${count}`);
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const concurrency = options.concurrency ?? availableParallelism();
  const seeds = Array.from({ length: count }, (_, i) => seed + i);
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  return summarize(options.runner === undefined ? await onThreads() : await inThisThread(options.runner));

  async function onThreads() {
    const outcomes = await runSeedsOnThreads<RandomRun>(seeds, concurrency, (outcome, done) => {
      options.onProgress?.({
        done,
        total: count,
        seed: outcome.seed,
        run: outcome.ok ? outcome.run : null,
        error: outcome.ok
          ? null
          : { seed: outcome.seed, scenario: scenarioName(outcome.seed), error: outcome.error },
      });
    });
    return outcomes.map((o, index) =>
      o.ok ? { index, ok: true as const, value: o.run } : { index, ok: false as const, error: o.error },
    );
  }

  async function inThisThread(runner: ScenarioRunner) {
    return runPool(
      seeds,
      async (s): Promise<RandomRun> => {
        // Generated inside the job so that a generator bug is a harness error of that seed, not a crash.
        const scenario = generateScenario(s);
        const programErrors: string[] = [];
        const runStarted = performance.now();
        const { report } = await runner(scenario, {
          seed: s,
          onEvent: (line) => {
            if (line.startsWith(PROGRAM_ERROR)) programErrors.push(line.slice(PROGRAM_ERROR.length));
          },
        });
        return {
          seed: s,
          scenario: scenario.name,
          outcomes: report.incidents.map((i) => i.outcome),
          violations: report.violations,
          programErrors,
          wallMs: performance.now() - runStarted,
        };
      },
      {
        concurrency,
        onProgress: ({ done, total, result }) => {
          const s = seeds[result.index] ?? Number.NaN;
          options.onProgress?.({
            done,
            total,
            seed: s,
            run: result.ok ? result.value : null,
            error: result.ok ? null : harnessError(s, result.error),
          });
        },
      },
    );
  }

  function summarize(
    results: readonly (
      | { index: number; ok: true; value: RandomRun }
      | { index: number; ok: false; error: unknown }
    )[],
  ): RandomSummary {
    const runs = results.flatMap((r) => (r.ok ? [r.value] : []));
    const harnessErrors = results.flatMap((r) =>
      r.ok ? [] : [harnessError(seeds[r.index] ?? Number.NaN, r.error)],
    );
    const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
    for (const run of runs) for (const o of run.outcomes) outcomes[o] += 1;
    const violations = runs.flatMap((run) =>
      run.violations.map((v) => ({
        seed: run.seed,
        scenario: run.scenario,
        rule: v.rule,
        detail: v.detail,
        reproduce: reproduceCommand(run.seed),
      })),
    );
    // A site program that died means the run did not test what it claims to: as bad as a harness throw.
    const programFailures = runs.flatMap((run) =>
      run.programErrors.map((error) => ({ seed: run.seed, scenario: run.scenario, error })),
    );
    const allHarnessErrors = [...harnessErrors, ...programFailures].sort((a, b) => a.seed - b.seed);
    return {
      count,
      firstSeed: seed,
      concurrency,
      wallMs: performance.now() - started,
      cpuMs: cpuMsSince(cpuAtStart),
      runs,
      outcomes,
      runsWithoutIncident: runs.filter((r) => r.outcomes.length === 0).length,
      harnessErrors: allHarnessErrors,
      violations,
      exitCode: violations.length === 0 && allHarnessErrors.length === 0 ? 0 : 1,
    };
  }
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/**
 * `2000 schedules in 64.4 s: 31.0 schedules/s, 38.9 ms CPU each`: the throughput line, which ends the
 * summary (and the command, after any shrinking) so that a log's last line says how fast the search ran.
 */
export function throughputLine(summary: Pick<RandomSummary, 'count' | 'wallMs' | 'cpuMs'>): string {
  const perSecond = summary.count / Math.max(0.001, summary.wallMs / 1000);
  return (
    `${summary.count} schedules in ${(summary.wallMs / 1000).toFixed(1)} s: ` +
    `${perSecond.toFixed(1)} schedules/s, ${(summary.cpuMs / summary.count).toFixed(1)} ms CPU each`
  );
}

function scenarioName(seed: number): string {
  try {
    return generateScenario(seed).name;
  } catch {
    // The generator itself failed for this seed; the error says how.
    return '?';
  }
}

function harnessError(seed: number, error: unknown): HarnessError {
  const text =
    typeof error === 'string'
      ? error
      : error instanceof Error
        ? `${error.name}: ${error.message}`
        : String(error);
  return { seed, scenario: scenarioName(seed), error: text };
}

/** `[ 37/100] seed 1036 … recovered, false-alarm (4.2 s)`: one line per finished run. */
export function progressLine(p: RandomProgress): string {
  const width = String(p.total).length;
  const head = `[${String(p.done).padStart(width + 1)}/${p.total}] seed ${p.seed} …`;
  if (p.error !== null) return `${head} HARNESS ERROR: ${p.error.error}`;
  const run = p.run;
  if (run === null) return `${head} ?`;
  const outcomes = run.outcomes.length === 0 ? 'no incident' : run.outcomes.join(', ');
  const flags = [
    run.violations.length > 0 ? `${run.violations.length} VIOLATION(S)` : '',
    run.programErrors.length > 0 ? `${run.programErrors.length} site program error(s)` : '',
  ].filter((f) => f !== '');
  return `${head} ${outcomes}${flags.length > 0 ? ` — ${flags.join(', ')}` : ''} (${(run.wallMs / 1000).toFixed(1)} s)`;
}

/** The summary as lines of text: outcome table, harness errors and violations, each with its seed. */
export function formatRandomSummary(summary: RandomSummary): string[] {
  const out: string[] = [];
  const last = summary.firstSeed + summary.count - 1;
  const wall = summary.runs.map((r) => r.wallMs).sort((a, b) => a - b);
  const slowest = wall[wall.length - 1];
  out.push(
    '',
    `Random simulation: ${summary.count} scenario(s), seeds ${summary.firstSeed}–${last}, ` +
      `${summary.concurrency} at a time, ${(summary.wallMs / 1000).toFixed(1)} s, ` +
      `${(summary.count / Math.max(0.001, summary.wallMs / 1000)).toFixed(1)} schedules/s` +
      (slowest === undefined ? '' : ` (slowest run ${(slowest / 1000).toFixed(2)} s)`),
    '',
  );
  const incidents = Object.values(summary.outcomes).reduce((a, b) => a + b, 0);
  out.push(
    ...renderTable(
      [{ header: 'outcome' }, { header: 'incidents', align: 'right' }, { header: 'runs', align: 'right' }],
      [
        ...OUTCOMES.map((o) => [
          o,
          String(summary.outcomes[o]),
          String(summary.runs.filter((r) => r.outcomes.includes(o)).length),
        ]),
        ['(no incident)', '—', String(summary.runsWithoutIncident)],
        ['total', String(incidents), String(summary.runs.length)],
      ],
      '  ',
    ),
  );
  out.push(
    '',
    '  runs: runs with at least one incident of that outcome. in-progress: the scenario ended before',
    '  the incident settled (not a violation, but worth a look with the seed).',
  );
  out.push(
    '',
    `Harness errors: ${summary.harnessErrors.length === 0 ? 'none' : summary.harnessErrors.length}`,
  );
  if (summary.harnessErrors.length > 0) {
    out.push(
      ...renderTable(
        [{ header: 'seed', align: 'right' }, { header: 'error' }, { header: 'scenario' }],
        summary.harnessErrors.map((e) => [String(e.seed), e.error, e.scenario]),
        '  ',
      ),
    );
  }
  out.push('', `Violations: ${summary.violations.length === 0 ? 'none' : summary.violations.length}`);
  if (summary.violations.length > 0) {
    out.push(
      ...renderTable(
        [
          { header: 'seed', align: 'right' },
          { header: 'rule' },
          { header: 'detail' },
          { header: 'reproduce' },
        ],
        summary.violations.map((v) => [String(v.seed), v.rule, v.detail, v.reproduce]),
        '  ',
      ),
    );
  }
  out.push('', summary.exitCode === 0 ? 'PASS: no violation, no harness error.' : 'FAIL: see above.');
  out.push(throughputLine(summary));
  return out;
}

/** Prints the summary to stdout (or `write`). */
export function printRandomSummary(
  summary: RandomSummary,
  write: (line: string) => void = console.log,
): void {
  for (const line of formatRandomSummary(summary)) write(line);
}

/** Options of {@link runRandomCommand} beyond the runs themselves. */
export interface RandomCommandOptions extends Omit<RandomOptions, 'onProgress'> {
  /** How many failing seeds to shrink (0: none); 3 by default. */
  readonly shrink?: number;
  /** Where shrunk scenarios are written; `sim-failures` by default. */
  readonly failuresDir?: string;
}

/**
 * The `--random N --seed S` command: runs with progress (a line per run up to 200 runs, else every 1 %),
 * prints the summary, shrinks the first failing seeds to small scenario files that still break their rule,
 * and returns the exit code (0: no violation and no harness error; 1 otherwise).
 */
export async function runRandomCommand(
  options: RandomCommandOptions,
  write: (line: string) => void = console.log,
): Promise<0 | 1> {
  const every = options.count <= 200 ? 1 : Math.ceil(options.count / 100);
  const summary = await runRandom({
    ...options,
    onProgress: (p) => {
      const flagged = p.error !== null || (p.run?.violations.length ?? 0) > 0;
      if (flagged || p.done % every === 0 || p.done === p.total) write(progressLine(p));
    },
  });
  printRandomSummary(summary, write);
  const toShrink = [...new Map(summary.violations.map((v) => [v.seed, v])).values()].slice(
    0,
    options.shrink ?? 3,
  );
  if (toShrink.length > 0) {
    // This thread loads the simulator only to shrink: the runs themselves went to the simulator threads.
    const runner = options.runner ?? (await import('./runner')).runScenario;
    for (const v of toShrink) {
      await shrinkAndWrite(v, runner, options.failuresDir ?? 'sim-failures', write);
    }
    write('');
    write(throughputLine(summary));
  }
  return summary.exitCode;
}

async function shrinkAndWrite(
  v: SeededViolation,
  runner: ScenarioRunner,
  dir: string,
  write: (line: string) => void,
): Promise<void> {
  write('');
  write(`Shrinking seed ${v.seed} (${v.rule}) …`);
  const result = await shrinkScenario(generateScenario(v.seed), {
    seed: v.seed,
    rule: v.rule,
    runner,
    onStep: (step) =>
      write(
        `  cut ${step.cut} → ${step.size.hosts} host(s), ${step.size.vms} VM(s), ${step.size.faults} fault(s) (run ${step.runs})`,
      ),
  });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `seed-${v.seed}-${v.rule}.json`);
  writeFileSync(file, `${JSON.stringify(result.scenario, null, 2)}\n`);
  const size = (s: ScenarioSize) => `${s.hosts} hosts, ${s.vms} VMs, ${s.faults} faults, ${s.relays} relays`;
  write(`  ${size(result.from)} → ${size(result.to)} in ${result.runs} runs; still: ${result.detail}`);
  write(`  written to ${file}; replay: npm run sim -- ${file} --seed ${v.seed}`);
}
