import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assessCapacity } from '../../../core/capacity';
import { type Host, type PlacementPolicy, PRIORITIES, priorityRank, type Vm } from '../../../core/model';
import { type HostLoad, planPlacement } from '../../../core/placement';

const RUNS = { seed: 20261125, numRuns: 300 };

const arbPolicy: fc.Arbitrary<PlacementPolicy> = fc.record({
  cpuOvercommit: fc.constantFrom(1, 1.5, 2, 4),
  reserveMiB: fc.constantFrom(0, 1024, 2048),
  reserveCpus: fc.constantFrom(0, 1),
});

const arbVm = (id: string): fc.Arbitrary<Vm> =>
  fc.record({
    id: fc.constant(id),
    cpus: fc.integer({ min: 1, max: 8 }),
    memoryMiB: fc.integer({ min: 1, max: 16 }).map((n) => n * 512),
    ha: fc.boolean(),
    priority: fc.constantFrom(...PRIORITIES),
    antiAffinity: fc.option(fc.constantFrom('web', 'db', 'dns'), { nil: undefined }),
  });

const arbVms = fc
  .integer({ min: 0, max: 40 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbVm(`vm-${i}`))));

const arbHosts: fc.Arbitrary<HostLoad[]> = fc.integer({ min: 1, max: 8 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc
        .record({
          cpus: fc.integer({ min: 4, max: 32 }),
          memoryMiB: fc.integer({ min: 8, max: 64 }).map((g) => g * 1024),
          loadShare: fc.double({ min: 0, max: 0.9, noNaN: true }),
          maintenance: fc.boolean().map((b) => b && i % 3 === 0),
          groups: fc.subarray(['web', 'db', 'dns']),
        })
        .map(
          (h): HostLoad => ({
            id: `host-${i}`,
            cpus: h.cpus,
            memoryMiB: h.memoryMiB,
            usedMiB: Math.floor(h.memoryMiB * h.loadShare),
            usedCpus: Math.floor(h.cpus * h.loadShare),
            antiAffinityGroups: h.groups,
            maintenance: h.maintenance,
          }),
        ),
    ),
  ),
);

/** Hosts of only a few shapes, as real clusters are: exercises the planner's per-shape shortcut. */
const arbShapedHosts: fc.Arbitrary<HostLoad[]> = fc
  .array(
    fc.record({
      shape: fc.constantFrom({ cpus: 8, memoryMiB: 16384 }, { cpus: 16, memoryMiB: 32768 }),
      usedMiB: fc.integer({ min: 0, max: 12 }).map((n) => n * 1024),
      usedCpus: fc.integer({ min: 0, max: 8 }),
      groups: fc.subarray(['web', 'db', 'dns']),
    }),
    { minLength: 1, maxLength: 10 },
  )
  .map((hs) =>
    hs.map(
      (h, i): HostLoad => ({
        id: `host-${String.fromCharCode(106 - i)}`,
        ...h.shape,
        usedMiB: h.usedMiB,
        usedCpus: h.usedCpus,
        antiAffinityGroups: h.groups,
        maintenance: i === 3,
      }),
    ),
  );

/** Independent oracle of "does this VM fit on this host in this state". */
function fits(
  vm: Vm,
  h: { memoryMiB: number; cpus: number; usedMiB: number; usedCpus: number; groups: Set<string> },
  p: PlacementPolicy,
) {
  return (
    h.usedMiB + vm.memoryMiB <= h.memoryMiB - p.reserveMiB &&
    h.usedCpus + vm.cpus <= (h.cpus - p.reserveCpus) * p.cpuOvercommit + 1e-9 &&
    (vm.antiAffinity === undefined || !h.groups.has(vm.antiAffinity))
  );
}

