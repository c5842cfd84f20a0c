import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Scenario, ScenarioReport } from '../contracts/scenario';
import { hostSilentAfterMs, resolvePolicy } from '../core/policy';
import { prepareLocalControlPlanes } from '../local/control-plane';
import { runScenario, scenarioPolicy } from '../local/sim/runner';
import { parseScenario } from '../local/sim/scenario-file';
import type { TimelineEntry } from '../local/sim/timeline';
import { seedHost } from '../test/fixtures/seed-cluster';
import type { Cell } from './harness';
import { percentile, type ReportSuite, type Table } from './report-suite';

/**
 * Failover latency of the seed site, end to end through the simulator: the real relay and agent code, the
 * local control plane (dynalite, the synthesized state machine) and real time, at the simulator's timing
 * and at production timing. Runs one at a time so that no run's latency includes another's CPU.
 */

const RUNS = Number(process.env.HALO_BENCH_FAILOVER_RUNS ?? 20);
const FIRST_HIGH_TARGET_MS = 1500;
const CONTROL_PLANE_TARGET_MS = 300;

/** Production timing: 2 s heartbeats, 3 misses, 10 s reports, a BMC that answers in 300 ms. */
export const PRODUCTION_TIMING = {
  hostHeartbeatMs: 2000,
  missedHeartbeats: 3,
  relayReportMs: 10_000,
} as const;
const PRODUCTION_BMC_MS = 300;
const PRODUCTION_RUNS = Number(process.env.HALO_BENCH_PRODUCTION_RUNS ?? 5);
const PRODUCTION_FIRST_HIGH_TARGET_MS = 8000;
const PRODUCTION_CONTROL_PLANE_TARGET_MS = 1000;

/**
 * The seed site at production timing: every duration the production defaults derive from the timing
 * (core/policy resolvePolicy: incident pace, confirmation, fence attempts and deadline, starts), not the
 * simulator's faster derivation, and the relay's default BMC poll. The crash comes once the relays report
 * at their steady pace.
 */
export function productionScenario(): Scenario {
  const seed = seedScenario();
  const p = resolvePolicy(PRODUCTION_TIMING);
  return {
    ...seed,
    name: `${seed.name.split(':')[0] ?? 'seed'} at production timing`,
    timing: {
      ...seed.timing,
      ...PRODUCTION_TIMING,
      incidentReportMs: p.incidentReportMs,
      relaySilentAfterMs: p.relaySilentAfterMs,
      confirmSilenceMs: p.confirmSilenceMs,
      fenceAttemptTimeoutMs: p.fenceAttemptTimeoutMs,
      fenceDeadlineMs: p.fenceDeadlineMs,
      startTimeoutMs: p.startTimeoutMs,
      bmcPollMs: 1000,
    },
    hosts: seed.hosts.map((h) => ({ ...h, bmcLatencyMs: PRODUCTION_BMC_MS })),
    faults: seed.faults.map((f) => ({ ...f, atMs: 15_000 })),
    durationMs: 180_000,
  };
}

/** scenarios/seed.json when present, else the same site built from the seed fixture. */
export function seedScenario(): Scenario {
  const file = fileURLToPath(new URL('../scenarios/seed.json', import.meta.url));
  if (existsSync(file)) return parseScenario(readFileSync(file, 'utf8'), file);
  const hosts = ['node01', 'node02', 'node03'].map((id) => seedHost(id));
  return {
    name: 'seed: three 32-core hosts; node01 crashes',
    timing: { hostHeartbeatMs: 200, missedHeartbeats: 3, relayReportMs: 500 },
    policy: {
      cpuOvercommit: 1.5,
      reserveMiB: 0,
      reserveCpus: 0,
      massSilenceShare: 0.5,
      fencingEnabled: true,
    },
    sites: [{ id: 'site-a', relays: ['relay-a', 'relay-b'] }],
    hosts: hosts.map((h) => ({
      id: h.id,
      site: 'site-a',
      cluster: 'c1',
      cpus: h.cpus,
      memoryMiB: h.memoryMiB,
      maintenance: false,
    })),
    vms: hosts.flatMap((h) =>
      h.vms.map((vm) => ({
        id: vm.id,
        host: h.id,
        cpus: vm.cpus,
        memoryMiB: vm.memoryMiB,
        ha: vm.ha,
        priority: vm.priority,
      })),
    ),
    faults: [{ atMs: 1000, type: 'host-crash', host: 'node01' }],
    durationMs: 30_000,
  };
}

