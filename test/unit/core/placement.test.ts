import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PLACEMENT_POLICY,
  InvalidInputError,
  type PlacementPolicy,
  type Vm,
} from '../../../core/model';
import { type HostLoad, planPlacement, rankHosts, wavesOf } from '../../../core/placement';

const vm = (id: string, memoryMiB: number, cpus: number, extra: Partial<Vm> = {}): Vm => ({
  id,
  memoryMiB,
  cpus,
  ha: true,
  priority: 'medium',
  ...extra,
});

const host = (id: string, extra: Partial<HostLoad> = {}): HostLoad => ({
  id,
  cpus: 16,
  memoryMiB: 32768,
  usedCpus: 0,
  usedMiB: 0,
  antiAffinityGroups: [],
  maintenance: false,
  ...extra,
});

const policy = (extra: Partial<PlacementPolicy> = {}): PlacementPolicy => ({
  ...DEFAULT_PLACEMENT_POLICY,
  ...extra,
});

describe('placement', () => {
  describe('given VMs of all three priorities', () => {
    it('when planned, then high come first, then medium, then low, whatever their size', () => {
      const plan = planPlacement(
        [
          vm('low-big', 8192, 4, { priority: 'low' }),
          vm('high-small', 512, 1, { priority: 'high' }),
          vm('med', 4096, 2),
        ],
        [host('h1'), host('h2')],
        policy(),
      );
      expect(plan.placements.map((p) => p.vmId)).toEqual(['high-small', 'med', 'low-big']);
      expect(plan.placements.map((p) => p.order)).toEqual([1, 2, 3]);
      expect(wavesOf(plan).map((w) => w.priority)).toEqual(['high', 'medium', 'low']);
    });
  });

  describe('given several VMs of one wave', () => {
    it('when planned, then the largest memory goes first, ties broken by CPUs then id', () => {
      const plan = planPlacement(
        [vm('b', 2048, 1), vm('a', 2048, 1), vm('c', 2048, 4), vm('d', 8192, 1)],
        [host('h1'), host('h2'), host('h3')],
        policy(),
      );
      expect(plan.placements.map((p) => p.vmId)).toEqual(['d', 'c', 'a', 'b']);
    });
  });

  describe('given hosts with different load', () => {
    it('when a VM is placed, then it goes to the host with the lowest memory load after placement', () => {
      const plan = planPlacement(
        [vm('v', 4096, 1)],
        [host('busy', { usedMiB: 20000 }), host('idle', { usedMiB: 1000 }), host('mid', { usedMiB: 10000 })],
        policy(),
      );
      expect(plan.placements[0]?.hostId).toBe('idle');
      expect(plan.placements[0]?.reason).toMatch(/idle keeps the cluster most even/);
      expect(plan.placements[0]?.reason).toMatch(/next best mid/);
    });

    it('when hosts differ in size, then load is relative to each host (a bigger host takes more)', () => {
      const plan = planPlacement(
        [vm('v', 4096, 1)],
        [
          host('small', { memoryMiB: 16384, usedMiB: 4096 }),
          host('large', { memoryMiB: 65536, usedMiB: 8192 }),
        ],
        policy(),
      );
      expect(plan.placements[0]?.hostId).toBe('large');
    });

    it('when memory load ties, then the lower CPU load wins, then the host id', () => {
      const byCpu = planPlacement(
        [vm('v', 1024, 1)],
        [host('a', { usedCpus: 8 }), host('b', { usedCpus: 2 })],
        policy(),
      );
      expect(byCpu.placements[0]?.hostId).toBe('b');
      const byId = planPlacement([vm('v', 1024, 1)], [host('z'), host('a')], policy());
      expect(byId.placements[0]?.hostId).toBe('a');
    });
  });

  describe('given a memory hard limit', () => {
    it('when a VM fits exactly, then it is placed; one MiB more and it is reported unplaced for memory', () => {
      const hosts = [host('h1', { usedMiB: 30720 })];
      expect(planPlacement([vm('v', 2048, 1)], hosts, policy()).placements).toHaveLength(1);
      const plan = planPlacement([vm('v', 2049, 1)], hosts, policy());
      expect(plan.placements).toHaveLength(0);
      expect(plan.unplaced).toEqual([
        expect.objectContaining({ vmId: 'v', reason: 'memory', detail: expect.stringMatching(/2048 MiB/) }),
      ]);
    });
  });

  describe('given a CPU overcommit ratio', () => {
    it('when vCPUs would exceed cpus × ratio, then the VM is not placed there', () => {
      const hosts = [host('h1', { cpus: 4, usedCpus: 5 })];
      expect(
        planPlacement([vm('v', 1024, 1)], hosts, policy({ cpuOvercommit: 1.5 })).placements,
      ).toHaveLength(1);
      const plan = planPlacement([vm('v', 1024, 2)], hosts, policy({ cpuOvercommit: 1.5 }));
      expect(plan.unplaced[0]?.reason).toBe('cpu');
    });
  });

  describe('given a per-host reserve', () => {
    it('when the reserve would be eaten into, then the VM is not placed', () => {
      const hosts = [host('h1', { usedMiB: 28672, cpus: 8, usedCpus: 6 })];
      expect(planPlacement([vm('v', 2048, 1)], hosts, policy({ reserveMiB: 2048 })).placements).toHaveLength(
        1,
      );
      expect(planPlacement([vm('v', 2049, 1)], hosts, policy({ reserveMiB: 2048 })).unplaced[0]?.reason).toBe(
        'memory',
      );
      expect(planPlacement([vm('v', 1024, 2)], hosts, policy({ reserveCpus: 1 })).unplaced[0]?.reason).toBe(
        'cpu',
      );
    });
  });

  describe('given anti-affinity groups', () => {
    it('when two VMs share a group, then they land on different hosts even if one host is emptier', () => {
      const plan = planPlacement(
        [vm('web-1', 1024, 1, { antiAffinity: 'web' }), vm('web-2', 1024, 1, { antiAffinity: 'web' })],
        [host('empty'), host('fuller', { usedMiB: 16000 })],
        policy(),
      );
      expect(new Set(plan.placements.map((p) => p.hostId))).toEqual(new Set(['empty', 'fuller']));
    });

    it('when every host already runs the group, then the VM is unplaced for anti-affinity', () => {
      const plan = planPlacement(
        [vm('web-3', 1024, 1, { antiAffinity: 'web' })],
        [host('h1', { antiAffinityGroups: ['web'] }), host('h2', { antiAffinityGroups: ['web'] })],
        policy(),
      );
      expect(plan.unplaced[0]).toMatchObject({ vmId: 'web-3', reason: 'anti-affinity' });
      expect(plan.unplaced[0]?.detail).toMatch(/2 already run anti-affinity group web/);
    });
  });

  describe('given hosts in maintenance', () => {
    it('when planned, then they receive nothing', () => {
      const plan = planPlacement(
        [vm('v', 1024, 1)],
        [host('m', { maintenance: true }), host('full', { usedMiB: 32768 })],
        policy(),
      );
      expect(plan.placements).toHaveLength(0);
      expect(plan.unplaced[0]?.reason).toBe('memory');
      expect(plan.unplaced[0]?.detail).toMatch(/of 1 eligible hosts/);
    });

    it('when every host is in maintenance, then VMs are unplaced with no eligible host', () => {
      const plan = planPlacement([vm('v', 1024, 1)], [host('m', { maintenance: true })], policy());
      expect(plan.unplaced[0]?.reason).toBe('no-eligible-host');
    });
  });

  describe('given non-HA VMs', () => {
    it('when planned, then they are skipped, never placed nor reported unplaced', () => {
      const plan = planPlacement(
        [vm('pet', 1024, 1, { ha: false }), vm('ha', 1024, 1)],
        [host('h1')],
        policy(),
      );
      expect(plan.skipped).toEqual([{ vmId: 'pet', reason: 'not-ha' }]);
      expect(plan.placements.map((p) => p.vmId)).toEqual(['ha']);
      expect(plan.unplaced).toEqual([]);
    });
  });

  describe('given a VM that does not fit but smaller ones that do', () => {
    it('when planned, then the smaller ones are still placed and the big one reported', () => {
      const plan = planPlacement(
        [vm('huge', 40000, 1, { priority: 'high' }), vm('small', 1024, 1, { priority: 'high' })],
        [host('h1')],
        policy(),
      );
      expect(plan.placements.map((p) => p.vmId)).toEqual(['small']);
      expect(plan.unplaced.map((u) => u.vmId)).toEqual(['huge']);
    });
  });

  describe('given the hosts after a plan', () => {
    it('then their load includes what the plan put on them and excludes nothing else', () => {
      const plan = planPlacement(
        [vm('v', 4096, 2, { antiAffinity: 'g' })],
        [host('h1', { usedMiB: 100, usedCpus: 1 })],
        policy(),
      );
      expect(plan.hostsAfter).toEqual([
        expect.objectContaining({ id: 'h1', usedMiB: 4196, usedCpus: 3, antiAffinityGroups: ['g'] }),
      ]);
    });
  });

  describe('given the same input twice in a different host order', () => {
    it('then the plan is identical', () => {
      const vms = [vm('a', 2048, 1), vm('b', 2048, 1), vm('c', 4096, 2, { priority: 'high' })];
      const hosts = [host('h1'), host('h2'), host('h3', { usedMiB: 500 })];
      const one = planPlacement(vms, hosts, policy());
      const two = planPlacement([...vms].reverse(), [...hosts].reverse(), policy());
      expect(two.placements).toEqual(one.placements);
    });
  });

  describe('given bad input', () => {
    it('then it throws InvalidInputError naming the problem', () => {
      expect(() => planPlacement([vm('v', 1, 1), vm('v', 1, 1)], [host('h')], policy())).toThrow(
        /VM v appears twice/,
      );
      expect(() => planPlacement([vm('v', 0, 1)], [host('h')], policy())).toThrow(InvalidInputError);
      expect(() => planPlacement([], [host('h'), host('h')], policy())).toThrow(/host h appears twice/);
      expect(() => planPlacement([], [host('h')], policy({ cpuOvercommit: 0 }))).toThrow(/cpuOvercommit/);
      expect(() => planPlacement([], [host('h', { cpus: 0 })], policy())).toThrow(/positive cpus/);
    });
  });

  describe('rankHosts, for a retry on the next best host', () => {
    it('given a failed start on the best host, when ranked excluding it, then the next best comes first', () => {
      const hosts = [
        host('a', { usedMiB: 1000 }),
        host('b', { usedMiB: 2000 }),
        host('c', { usedMiB: 32000 }),
      ];
      const all = rankHosts(vm('v', 4096, 1), hosts, policy());
      expect(all.map((r) => r.hostId)).toEqual(['a', 'b']);
      expect(rankHosts(vm('v', 4096, 1), hosts, policy(), ['a']).map((r) => r.hostId)).toEqual(['b']);
    });
  });
});
