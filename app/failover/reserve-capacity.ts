import type { VmAttempt } from '../../contracts/workflow';
import { rankHosts } from '../../core/placement';
import type { AppContext } from '../context';
import { NoCapacityError } from '../errors';
import { reservationLimits } from '../shared/capacity';
import { appendEvent } from '../shared/events';
import { requireIncident } from '../shared/incidents';
import { clusterPolicy } from '../shared/policy';
import { requireControl } from '../shared/site';
import { attemptVm, survivorLoads, survivorsAmong } from './scope';

/** The reservation id of one start attempt: a repeated step finds its reservation, never takes a second. */
export function reservationIdOf(attempt: VmAttempt): string {
  return `${attempt.incidentId}.${attempt.vm.vmId}.${attempt.attempt}`;
}

/**
 * ReserveCapacity (safety rule 5): holds the VM's CPUs and memory on the target with one conditional write
 * before any start goes out. If the target no longer fits, the next best host (core rankHosts, tried
 * hosts left out) is reserved instead; none fits → NoCapacityError.
 */
export async function reserveCapacity(ctx: AppContext, attempt: VmAttempt): Promise<VmAttempt> {
  // One round of reads: the site's control items and hosts do not need the incident's cluster to be
  // read, only to be narrowed.
  const [record, control, siteHosts] = await Promise.all([
    requireIncident(ctx, attempt.incidentId),
    requireControl(ctx, attempt.siteId),
    ctx.ports.hosts.listHosts(attempt.siteId),
  ]);
  const policy = clusterPolicy(ctx, control.clusters, record.cluster);
  const ref = { siteId: attempt.siteId, cluster: record.cluster, failedHostId: attempt.hostId };
  const hosts = survivorsAmong(siteHosts, ref);
  const reservationId = reservationIdOf(attempt);
  const holder = hosts.find((h) => reservationId in h.reservations);
  if (holder !== undefined) return { ...attempt, targetHostId: holder.hostId, reservationId };

  // The site's VMs (the loads) and the VM's anti-affinity group are read only when the planned target no
  // longer fits: the reservation's conditional write on the host item is what keeps capacity.
  const ranked = async () => {
    const [{ loads }, vm] = await Promise.all([survivorLoads(ctx, ref), attemptVm(ctx, attempt)]);
    return rankHosts(vm, loads, policy, [...attempt.triedHosts, attempt.targetHostId]).map((r) => r.hostId);
  };
  const vm = attempt.vm;
  const reservation = { id: reservationId, vmId: vm.vmId, cpus: vm.cpus, memoryMiB: vm.memoryMiB };
  for await (const hostId of candidates(attempt.targetHostId, ranked)) {
    const host = hosts.find((h) => h.hostId === hostId);
    // Maintenance, suspect or fenced since the plan: not a target any more (safety rule 7).
    if (host === undefined || host.lifecycle.status !== 'up') continue;
    try {
      await ctx.ports.hosts.reserve(
        attempt.siteId,
        hostId,
        reservation,
        reservationLimits(host, policy),
        host,
      );
    } catch (error) {
      if (error instanceof NoCapacityError) continue;
      throw error;
    }
    const moved = hostId === attempt.targetHostId ? '' : ` (planned ${attempt.targetHostId} no longer fits)`;
    await appendEvent(
      ctx,
      attempt.incidentId,
      'capacity-reserved',
      `reserved ${vm.memoryMiB} MiB / ${vm.cpus} vCPU on ${hostId} for ${vm.vmId}, attempt ${attempt.attempt}${moved}`,
      { vmId: vm.vmId, hostId, reservationId, attempt: attempt.attempt },
    );
    return { ...attempt, targetHostId: hostId, reservationId };
  }
  throw new NoCapacityError(
    `no up host of cluster ${record.cluster} can take ${vm.vmId} (${vm.memoryMiB} MiB / ${vm.cpus} vCPU)`,
  );
}

/** The planned target first, then (computed only if needed) the ranked alternatives. */
async function* candidates(target: string, ranked: () => Promise<string[]>): AsyncGenerator<string> {
  yield target;
  yield* await ranked();
}
