import type { VmAttempt } from '../../contracts/workflow';
import { rankHosts } from '../../core/placement';
import type { AppContext } from '../context';
import { NoCapacityError } from '../errors';
import type { HostRecord, IncidentRecord, SiteControl } from '../ports';
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

/** What a reservation needs read: the incident, the site's control items and its hosts. */
export interface ReservationReads {
  readonly record: IncidentRecord;
  readonly control: SiteControl;
  readonly siteHosts: readonly HostRecord[];
}

/** The reads a reservation decides on, in one round. */
export async function readForReservation(ctx: AppContext, attempt: VmAttempt): Promise<ReservationReads> {
  const [record, control, siteHosts] = await Promise.all([
    requireIncident(ctx, attempt.incidentId),
    requireControl(ctx, attempt.siteId),
    ctx.ports.hosts.listHosts(attempt.siteId),
  ]);
  return { record, control, siteHosts };
}

/**
 * The attempt's reservation and the host it is held on: one the attempt carries (a definition that still
 * has ReserveCapacity) is on its target; otherwise StartVm took it wherever it fit, and the host records
 * say where. The target when no host holds it.
 */
export async function heldReservation(
  ctx: AppContext,
  attempt: VmAttempt,
): Promise<{ reservationId: string; hostId: string }> {
  if (attempt.reservationId !== undefined) {
    return { reservationId: attempt.reservationId, hostId: attempt.targetHostId };
  }
  const reservationId = reservationIdOf(attempt);
  const hosts = await ctx.ports.hosts.listHosts(attempt.siteId);
  const holder = hosts.find((h) => h.hostId !== attempt.hostId && reservationId in h.reservations);
  return { reservationId, hostId: holder?.hostId ?? attempt.targetHostId };
}

/** Where an attempt's capacity is held, and whether this call took it (false: a repeat found it). */
export interface Reserved {
  readonly host: HostRecord;
  readonly reservationId: string;
  readonly taken: boolean;
}

/**
 * Holds the attempt's CPUs and memory with one conditional write (safety rule 5) on the planned target or,
 * if it no longer fits, on the next best host (core rankHosts, tried hosts left out); none fits →
 * NoCapacityError. A repeat finds the reservation it made. No timeline line: the caller writes it.
 */
export async function reserveFor(
  ctx: AppContext,
  attempt: VmAttempt,
  reads: ReservationReads,
): Promise<Reserved> {
  const { record, control, siteHosts } = reads;
  const policy = clusterPolicy(ctx, control.clusters, record.cluster);
  const ref = { siteId: attempt.siteId, cluster: record.cluster, failedHostId: attempt.hostId };
  const hosts = survivorsAmong(siteHosts, ref);
  const reservationId = reservationIdOf(attempt);
  const holder = hosts.find((h) => reservationId in h.reservations);
  if (holder !== undefined) return { host: holder, reservationId, taken: false };

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
      const done = await ctx.ports.hosts.reserve(
        attempt.siteId,
        hostId,
        reservation,
        reservationLimits(host, policy),
        host,
      );
      return { host, reservationId, taken: done === 'reserved' };
    } catch (error) {
      if (error instanceof NoCapacityError) continue;
      throw error;
    }
  }
  throw new NoCapacityError(
    `no up host of cluster ${record.cluster} can take ${vm.vmId} (${vm.memoryMiB} MiB / ${vm.cpus} vCPU)`,
  );
}

/** The timeline line of a reservation this attempt took. */
export function capacityReservedEvent(
  ctx: AppContext,
  attempt: VmAttempt,
  reserved: Reserved,
): Promise<void> {
  const { vm } = attempt;
  const hostId = reserved.host.hostId;
  const moved = hostId === attempt.targetHostId ? '' : ` (planned ${attempt.targetHostId} no longer fits)`;
  return appendEvent(
    ctx,
    attempt.incidentId,
    'capacity-reserved',
    `reserved ${vm.memoryMiB} MiB / ${vm.cpus} vCPU on ${hostId} for ${vm.vmId}, attempt ${attempt.attempt}${moved}`,
    { vmId: vm.vmId, hostId, reservationId: reserved.reservationId, attempt: attempt.attempt },
  );
}

/**
 * ReserveCapacity (safety rule 5), the step of definitions before StartVm took the reservation itself:
 * kept so that executions started on such a definition finish after a deploy. Holds the capacity
 * (reserveFor) and hands the attempt on with its target and reservation.
 */
export async function reserveCapacity(ctx: AppContext, attempt: VmAttempt): Promise<VmAttempt> {
  const reserved = await reserveFor(ctx, attempt, await readForReservation(ctx, attempt));
  if (reserved.taken) await capacityReservedEvent(ctx, attempt, reserved);
  return { ...attempt, targetHostId: reserved.host.hostId, reservationId: reserved.reservationId };
}

/** The planned target first, then (computed only if needed) the ranked alternatives. */
async function* candidates(target: string, ranked: () => Promise<string[]>): AsyncGenerator<string> {
  yield target;
  yield* await ranked();
}
