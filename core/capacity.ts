import { type Host, InvalidInputError, type PlacementPolicy } from './model';
import {
  type CompiledHosts,
  compileHosts,
  type HostLoad,
  hostLoad,
  type PlacementPlan,
  planOnCompiled,
  type Unplaced,
} from './placement';

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
  /**
   * The failed host is known not to be fenceable (its `fencing`): the failover stops at the fence and
   * waits for an operator to confirm the power off before anything restarts (safety rule 1). The plan
   * still says where its VMs go once that is done.
   */
  readonly needsOperator: boolean;
  /** Why, e.g. `cannot be fenced: relay r1: level 1 ipmitool: timeout`; null unless needsOperator. */
  readonly operatorReason: string | null;
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
  /**
   * True when no host is known to be unfenceable, so the loss of any one host fails over without an
   * operator. Separate from survivesAnyOneHostFailure, which is about room alone: an unfenceable host's
   * VMs still have their place, they only wait for an operator's confirmation first.
   */
  readonly automaticFailover: boolean;
  /** The hosts whose failover needs an operator because no relay can fence them, with why. */
  readonly notFenceable: readonly { readonly hostId: string; readonly reason: string }[];
  /**
   * HA VMs with libvirt autostart on (`Vm.autostart`), with the host each runs on, in host order: a
   * misconfiguration, since a fenced host that boots again would start a second copy of what its failover
   * restarted elsewhere. A warning only: it changes neither verdict.
   */
  readonly haVmsWithAutostart: readonly { readonly vmId: string; readonly hostId: string }[];
}

/** Free room of one host within its limits; nothing for a host in maintenance. */
function spareOf(h: HostLoad, policy: PlacementPolicy): Resources {
  if (h.maintenance) return { cpus: 0, memoryMiB: 0 };
  return {
    memoryMiB: Math.max(0, h.memoryMiB - policy.reserveMiB - h.usedMiB),
    cpus: Math.max(0, (h.cpus - policy.reserveCpus) * policy.cpuOvercommit - h.usedCpus),
  };
}

function sum(rs: readonly Resources[]): Resources {
  let cpus = 0;
  let memoryMiB = 0;
  for (const r of rs) {
    cpus += r.cpus;
    memoryMiB += r.memoryMiB;
  }
  return { cpus, memoryMiB };
}

/** The failover plan of `failed` over a compiled cluster; `spare` is the survivors' free room. */
function failoverPlanFor(failed: Host, cluster: CompiledHosts, spare: Resources): FailoverPlan {
  const plan = planOnCompiled(cluster, failed.vms, [failed.id]);
  const demand = sum(failed.vms.filter((vm) => vm.ha));
  return {
    failedHostId: failed.id,
    plan,
    demand,
    spare,
    shortfall: {
      cpus: Math.max(0, demand.cpus - spare.cpus),
      memoryMiB: Math.max(0, demand.memoryMiB - spare.memoryMiB),
    },
    survives: plan.unplaced.length === 0,
    ...operatorNeed(failed),
  };
}

/** Whether the failover of `host` waits for an operator: only when it is known not to be fenceable. */
function operatorNeed(host: Host): Pick<FailoverPlan, 'needsOperator' | 'operatorReason'> {
  if (host.fencing?.fenceable !== false) return { needsOperator: false, operatorReason: null };
  return {
    needsOperator: true,
    operatorReason: `cannot be fenced${host.fencing.reason === null ? '' : `: ${host.fencing.reason}`}`,
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
  return failoverPlanFor(
    failed,
    compileHosts(survivors, policy),
    sum(survivors.map((h) => spareOf(h, policy))),
  );
}

/** N+1: for every host, the plan if it failed, and whether the cluster survives any one host failure. */
export function assessCapacity(hosts: readonly Host[], policy: PlacementPolicy): CapacityReport {
  // Compiled once (this also rejects duplicate hosts); each plan excludes its failed host.
  const loads = hosts.map(hostLoad);
  const cluster = compileHosts(loads, policy);
  const spares = loads.map((h) => spareOf(h, policy));
  const total = sum(spares);
  const plans = hosts.map((failed, i) => {
    const own = spares[i] ?? { cpus: 0, memoryMiB: 0 };
    return failoverPlanFor(failed, cluster, {
      cpus: total.cpus - own.cpus,
      memoryMiB: total.memoryMiB - own.memoryMiB,
    });
  });
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
    automaticFailover: plans.every((p) => !p.needsOperator),
    notFenceable: plans.flatMap((p) =>
      p.operatorReason === null ? [] : [{ hostId: p.failedHostId, reason: p.operatorReason }],
    ),
    haVmsWithAutostart: hosts.flatMap((h) =>
      h.vms.filter((vm) => vm.ha && vm.autostart === true).map((vm) => ({ vmId: vm.id, hostId: h.id })),
    ),
  };
}
