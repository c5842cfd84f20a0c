import type { Scenario, ScenarioReport } from '../contracts/scenario';
import { runScenario } from '../local/sim/runner';
import type { Cell } from './harness';
import type { ReportSuite, Table } from './report-suite';

/**
 * Failover at cluster scale, on the simulator's virtual time (the deterministic simulator: the real relay,
 * agent, ingest and steps code and the synthesized workflow, at the simulator's 200 ms heartbeat): a
 * cluster of 200 hosts of 40 VMs, two thirds of them HA. One host dies; then three hosts die within one
 * second (1.5 % of the cluster, far below the mass-silence share). Every duration is virtual, so the
 * numbers are the same on any machine.
 */

const HOSTS = 200;
const VMS_PER_HOST = 40;
/** Two thirds HA: 27 of every 40. */
const HA_PER_HOST = 27;
const SPREAD_TARGET_MS = 3000;
const PRIORITIES = ['high', 'medium', 'low'] as const;

/** The cluster, with `crashes` hosts crashing `gapMs` apart from 2 s into the run. */
export function clusterScenario(crashes: readonly string[], gapMs: number): Scenario {
  const hostId = (i: number) => `h${String(i).padStart(3, '0')}`;
  return {
    name: `cluster-200: ${crashes.length} of ${HOSTS} hosts crash`,
    timing: { hostHeartbeatMs: 200, missedHeartbeats: 3, relayReportMs: 500 },
    policy: { cpuOvercommit: 1, reserveMiB: 0, reserveCpus: 0, massSilenceShare: 0.5, fencingEnabled: true },
    sites: [{ id: 'site-a', relays: ['relay-a', 'relay-b'] }],
    hosts: Array.from({ length: HOSTS }, (_, i) => ({
      id: hostId(i),
      site: 'site-a',
      cluster: 'c1',
      cpus: 64,
      memoryMiB: 256 * 1024,
      maintenance: false,
    })),
    vms: Array.from({ length: HOSTS }, (_, i) =>
      Array.from({ length: VMS_PER_HOST }, (_, j) => ({
        id: `${hostId(i)}-vm${String(j).padStart(2, '0')}`,
        host: hostId(i),
        cpus: 1,
        memoryMiB: 4096,
        ha: j < HA_PER_HOST,
        priority: PRIORITIES[j % 3] ?? 'low',
      })),
    ).flat(),
    faults: crashes.map((host, n) => ({ atMs: 2000 + n * gapMs, type: 'host-crash' as const, host })),
    durationMs: 60_000,
  };
}

/** What one run of the cluster shows about its crashed hosts' HA VMs. */
interface ClusterOutcome {
  readonly haVms: number;
  readonly running: number;
  readonly firstStartMs: number;
  readonly lastStartMs: number;
  readonly outcomes: string;
  readonly violations: number;
  readonly wallMs: number;
}

function outcomeOf(scenario: Scenario, report: ScenarioReport, wallMs: number): ClusterOutcome {
  const crashed = new Set(scenario.faults.flatMap((f) => ('host' in f ? [f.host] : [])));
  const firstCrash = Math.min(...scenario.faults.map((f) => f.atMs));
  const ha = scenario.vms.filter((v) => crashed.has(v.host) && v.ha).map((v) => v.id);
  const incidents = report.incidents.filter((i) => crashed.has(i.host) && i.kind !== 'vm');
  const starts = incidents.flatMap((i) => i.starts.map((s) => s.atMs)).sort((a, b) => a - b);
  const running = ha.filter((vm) => (report.vms[vm]?.runningOn ?? []).length === 1).length;
  return {
    haVms: ha.length,
    running,
    firstStartMs: (starts[0] ?? Number.NaN) - firstCrash,
    lastStartMs: (starts.at(-1) ?? Number.NaN) - firstCrash,
    outcomes: [...new Set(incidents.map((i) => i.outcome))].join(', '),
    violations: report.violations.length,
    wallMs,
  };
}

async function runCluster(crashes: readonly string[], gapMs: number): Promise<ClusterOutcome> {
  const scenario = clusterScenario(crashes, gapMs);
  const started = performance.now();
  const { report } = await runScenario(scenario, { seed: 1 });
  return outcomeOf(scenario, report, performance.now() - started);
}

const ms = (n: number): Cell => (Number.isFinite(n) ? Math.round(n) : '-');

async function report(): Promise<readonly Table[]> {
  const one = await runCluster(['h017'], 0);
  const three = await runCluster(['h017', 'h093', 'h151'], 400);
  const spread = one.lastStartMs - one.firstStartMs;
  const rows = [
    {
      case: 'one host dies',
      'HA VMs': one.haVms,
      'running once': one.running,
      'first start ms': ms(one.firstStartMs),
      'last start ms': ms(one.lastStartMs),
      'last − first ms': ms(spread),
      incidents: one.outcomes,
      violations: one.violations,
      target: `last − first ≤ ${SPREAD_TARGET_MS}`,
      result:
        spread <= SPREAD_TARGET_MS && one.running === one.haVms && one.violations === 0 ? 'PASS' : 'MISS',
      'wall s': (one.wallMs / 1000).toFixed(1),
    },
    {
      case: 'three hosts die within 1 s',
      'HA VMs': three.haVms,
      'running once': three.running,
      'first start ms': ms(three.firstStartMs),
      'last start ms': ms(three.lastStartMs),
      'last − first ms': ms(three.lastStartMs - three.firstStartMs),
      incidents: three.outcomes,
      violations: three.violations,
      target: 'every HA VM running, no violation',
      result: three.running === three.haVms && three.violations === 0 ? 'PASS' : 'MISS',
      'wall s': (three.wallMs / 1000).toFixed(1),
    },
  ];
  return [
    {
      title: `A cluster of ${HOSTS} hosts, ${VMS_PER_HOST} VMs each, ${HA_PER_HOST} of them HA (virtual time, simulator timing)`,
      rows,
      footnote:
        'Virtual time (local/sim/virtual-time.ts): times are simulated ms after the first crash, at 200 ms heartbeats, 3 misses, 500 ms reports,' +
        ' instant VM boots; the same on any machine. Three crashes 400 ms apart (1.5 % of the cluster, below the 50 % mass-silence share).' +
        ' "running once": the crashed hosts’ HA VMs each running on exactly one host at the end. "wall s": what the run took on this machine.',
    },
  ];
}

/** The cluster-scale suite, registered in bench/run.ts. */
export const clusterSuite: ReportSuite = {
  title: `Failover at cluster scale (${HOSTS} hosts × ${VMS_PER_HOST} VMs, virtual time)`,
  report,
};