/** The milestones of one failover, in ms after the crash, and the waits the timing imposes on each. */
export interface FailoverSample {
  readonly opened: number;
  readonly fenced: number;
  readonly firstHigh: number;
  readonly lastStart: number;
  /** Waits the configuration imposes before each milestone (detection, confirmation, relay time). */
  readonly waits: {
    readonly opened: number;
    readonly fenced: number;
    readonly firstHigh: number;
    readonly lastStart: number;
  };
  /** The first high VM's path, segment by segment (ms); NaN where the timeline lacks an entry. */
  readonly path: Readonly<Record<PathSegment, number>>;
}

/** Segments of the path from the crash to the first high VM, and who spends each. */
const PATH_SEGMENTS = [
  ['crash → incident opened', 'relays (detection threshold) + ingest'],
  ['opened → silence confirmed', 'relays (each one’s report since the opening; grace) + ConfirmSilence'],
  ['silence confirmed → fence ordered', 'control plane (CheckFencingPolicy, DispatchFence)'],
  ['fence ordered → relay finished', 'relay (report interval, BMC polls)'],
  ['relay finished → power-off confirmed', 'control plane (result ingest, VerifyPowerOff, MarkFenced)'],
  ['power-off confirmed → start ordered', 'control plane (PlanPlacement, StartVm: reserve, then order)'],
  ['start ordered → relay finished', 'relay (report interval, VM boot)'],
  ['relay finished → VM recorded started', 'control plane (report ingest, VmStarted)'],
] as const;
type PathSegment = (typeof PATH_SEGMENTS)[number][0];

/** A command's life as the timeline shows it: ordered by the control plane, finished by a relay. */
interface CommandSpan {
  readonly ordered: number;
  readonly finished: number;
}

/**
 * Ordered→finished spans of the incident's commands, from the timeline: `fence ordered` / `start-ordered`
 * entries of the control plane and the relay's `command finished <id> succeeded`. The N-th fence order is
 * command `…:fence:N`; a start order names its VM and attempt, as does `…:start:<vm>:<attempt>`.
 */
export function commandSpans(timeline: readonly TimelineEntry[], host: string): Map<string, CommandSpan> {
  const ordered = new Map<string, number>();
  let fences = 0;
  for (const e of timeline) {
    if (e.source !== 'control-plane') continue;
    if (e.subject === host && e.text.startsWith('fence ordered')) ordered.set(`fence:${++fences}`, e.atMs);
    const start = /^start-ordered: start (\S+) on \S+ through relay \S+ \(attempt (\d+)\)/.exec(e.text);
    if (start !== null) ordered.set(`start:${start[1]}:${start[2]}`, e.atMs);
  }
  const spans = new Map<string, CommandSpan>();
  for (const e of timeline) {
    const done = /^command finished \S*?:((?:fence:\d+)|(?:start:\S+:\d+)) succeeded/.exec(e.text);
    if (e.source !== 'site' || done === null) continue;
    const key = done[1] ?? '';
    const at = ordered.get(key);
    if (at !== undefined && !spans.has(key)) spans.set(key, { ordered: at, finished: e.atMs });
  }
  return spans;
}

/**
 * The confirmation of the silence as the timeline shows it: when ConfirmSilence confirmed it, and when the
 * last live relay's report since the opening came in (ms after the opening, from the event's text), which
 * is what it waited for; null where the timeline lacks them.
 */
