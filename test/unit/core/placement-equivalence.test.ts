import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { placementWorkload } from '../../../bench/placement.bench';
import { type PlacementPolicy, PRIORITIES, type Vm } from '../../../core/model';
import { compileHosts, type HostLoad, planOnCompiled, planPlacement } from '../../../core/placement';
import * as before from './placement-before';

/**
 * The planner's data structures were reworked for speed (issue 16: 10,000 VMs onto 1,000 hosts at p99
 * ≤ 50 ms). The plans must not change: whole plans (every placement with its order and reason, every
 * unplaced VM with its reason and detail, the skipped ones, the hosts' load after) equal those of the
 * planner as it was (placement-before.ts), on random clusters built to hit what was reworked: hosts of few
 * shapes with equal loads (a group's order after each placement, ties by id), anti-affinity groups that
 * block the best hosts, hosts left out, and compiled hosts reused across plans as N+1 does.
 */

const RUNS = { seed: 20261205, numRuns: 300 };

const arbPolicy: fc.Arbitrary<PlacementPolicy> = fc.record({
  cpuOvercommit: fc.constantFrom(1, 1.5, 2),
  reserveMiB: fc.constantFrom(0, 1024),
  reserveCpus: fc.constantFrom(0, 1),
});

const GROUPS = ['g0', 'g1', 'g2', 'g3'] as const;

const arbVms: fc.Arbitrary<Vm[]> = fc
  .array(
    fc.record({
      cpus: fc.integer({ min: 1, max: 6 }),
      memoryMiB: fc.constantFrom(512, 1024, 2048, 4096, 8192),
      ha: fc.integer({ min: 0, max: 19 }).map((n) => n < 17),
      priority: fc.constantFrom(...PRIORITIES),
      antiAffinity: fc.option(fc.constantFrom(...GROUPS), { nil: undefined, freq: 2 }),
    }),
    { maxLength: 120 },
  )
  .map((vms) => vms.map((v, i): Vm => ({ id: `vm-${(i * 7919) % 1000}-${i}`, ...v })));

const SHAPES = [
  { cpus: 8, memoryMiB: 16_384 },
  { cpus: 16, memoryMiB: 32_768 },
  { cpus: 16, memoryMiB: 65_536 },
] as const;

const arbHosts: fc.Arbitrary<HostLoad[]> = fc
  .array(
    fc.record({
      shape: fc.constantFrom(...SHAPES),
      // Few distinct loads: many hosts of a group tie, and the order among them is by id.
      usedMiB: fc.integer({ min: 0, max: 6 }).map((n) => n * 2048),
      usedCpus: fc.integer({ min: 0, max: 6 }),
      groups: fc.subarray([...GROUPS]),
    }),
    { minLength: 1, maxLength: 30 },
  )
  .map((hs) =>
    hs.map(
      (h, i): HostLoad => ({
        id: `host-${String((i * 37) % 101).padStart(3, '0')}-${i}`,
        ...h.shape,
        usedMiB: h.usedMiB,
        usedCpus: h.usedCpus,
        antiAffinityGroups: h.groups,
        maintenance: i % 11 === 5,
      }),
    ),
  );

describe('placement after the rework for speed', () => {
  it('gives the same whole plan as before, on random clusters', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        expect(planPlacement(vms, hosts, policy)).toEqual(before.planPlacement(vms, hosts, policy));
      }),
      RUNS,
    );
  });

  it('gives the same plans as before over one compilation reused, each host left out in turn (N+1)', () => {
    fc.assert(
      fc.property(arbVms, arbHosts, arbPolicy, (vms, hosts, policy) => {
        const now = compileHosts(hosts, policy);
        const then = before.compileHosts(hosts, policy);
        for (const host of hosts) {
          expect(planOnCompiled(now, vms, [host.id])).toEqual(before.planOnCompiled(then, vms, [host.id]));
        }
      }),
      { ...RUNS, numRuns: 100 },
    );
  });

  it('gives the same plan as before for the bench: 10,000 VMs onto 1,000 hosts', () => {
    const { vms, hosts, policy } = placementWorkload(3);
    const plan = planPlacement(vms, hosts, policy);
    expect(plan.placements.length).toBeGreaterThan(9_000);
    expect(plan).toEqual(before.planPlacement(vms, hosts, policy));
  });
});
