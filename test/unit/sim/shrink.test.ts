import { describe, expect, it } from 'vitest';
import { type Scenario, ScenarioSchema } from '../../../contracts/scenario';
import type { RunResult } from '../../../local/sim/runner';
import { type ShrinkRunner, shrinkScenario, sizeOf } from '../../../local/sim/shrink';

/**
 * Shrinking with a stub runner whose "bug" needs node02 crashing while vm-003 (on node03) exists and relay
 * relay-b is there: the shrinker must keep exactly what the failure needs and drop everything else.
 */

const scenario: Scenario = ScenarioSchema.parse({
  name: 'big',
  timing: { hostHeartbeatMs: 200, missedHeartbeats: 3, relayReportMs: 500 },
  policy: { cpuOvercommit: 1.5 },
  sites: [{ id: 'dc1', relays: ['relay-a', 'relay-b', 'relay-c'] }],
  hosts: ['node01', 'node02', 'node03', 'node04', 'node05'].map((id) => ({
    id,
    site: 'dc1',
    cluster: 'c1',
    cpus: 16,
    memoryMiB: 32768,
  })),
  vms: Array.from({ length: 12 }, (_, i) => ({
    id: `vm-${String(i + 1).padStart(3, '0')}`,
    host: `node0${(i % 5) + 1}`,
    cpus: 2,
    memoryMiB: 2048,
    ha: true,
  })),
  faults: [
    { atMs: 1000, type: 'vm-crash', vm: 'vm-001' },
    { atMs: 1500, type: 'host-crash', host: 'node02' },
    { atMs: 2000, type: 'relay-down', relay: 'relay-c' },
    { atMs: 2500, type: 'bmc-unreachable', host: 'node04' },
    { atMs: 3000, type: 'uplink-down', site: 'dc1' },
  ],
  durationMs: 30_000,
});

function stub(seen: Scenario[]): ShrinkRunner {
  return async (s, options) => {
    seen.push(s);
    expect(options.seed).toBe(42);
    const broken =
      s.faults.some((f) => f.type === 'host-crash' && f.host === 'node02') &&
      s.vms.some((v) => v.id === 'vm-003') &&
      s.sites.some((site) => site.relays.includes('relay-b'));
    const result: RunResult = {
      exitCode: broken ? 1 : 0,
      timeline: [],
      lastHeartbeatAtMs: {},
      report: {
        scenario: s.name,
        seed: 42,
        hosts: {},
        vms: {},
        incidents: [],
        violations: broken ? [{ rule: 'split-brain', detail: `vm-003 twice (${s.hosts.length} hosts)` }] : [],
      },
    };
    return result;
  };
}

describe('shrinkScenario', () => {
  it('keeps what the failure needs and drops the rest, every candidate a valid scenario', async () => {
    const seen: Scenario[] = [];
    const steps: string[] = [];
    const result = await shrinkScenario(scenario, {
      seed: 42,
      rule: 'split-brain',
      runner: stub(seen),
      onStep: (s) => steps.push(s.cut),
    });
    expect(result.scenario.faults).toEqual([{ atMs: 1500, type: 'host-crash', host: 'node02' }]);
    expect(result.scenario.vms.map((v) => v.id)).toEqual(['vm-003']);
    expect(result.scenario.hosts.map((h) => h.id).sort()).toEqual(['node02', 'node03']);
    expect(result.scenario.sites).toEqual([{ id: 'dc1', relays: ['relay-b'] }]);
    expect(result.from).toEqual({ hosts: 5, vms: 12, faults: 5, relays: 3 });
    expect(result.to).toEqual(sizeOf(result.scenario));
    expect(result.detail).toBe('vm-003 twice (2 hosts)');
    expect(result.scenario.name).toMatch(
      /^big — shrunk \(seed 42, split-brain\): 2 host\(s\), 1 VM\(s\), 1 fault\(s\)$/,
    );
    expect(steps.length).toBeGreaterThan(3);
    for (const s of seen) expect(ScenarioSchema.safeParse(s).success).toBe(true);
    expect(ScenarioSchema.safeParse(result.scenario).success).toBe(true);
  });

  it('stops at its run budget, keeping the smallest failing scenario found so far', async () => {
    const seen: Scenario[] = [];
    const result = await shrinkScenario(scenario, {
      seed: 42,
      rule: 'split-brain',
      runner: stub(seen),
      maxRuns: 5,
    });
    expect(result.runs).toBeLessThanOrEqual(6);
    expect(result.to.faults + result.to.vms).toBeLessThan(17);
    expect(result.detail).toMatch(/vm-003 twice/);
  });

  it('changes nothing when no cut keeps the violation of that rule', async () => {
    const result = await shrinkScenario(scenario, {
      seed: 42,
      rule: 'ha-vm-down',
      runner: stub([]),
      maxRuns: 50,
    });
    expect(result.to).toEqual(result.from);
    expect(result.steps).toEqual([]);
  });
  it("cuts a relay with its clock skew, so that a skewed site's relays can be cut too", async () => {
    const skewed: Scenario = {
      ...scenario,
      sites: [
        {
          id: 'dc1',
          relays: ['relay-a', 'relay-b', 'relay-c'],
          relayClockSkewMs: { 'relay-a': 50, 'relay-b': -30 },
        },
      ],
    };
    const result = await shrinkScenario(skewed, { seed: 42, rule: 'split-brain', runner: stub([]) });
    expect(result.scenario.sites).toEqual([
      { id: 'dc1', relays: ['relay-b'], relayClockSkewMs: { 'relay-b': -30 } },
    ]);
  });

  it('takes a candidate the simulator cannot run for one that does not break the rule', async () => {
    const seen: Scenario[] = [];
    const base = stub(seen);
    const result = await shrinkScenario(scenario, {
      seed: 42,
      rule: 'split-brain',
      runner: async (s, options) => {
        // Without relay-a the "harness" cannot start: a throw, not a reproduction.
        if (!s.sites.some((site) => site.relays.includes('relay-a')))
          throw new Error('never heard of node01');
        return base(s, options);
      },
    });
    expect(result.scenario.sites[0]?.relays).toEqual(['relay-a', 'relay-b']);
    expect(result.to.faults).toBe(1);
  });
});