describe('placement properties', () => {
  it('never fills a host past its memory or CPU overcommit (from within limits), never uses maintenance hosts', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        const plan = planPlacement(vms, hosts, policy);
        for (const after of plan.hostsAfter) {
          const before = hosts.find((h) => h.id === after.id);
          if (before === undefined) throw new Error('host lost');
          const received = plan.placements.filter((p) => p.hostId === after.id);
          if (received.length === 0) continue;
          expect(before.maintenance).toBe(false);
          expect(after.usedMiB).toBeLessThanOrEqual(after.memoryMiB - policy.reserveMiB);
          expect(after.usedCpus).toBeLessThanOrEqual(
            (after.cpus - policy.reserveCpus) * policy.cpuOvercommit + 1e-9,
          );
          expect(after.usedMiB - before.usedMiB).toBe(received.reduce((s, p) => s + p.memoryMiB, 0));
        }
      }),
      RUNS,
    );
  });

  it('accounts for every VM exactly once: HA placed xor unplaced, non-HA skipped', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        const plan = planPlacement(vms, hosts, policy);
        const placed = plan.placements.map((p) => p.vmId);
        const unplaced = plan.unplaced.map((u) => u.vmId);
        const skipped = plan.skipped.map((s) => s.vmId);
        const all = [...placed, ...unplaced, ...skipped];
        expect(new Set(all).size).toBe(all.length);
        expect(new Set(all)).toEqual(new Set(vms.map((v) => v.id)));
        for (const v of vms) expect(skipped.includes(v.id)).toBe(!v.ha);
      }),
      RUNS,
    );
  });

  it('keeps anti-affinity groups apart on every host', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        const plan = planPlacement(vms, hosts, policy);
        for (const h of hosts) {
          const groups = plan.placements
            .filter((p) => p.hostId === h.id)
            .map((p) => vms.find((v) => v.id === p.vmId)?.antiAffinity)
            .filter((g): g is string => g !== undefined);
          expect(new Set(groups).size).toBe(groups.length);
          for (const g of groups) expect(h.antiAffinityGroups).not.toContain(g);
        }
      }),
      RUNS,
    );
  });

  it('never lets a lower-priority VM take room a still-unplaced higher-priority VM would have fitted in', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        const plan = planPlacement(vms, hosts, policy);
        const state = new Map(
          hosts.map((h) => [
            h.id,
            {
              memoryMiB: h.memoryMiB,
              cpus: h.cpus,
              usedMiB: h.usedMiB,
              usedCpus: h.usedCpus,
              groups: new Set(h.antiAffinityGroups),
            },
          ]),
        );
        const byId = new Map(vms.map((v) => [v.id, v]));
        for (const p of plan.placements) {
          const target = state.get(p.hostId);
          const placedVm = byId.get(p.vmId);
          if (target === undefined || placedVm === undefined) throw new Error('unknown id in plan');
          for (const u of plan.unplaced) {
            const waiting = byId.get(u.vmId);
            if (waiting === undefined || priorityRank(waiting.priority) >= priorityRank(placedVm.priority))
              continue;
            expect(fits(waiting, target, policy)).toBe(false);
          }
          target.usedMiB += placedVm.memoryMiB;
          target.usedCpus += placedVm.cpus;
          if (placedVm.antiAffinity !== undefined) target.groups.add(placedVm.antiAffinity);
        }
      }),
      RUNS,
    );
  });

  it('reports unplaced only what fitted nowhere when its turn came', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        const plan = planPlacement(vms, hosts, policy);
        // Every host state after the plan only grew, so an unplaced VM cannot fit any eligible host at the end.
        const after = new Map(plan.hostsAfter.map((h) => [h.id, h]));
        const finalHosts = hosts.map((h) => after.get(h.id) ?? h);
        for (const u of plan.unplaced) {
          const v = vms.find((x) => x.id === u.vmId);
          if (v === undefined) throw new Error('unknown unplaced');
          for (const h of finalHosts.filter((x) => !x.maintenance)) {
            expect(fits(v, { ...h, groups: new Set(h.antiAffinityGroups) }, policy)).toBe(false);
          }
        }
      }),
      RUNS,
    );
  });

  it('on identical hosts, spreads memory so that what each host receives differs by at most the largest VM', () => {
    const arbIdentical = fc.record({
      hostCount: fc.integer({ min: 2, max: 8 }),
      used: fc.integer({ min: 0, max: 32 }).map((g) => g * 1024),
      sizes: fc.array(
        fc.integer({ min: 1, max: 32 }).map((n) => n * 256),
        { minLength: 1, maxLength: 60 },
      ),
      priorities: fc.array(fc.constantFrom(...PRIORITIES), { minLength: 60, maxLength: 60 }),
    });
    fc.assert(
      fc.property(arbIdentical, ({ hostCount, used, sizes, priorities }) => {
        const hosts: HostLoad[] = Array.from({ length: hostCount }, (_, i) => ({
          id: `h${i}`,
          cpus: 64,
          memoryMiB: 65536,
          usedMiB: used,
          usedCpus: 0,
          antiAffinityGroups: [],
          maintenance: false,
        }));
        const vms: Vm[] = sizes.map((memoryMiB, i) => ({
          id: `v${i}`,
          memoryMiB,
          cpus: 1,
          ha: true,
          priority: priorities[i] ?? 'low',
        }));
        // CPU never binds here (64 × 16 vCPU), so memory evenness is the only thing that decides.
        const plan = planPlacement(vms, hosts, { cpuOvercommit: 16, reserveMiB: 0, reserveCpus: 0 });
        const added = hosts.map((h) =>
          plan.placements.filter((p) => p.hostId === h.id).reduce((s, p) => s + p.memoryMiB, 0),
        );
        const largest = Math.max(...plan.placements.map((p) => p.memoryMiB), 0);
        expect(Math.max(...added) - Math.min(...added)).toBeLessThanOrEqual(largest);
      }),
      RUNS,
    );
  });

  it('matches a brute-force planner that scans every host for every VM', () => {
    // The planner only looks at the first hosts of each shape group; this oracle looks at all of them.
    const bruteForce = (vms: readonly Vm[], hosts: readonly HostLoad[], p: PlacementPolicy) => {
      const state = [...hosts]
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .filter((h) => !h.maintenance)
        .map((h) => ({ ...h, groups: new Set(h.antiAffinityGroups) }));
      const order = vms
        .filter((v) => v.ha)
        .sort(
          (a, b) =>
            priorityRank(a.priority) - priorityRank(b.priority) ||
            b.memoryMiB - a.memoryMiB ||
            b.cpus - a.cpus ||
            (a.id < b.id ? -1 : 1),
        );
      const out: [string, string | null][] = [];
      for (const v of order) {
        let best: (typeof state)[number] | null = null;
        let bestKey: [number, number] = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
        for (const h of state) {
          if (!fits(v, h, p)) continue;
          const key: [number, number] = [
            (h.usedMiB + v.memoryMiB) / h.memoryMiB,
            (h.usedCpus + v.cpus) / (h.cpus * p.cpuOvercommit),
          ];
          // Relative tolerance: the planner multiplies by 1/memory where this divides.
          const close = (x: number, y: number) => Math.abs(x - y) <= 1e-12 * Math.max(1, Math.abs(y));
          const better =
            best === null ||
            (!close(key[0], bestKey[0]) && key[0] < bestKey[0]) ||
            (close(key[0], bestKey[0]) && !close(key[1], bestKey[1]) && key[1] < bestKey[1]);
          if (better) {
            best = h;
            bestKey = key;
          }
        }
        out.push([v.id, best?.id ?? null]);
        if (best !== null) {
          best.usedMiB += v.memoryMiB;
          best.usedCpus += v.cpus;
          if (v.antiAffinity !== undefined) best.groups.add(v.antiAffinity);
        }
      }
      return out;
    };
    fc.assert(
      fc.property(arbVms, fc.oneof(arbHosts, arbShapedHosts), arbPolicy, (vms, hosts, policy) => {
        const plan = planPlacement(vms, hosts, policy);
        const got = new Map<string, string | null>(plan.placements.map((p) => [p.vmId, p.hostId]));
        for (const u of plan.unplaced) got.set(u.vmId, null);
        for (const [vmId, hostId] of bruteForce(vms, hosts, policy))
          expect([vmId, got.get(vmId)]).toEqual([vmId, hostId]);
      }),
      RUNS,
    );
  });

  it('is deterministic: the same VMs and hosts in any order give the same plan', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, fc.integer(), (vms, hosts, policy, salt) => {
        const shuffle = <T>(xs: readonly T[]): T[] =>
          xs
            .map((x, i) => ({ x, k: Math.imul(i + 1, salt | 1) ^ salt }))
            .sort((a, b) => a.k - b.k)
            .map(({ x }) => x);
        const one = planPlacement(vms, hosts, policy);
        const two = planPlacement(shuffle(vms), shuffle(hosts), policy);
        expect(two.placements).toEqual(one.placements);
        expect(two.unplaced).toEqual(one.unplaced);
      }),
      RUNS,
    );
  });
});

