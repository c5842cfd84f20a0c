import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Scenario, ScenarioReport } from '../../contracts/scenario';
import { hostSilentAfterMs } from '../../core/policy';
import { synthesizedDefinition } from '../../local/definition';
import { haVmDownBounds } from '../../local/sim/availability';
import { scenarioBounds } from '../../local/sim/policy';
import { type RunResult, runScenario, scenarioPolicy } from '../../local/sim/runner';
import { parseScenario } from '../../local/sim/scenario-file';

/**
 * Every scenario file under scenarios/ run end to end on the local control plane: the expected outcome of
 * each lives here (the files stay in the scenario format), and every run must break no safety rule.
 * Runs are on virtual time (deterministic: every duration asserted below is simulated time, whatever the
 * machine's load), one at a time since the virtual clock is the thread's.
 */

const DIR = join(import.meta.dirname, '..', '..', 'scenarios');

/** One run at a time: a virtual-time run owns the thread's clock. */
const PARALLEL = 1;
let running = 0;
const queue: (() => void)[] = [];

interface ScenarioRun extends RunResult {
  readonly scenario: Scenario;
}

async function run(name: string, seed = 7): Promise<ScenarioRun> {
  if (running >= PARALLEL) await new Promise<void>((resolve) => queue.push(resolve));
  running += 1;
  try {
    const file = join(DIR, `${name}.json`);
    const scenario = parseScenario(readFileSync(file, 'utf8'), file);
    return { ...(await runScenario(scenario, { seed })), scenario };
  } finally {
    running -= 1;
    queue.shift()?.();
  }
}

type Incident = ScenarioReport['incidents'][number];

/** The one host incident of `host` (VM incidents on that host aside). */
function only(report: ScenarioReport, host: string): Incident {
  const incidents = report.incidents.filter((i) => i.host === host && i.kind !== 'vm');
  expect(incidents, JSON.stringify(report.incidents)).toHaveLength(1);
  const [incident] = incidents;
  if (incident === undefined) throw new Error('no incident');
  return incident;
}

function runningOn(report: ScenarioReport, vm: string): string[] {
  return report.vms[vm]?.runningOn ?? [];
}

/** The VM-level incidents of one VM, in the order they opened. */
function vmIncidents(report: ScenarioReport, vm: string): Incident[] {
  return report.incidents.filter((i) => i.kind === 'vm' && i.vm === vm);
}

function downMs(report: ScenarioReport, vm: string): number {
  return report.vms[vm]?.downMs ?? Number.NaN;
}

/** The scenario's ha-vm-down bounds (local/sim/availability.ts), for what a recovery may take at most. */
function bounds(result: ScenarioRun) {
  return haVmDownBounds(scenarioPolicy(result.scenario), result.scenario.timing.vmBootMs ?? 0);
}

/** When a fault of `type` happened, in scenario ms. */
function faultAt(result: ScenarioRun, type: string, nth = 0): number {
  const at = result.scenario.faults.filter((f) => f.type === type)[nth]?.atMs;
  if (at === undefined) throw new Error(`no ${type} fault #${nth}`);
  return at;
}

/**
 * No rule broken, and every incident settled (closed, or left to an operator) in virtual time within what
 * the policy allows after the fault before it settled: detection, the confirming wait, the whole fence
 * deadline plus its last attempt, and two relay reports (at least 20 heartbeats).
 */
function clean(result: ScenarioRun): ScenarioReport {
  expect(result.report.violations).toEqual([]);
  expect(result.exitCode).toBe(0);
  const p = scenarioPolicy(result.scenario);
  const bound = Math.max(
    20 * p.hostHeartbeatMs,
    hostSilentAfterMs(p) +
      p.confirmSilenceMs +
      p.fenceDeadlineMs +
      p.fenceAttemptTimeoutMs +
      2 * p.relayReportMs,
  );
  for (const incident of result.report.incidents) {
    const settled = incident.settledAtMs;
    expect(settled, `${incident.host}: ${incident.outcome}, never settled`).not.toBeNull();
    const fault = Math.max(...result.scenario.faults.map((f) => f.atMs).filter((at) => at <= (settled ?? 0)));
    expect((settled ?? Infinity) - fault, `${incident.host} settled ${settled} ms`).toBeLessThanOrEqual(
      bound,
    );
  }
  return result.report;
}

const RUN_MS = 240_000;

