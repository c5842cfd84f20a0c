import { assessCapacity, type CapacityReport } from '../../core/capacity';
import type { Host, Vm } from '../../core/model';
import type { HostLoad } from '../../core/placement';
import type { HaPolicy } from '../../core/policy';
import type { AppContext } from '../context';
import type { HostRecord, RelayRecord, SiteControl, VmRecord } from '../ports';
import { hostFenceability } from './fence-readiness';
import { compareIds } from './order';
import { clusterPolicy } from './policy';

/** A VM record that runs (or is paused) on its host: what counts on that host now. */
export function isRunning(vm: VmRecord): boolean {
  return vm.state === 'running' || vm.state === 'paused';
}

/**
 * Recorded running on a host that may run it: a record naming a host confirmed powered off (fenced) says
 * what ran there before the fence, not what runs (a relay may still report a fenced boot's last inventory).
 */
export function runsUnfenced(vm: VmRecord, fenced: (hostId: string) => boolean): boolean {
  return isRunning(vm) && (vm.hostId === null || !fenced(vm.hostId));
}

/** Whether the site's control items have the host fenced (for runsUnfenced). */
export function fencedIn(control: SiteControl): (hostId: string) => boolean {
  return (hostId) => control.hosts[hostId]?.status === 'fenced';
}

/**
 * Whether libvirt would start the VM by itself on some host: the record's host says so, or any host it is
 * defined on (after a failover, the fenced host that holds a copy is no longer the record's host).
 */
export function hasAutostart(vm: VmRecord): boolean {
  return vm.autostart === true || vm.autostartOn.length > 0;
}

/** A VM record as core placement sees it. */
export function coreVm(vm: VmRecord): Vm {
  return {
    id: vm.vmId,
    cpus: vm.cpus,
    memoryMiB: vm.memoryMiB,
    ha: vm.ha,
    priority: vm.priority,
    antiAffinity: vm.antiAffinity ?? undefined,
    autostart: hasAutostart(vm),
  };
}

/**
 * Candidate hosts for restarts, as placement loads: only hosts that are `up` (maintenance, suspect and
 * fenced hosts take nothing, safety rule 7), carrying what they run plus what is reserved for starts.
 */
export function placementLoads(hosts: readonly HostRecord[], vms: readonly VmRecord[]): HostLoad[] {
  return hosts
    .filter((h) => h.lifecycle.status === 'up')
    .map((h) => {
      let usedCpus = h.usedCpus;
      let usedMiB = h.usedMiB;
      for (const held of Object.values(h.reservations)) {
        usedCpus += held.cpus;
        usedMiB += held.memoryMiB;
      }
      const groups = vms.flatMap((vm) =>
        vm.hostId === h.hostId && isRunning(vm) && vm.antiAffinity !== null ? [vm.antiAffinity] : [],
      );
      return {
        id: h.hostId,
        cpus: h.cpus,
        memoryMiB: h.memoryMiB,
        usedCpus,
        usedMiB,
        antiAffinityGroups: groups,
        maintenance: false,
      };
    });
}

/** The limits a reservation must stay within on a host (safety rule 5): memory hard, CPU overcommitted. */
export function reservationLimits(host: HostRecord, policy: HaPolicy): { memoryMiB: number; cpus: number } {
  return {
    memoryMiB: host.memoryMiB - policy.reserveMiB,
    cpus: (host.cpus - policy.reserveCpus) * policy.cpuOvercommit,
  };
}

/**
 * The hosts of a site grouped by cluster, with the VMs each runs now and, given the site's relays,
 * whether a relay can fence each one, as core capacity sees them.
 */
export function clustersOf(
  hosts: readonly HostRecord[],
  vms: readonly VmRecord[],
  relays: readonly RelayRecord[],
): Map<string, Host[]> {
  const byCluster = new Map<string, Host[]>();
  for (const h of hosts) {
    const host: Host = {
      id: h.hostId,
      cpus: h.cpus,
      memoryMiB: h.memoryMiB,
      // Only an up host can take VMs; a suspect or fenced one is as unavailable as one in maintenance.
      maintenance: h.lifecycle.status !== 'up',
      vms: vms.filter((vm) => vm.hostId === h.hostId && isRunning(vm)).map(coreVm),
      fencing: hostFenceability(h, relays),
    };
    const list = byCluster.get(h.cluster);
    if (list === undefined) byCluster.set(h.cluster, [host]);
    else list.push(host);
  }
  return byCluster;
}

/** One cluster's N+1 verdict under its policy. */
export interface ClusterCapacity {
  readonly clusterId: string;
  readonly report: CapacityReport;
}

/**
 * Core assessCapacity for every cluster of a site, each under its own policy, from host and VM records;
 * a host no relay can fence has its failover marked as needing an operator.
 */
export async function assessSiteCapacity(ctx: AppContext, control: SiteControl): Promise<ClusterCapacity[]> {
  const siteId = control.site.siteId;
  const [hosts, vms] = await Promise.all([ctx.ports.hosts.listHosts(siteId), ctx.ports.vms.listVms(siteId)]);
  return [...clustersOf(hosts, vms, control.relays)]
    .sort(([a], [b]) => compareIds(a, b))
    .map(([clusterId, members]) => ({
      clusterId,
      report: assessCapacity(members, clusterPolicy(ctx, control.clusters, clusterId)),
    }));
}
