import type { VmAttempt } from '../../contracts/workflow';
import type { HostCommand } from '../../core/lifecycle';
import type { Vm } from '../../core/model';
import type { HostLoad } from '../../core/placement';
import type { HaPolicy } from '../../core/policy';
import type { AppContext } from '../context';
import { IncidentSupersededError, NotFoundError } from '../errors';
import type { HostRecord, SiteControl, VmRecord } from '../ports';
import { placementLoads } from '../shared/capacity';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { toAppError } from '../shared/errors';
import { type HostTransition, incidentOf, transitionHostSummaryAfter } from '../shared/host-lifecycle';
import { clusterPolicy } from '../shared/policy';
import { requireControl } from '../shared/site';

/** Which incident a step works for: enough to find its host. */
export interface IncidentRef {
  readonly incidentId: string;
  readonly siteId: string;
  readonly hostId: string;
}

/** The site's control items and the policy of the incident's cluster, read fresh for each step. */
export async function loadScope(
  ctx: AppContext,
  siteId: string,
  cluster: string,
): Promise<{ control: SiteControl; policy: HaPolicy }> {
  const control = await requireControl(ctx, siteId);
  return { control, policy: clusterPolicy(ctx, control.clusters, cluster) };
}

/** The incident's host; NotFoundError if it vanished. */
export async function requireHost(ctx: AppContext, siteId: string, hostId: string): Promise<HostRecord> {
  const host = await ctx.ports.hosts.getHost(siteId, hostId);
  if (host === null) throw new NotFoundError(`host ${siteId}/${hostId} not found`);
  return host;
}

/** Throws IncidentSupersededError unless the host's lifecycle is still in this incident. */
export function requireOwnedBy(host: HostRecord, incidentId: string): void {
  const owner = incidentOf(host.lifecycle);
  if (owner !== incidentId) {
    throw new IncidentSupersededError(
      `host ${host.hostId} is ${host.lifecycle.status}${owner === null ? '' : ` in incident ${owner}`}: ` +
        `incident ${incidentId} no longer owns it`,
    );
  }
}

/**
 * Throws IncidentSupersededError when the host is in another incident now. A host in none (up, in
 * maintenance) is left to the step to judge: it came back, or maintenance suppresses the fence.
 */
export function rejectIfSuperseded(host: HostRecord, incidentId: string): void {
  const owner = incidentOf(host.lifecycle);
  if (owner !== null && owner !== incidentId) {
    throw new IncidentSupersededError(`host ${host.hostId} is in incident ${owner} now, not ${incidentId}`);
  }
}

/**
 * Applies a lifecycle command to the incident's host, which must still be in this incident (`seen`: the
 * record as the step just read it, see transitionHost). The site's summary of the host is written once the
 * lifecycle is: `summarized`, which the step awaits beside its own next writes. Lifecycle errors surface
 * as the named errors Step Functions matches (IncidentSupersededError, ConflictError).
 */
export async function transitionIncidentHost(
  ctx: AppContext,
  ref: IncidentRef,
  command: (host: HostRecord) => HostCommand,
  seen?: HostRecord,
): Promise<HostTransition & { readonly summarized: Promise<void> }> {
  try {
    return await transitionHostSummaryAfter(
      ctx,
      ref.siteId,
      ref.hostId,
      (host) => {
        requireOwnedBy(host, ref.incidentId);
        return { command: command(host) };
      },
      seen,
    );
  } catch (error) {
    throw toAppError(error);
  }
}

/** The VM of an attempt as placement sees it, with its anti-affinity group from the VM record. */
export async function attemptVm(ctx: AppContext, attempt: VmAttempt): Promise<Vm> {
  const record = await ctx.ports.vms.getVm(attempt.siteId, attempt.vm.vmId);
  return {
    id: attempt.vm.vmId,
    cpus: attempt.vm.cpus,
    memoryMiB: attempt.vm.memoryMiB,
    ha: true,
    priority: attempt.vm.priority,
    antiAffinity: record?.antiAffinity ?? undefined,
  };
}

/** Records these VMs of the incident's (fenced) host as down, side by side; each only if still there. */
export async function markDownAll(
  ctx: AppContext,
  ref: IncidentRef,
  vms: readonly VmRecord[],
  at: number,
): Promise<void> {
  await forEachConcurrently(vms, STEP_WRITE_CONCURRENCY, (vm) =>
    ctx.ports.vms.markDown(ref.siteId, vm.vmId, ref.hostId, at),
  );
}

/** Which cluster's survivors: the incident's site and cluster, without its failed host. */
export interface SurvivorsRef {
  readonly siteId: string;
  readonly cluster: string;
  readonly failedHostId: string;
}

/**
 * Of hosts read, those of the ref's cluster that may take the failed host's VMs: all but the failed host,
 * and the failed host too once it is up again, which it is only in a new boot that runs none of them (the
 * same boot coming back ends the incident as a false alarm; one that was fenced stays fenced).
 */
export function survivorsAmong(hosts: readonly HostRecord[], ref: SurvivorsRef): HostRecord[] {
  return hosts.filter(
    (h) => h.cluster === ref.cluster && (h.hostId !== ref.failedHostId || h.lifecycle.status === 'up'),
  );
}

/** The cluster's hosts, the failed host left out unless it is up in a new boot. */
export async function survivors(ctx: AppContext, ref: SurvivorsRef): Promise<HostRecord[]> {
  return survivorsAmong(await ctx.ports.hosts.listHosts(ref.siteId, ref.cluster), ref);
}

/** The cluster's hosts and their placement loads, the failed host left out unless up in a new boot. */
export async function survivorLoads(
  ctx: AppContext,
  ref: SurvivorsRef,
): Promise<{ hosts: HostRecord[]; loads: HostLoad[] }> {
  const [hosts, vms] = await Promise.all([survivors(ctx, ref), ctx.ports.vms.listVms(ref.siteId)]);
  return { hosts, loads: placementLoads(hosts, vms) };
}