beforeAll(async () => {
  // One synth for the whole file, before the concurrent runs all ask for it.
  await synthesizedDefinition();
}, 60_000);

describe.concurrent('scenarios', () => {
  it("seed: node01's 18 HA VMs (36 GiB) all restart on node02 and node03, high before medium before low", {
    timeout: RUN_MS,
  }, async () => {
    const report = clean(await run('seed'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.unplaced).toEqual([]);
    expect(incident.starts).toHaveLength(18);
    const firstOf = (prio: string[]) =>
      Math.min(...incident.starts.filter((x) => prio.includes(x.vm)).map((x) => x.atMs));
    const lastOf = (prio: string[]) =>
      Math.max(...incident.starts.filter((x) => prio.includes(x.vm)).map((x) => x.atMs));
    const ids = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => `n1-ha${String(from + i).padStart(2, '0')}`);
    expect(lastOf(ids(1, 4))).toBeLessThanOrEqual(firstOf(ids(5, 12)));
    expect(lastOf(ids(5, 12))).toBeLessThanOrEqual(firstOf(ids(13, 18)));
    // Spread evenly: 9 VMs (18 GiB) onto each survivor.
    const onto = (host: string) => incident.starts.filter((x) => x.host === host).length;
    expect([onto('node02'), onto('node03')]).toEqual([9, 9]);
  });

  it('host-crash: recovered, HA VMs restarted after the fence, the non-HA VM left down', {
    timeout: RUN_MS,
  }, async () => {
    const report = clean(await run('host-crash'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.fencedAtMs).not.toBeNull();
    expect(incident.starts.map((s) => s.vm).sort()).toEqual(['vm-batch', 'vm-db', 'vm-web']);
    for (const start of incident.starts) expect(start.atMs).toBeGreaterThan(incident.fencedAtMs ?? Infinity);
    expect(runningOn(report, 'vm-scratch')).toEqual([]);
    expect(report.hosts.node01).toEqual({ power: 'off', state: 'fenced' });
  });

  it('host-isolate: fenced, and only then its still-running VMs started elsewhere', {
    timeout: RUN_MS,
  }, async () => {
    const report = clean(await run('host-isolate'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(report.hosts.node01?.power).toBe('off');
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) expect(runningOn(report, vm)).toHaveLength(1);
    expect(runningOn(report, 'vm-db')).not.toContain('node01');
  });

  it('host-recover during the silence: a false alarm, nothing fenced or moved', {
    timeout: RUN_MS,
  }, async () => {
    const report = clean(await run('host-recover'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('false-alarm');
    expect(incident.fencedAtMs).toBeNull();
    expect(incident.starts).toEqual([]);
    expect(runningOn(report, 'vm-db')).toEqual(['node01']);
  });

  it('bmc-unreachable: awaiting the operator, nothing restarted', { timeout: RUN_MS }, async () => {
    const report = clean(await run('bmc-unreachable'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('awaiting-operator');
    expect(incident.starts).toEqual([]);
    expect(runningOn(report, 'vm-db')).toEqual([]);
  });

  it('bmc-ignores-off: an acknowledged power-off is no confirmation; nothing restarted', {
    timeout: RUN_MS,
  }, async () => {
    const report = clean(await run('bmc-ignores-off'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('awaiting-operator');
    expect(incident.starts).toEqual([]);
    expect(report.hosts.node01?.power).toBe('on');
    expect(runningOn(report, 'vm-db')).toEqual(['node01']);
  });

  it('power-loss: waits for the operator, then recovers', { timeout: RUN_MS }, async () => {
    const report = clean(await run('power-loss'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.fencedAtMs ?? 0).toBeGreaterThanOrEqual(5000);
    expect(incident.starts).toHaveLength(3);
  });

  it('relay-down: one of two relays down, the other carries the failover', { timeout: RUN_MS }, async () => {
    const report = clean(await run('relay-down'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.starts).toHaveLength(3);
  });

  it('uplink-down: a partitioned site is never fenced', { timeout: RUN_MS }, async () => {
    const report = clean(await run('uplink-down'));
    expect(report.incidents.filter((i) => i.fencedAtMs !== null)).toEqual([]);
    expect(report.hosts.node01?.power).toBe('on');
  });

  it('mass-silence: two of three hosts silent at once, fencing suppressed', { timeout: RUN_MS }, async () => {
    const report = clean(await run('mass-silence'));
    expect(report.incidents.length).toBeGreaterThan(0);
    for (const incident of report.incidents) {
      expect(incident.outcome).toBe('fencing-suppressed');
      expect(incident.starts).toEqual([]);
    }
    expect(report.hosts.node01?.power).toBe('on');
    expect(report.hosts.node02?.power).toBe('on');
  });

  it('fencing-disabled: fencing suppressed, nothing restarted', { timeout: RUN_MS }, async () => {
    const report = clean(await run('fencing-disabled'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('fencing-suppressed');
    expect(incident.fencedAtMs).toBeNull();
    expect(report.hosts.node01?.power).toBe('on');
  });

  it('vm-start-fails: the VM is started on the next host', { timeout: RUN_MS }, async () => {
    const report = clean(await run('vm-start-fails'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(runningOn(report, 'vm-db')).toEqual(['node03']);
    expect(runningOn(report, 'vm-web')).toHaveLength(1);
  });

  it('maintenance: a host in maintenance is never fenced', { timeout: RUN_MS }, async () => {
    const report = clean(await run('maintenance'));
    expect(report.incidents.filter((i) => i.fencedAtMs !== null)).toEqual([]);
    expect(report.hosts.node02).toEqual({ power: 'on', state: 'maintenance' });
    expect(runningOn(report, 'vm-cache')).toEqual([]);
  });

  it('anti-affinity: the VM avoids the host running its group peer', { timeout: RUN_MS }, async () => {
    const report = clean(await run('anti-affinity'));
    expect(only(report, 'node01').outcome).toBe('recovered');
    expect(runningOn(report, 'vm-a1')).toEqual(['node02']);
  });

  it('capacity-short: low-priority VMs unplaced, no host over capacity', { timeout: RUN_MS }, async () => {
    const report = clean(await run('capacity-short'));
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('partially-recovered');
    expect(incident.starts.map((s) => s.vm)).toEqual(['vm-hi']);
    expect([...incident.unplaced].sort()).toEqual(['vm-lo1', 'vm-lo2']);
  });

  it('vm-crash: the VM restarts in place on its healthy host; nothing fenced, no host incident', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('vm-crash');
    const report = clean(result);
    expect(runningOn(report, 'vm-db')).toEqual(['node01']);
    expect(report.hosts.node01).toEqual({ power: 'on', state: 'up' });
    expect(report.incidents.filter((i) => i.kind !== 'vm')).toEqual([]);
    const [incident, ...more] = vmIncidents(report, 'vm-db');
    expect(more).toEqual([]);
    expect(incident?.outcome).toBe('recovered');
    expect(incident?.fencedAtMs).toBeNull();
    // Down from the crash until it runs again: within the VM-crash bound, and not zero.
    expect(downMs(report, 'vm-db')).toBeGreaterThan(0);
    expect(downMs(report, 'vm-db')).toBeLessThanOrEqual(bounds(result).vmFailureMs);
    for (const vm of ['vm-web', 'vm-batch', 'vm-scratch', 'vm-cache', 'vm-mq'])
      expect(downMs(report, vm)).toBe(0);
  });

  it('vm-crash-loop: three restarts, then the fourth crash is left down by the budget, and its incident says so', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('vm-crash-loop');
    const report = clean(result);
    expect(runningOn(report, 'vm-db')).toEqual([]);
    expect(report.hosts.node01).toEqual({ power: 'on', state: 'up' });
    expect(report.incidents.filter((i) => i.fencedAtMs !== null)).toEqual([]);
    const incidents = vmIncidents(report, 'vm-db');
    expect(incidents.map((i) => i.outcome)).toEqual([
      'recovered',
      'recovered',
      'recovered',
      'partially-recovered',
    ]);
    // Down since the fourth crash, until the end of the run.
    expect(downMs(report, 'vm-db')).toBeGreaterThan(
      (report.incidents.at(-1)?.settledAtMs ?? Number.POSITIVE_INFINITY) - faultAt(result, 'vm-crash', 3),
    );
  });

  it('vm-guest-shutdown: a VM its guest shut down stays down; no restart, no incident, no fence', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('vm-guest-shutdown');
    const report = clean(result);
    expect(runningOn(report, 'vm-db')).toEqual([]);
    expect(report.incidents).toEqual([]);
    expect(report.hosts.node01).toEqual({ power: 'on', state: 'up' });
    expect(downMs(report, 'vm-db')).toBeGreaterThan(0);
  });

  it('host-reboot-fast: a host back with a new boot before it is called silent gets its HA VMs back', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('host-reboot-fast');
    const report = clean(result);
    expect(report.hosts.node01?.power).toBe('on');
    expect(report.incidents.filter((i) => i.fencedAtMs !== null)).toEqual([]);
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) {
      expect(runningOn(report, vm), vm).toHaveLength(1);
      expect(downMs(report, vm)).toBeLessThanOrEqual(bounds(result).hostFailureMs);
    }
    // Not HA: nothing brings it back.
    expect(runningOn(report, 'vm-scratch')).toEqual([]);
  });

  it('host-reboot-during-incident: the new boot is not fenced, its HA VMs restart, nothing closes recovered early', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('host-reboot-during-incident');
    // The oracle's false-recovered rule checks the close; clean() fails on it.
    const report = clean(result);
    const incident = only(report, 'node01');
    const back = faultAt(result, 'host-recover');
    // The new boot proved the old one dead (fencedAtMs marks that proof); nothing powered it off.
    expect(incident.fencedAtMs ?? back).toBeGreaterThanOrEqual(back);
    expect(report.hosts.node01?.power).toBe('on');
    expect(incident.outcome).toBe('recovered');
    expect(incident.starts.map((s) => s.vm).sort()).toEqual(['vm-batch', 'vm-db', 'vm-web']);
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) expect(runningOn(report, vm), vm).toHaveLength(1);
    expect(runningOn(report, 'vm-scratch')).toEqual([]);
    // Restarted within a host failure's bound of the new boot.
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) {
      expect(downMs(report, vm) - (back - faultAt(result, 'host-crash'))).toBeLessThanOrEqual(
        bounds(result).hostFailureMs,
      );
    }
  });

  it('capacity-returns: an HA VM left unplaced starts once room returns on a survivor', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('capacity-returns');
    const report = clean(result);
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('partially-recovered');
    expect(incident.starts.map((s) => s.vm)).toEqual(['vm-hi']);
    expect(incident.unplaced).toEqual(['vm-lo']);
    expect(runningOn(report, 'vm-hi')).toHaveLength(1);
    expect(runningOn(report, 'vm-lo')).toEqual(['node02']);
    expect(runningOn(report, 'vm-tmp')).toEqual([]);
    // Down until the room returned, then one retry and its start.
    const room = faultAt(result, 'vm-guest-shutdown');
    expect(downMs(report, 'vm-lo')).toBeGreaterThan(room - faultAt(result, 'host-crash'));
    expect(downMs(report, 'vm-lo') - (room - faultAt(result, 'host-crash'))).toBeLessThanOrEqual(
      bounds(result).afterWaitMs,
    );
  });

  it('late-operator: a confirmation after the operator wait ran out still recovers the VMs', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('late-operator');
    const report = clean(result);
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.fencedAtMs ?? 0).toBeGreaterThanOrEqual(faultAt(result, 'operator-confirms-off'));
    expect(incident.starts.map((s) => s.vm).sort()).toEqual(['vm-batch', 'vm-db', 'vm-web']);
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) expect(runningOn(report, vm)).toHaveLength(1);
  });

  it('relay-dies-with-host: at production timing the incident opens within detection and two incident paces', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('relay-dies-with-host');
    const incident = only(result.report, 'node01');
    const policy = scenarioPolicy(result.scenario);
    // From the crash: the host's silence (missed heartbeats), then about two intervals at the incident pace
    // (plus a heartbeat for the relays' loops), not the dead relay's stale vote (30 s at this timing, as
    // before relay votes aged).
    const detection = policy.hostHeartbeatMs * policy.missedHeartbeats;
    expect(incident.openedAtMs - faultAt(result, 'host-crash')).toBeLessThanOrEqual(
      detection + 2 * policy.incidentReportMs + policy.hostHeartbeatMs,
    );
    // And the failover goes through the live relay: it settles like any other, all its VMs running.
    const report = clean(result);
    expect(incident.outcome).toBe('recovered');
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) expect(runningOn(report, vm)).toHaveLength(1);
  });
});