describe('N+1 properties', () => {
  const arbCluster = fc.tuple(arbHosts, arbVms).map(([loads, vms]): Host[] =>
    loads.map((l, i) => ({
      id: l.id,
      cpus: l.cpus,
      memoryMiB: l.memoryMiB,
      maintenance: l.maintenance,
      vms: vms.filter((_, j) => j % loads.length === i),
    })),
  );

  it('survives iff no plan leaves a VM down, and a positive shortfall always means VMs stay down', () => {
    fc.assert(
      fc.property(arbCluster, arbPolicy, (hosts, policy) => {
        const report = assessCapacity(hosts, policy);
        expect(report.plans).toHaveLength(hosts.length);
        expect(report.survivesAnyOneHostFailure).toBe(
          report.plans.every((p) => p.plan.unplaced.length === 0),
        );
        for (const p of report.plans) {
          expect(p.plan.placements.every((x) => x.hostId !== p.failedHostId)).toBe(true);
          if (p.shortfall.memoryMiB > 0 || p.shortfall.cpus > 0) expect(p.survives).toBe(false);
          expect(p.shortfall.memoryMiB).toBeLessThanOrEqual(
            p.plan.unplaced.reduce((s, u) => s + u.memoryMiB, 0),
          );
        }
      }),
      RUNS,
    );
  });
});