export function confirmationOf(
  timeline: readonly TimelineEntry[],
  host: string,
): { readonly atMs: number; readonly lastWordMs: number | null } | null {
  const entry = timeline.find(
    (e) => e.source === 'control-plane' && e.subject === host && e.text.startsWith('silence-confirmed'),
  );
  if (entry === undefined) return null;
  const word = /the last reported again (\d+) ms after the opening/.exec(entry.text);
  return { atMs: entry.atMs, lastWordMs: word === null ? null : Number(word[1]) };
}

/**
 * One run's milestones and waits. Waits = detection (from the crash until the threshold passes: the host's
 * last heartbeat + missedHeartbeats × hostHeartbeatMs, so a crash just before a heartbeat waits less) +
 * the confirmation's wait for the relays (measured: until the last live relay's report since the opening,
 * or the policy's grace `confirmSilenceMs` when that is longer) + relay time on the critical path: for the fence
 * that confirmed, and for each wave's last-recorded VM start, ordered→finished (the relay's report
 * interval until it takes the command, plus BMC calls or the VM's boot). The relay's loop tick after the
 * threshold, the reports' round trips and every step count as the control plane's.
 */
export function sampleOf(
  scenario: Scenario,
  report: ScenarioReport,
  timeline: readonly TimelineEntry[],
  lastHeartbeatAtMs: Readonly<Record<string, number>> = {},
): FailoverSample {
  const crash = scenario.faults.find((f) => f.type === 'host-crash');
  if (crash === undefined || !('host' in crash)) throw new Error('the scenario has no host-crash');
  const incident = report.incidents.find((i) => i.host === crash.host);
  if (incident === undefined) throw new Error(`no incident for ${crash.host}`);
  if (incident.fencedAtMs === null || incident.starts.length === 0) {
    throw new Error(`incident of ${crash.host} ended ${incident.outcome} without fence and starts`);
  }
  const policy = scenarioPolicy(scenario);
  const lastBeat = lastHeartbeatAtMs[crash.host];
  const detection =
    lastBeat === undefined || lastBeat > crash.atMs
      ? hostSilentAfterMs(policy)
      : lastBeat + hostSilentAfterMs(policy) - crash.atMs;
  const confirmation = confirmationOf(timeline, crash.host);
  const confirmWaitMs = Math.max(policy.confirmSilenceMs, confirmation?.lastWordMs ?? 0);
  const detectAndConfirm = detection + confirmWaitMs;
  const spans = commandSpans(timeline, crash.host);
  const relayMs = (key: string): number => {
    const span = spans.get(key);
    return span === undefined ? 0 : span.finished - span.ordered;
  };
  // The fence that counted: the last one that succeeded before the control plane confirmed power-off.
  const fenceKeys = [...spans.keys()].filter(
    (k) => k.startsWith('fence:') && (spans.get(k)?.finished ?? Infinity) <= (incident.fencedAtMs ?? 0),
  );
  const fence = spans.get(fenceKeys[fenceKeys.length - 1] ?? '');
  const fenceRelayMs = fence === undefined ? 0 : fence.finished - fence.ordered;
  const priority = new Map(scenario.vms.map((v) => [v.id, v.priority]));
  const startKey = (vm: string): string =>
    [...spans.keys()].filter((k) => k.startsWith(`start:${vm}:`)).pop() ?? '';
  const starts = [...incident.starts].sort((a, b) => a.atMs - b.atMs);
  const firstHigh = starts.find((s) => priority.get(s.vm) === 'high') ?? starts[0];
  const last = starts[starts.length - 1];
  if (firstHigh === undefined || last === undefined) throw new Error('no start');
  // A wave starts when the previous one's VMs are recorded running: each wave's last start is on the path.
  let wavesRelayMs = 0;
  for (const p of ['high', 'medium', 'low'] as const) {
    const wave = starts.filter((s) => priority.get(s.vm) === p);
    const gate = wave[wave.length - 1];
    if (gate !== undefined) wavesRelayMs += relayMs(startKey(gate.vm));
  }
  const start = spans.get(startKey(firstHigh.vm));
  const gap = (from: number | undefined, to: number | undefined): number =>
    from === undefined || to === undefined ? Number.NaN : to - from;
  const path: Record<PathSegment, number> = {
    'crash → incident opened': incident.openedAtMs - crash.atMs,
    'opened → silence confirmed': gap(incident.openedAtMs, confirmation?.atMs),
    'silence confirmed → fence ordered': gap(confirmation?.atMs, fence?.ordered),
    'fence ordered → relay finished': gap(fence?.ordered, fence?.finished),
    'relay finished → power-off confirmed': gap(fence?.finished, incident.fencedAtMs),
    'power-off confirmed → start ordered': gap(incident.fencedAtMs, start?.ordered),
    'start ordered → relay finished': gap(start?.ordered, start?.finished),
    'relay finished → VM recorded started': gap(start?.finished, firstHigh.atMs),
  };
  return {
    path,
    opened: incident.openedAtMs - crash.atMs,
    fenced: incident.fencedAtMs - crash.atMs,
    firstHigh: firstHigh.atMs - crash.atMs,
    lastStart: last.atMs - crash.atMs,
    waits: {
      opened: detection,
      fenced: detectAndConfirm + fenceRelayMs,
      firstHigh: detectAndConfirm + fenceRelayMs + relayMs(startKey(firstHigh.vm)),
      lastStart: detectAndConfirm + fenceRelayMs + wavesRelayMs,
    },
  };
}