/**
 * The widened conditions (issue 15): a degraded LAN, skewed relay clocks, slow BMCs and slow boots. Their
 * recoveries are held to the bounds the oracle derives for them (scenarioBounds: the slowest boot, the
 * longest reliable LAN hop), not to the plain site's.
 */
describe.concurrent('scenarios under widened conditions', () => {
  const NODE01_HA = ['vm-db', 'vm-web', 'vm-batch'];

  it('lan-degraded: a LAN that delays, reorders and loses messages still restarts each HA VM once, after the fence', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('lan-degraded');
    const report = clean(result);
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.starts.map((s) => s.vm).sort()).toEqual([...NODE01_HA].sort());
    for (const start of incident.starts)
      expect(start.atMs).toBeGreaterThanOrEqual(incident.fencedAtMs ?? Infinity);
    for (const vm of NODE01_HA) {
      expect(runningOn(report, vm)).toHaveLength(1);
      expect(downMs(report, vm)).toBeLessThanOrEqual(scenarioBounds(result.scenario).hostFailureMs);
    }
    expect(runningOn(report, 'vm-scratch')).toEqual([]);
  });

  it('slow-bmc-skewed-relays: the fence takes the BMC three answers, and each VM runs its boot after its start', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('slow-bmc-skewed-relays');
    const report = clean(result);
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    // Status, power-off, read-back: 250 ms each, after the confirming wait.
    const policy = scenarioPolicy(result.scenario);
    expect((incident.fencedAtMs ?? 0) - incident.openedAtMs).toBeGreaterThanOrEqual(
      policy.confirmSilenceMs + 3 * 250,
    );
    // High before medium before low, each reported started at least its boot after the fence.
    const at = (vm: string) => incident.starts.find((s) => s.vm === vm)?.atMs ?? Number.NaN;
    expect(at('vm-db')).toBeLessThanOrEqual(at('vm-web'));
    expect(at('vm-web')).toBeLessThanOrEqual(at('vm-batch'));
    const boot = new Map(result.scenario.vms.map((v) => [v.id, v.bootMs ?? 0]));
    for (const vm of NODE01_HA) {
      expect(at(vm) - (incident.fencedAtMs ?? 0)).toBeGreaterThanOrEqual(boot.get(vm) ?? 0);
      expect(runningOn(report, vm)).toHaveLength(1);
      expect(downMs(report, vm)).toBeLessThanOrEqual(scenarioBounds(result.scenario).hostFailureMs);
    }
  });

  it('bmc-too-slow: fencing gives up at its deadline, and the operator’s confirmation restarts the VMs', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('bmc-too-slow');
    expect(result.report.violations).toEqual([]);
    const incident = only(result.report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.fencedAtMs ?? 0).toBeGreaterThanOrEqual(faultAt(result, 'operator-confirms-off'));
    expect(incident.starts.map((s) => s.vm).sort()).toEqual([...NODE01_HA].sort());
    for (const vm of NODE01_HA) expect(runningOn(result.report, vm)).toHaveLength(1);
  });

  // A known bug, asserted as it stands so that its fix shows here: relay-b, deaf past the LAN's window,
  // lists no host, and ingest counts a relay that does not list a host as one that hears it, so node01 is
  // never silent to every live relay and nothing restarts (the same for a relay whose state was lost while
  // a host was down, or whose LAN key is wrong). Once such a relay no longer outvotes the relays that call
  // a host silent, expect node01's incident `recovered` and no violation here, and set DEAF_RELAY_WEIGHT
  // (local/sim/generate.ts) to 1.
  it('relay-deaf: a relay that hears no host does not keep a dead host from failing over', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('relay-deaf');
    const report = clean(result);
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    // Within detection and a report of the crash: relay-a's silence is enough, relay-b is no evidence.
    const policy = scenarioPolicy(result.scenario);
    expect(incident.openedAtMs - faultAt(result, 'host-crash')).toBeLessThanOrEqual(
      hostSilentAfterMs(policy) + policy.relayReportMs + policy.hostHeartbeatMs,
    );
    for (const vm of NODE01_HA) expect(runningOn(report, vm)).toHaveLength(1);
  });
});

