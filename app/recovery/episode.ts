import type { IncidentOutcome } from '../../contracts/workflow';
import type { HaPolicy } from '../../core/policy';
import type { AppContext } from '../context';
import { ConcurrentUpdateError } from '../errors';
import type { Clock, IncidentRecord, SiteControl, VmRecord, VmRecovery } from '../ports';
import { appendEvent, type IncidentEventKind } from '../shared/events';
import { closeIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';
import { clusterPolicy } from '../shared/policy';

/**
 * The pieces of VM-level HA every path shares: a VM incident's id and opening, the retry list marker, the
 * recovery write. A VM incident is one episode of one VM being down: it opens when the VM stops
 * unexpectedly (or when a retry sends a start), and closes `recovered` once the VM is seen running again,
 * or `partially-recovered` when recovery stops for now (budget spent, no room) with the VM still listed.
 */

/** The last instant each clock handed VM-level HA, so that no two of its readings are the same. */
const lastReading = new WeakMap<Clock, number>();
/** Clocks that are such ordered views already. */
const ordered = new WeakSet<Clock>();

/**
 * The context with a clock that never gives VM-level HA the same millisecond twice in this process: one
 * pass writes several lines of a timeline in a row (stopped, start ordered, closed…), which the store
 * orders by time, and only by kind within one millisecond. A reading is at most a few ms ahead of the
 * real clock.
 */
export function orderedClock(ctx: AppContext): AppContext {
  const base = ctx.ports.clock;
  if (ordered.has(base)) return ctx;
  const clock: Clock = {
    now: () => {
      const at = Math.max(base.now(), (lastReading.get(base) ?? Number.NEGATIVE_INFINITY) + 1);
      lastReading.set(base, at);
      return at;
    },
  };
  ordered.add(clock);
  return { ...ctx, ports: { ...ctx.ports, clock } };
}

/** The id of a VM's n-th incident. Four parts where a host's has three: the two never collide. */
export function vmIncidentIdFor(siteId: string, vmId: string, seq: number): string {
  return `${siteId}:vm:${vmId}:${seq}`;
}

/** On the retry list: down, and to run again. */
export function onRetryList(recovery: VmRecovery | undefined): boolean {
  return recovery?.status === 'waiting' || recovery?.status === 'starting';
}

/** The recovery fields of a VM on the retry list, as it goes on it. */
export type RecoveryDraft = Omit<VmRecovery, 'version'>;

/** The recovery without its version: what saveRecovery takes. */
export function draftOf(recovery: VmRecovery): RecoveryDraft {
  const { version: _version, ...draft } = recovery;
  return draft;
}

/** A recovery off the list: only the restart history stays, for the budget. */
export function idle(r: VmRecovery): RecoveryDraft {
  return {
    ...draftOf(r),
    status: 'idle',
    incidentId: null,
    attempt: 0,
    triedHosts: [],
    orders: 0,
    start: null,
    pinned: null,
    notBefore: null,
    note: null,
    downIncidentId: null,
  };
}

/**
 * Writes a recovery conditional on the version read (null: none yet). A lost race is returned as null: the
 * other writer moved the recovery on, and the caller leaves the VM to it.
 */
export async function saveRecovery(
  ctx: AppContext,
  vm: VmRecord,
  next: RecoveryDraft,
): Promise<VmRecord | null> {
  try {
    return await ctx.ports.vms.saveRecovery(vm.siteId, vm.vmId, vm.recovery?.version ?? null, next);
  } catch (error) {
    if (error instanceof ConcurrentUpdateError) return null;
    throw error;
  }
}

/** The policy of the cluster a host is in (the deployment's default for a host not known). */
export function hostPolicy(ctx: AppContext, control: SiteControl, hostId: string | null): HaPolicy {
  const cluster = hostId === null ? undefined : control.hosts[hostId]?.cluster;
  return clusterPolicy(ctx, control.clusters, cluster ?? '');
}

/** The policy of the cluster the VM's host is in. */
export function vmPolicy(ctx: AppContext, control: SiteControl, vm: VmRecord): HaPolicy {
  return hostPolicy(ctx, control, vm.hostId);
}

/** Where a VM incident is about: the host the VM stopped on, its cluster and boot. */
export interface VmIncidentPlace {
  readonly hostId: string;
  readonly cluster: string;
  readonly bootId: string;
}

/**
 * Creates the VM incident if it is not there yet and lists it as open on the site (both repeat-safe), so
 * that a pass that died after naming the incident in the recovery finds it made whole again. Returns the
 * incident, or null when that id is closed already (the caller opens the next one).
 */
export async function ensureVmIncident(
  ctx: AppContext,
  vm: VmRecord,
  incidentId: string,
  place: VmIncidentPlace,
  at: number,
): Promise<{ incident: IncidentRecord; created: boolean } | null> {
  const { created, incident } = await ctx.ports.incidents.create({
    incidentId,
    siteId: vm.siteId,
    kind: 'vm',
    vmId: vm.vmId,
    hostId: place.hostId,
    cluster: place.cluster,
    bootId: place.bootId,
    openedAt: at,
    outcome: 'in-progress',
    input: null,
    executionArn: null,
    fencedAt: null,
    closedAt: null,
    operatorTaskToken: null,
  });
  if (incident.closedAt !== null) return null;
  await ctx.ports.sites.setIncidentOpen(vm.siteId, incidentId, true);
  if (created) ctx.ports.metrics.count(METRIC.IncidentOpened);
  return { incident, created };
}

/** Appends a line about the VM to its incident's timeline (keyed by the VM, or the command when given). */
export function vmEvent(
  ctx: AppContext,
  incidentId: string,
  vmId: string,
  kind: IncidentEventKind,
  detail: string,
  data: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  return appendEvent(ctx, incidentId, kind, detail, { vmId, ...data });
}

/**
 * Closes the episode's incident, if one is open, before the recovery that names it is rewritten: a pass
 * that dies in between leaves a recovery naming a closed incident, which the next start replaces with a
 * new one, never an open incident that nothing will close.
 */
export async function closeEpisode(
  ctx: AppContext,
  vm: VmRecord,
  incidentId: string | null,
  outcome: Extract<IncidentOutcome, 'recovered' | 'partially-recovered'>,
  detail: string,
  data: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  if (incidentId === null) return;
  await closeIncident(ctx, { incidentId, siteId: vm.siteId }, outcome, detail, { vmId: vm.vmId, ...data });
}

/**
 * Takes the VM off the site's retry list, when the list (as read) has it. The marker and the recovery are
 * two items, so a VM listed again meanwhile (it crashed once more, and ingest listed it between this pass's
 * read and now) must not lose its marker to this call: a lister sets the marker before and after it writes
 * the recovery (listForRestart), and this call reads the recovery again after clearing the marker and sets
 * it back when the VM is on the list. Whatever the interleaving, a listed VM ends up marked; without that,
 * neither the detector's tick nor a report's pass would ever look at it again.
 */
export async function unlist(ctx: AppContext, control: SiteControl, vmId: string): Promise<void> {
  if (!control.recovering.includes(vmId)) return;
  const siteId = control.site.siteId;
  await ctx.ports.sites.setRecovering(siteId, vmId, false);
  const vm = await ctx.ports.vms.getVm(siteId, vmId);
  if (onRetryList(vm?.recovery)) await ctx.ports.sites.setRecovering(siteId, vmId, true);
}

/** "in 12 s", "at 2025-…": when something waits until `at`. */
export function until(at: number, now: number): string {
  const ms = Math.max(0, at - now);
  return ms < 120_000 ? `in ${Math.ceil(ms / 1000)} s` : `at ${new Date(at).toISOString()}`;
}