const ms = (n: number): number => Math.round(n);

function row(
  name: string,
  totals: readonly number[],
  waits: readonly number[],
  targets: { total?: number; share?: number },
): Record<string, Cell> {
  const sorted = [...totals].sort((a, b) => a - b);
  const shares = totals.map((t, i) => t - (waits[i] ?? 0)).sort((a, b) => a - b);
  const sortedWaits = [...waits].sort((a, b) => a - b);
  const totalP99 = percentile(sorted, 0.99);
  const shareP99 = percentile(shares, 0.99);
  const verdicts = [
    targets.total === undefined ? '' : totalP99 < targets.total ? 'PASS' : 'MISS',
    targets.share === undefined ? '' : shareP99 < targets.share ? 'PASS' : 'MISS',
  ].filter((v) => v !== '');
  return {
    'after the crash': name,
    'median ms': ms(percentile(sorted, 0.5)),
    'p99 ms': ms(totalP99),
    'waits median ms': ms(percentile(sortedWaits, 0.5)),
    'control plane median ms': ms(percentile(shares, 0.5)),
    'control plane p99 ms': ms(shareP99),
    target: [
      targets.total === undefined ? '' : `total < ${targets.total}`,
      targets.share === undefined ? '' : `control plane < ${targets.share}`,
    ]
      .filter((t) => t !== '')
      .join(', '),
    result: verdicts.includes('MISS') ? 'MISS' : verdicts.length > 0 ? 'PASS' : '',
  };
}