describe('a large site', () => {
  // 240 hosts and 7,200 VMs: with every inventory in every report (protocol v1) the site was never heard
  // (about 570 KB a report, above the 256 KiB limit). Protocol v2 sends each inventory once, over the first
  // few reports, and a digest per host after that.
  it('large-site: the control plane hears all 240 hosts; h000 crashes and its 20 HA VMs restart in c1', {
    timeout: RUN_MS,
  }, async () => {
    const result = await run('large-site');
    const report = clean(result);
    const incident = only(report, 'h000');
    expect(incident.outcome).toBe('recovered');
    expect(incident.unplaced).toEqual([]);
    const ha = result.scenario.vms.filter((v) => v.host === 'h000' && v.ha).map((v) => v.id);
    expect(ha).toHaveLength(20);
    expect(incident.starts.map((s) => s.vm).sort()).toEqual([...ha].sort());
    const c1 = new Set(result.scenario.hosts.filter((h) => h.cluster === 'c1').map((h) => h.id));
    for (const vm of ha) {
      const [where, ...more] = runningOn(report, vm);
      expect(more).toEqual([]);
      expect(c1.has(where ?? '')).toBe(true);
      expect(where).not.toBe('h000');
    }
    for (const vm of result.scenario.vms.filter((v) => v.host === 'h000' && !v.ha)) {
      expect(runningOn(report, vm.id)).toEqual([]);
    }
  });
});

