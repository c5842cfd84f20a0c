import { type Host, InvalidInputError, type PlacementPolicy } from './model';
import { type HostLoad, hostLoad, type PlacementPlan, planPlacement, type Unplaced } from './placement';

/** CPUs and memory, as a demand, a spare amount or a shortfall. */
export interface Resources {
  readonly cpus: number;
  readonly memoryMiB: number;
}

/** What happens if one host fails: the plan for its HA VMs and whether they all come back. */
export interface FailoverPlan {
  readonly failedHostId: string;
  readonly plan: PlacementPlan;
  /** What the failed host's HA VMs need. */
  readonly demand: Resources;
  /** Free room on the surviving, eligible hosts within memory reserve and CPU overcommit. */
  readonly spare: Resources;
  /** Demand beyond spare, in aggregate; zero does not guarantee a fit (anti-affinity, fragmentation). */
  readonly shortfall: Resources;
  readonly survives: boolean;
}

/** The cluster's N+1 verdict with every host's failover plan. */
export interface CapacityReport {
  /** True when the loss of any one host leaves no HA VM down. */
  readonly survivesAnyOneHostFailure: boolean;
  readonly plans: readonly FailoverPlan[];
  /** The largest shortfall over all single-host failures (memory and CPU taken separately). */
  readonly worstShortfall: Resources;
  /** For each failure that leaves VMs down: which VMs stay down, lowest priority last in the plan order. */
  readonly staysDown: readonly { readonly failedHostId: string; readonly vms: readonly Unplaced[] }[];
}

function spareOf(hosts: readonly HostLoad[], policy: PlacementPolicy): Resources {
  let cpus = 0;
  let memoryMiB = 0;
  for (const h of hosts) {
    if (h.maintenance) continue;
    memoryMiB += Math.max(0, h.memoryMiB - policy.reserveMiB - h.usedMiB);
    cpus += Math.max(0, (h.cpus - policy.reserveCpus) * policy.cpuOvercommit - h.usedCpus);
  }
  return { cpus, memoryMiB };
}

function failoverPlanFor(
  failed: Host,
  survivors: readonly HostLoad[],
  policy: PlacementPolicy,
): FailoverPlan {
  const plan = planPlacement(failed.vms, survivors, policy);
  let cpus = 0;
  let memoryMiB = 0;
  for (const vm of failed.vms) {
    if (!vm.ha) continue;
    cpus += vm.cpus;
    memoryMiB += vm.memoryMiB;
  }
  const spare = spareOf(survivors, policy);
  return {
    failedHostId: failed.id,
    plan,
    demand: { cpus, memoryMiB },
    spare,
    shortfall: { cpus: Math.max(0, cpus - spare.cpus), memoryMiB: Math.max(0, memoryMiB - spare.memoryMiB) },
    survives: plan.unplaced.length === 0,
  };
}

/** The failover plan if `failedHostId` died now, placing its HA VMs on the other hosts of the cluster. */
export function planHostFailure(
  failedHostId: string,
  hosts: readonly Host[],
  policy: PlacementPolicy,
): FailoverPlan {
  const failed = hosts.find((h) => h.id === failedHostId);
  if (failed === undefined) throw new InvalidInputError(`host ${failedHostId} is not in the cluster`);
  const survivors = hosts.filter((h) => h.id !== failedHostId).map(hostLoad);
  return failoverPlanFor(failed, survivors, policy);
}

/** N+1: for every host, the plan if it failed, and whether the cluster survives any one host failure. */
export function assessCapacity(hosts: readonly Host[], policy: PlacementPolicy): CapacityReport {
  const ids = new Set<string>();
  for (const h of hosts) {
    if (ids.has(h.id)) throw new InvalidInputError(`host ${h.id} appears twice`);
    ids.add(h.id);
  }
  // Loads are computed once; each plan places onto the other hosts' loads as they are now.
  const loads = hosts.map(hostLoad);
  const plans = hosts.map((failed, i) =>
    failoverPlanFor(
      failed,
      loads.filter((_, j) => j !== i),
      policy,
    ),
  );
  const worstShortfall = plans.reduce<Resources>(
    (worst, p) => ({
      cpus: Math.max(worst.cpus, p.shortfall.cpus),
      memoryMiB: Math.max(worst.memoryMiB, p.shortfall.memoryMiB),
    }),
    { cpus: 0, memoryMiB: 0 },
  );
  return {
    survivesAnyOneHostFailure: plans.every((p) => p.survives),
    plans,
    worstShortfall,
    staysDown: plans
      .filter((p) => !p.survives)
      .map((p) => ({ failedHostId: p.failedHostId, vms: p.plan.unplaced })),
  };
}
