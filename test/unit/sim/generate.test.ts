import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Scenario, type ScenarioFaultType, ScenarioSchema } from '../../../contracts/scenario';
import { failoverPhases, generateScenario, Rng, SETTLE_HEARTBEATS } from '../../../local/sim/generate';
import { fenceGivesUpMs, scenarioBounds, scenarioPolicy, simRelayLoopMs } from '../../../local/sim/policy';

const ALL_FAULTS: readonly ScenarioFaultType[] = [
  'host-crash',
  'host-isolate',
  'host-recover',
  'bmc-unreachable',
  'bmc-ignores-off',
  'power-loss',
  'operator-confirms-off',
  'relay-down',
  'relay-up',
  'uplink-down',
  'uplink-up',
  'vm-start-fails',
  'vm-crash',
  'vm-guest-shutdown',
  'lan-degrade',
  'lan-heal',
];

const LOSS: readonly string[] = ['host-crash', 'host-isolate', 'power-loss'];

const seeds = (from: number, count: number): Scenario[] =>
  Array.from({ length: count }, (_, i) => generateScenario(from + i));

const load = (s: Scenario, hostId: string) => {
  const host = s.hosts.find((h) => h.id === hostId);
  if (host === undefined) throw new Error(`no host ${hostId}`);
  const vms = s.vms.filter((v) => v.host === hostId);
  return {
    memory: vms.reduce((sum, v) => sum + v.memoryMiB, 0) / host.memoryMiB,
    cpu: vms.reduce((sum, v) => sum + v.cpus, 0) / (host.cpus * s.policy.cpuOvercommit),
  };
};

describe('Rng', () => {
  it('is deterministic per seed and spreads over [0, 1)', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    // Crude uniformity: each tenth of the range gets a fair share of 1000 draws.
    for (let d = 0; d < 10; d++) {
      const inDecile = xs.filter((x) => x >= d / 10 && x < (d + 1) / 10).length;
      expect(inDecile).toBeGreaterThan(60);
      expect(inDecile).toBeLessThan(140);
    }
    expect(new Rng(43).next()).not.toBe(new Rng(42).next());
  });

  it('int stays within its bounds, both included', () => {
    const rng = new Rng(7);
    const seen = new Set(Array.from({ length: 500 }, () => rng.int(1, 4)));
    expect([...seen].sort()).toEqual([1, 2, 3, 4]);
  });
});