describe('a VM restarted by its host incident that crashes before a report shows it running', () => {
  it('vm-crash-after-restart (seed 10878): the incident does not close recovered; VM-level HA restarts it', async () => {
    const file = join(DIR, 'vm-crash-after-restart.json');
    const scenario = parseScenario(readFileSync(file, 'utf8'), file);
    // The seed that times the crash between the start and the report that would show it running.
    const result = { ...(await runScenario(scenario, { seed: 10_878 })), scenario };
    const report = clean(result);
    expect(only(report, 'node04').outcome).toBe('partially-recovered');
    expect(vmIncidents(report, 'vm-014').map((i) => i.outcome)).toEqual(['recovered']);
    expect(runningOn(report, 'vm-014')).toEqual(['node04']);
  });
});

describe('a deaf relay among two', () => {
  it('deaf-relay-start: the start goes through the relay that hears its target, and the VM runs', async () => {
    const result = await run('deaf-relay-start');
    const report = clean(result);
    const incident = only(report, 'node02');
    expect(incident.outcome).toBe('recovered');
    expect(incident.starts).toEqual([expect.objectContaining({ vm: 'vm-011', host: 'node05' })]);
    expect(result.timeline.some((e) => /start vm-011 on node05 through relay relay-b/.test(e.text))).toBe(
      true,
    );
    expect(runningOn(report, 'vm-011')).toEqual(['node05']);
  });
});

