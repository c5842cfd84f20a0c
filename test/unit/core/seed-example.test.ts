import { describe, expect, it } from 'vitest';
import { assessCapacity, planHostFailure } from '../../../core/capacity';
import type { PlacementPolicy } from '../../../core/model';
import { seedCluster } from '../../fixtures/seed-cluster';

// The worked example of the article Halo started from: three hosts of 32 cores and 64 GiB,
// each carrying VMs worth 45 GiB and 25 vCPUs, CPU overcommit 1.5.
const policy: PlacementPolicy = { cpuOvercommit: 1.5, reserveMiB: 0, reserveCpus: 0 };
const GiB = 1024;

describe('the seed example', () => {
  describe('(a) given 9 GiB of each host is not HA', () => {
    const hosts = seedCluster();

    it('when node01 fails, then its 36 GiB / 20 vCPU of HA VMs all restart, high first', () => {
      const failover = planHostFailure('node01', hosts, policy);
      expect(failover.demand).toEqual({ memoryMiB: 36 * GiB, cpus: 20 });
      expect(failover.survives).toBe(true);
      expect(failover.plan.unplaced).toEqual([]);
      expect(failover.plan.placements).toHaveLength(14);
      const priorities = failover.plan.placements.map((p) => p.priority);
      expect(priorities.slice(0, 4)).toEqual(['high', 'high', 'high', 'high']);
      expect(priorities.lastIndexOf('high')).toBeLessThan(priorities.indexOf('medium'));
      expect(priorities.lastIndexOf('medium')).toBeLessThan(priorities.indexOf('low'));
      expect(failover.plan.skipped.map((s) => s.vmId)).toHaveLength(5);
    });

    it('then the load is split evenly: 18 GiB and 10 vCPU onto each of node02 and node03', () => {
      const failover = planHostFailure('node01', hosts, policy);
      const added = (hostId: string) =>
        failover.plan.placements
          .filter((p) => p.hostId === hostId)
          .reduce((sum, p) => ({ mem: sum.mem + p.memoryMiB, cpus: sum.cpus + p.cpus }), { mem: 0, cpus: 0 });
      expect(added('node02')).toEqual({ mem: 18 * GiB, cpus: 10 });
      expect(added('node03')).toEqual({ mem: 18 * GiB, cpus: 10 });
      // each high wave VM alternates between the two hosts
      const highs = failover.plan.placements.filter((p) => p.priority === 'high').map((p) => p.hostId);
      expect(highs.filter((h) => h === 'node02')).toHaveLength(2);
    });

    it('then N+1 holds for the whole cluster', () => {
      const report = assessCapacity(hosts, policy);
      expect(report.survivesAnyOneHostFailure).toBe(true);
      expect(report.plans.map((p) => p.failedHostId)).toEqual(['node01', 'node02', 'node03']);
      expect(report.worstShortfall).toEqual({ cpus: 0, memoryMiB: 0 });
      expect(report.staysDown).toEqual([]);
    });
  });

  describe('(b) given all 45 GiB of each host is HA', () => {
    const hosts = seedCluster({ allHa: true });

    it('when N+1 is assessed, then it fails 7 GiB short and no CPU short', () => {
      const report = assessCapacity(hosts, policy);
      expect(report.survivesAnyOneHostFailure).toBe(false);
      expect(report.worstShortfall).toEqual({ memoryMiB: 7 * GiB, cpus: 0 });
      const node01 = report.plans.find((p) => p.failedHostId === 'node01');
      expect(node01?.demand).toEqual({ memoryMiB: 45 * GiB, cpus: 25 });
      expect(node01?.spare.memoryMiB).toBe(38 * GiB);
    });

    it('then the report names the lowest-priority VMs that would stay down', () => {
      const report = assessCapacity(hosts, policy);
      const down = report.staysDown.find((d) => d.failedHostId === 'node01');
      expect(down?.vms.map((v) => v.priority)).toEqual(['low', 'low', 'low', 'low']);
      expect(down?.vms.map((v) => v.vmId).sort()).toEqual(
        ['node01-dev-1', 'node01-dev-2', 'node01-dev-3', 'node01-dev-4'].sort(),
      );
      expect(down?.vms.every((v) => v.reason === 'memory')).toBe(true);
      expect(down?.vms.reduce((sum, v) => sum + v.memoryMiB, 0)).toBeGreaterThanOrEqual(7 * GiB);
    });

    it('then the placement still places every high and medium VM, and the low ones that fit', () => {
      const failover = planHostFailure('node01', hosts, policy);
      const placed = failover.plan.placements;
      expect(placed.filter((p) => p.priority === 'high')).toHaveLength(4);
      expect(placed.filter((p) => p.priority === 'medium')).toHaveLength(6);
      expect(placed.filter((p) => p.vmId === 'node01-scratch-1')).toHaveLength(1);
      for (const after of failover.plan.hostsAfter) expect(after.usedMiB).toBeLessThanOrEqual(64 * GiB);
    });
  });
});