describe('generateScenario', () => {
  it('passes ScenarioSchema for any seed, with every default already filled in', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 32 }), (seed) => {
        const scenario = generateScenario(seed);
        const parsed = ScenarioSchema.safeParse(scenario);
        expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
        // Nothing left for the schema to default: the file a seed prints is the scenario that ran.
        expect(parsed.data).toEqual(scenario);
      }),
      { numRuns: 300 },
    );
  });

  it('is reproducible: the same seed gives a deep-equal scenario', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(generateScenario(seed)).toEqual(generateScenario(seed));
      }),
      { numRuns: 200 },
    );
  });

  it('gives different scenarios for different seeds', () => {
    const names = new Set(seeds(1000, 100).map((s) => JSON.stringify(s)));
    expect(names.size).toBe(100);
  });

  it('builds one site with 1–2 relays and 3–6 hosts in one or two clusters of at least two', () => {
    const relayCounts = new Set<number>();
    const clusterCounts = new Set<number>();
    for (const s of seeds(0, 300)) {
      expect(s.sites).toHaveLength(1);
      const relays = s.sites[0]?.relays ?? [];
      expect(relays.length).toBeGreaterThanOrEqual(1);
      expect(relays.length).toBeLessThanOrEqual(2);
      relayCounts.add(relays.length);
      expect(s.hosts.length).toBeGreaterThanOrEqual(3);
      expect(s.hosts.length).toBeLessThanOrEqual(6);
      const clusters = new Map<string, number>();
      for (const h of s.hosts) clusters.set(h.cluster, (clusters.get(h.cluster) ?? 0) + 1);
      expect(clusters.size).toBeLessThanOrEqual(2);
      for (const size of clusters.values()) expect(size).toBeGreaterThanOrEqual(2);
      clusterCounts.add(clusters.size);
    }
    expect([...relayCounts].sort()).toEqual([1, 2]);
    expect([...clusterCounts].sort()).toEqual([1, 2]);
  });

  it('loads each host 30–70 % (its busier dimension) and never past a limit', () => {
    for (const s of seeds(0, 500)) {
      for (const h of s.hosts) {
        const { memory, cpu } = load(s, h.id);
        expect(Math.max(memory, cpu), `${s.name} ${h.id}`).toBeGreaterThanOrEqual(0.3);
        expect(memory).toBeLessThanOrEqual(0.7);
        expect(cpu).toBeLessThanOrEqual(0.7);
      }
    }
  });

  it('mixes HA and non-HA VMs of every priority, and anti-affinity groups on distinct hosts', () => {
    const all = seeds(0, 100);
    const vms = all.flatMap((s) => s.vms);
    expect(vms.some((v) => v.ha)).toBe(true);
    expect(vms.some((v) => !v.ha)).toBe(true);
    expect(new Set(vms.map((v) => v.priority))).toEqual(new Set(['high', 'medium', 'low']));
    let groups = 0;
    for (const s of all) {
      const byGroup = new Map<string, Scenario['vms']>();
      for (const v of s.vms) {
        if (v.antiAffinity !== undefined)
          byGroup.set(v.antiAffinity, [...(byGroup.get(v.antiAffinity) ?? []), v]);
      }
      for (const members of byGroup.values()) {
        groups++;
        expect(members.length).toBeGreaterThanOrEqual(2);
        const hosts = members.map((m) => s.hosts.find((h) => h.id === m.host));
        expect(new Set(hosts.map((h) => h?.id)).size).toBe(members.length);
        expect(new Set(hosts.map((h) => h?.cluster)).size).toBe(1);
      }
    }
    expect(groups).toBeGreaterThan(20);
  });

  it('schedules 1–4 faults, in time order, early, with time to settle after the last', () => {
    for (const s of seeds(0, 500)) {
      expect(s.faults.length).toBeGreaterThanOrEqual(1);
      expect(s.faults.length).toBeLessThanOrEqual(4);
      const times = s.faults.map((f) => f.atMs);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(times[0]).toBeGreaterThanOrEqual(1000);
      const last = Math.max(...times);
      expect(s.durationMs).toBeGreaterThanOrEqual(last + SETTLE_HEARTBEATS * s.timing.hostHeartbeatMs);
    }
  });

  it('draws every fault type, paired and unpaired', () => {
    const all = seeds(0, 300);
    const types = new Set(all.flatMap((s) => s.faults.map((f) => f.type)));
    expect([...types].sort()).toEqual([...ALL_FAULTS].sort());
    const has = (s: Scenario, type: ScenarioFaultType) => s.faults.some((f) => f.type === type);
    expect(all.some((s) => has(s, 'relay-down') && has(s, 'relay-up'))).toBe(true);
    expect(all.some((s) => has(s, 'relay-down') && !has(s, 'relay-up'))).toBe(true);
    expect(all.some((s) => has(s, 'uplink-down') && has(s, 'uplink-up'))).toBe(true);
    expect(all.some((s) => has(s, 'uplink-down') && !has(s, 'uplink-up'))).toBe(true);
    expect(all.some((s) => has(s, 'host-crash') && has(s, 'host-recover'))).toBe(true);
    expect(all.some((s) => has(s, 'host-isolate') && !has(s, 'host-recover'))).toBe(true);
    // VM faults alone, repeated (past the restart budget), and during a host's failover.
    const crashes = (s: Scenario) => s.faults.filter((f) => f.type === 'vm-crash').length;
    expect(all.some((s) => crashes(s) === 1)).toBe(true);
    expect(all.some((s) => crashes(s) >= 4)).toBe(true);
    expect(all.some((s) => has(s, 'vm-crash') && LOSS.some((l) => has(s, l as ScenarioFaultType)))).toBe(
      true,
    );
    expect(all.some((s) => has(s, 'vm-guest-shutdown') && has(s, 'host-recover'))).toBe(true);
    expect(all.some((s) => s.timing.operatorTimeoutMs !== undefined && has(s, 'operator-confirms-off'))).toBe(
      true,
    );
  });

  it('lasts past the ha-vm-down bound after its last fault, so that a VM left down is judged', () => {
    for (const s of seeds(0, 200)) {
      const bounds = scenarioBounds(s);
      const last = Math.max(...s.faults.map((f) => f.atMs));
      expect(s.durationMs - last).toBeGreaterThan(Math.max(bounds.hostFailureMs, bounds.vmFailureMs));
    }
  });

  it('crashes a VM again only after a restart could have happened, four times in a crash loop', () => {
    for (const s of seeds(0, 500)) {
      const byVm = new Map<string, number[]>();
      for (const f of s.faults)
        if (f.type === 'vm-crash') byVm.set(f.vm, [...(byVm.get(f.vm) ?? []), f.atMs]);
      for (const times of byVm.values()) {
        expect(times.length).toBeLessThanOrEqual(4);
        for (let i = 1; i < times.length; i++) {
          expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(8 * s.timing.hostHeartbeatMs);
        }
      }
    }
  });

  it('pairs sensibly: a recovery, relay-up or uplink-up comes after its fault', () => {
    for (const s of seeds(0, 500)) {
      for (const f of s.faults) {
        if (f.type === 'host-recover') {
          const lost = s.faults.find(
            (g) => LOSS.includes(g.type) && 'host' in g && 'host' in f && g.host === f.host,
          );
          if (lost !== undefined) expect(f.atMs).toBeGreaterThanOrEqual(lost.atMs);
        }
        if (f.type === 'relay-up') {
          const relay = 'relay' in f ? f.relay : undefined;
          const down = s.faults.find((g) => g.type === 'relay-down' && 'relay' in g && g.relay === relay);
          if (down !== undefined) expect(f.atMs).toBeGreaterThan(down.atMs);
        }
        if (f.type === 'uplink-up') {
          const down = s.faults.find((g) => g.type === 'uplink-down');
          if (down !== undefined) expect(f.atMs).toBeGreaterThan(down.atMs);
        }
      }
    }
  });

  it('has an operator confirm off only a host that is really dead or untouched, never an isolated one', () => {
    // Confirming a running, isolated host off would be the operator's error: the simulator would rightly
    // report the split brain that follows, and the random runs must not blame the control plane for it.
    for (const s of seeds(0, 1000)) {
      for (const f of s.faults) {
        if (f.type !== 'operator-confirms-off') continue;
        const sameHost = s.faults.filter((g) => 'host' in g && g.host === f.host);
        expect(
          sameHost.some((g) => g.type === 'host-isolate'),
          s.name,
        ).toBe(false);
      }
    }
  });
  it('widens the search over 500 seeds: LAN conditions, skewed relay clocks, slow BMCs and slow boots', () => {
    const all = seeds(0, 500);
    const share = (p: (s: Scenario) => boolean) => all.filter(p).length / all.length;
    // The plain site stays the common case: conditions come now and then, not all at once.
    const plain = (s: Scenario) =>
      s.sites.every((x) => x.lan === undefined && x.relayClockSkewMs === undefined) &&
      s.hosts.every((h) => h.bmcLatencyMs === undefined) &&
      s.vms.every((v) => v.bootMs === undefined) &&
      s.timing.vmBootMs === undefined &&
      s.faults.every((f) => f.type !== 'lan-degrade');
    expect(share(plain)).toBeGreaterThan(0.1);
    expect(share(plain)).toBeLessThan(0.6);

    // LAN: the site's own conditions (some lossy), and degradations with delay, jitter past a quarter
    // heartbeat (reordering heartbeats), heavy loss, healed or left degraded.
    expect(all.some((s) => (s.sites[0]?.lan?.lossPct ?? 0) > 0)).toBe(true);
    expect(all.some((s) => (s.sites[0]?.lan?.jitterMs ?? 0) > 0)).toBe(true);
    const degrades = all.flatMap((s) =>
      s.faults.flatMap((f) => (f.type === 'lan-degrade' ? [{ s, f }] : [])),
    );
    expect(degrades.some(({ s, f }) => f.jitterMs >= s.timing.hostHeartbeatMs / 2)).toBe(true);
    expect(degrades.some(({ f }) => f.delayMs > 0)).toBe(true);
    expect(degrades.some(({ f }) => f.lossPct >= 10)).toBe(true);
    expect(degrades.some(({ s }) => s.faults.some((f) => f.type === 'lan-heal'))).toBe(true);
    expect(degrades.some(({ s }) => !s.faults.some((f) => f.type === 'lan-heal'))).toBe(true);

    // Relay clocks: NTP-close and drifting by a good part of a fence attempt, either way, and now and then
    // past the LAN's 10 s window (a deaf relay: see DEAF_RELAY_WEIGHT in local/sim/generate.ts), never
    // both relays of a site.
    const skews = all.flatMap((s) =>
      Object.values(s.sites[0]?.relayClockSkewMs ?? {}).map((ms) => ({
        ms,
        window: scenarioPolicy(s).fenceAttemptTimeoutMs,
      })),
    );
    expect(skews.some(({ ms }) => Math.abs(ms) > 10_000)).toBe(true);
    for (const s of all) {
      const deaf = Object.values(s.sites[0]?.relayClockSkewMs ?? {}).filter((ms) => Math.abs(ms) > 10_000);
      // At most one, and only where another relay hears the site.
      expect(deaf.length).toBeLessThanOrEqual((s.sites[0]?.relays.length ?? 0) >= 2 ? 1 : 0);
    }
    expect(skews.some(({ ms }) => Math.abs(ms) <= 20)).toBe(true);
    expect(skews.some(({ ms, window }) => ms >= window / 10)).toBe(true);
    expect(skews.some(({ ms, window }) => ms <= -window / 10)).toBe(true);

    // BMCs: quick, slow but within what one fence attempt allows (three answers after the command's
    // trip), and too slow for one (the fence may give up: the operator's case).
    const bmcs = all.flatMap((s) => {
      const p = scenarioPolicy(s);
      const deliver = p.incidentReportMs + simRelayLoopMs(p.hostHeartbeatMs);
      return s.hosts.flatMap((h) =>
        h.bmcLatencyMs === undefined ? [] : [{ ms: h.bmcLatencyMs, room: p.fenceAttemptTimeoutMs - deliver }],
      );
    });
    expect(bmcs.some(({ ms }) => ms <= 60)).toBe(true);
    expect(bmcs.some(({ ms, room }) => ms > 60 && 3 * ms <= room)).toBe(true);
    expect(bmcs.some(({ ms, room }) => 3 * ms > room)).toBe(true);

    // Boots: VMs of their own boot time, some past a heartbeat, and scenarios with a common one.
    expect(all.some((s) => s.vms.some((v) => (v.bootMs ?? 0) > s.timing.hostHeartbeatMs))).toBe(true);
    expect(all.some((s) => (s.timing.vmBootMs ?? 0) > 0)).toBe(true);
  });

  it('aims faults at failovers under way: a relay dies at the fence, a survivor dies at the start wave, the uplink drops', () => {
    const all = seeds(0, 500);
    /** Faults of `type` that land within [from, to] ms after a host loss of the same scenario. */
    const landsAfterLoss = (
      s: Scenario,
      type: ScenarioFaultType,
      window: (loss: Scenario['faults'][number], s: Scenario) => readonly [number, number],
      sameHost?: boolean,
    ) =>
      s.faults.some(
        (loss) =>
          LOSS.includes(loss.type) &&
          s.faults.some((f) => {
            if (f.type !== type) return false;
            if (
              sameHost !== undefined &&
              'host' in f &&
              'host' in loss &&
              (f.host === loss.host) !== sameHost
            )
              return false;
            const [from, to] = window(loss, s);
            return f.atMs >= loss.atMs + from && f.atMs <= loss.atMs + to;
          }),
      );
    const phases = (s: Scenario) => failoverPhases(scenarioPolicy(s));
    const hb = (s: Scenario) => s.timing.hostHeartbeatMs;
    const fence = (_: unknown, s: Scenario) =>
      [phases(s).fenceMs - hb(s), phases(s).fenceMs + 3 * hb(s)] as const;
    const starts = (_: unknown, s: Scenario) =>
      [phases(s).startMs(0) - hb(s), phases(s).startMs(1000) + hb(s)] as const;
    const failover = (_: unknown, s: Scenario) => [1, fenceGivesUpMs(scenarioPolicy(s))] as const;

    expect(all.some((s) => landsAfterLoss(s, 'relay-down', fence))).toBe(true);
    expect(
      all.some(
        (s) =>
          landsAfterLoss(s, 'host-crash', starts, false) || landsAfterLoss(s, 'power-loss', starts, false),
      ),
    ).toBe(true);
    expect(all.some((s) => landsAfterLoss(s, 'host-recover', starts, true))).toBe(true);
    expect(all.some((s) => landsAfterLoss(s, 'bmc-unreachable', fence, true))).toBe(true);
    expect(all.some((s) => landsAfterLoss(s, 'uplink-down', failover))).toBe(true);
    expect(all.some((s) => landsAfterLoss(s, 'vm-crash', failover))).toBe(true);
  });
});