/** Runs `scenario` `runs` times and tabulates the failover's milestones against their targets. */
async function measureFailover(
  scenario: Scenario,
  runs: number,
  targets: { readonly firstHighMs: number; readonly controlPlaneMs: number },
  label: string,
): Promise<readonly Table[]> {
  const policy = scenarioPolicy(scenario);
  const samples: FailoverSample[] = [];
  const failures: string[] = [];
  // With --expose-gc (npm run bench), each run starts on a clean heap, as the other suites' runs do: the
  // placement and ingest suites before this one leave garbage whose collection is not a failover's.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < runs; i++) {
    gc?.();
    const {
      report: r,
      timeline,
      lastHeartbeatAtMs,
    } = await runScenario(scenario, {
      seed: i + 1,
      time: 'real-time',
    });
    try {
      samples.push(sampleOf(scenario, r, timeline, lastHeartbeatAtMs));
    } catch (error) {
      failures.push(`run ${i + 1}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (r.violations.length > 0) failures.push(`run ${i + 1}: ${r.violations.length} violation(s)`);
  }
  const col = (f: (s: FailoverSample) => number) => samples.map(f);
  const rows = [
    row(
      'incident opened',
      col((s) => s.opened),
      col((s) => s.waits.opened),
      {},
    ),
    row(
      'power-off confirmed',
      col((s) => s.fenced),
      col((s) => s.waits.fenced),
      {},
    ),
    row(
      'first high VM started',
      col((s) => s.firstHigh),
      col((s) => s.waits.firstHigh),
      {
        total: targets.firstHighMs,
        share: targets.controlPlaneMs,
      },
    ),
    row(
      'last VM started',
      col((s) => s.lastStart),
      col((s) => s.waits.lastStart),
      {},
    ),
  ];
  const pathRows = PATH_SEGMENTS.map(([segment, who]) => {
    const values = samples.map((x) => x.path[segment]).filter((v) => Number.isFinite(v));
    const sorted = [...values].sort((a, b) => a - b);
    return {
      segment,
      'median ms': ms(percentile(sorted, 0.5)),
      'p99 ms': ms(percentile(sorted, 0.99)),
      'spent by': who,
    };
  });
  const footnote = [
    `${samples.length} of ${runs} runs measured${failures.length > 0 ? `; not measured: ${failures.join('; ')}` : ''}; real time (wall clock, dynalite, HTTP).`,
    `Timing ${policy.hostHeartbeatMs}/${policy.missedHeartbeats}/${policy.relayReportMs} ms (heartbeat/misses/report), incident pace ${policy.incidentReportMs} ms` +
      `${scenario.hosts[0]?.bmcLatencyMs === undefined ? '' : `, BMC answering in ${scenario.hosts[0].bmcLatencyMs} ms`}; times from the report vs the crash's atMs.`,
    'control plane = total − waits; waits = detection (the crashed host’s last heartbeat + missedHeartbeats' +
      ` × hostHeartbeatMs = ${hostSilentAfterMs(policy)}, minus the crash time) [+ the confirmation’s wait for the relays:` +
      ` until the last live relay reported again since the opening, as ConfirmSilence recorded it, at least the grace` +
      ` confirmSilenceMs = ${policy.confirmSilenceMs}]` +
      ' [+ relay time of the confirming fence] [+ relay time of the start on the path: the VM itself, or each' +
      ' wave’s last-recorded VM for the last start]; relay time = control-plane "ordered" → relay "command' +
      ' finished" in the timeline (report/poll interval until taken, BMC polls, VM boot).',
  ].join('\n  ');
  return [
    {
      title: `Failover of ${label} (${samples.length} runs, ms after the crash)`,
      rows,
      footnote,
    },
    {
      title: `Where the time goes, ${label}: the path from the crash to the first high VM (segments of the timeline)`,
      rows: pathRows,
      footnote:
        'The fence counted is the one whose success the control plane confirmed; the start is the first high' +
        ' VM’s successful attempt. Segment medians need not add up to the total’s median.',
    },
  ];
}

/** The seed site at the simulator's timing, then at production timing. */
async function report(): Promise<readonly Table[]> {
  // One run first, not counted: the first failover of a process also loads and compiles its code paths.
  await prepareLocalControlPlanes();
  const seed = seedScenario();
  await runScenario(seed, { seed: 0, time: 'real-time' });
  const simulator = await measureFailover(
    seed,
    RUNS,
    { firstHighMs: FIRST_HIGH_TARGET_MS, controlPlaneMs: CONTROL_PLANE_TARGET_MS },
    `${seed.name.split(':')[0] ?? 'seed'} at simulator timing`,
  );
  const production = productionScenario();
  const atProduction = await measureFailover(
    production,
    PRODUCTION_RUNS,
    { firstHighMs: PRODUCTION_FIRST_HIGH_TARGET_MS, controlPlaneMs: PRODUCTION_CONTROL_PLANE_TARGET_MS },
    production.name,
  );
  return [...simulator, ...atProduction];
}

/** The failover latency suite, registered in bench/run.ts. */
export const failoverSuite: ReportSuite = {
  title: `Failover latency (real time: ${RUNS} runs at simulator timing, ${PRODUCTION_RUNS} at production timing)`,
  report,
};