// Found by `npm run sim -- --random`: VMs being started on a host as it fell silent, and shrunk. Each seed
// times the host's failure between the start and the report that would show the VM running there.
describe('a host that fails while VMs are being started on it', () => {
  it("start-host-isolated (seed 3183): its incident takes over VM-level HA's start there, and restarts the VM after the fence", async () => {
    const result = await run('start-host-isolated', 3183);
    const report = clean(result);
    const incident = only(report, 'node01');
    expect(incident.outcome).toBe('recovered');
    expect(incident.starts).toEqual([expect.objectContaining({ vm: 'vm-004', host: 'node02' })]);
    expect(vmIncidents(report, 'vm-004').map((i) => i.outcome)).toEqual(['partially-recovered']);
    expect(runningOn(report, 'vm-004')).toEqual(['node02']);
  });

  it('started-host-power-loss (seed 7220): a failover start that said it runs is taken over by the incident of the host that lost power', async () => {
    const result = await run('started-host-power-loss', 7220);
    const report = clean(result);
    expect(only(report, 'node03').outcome).toBe('recovered');
    const second = only(report, 'node01');
    expect(second.outcome).toBe('recovered');
    expect(second.starts.map((s) => s.vm)).toEqual(['vm-009']);
    expect(runningOn(report, 'vm-009')).toHaveLength(1);
  });

  it('crash-on-new-host (seed 7507): a VM that crashes on its new host before any report showed it there is restarted', async () => {
    const result = await run('crash-on-new-host', 7507);
    const report = clean(result);
    expect(only(report, 'node01').outcome).toBe('partially-recovered');
    expect(vmIncidents(report, 'vm-006').map((i) => i.outcome)).toEqual(['recovered']);
    expect(runningOn(report, 'vm-006')).toHaveLength(1);
  });

  it("started-host-suspect (seed 20251): a start ordered to a host that fell silent meanwhile is taken over by that host's incident, which restarts the VM after the fence", async () => {
    const result = await run('started-host-suspect', 20251);
    const report = clean(result);
    // Handed over, not run again by node03's incident: it says so.
    expect(only(report, 'node03').outcome).toBe('partially-recovered');
    const taker = only(report, 'node01');
    expect(taker.outcome).toBe('recovered');
    expect(taker.starts.map((s) => s.vm)).toEqual(['vm-010']);
    const [where, ...more] = runningOn(report, 'vm-010');
    expect(more).toEqual([]);
    expect(where).not.toBe('node01');
  });

  it("start-taken-over-priority (seed 9261): the taken-over VM goes in its new incident's priority waves, high before low", async () => {
    const result = await run('start-taken-over-priority', 9261);
    const report = clean(result);
    expect(only(report, 'node04').outcome).toBe('partially-recovered');
    const taker = only(report, 'node03');
    expect(taker.outcome).toBe('recovered');
    expect(taker.starts.map((s) => s.vm)).toEqual(['vm-015', 'vm-011']);
    expect(vmIncidents(report, 'vm-015')).toEqual([]);
  });

  it('start-held-across-reboot (seed 4631): a start the relay still holds is not run in the boot after the fence', async () => {
    const result = await run('start-held-across-reboot', 4631);
    const report = clean(result);
    expect(only(report, 'node02').starts.map((s) => s.vm)).toEqual(['vm-004']);
    expect(runningOn(report, 'vm-004')).toEqual(['node03']);
    const ran = result.timeline.filter((e) => e.subject === 'vm-004' && /^running on /.test(e.text));
    expect(ran.map((e) => e.text)).toEqual(['running on node03']);
  });

  it('start-taken-then-failed (seed 8949): the failover whose start was taken never starts the VM again', async () => {
    const result = await run('start-taken-then-failed', 8949);
    const report = clean(result);
    expect(
      only(report, 'node02')
        .starts.map((s) => s.vm)
        .sort(),
    ).toEqual(['vm-003', 'vm-007']);
    expect(only(report, 'node03').starts).toEqual([]);
    expect(runningOn(report, 'vm-007')).toEqual(['node05']);
  });

  it('start-taken-host-unfenceable (seed 302): the failover that handed its VM over does not say recovered', async () => {
    const result = await run('start-taken-host-unfenceable', 302);
    const report = clean(result);
    expect(only(report, 'node02').outcome).toBe('partially-recovered');
    expect(only(report, 'node01').outcome).toBe('awaiting-operator');
  });

  it('start-taken-fence-suppressed (seed 7747): the VMs an incident took over go to VM-level HA when it ends without a fence', async () => {
    const result = await run('start-taken-fence-suppressed', 7747);
    const report = clean(result);
    expect(only(report, 'node05').outcome).toBe('fencing-suppressed');
    expect(only(report, 'node04').starts).toEqual([]);
    expect(vmIncidents(report, 'vm-015').map((i) => i.outcome)).toEqual(['recovered']);
    expect(runningOn(report, 'vm-015')).toEqual(['node05']);
  });

  it('start-taken-waves-go-on (seed 20115): a VM its failover lost to another owner leaves its waves; the next wave goes on', async () => {
    const result = await run('start-taken-waves-go-on', 20115);
    const report = clean(result);
    expect(only(report, 'node04').starts.map((s) => s.vm)).toEqual(['vm-012']);
    expect(vmIncidents(report, 'vm-011').map((i) => i.outcome)).toEqual(['recovered']);
    expect(runningOn(report, 'vm-011')).toEqual(['node05']);
  });

  it('start-taken-then-listed (seed 21741): the failover a VM was taken from stays refused once VM-level HA has it', async () => {
    const result = await run('start-taken-then-listed', 21741);
    const report = clean(result);
    expect(only(report, 'node03').starts).toEqual([]);
    expect(vmIncidents(report, 'vm-010').map((i) => i.outcome)).toEqual(['recovered']);
    expect(runningOn(report, 'vm-010')).toHaveLength(1);
  });

  it('started-host-rebooted (seed 21817): a VM started on a host that reboots before any report showed it there is restarted', async () => {
    const result = await run('started-host-rebooted', 21817);
    const report = clean(result);
    expect(only(report, 'node02').outcome).toBe('recovered');
    expect(vmIncidents(report, 'vm-007').map((i) => i.outcome)).toEqual(['recovered']);
    expect(runningOn(report, 'vm-007')).toHaveLength(1);
  });
});
