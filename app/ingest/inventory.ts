import {
  type HostObservation,
  INVENTORY_REORDER_WINDOW_MS,
  type ObservedVm,
} from '../../contracts/relay-protocol';
import { initialHostState } from '../../core/lifecycle';
import { classifyVmState } from '../../core/vm-recovery';
import type { AppContext } from '../context';
import type { HostRecord, HostSummary, SiteControl, VmRecord } from '../ports';
import { listForRestart } from '../recovery/enqueue';
import { fencedIn, isRunning, runsUnfenced } from '../shared/capacity';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { appendEvent } from '../shared/events';
import { summaryOf } from '../shared/host-lifecycle';
import { hostIncidentOpen } from '../shared/incidents';
import { METRIC } from '../shared/metrics';
import { compareIds } from '../shared/order';
import { retryOnConflict } from '../shared/retry';
import { endRunningTwice, recordRunningTwice } from '../shared/split-brain';
import { inventoryDigest, occupies, usageOf } from './digest';

/** What one report's inventory changed. */
export interface InventoryOutcome {
  /** Hosts whose boot differs from the one their up lifecycle records: an unnoticed reboot to record. */
  readonly rebooted: readonly HostObservation[];
  /** What VM-level HA must look at (app/recovery). */
  readonly recovery: InventoryRecovery;
}

/** What a report's inventory tells VM-level HA. */
export interface InventoryRecovery {
  /** HA VMs this report put on the retry list: stopped unexpectedly, or ran in a boot that ended. */
  readonly listed: readonly string[];
  /** VMs on the retry list this report shows running (somewhere, on purpose or by its start). */
  readonly running: readonly string[];
  /** Room may have come back: a VM stopped or left, a host is new, rebooted or back. */
  readonly capacityFreed: boolean;
}

const NOTHING: InventoryRecovery = { listed: [], running: [], capacityFreed: false };

/**
 * Writes the inventory of hosts whose digest changed, and nothing for the others (data flow 4): the host
 * item, its cluster if new, the VMs that changed, the reservations that the host now fulfils, and the
 * host's summary last, so that a crash midway leaves the digest stale and the next report redoes it.
 */
export async function recordInventory(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly heard: readonly HostObservation[];
    /**
     * The digest each host's inventory is reported with (v2 relays: the digest its agent announces),
     * recorded with it; a host left out gets the digest ingest computes (v1 relays).
     */
    readonly digests?: ReadonlyMap<string, string>;
    readonly now: number;
  },
): Promise<InventoryOutcome> {
  const { control, heard, now } = args;
  const changed = heard
    .map((obs) => ({ obs, digest: args.digests?.get(obs.hostId) ?? inventoryDigest(ctx.hasher, obs) }))
    .filter(({ obs, digest }) => {
      const summary = control.hosts[obs.hostId];
      return summary?.digest !== digest && !olderThanRecorded(summary, obs);
    });
  if (changed.length === 0) return { rebooted: [], recovery: NOTHING };

  const siteId = control.site.siteId;
  const { sites, vms } = ctx.ports;
  const known = new Map((await vms.listVms(siteId)).map((vm) => [vm.vmId, vm]));
  const clusters = new Set(control.clusters.map((c) => c.clusterId));
  const inReport = new Map(heard.map((obs) => [obs.hostId, obs]));
  const rebooted: HostObservation[] = [];
  const listed: string[] = [];
  const running: string[] = [];
  let capacityFreed = false;
  for (const { obs, digest } of changed) {
    const host = await saveHost(ctx, siteId, obs, digest, now);
    if (!clusters.has(obs.cluster)) {
      await sites.ensureCluster(siteId, obs.cluster);
      clusters.add(obs.cluster);
    }
    // Before the VMs' records change: what they say now is what ran until this report (see downVms).
    await forEachConcurrently(
      [
        ...downVms({ control, obs, host, known }),
        ...(await startedInEndedBoot(ctx, { control, obs, host, known })),
      ],
      STEP_WRITE_CONCURRENCY,
      async (entry) => {
        if (await listForRestart(ctx, { ...entry, place: placeOf(obs) }, now)) listed.push(entry.vm.vmId);
      },
    );
    const summary = control.hosts[obs.hostId];
    capacityFreed ||=
      summary === undefined ||
      summary.status !== 'up' ||
      host.lifecycle.bootId !== obs.bootId ||
      [...known.values()].some(
        (vm) =>
          vm.hostId === obs.hostId &&
          isRunning(vm) &&
          !obs.vms.some((seen) => seen.id === vm.vmId && occupies(seen)),
      );
    running.push(
      ...obs.vms.filter((vm) => occupies(vm) && control.recovering.includes(vm.id)).map((vm) => vm.id),
    );
    await saveVms(ctx, { control, obs, known, inReport, now, startedHere: reservedVms(host) });
    await sites.putHostSummary(siteId, obs.hostId, summaryOf(host));
    if (host.lifecycle.status === 'up' && host.lifecycle.bootId !== obs.bootId) rebooted.push(obs);
  }
  return { rebooted, recovery: { listed, running, capacityFreed } };
}

/**
 * An inventory of the boot recorded, taken by the agent before the one recorded: a relay that missed the
 * newer push, or got two pushes out of order, still holds it. Taking it would move the host's VMs and
 * usage back in time (capacity that looks free while the newer VMs run there), and the two relays' reports
 * would flip the records back and forth. Within INVENTORY_REORDER_WINDOW_MS only: an agent whose clock was
 * stepped back further is believed again.
 */
function olderThanRecorded(summary: HostSummary | undefined, obs: HostObservation): boolean {
  if (summary?.takenAt === undefined || obs.takenAt === undefined || summary.bootId !== obs.bootId) {
    return false;
  }
  return obs.takenAt < summary.takenAt && summary.takenAt - obs.takenAt < INVENTORY_REORDER_WINDOW_MS;
}

/** The VMs whose start to the host holds capacity there: started there, not yet seen running there. */
function reservedVms(host: HostRecord): ReadonlySet<string> {
  return new Set(Object.values(host.reservations).map((held) => held.vmId));
}

/**
 * The fenced host a VM's record has it active on, when `hostId` now reports it stopped after a start went
 * there (its capacity is still held there): the record names the host a failover took it from, which is
 * confirmed off, and the VM started here and stopped before any report showed it running. This host's
 * word is the VM's whole truth then, and the record takes it (its incident, if still open, sees the crash
 * at its close; VM-level HA afterwards). Null otherwise.
 */
function activeOnFencedHost(
  control: SiteControl,
  record: VmRecord,
  hostId: string,
  vm: ObservedVm,
  startedHere: ReadonlySet<string>,
): string | null {
  const active = record.hostId;
  if (active === null || active === hostId || occupies(vm) || !isRunning(record)) return null;
  if (!startedHere.has(vm.id)) return null;
  return control.hosts[active]?.status === 'fenced' ? active : null;
}

/** Where a host's observation says a VM incident is: that host, its cluster and boot. */
function placeOf(obs: HostObservation): { hostId: string; cluster: string; bootId: string } {
  return { hostId: obs.hostId, cluster: obs.cluster, bootId: obs.bootId };
}

/**
 * The HA VMs this observation shows down that must run again, decided on their records as they were before
 * it (VM-level HA): on a host that is up,
 * - every HA VM recorded running there when the host runs a new boot its lifecycle did not see coming (a
 *   reboot before anyone called it silent): the boot they ran in has ended, whatever libvirt now says of
 *   them (a host shutting down may have shut its guests down cleanly);
 * - an HA VM recorded running there that the host now reports stopped unexpectedly (core classifyVmState:
 *   crashed, or shut off for a reason that is a failure or unknown), or recorded down on another host
 *   (no incident open there) that this host reports so: started here, it died before a report showed it. One shut down by its guest or by an
 *   operator (`shutdown`, `destroyed`…) stays down. A VM the host no longer lists at all is not taken for
 *   a crash: an undefined or migrated domain vanishes the same way.
 * Hosts in an incident, suspected or fenced, are their incident's business; maintenance hosts are the
 * operator's.
 */
function downVms(args: {
  readonly control: SiteControl;
  readonly obs: HostObservation;
  readonly host: HostRecord;
  readonly known: ReadonlyMap<string, VmRecord>;
}): { vm: VmRecord; cause: 'vm-crashed' | 'host-rebooted'; detail: string; data: Record<string, unknown> }[] {
  const { control, obs, host, known } = args;
  const state = host.lifecycle;
  if (state.status === 'maintenance') return [];
  // A host back up in a new boot while its incident still runs (HostRebooted → placement of the
  // incident's fixed HA set): those VMs are the incident's to place, and a restart here as well would
  // start a second copy. Close hands what it leaves down to the retry list.
  if (hostIncidentOpen(control, obs.hostId)) return [];
  const ranHere = [...known.values()].filter((vm) => vm.ha && vm.hostId === obs.hostId && isRunning(vm));
  // A host whose incident ended without a fence (fencing suppressed: disabled, mass silence) and that is
  // heard in a new boot: the old boot's VMs are gone as surely as after a reboot nobody saw coming.
  if (state.status !== 'up' && state.bootId === obs.bootId) return [];
  if (state.bootId !== obs.bootId) {
    return ranHere.map((vm) => ({
      vm,
      cause: 'host-rebooted' as const,
      detail:
        `${obs.hostId} is heard in a new boot (${obs.bootId}) before it was called silent: ` +
        `${vm.vmId}, which ran in boot ${state.bootId}, is gone with it`,
      data: { previousBootId: state.bootId, bootId: obs.bootId },
    }));
  }
  // An HA VM recorded down (its failed host's incident closed, marking it so) that this host now reports
  // crashed: it was started here and died before any report showed it running (a restart that crashes
  // within a report interval). Down, and nobody else's business: restarted like any crash.
  const diedUnseen = [...known.values()].filter(
    (vm) =>
      vm.ha &&
      !isRunning(vm) &&
      vm.hostId !== obs.hostId &&
      (vm.hostId === null || !hostIncidentOpen(control, vm.hostId)) &&
      !control.recovering.includes(vm.vmId),
  );
  return [...ranHere, ...diedUnseen].flatMap((vm) => {
    const seen = obs.vms.find((candidate) => candidate.id === vm.vmId);
    if (seen === undefined || classifyVmState(seen.state, seen.reason ?? null) !== 'unexpected') return [];
    const why = `${seen.state}${seen.reason === undefined ? ', no reason given' : ` (${seen.reason})`}`;
    return [
      {
        vm,
        cause: 'vm-crashed' as const,
        detail: `${vm.vmId} stopped unexpectedly on ${obs.hostId}: ${why}`,
        data: { state: seen.state, reason: seen.reason ?? null },
      },
    ];
  });
}

/**
 * HA VMs a failover started on this host, in the boot that has just ended without anyone calling the host
 * silent (a reboot within the silence threshold), that no report showed running there: they died with that
 * boot, unseen. Their record still names the host they were started from (confirmed off), so downVms does
 * not find them; their capacity is still held here, and the start's result said they run. Only a start
 * that succeeded: its failover is done with the VM, and VM-level HA becomes its one owner (a start still
 * out is its failover's to judge, and the relay fails it once the host is heard in another boot).
 */
async function startedInEndedBoot(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly obs: HostObservation;
    readonly host: HostRecord;
    readonly known: ReadonlyMap<string, VmRecord>;
  },
): Promise<ReturnType<typeof downVms>> {
  const { control, obs, host, known } = args;
  const state = host.lifecycle;
  if (state.status !== 'up' || state.bootId === obs.bootId || hostIncidentOpen(control, obs.hostId))
    return [];
  const held = Object.entries(host.reservations);
  if (held.length === 0) return [];
  const out: ReturnType<typeof downVms> = [];
  for (const [reservationId, { vmId }] of held) {
    const vm = known.get(vmId);
    if (vm === undefined || !vm.ha || control.recovering.includes(vmId)) continue;
    if (vm.hostId === obs.hostId) continue; // downVms' own case
    if (runsUnfenced(vm, fencedIn(control))) continue;
    const start = vm.recovery?.failoverStart;
    if (start === undefined || start === null || start.hostId !== obs.hostId) continue;
    if (!reservationId.startsWith(`${start.incidentId}.`)) continue;
    const command = (await ctx.ports.commands.listForIncident(control.site.siteId, start.incidentId)).find(
      (c) => c.command.commandId === start.commandId,
    );
    if (command?.status !== 'succeeded') continue;
    out.push({
      vm,
      cause: 'host-rebooted',
      detail:
        `${obs.hostId} is heard in a new boot (${obs.bootId}) before it was called silent: ${vmId}, ` +
        `started there by ${start.incidentId} in boot ${state.bootId} and never seen running, is gone with it`,
      data: { previousBootId: state.bootId, bootId: obs.bootId, startedBy: start.incidentId },
    });
  }
  return out;
}

async function saveHost(
  ctx: AppContext,
  siteId: string,
  obs: HostObservation,
  digest: string,
  now: number,
): Promise<HostRecord> {
  const { hosts } = ctx.ports;
  const inventory = {
    cluster: obs.cluster,
    cpus: obs.cpus,
    memoryMiB: obs.memoryMiB,
    bootId: obs.bootId,
    ...usageOf(obs.vms),
    digest,
    observedAt: now,
    ...(obs.takenAt === undefined ? {} : { takenAt: obs.takenAt }),
  };
  // A workflow step may move the lifecycle or a reservation meanwhile: the retry re-reads, writes over it.
  return retryOnConflict(async () => {
    const host = await hosts.getHost(siteId, obs.hostId);
    if (host === null) {
      return hosts.createHost({
        siteId,
        hostId: obs.hostId,
        lifecycle: initialHostState(obs.bootId),
        ...inventory,
      });
    }
    // Reservations of VMs this host now runs end in the same write that adds them to its usage: with two
    // writes, a reservation step in between would count such a VM twice and turn a tight fit away.
    const reservations = Object.fromEntries(
      Object.entries(host.reservations).filter(
        ([, held]) => !obs.vms.some((vm) => vm.id === held.vmId && occupies(vm)),
      ),
    );
    return hosts.saveInventory(siteId, obs.hostId, host.version, { ...inventory, reservations });
  });
}

/**
 * Whether `hostId`'s observation of a VM takes its record (host, state, size, reason, autostart). A VM
 * runs on at most one host but is defined on several (an HA VM's libvirt definition exists on every host
 * it may restart on): an active observation always takes it (a move, or a split brain that checkSplitBrain
 * reports); an inactive one only from the host the record names (the VM stopped there) or when the record
 * has no active host. A shut-off definition on another host never takes it from where the VM runs: that
 * host's failover would otherwise restart nothing. The store's write holds the same rule as its condition.
 */
function takesRecord(record: VmRecord, hostId: string, vm: ObservedVm): boolean {
  return occupies(vm) || record.hostId === hostId || !isRunning(record);
}

/** The record already says what `hostId` observed: nothing to write about the VM itself. */
function sameObservation(record: VmRecord, hostId: string, vm: ObservedVm): boolean {
  return (
    record.hostId === hostId &&
    record.state === vm.state &&
    record.cpus === vm.cpus &&
    record.memoryMiB === vm.memoryMiB &&
    record.reason === (vm.reason ?? null) &&
    record.autostart === (vm.autostart ?? null)
  );
}

/** The record already has `hostId` listing the VM as it does now (defined there, autostart or not). */
function sameListing(record: VmRecord, hostId: string, listed: boolean, autostart: boolean): boolean {
  return (
    record.definedOn.includes(hostId) === listed &&
    record.autostartOn.includes(hostId) === (listed && autostart)
  );
}

/** The record's host sets with `hostId` listing the VM (or not), as the store now has them. */
function withListing(
  record: VmRecord,
  hostId: string,
  listed: boolean,
  autostart: boolean,
): Pick<VmRecord, 'definedOn' | 'autostartOn'> {
  const toggle = (hosts: readonly string[], member: boolean): string[] =>
    [...hosts.filter((h) => h !== hostId), ...(member ? [hostId] : [])].sort(compareIds);
  return {
    definedOn: toggle(record.definedOn, listed),
    autostartOn: toggle(record.autostartOn, listed && autostart),
  };
}

/** A VM of a host's inventory that needs a write, and which. */
interface VmChange {
  readonly vm: ObservedVm;
  readonly record: VmRecord | undefined;
  readonly takes: boolean;
  /** The fenced host whose active record the observation takes over (activeOnFencedHost), or null. */
  readonly overActiveOn: string | null;
}

/**
 * Writes what changed about the VMs one host lists, and about the VMs it no longer lists. Only changes
 * are written (data flow 4): a VM whose record says what the host observed and already has the host in
 * its `definedOn` costs nothing, so a VM defined on three hosts writes nothing in steady state either.
 */
async function saveVms(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly obs: HostObservation;
    readonly known: Map<string, VmRecord>;
    readonly inReport: ReadonlyMap<string, HostObservation>;
    readonly now: number;
    /** VMs whose start to this host holds capacity here (see activeOnFencedHost). */
    readonly startedHere: ReadonlySet<string>;
  },
): Promise<void> {
  const { control, obs, known, inReport, now, startedHere } = args;
  const siteId = control.site.siteId;
  const hostId = obs.hostId;
  const { vms } = ctx.ports;
  const seen = new Set(obs.vms.map((vm) => vm.id));
  // Each VM is an item of its own, decided on what was known before this host's pass: the writes go out
  // side by side (a move between two hosts of one report still sees the hosts in order).
  // `takes`: the observation is written to the record; otherwise only that this host lists the VM.
  const changed = obs.vms.flatMap((vm): VmChange[] => {
    const record = known.get(vm.id);
    if (record === undefined) return [{ vm, record, takes: true, overActiveOn: null }];
    const overActiveOn = activeOnFencedHost(control, record, hostId, vm, startedHere);
    const takes =
      (takesRecord(record, hostId, vm) || overActiveOn !== null) && !sameObservation(record, hostId, vm);
    return takes || !sameListing(record, hostId, true, vm.autostart === true)
      ? [{ vm, record, takes, overActiveOn }]
      : [];
  });
  await forEachConcurrently(changed, STEP_WRITE_CONCURRENCY, async ({ vm, record, takes, overActiveOn }) => {
    const autostart = vm.autostart === true;
    if (takes) {
      if (record !== undefined && vm.state === 'running') {
        await checkSplitBrain(ctx, { control, record, hostId, inReport });
      }
      const base = record ?? defaultMeta(siteId, vm.id);
      const over = overActiveOn === null ? {} : { overActiveOn };
      if (await vms.saveObserved(siteId, hostId, vm, now, over)) {
        known.set(vm.id, {
          ...base,
          ...observed(hostId, vm, now),
          ...withListing(base, hostId, true, autostart),
        });
        return;
      }
      // Refused: a newer observation is held, or another report has the VM active elsewhere meanwhile.
      // The host lists the VM all the same.
    }
    await vms.setListing(siteId, vm.id, hostId, { listed: true, autostart });
    if (record !== undefined)
      known.set(vm.id, { ...record, ...withListing(record, hostId, true, autostart) });
  });
  // A VM the host no longer lists is not running there any more (shut down, undefined or moved away), and
  // no longer defined there.
  const gone = [...known.values()].filter(
    (record) =>
      !seen.has(record.vmId) &&
      ((record.hostId === hostId && isRunning(record)) || !sameListing(record, hostId, false, false)),
  );
  await forEachConcurrently(gone, STEP_WRITE_CONCURRENCY, async (record) => {
    const unlisted = withListing(record, hostId, false, false);
    if (record.hostId === hostId && isRunning(record)) {
      const off: ObservedVm = {
        id: record.vmId,
        cpus: record.cpus,
        memoryMiB: record.memoryMiB,
        state: 'shut-off',
      };
      if (await vms.saveObserved(siteId, hostId, off, now, { listed: false })) {
        known.set(record.vmId, { ...record, ...observed(hostId, off, now), ...unlisted });
        return;
      }
    }
    await vms.setListing(siteId, record.vmId, hostId, { listed: false, autostart: false });
    known.set(record.vmId, { ...record, ...unlisted });
  });
  // A VM that ran twice, one copy of it here, runs twice no more once this host stops running it.
  await endRunningTwice(ctx, control, hostId, (vmId) => obs.vms.some((vm) => vm.id === vmId && occupies(vm)));
}

function observed(hostId: string, vm: ObservedVm, at: number): Partial<VmRecord> {
  return {
    hostId,
    cpus: vm.cpus,
    memoryMiB: vm.memoryMiB,
    state: vm.state,
    reason: vm.reason ?? null,
    autostart: vm.autostart ?? null,
    observedAt: at,
  };
}

function defaultMeta(siteId: string, vmId: string): VmRecord {
  return {
    siteId,
    vmId,
    hostId: null,
    cpus: 0,
    memoryMiB: 0,
    state: 'down',
    reason: null,
    autostart: null,
    definedOn: [],
    autostartOn: [],
    ha: false,
    priority: 'medium',
    antiAffinity: null,
    observedAt: 0,
  };
}

/**
 * Safety rule 6: a VM reported running here while its record says it runs on another host that is not
 * confirmed off. When that other host is in this very report and no longer lists the VM, it moved (live
 * migration); otherwise two hosts may be writing its disks, and the alarm goes at once.
 */
async function checkSplitBrain(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly record: VmRecord;
    readonly hostId: string;
    readonly inReport: ReadonlyMap<string, HostObservation>;
  },
): Promise<void> {
  const { control, record, hostId, inReport } = args;
  const other = record.hostId;
  if (other === null || other === hostId || record.state !== 'running') return;
  const otherSummary = control.hosts[other];
  if (otherSummary?.status === 'fenced') return;
  const otherNow = inReport.get(other);
  if (otherNow !== undefined && !otherNow.vms.some((vm) => vm.id === record.vmId && occupies(vm))) return;
  ctx.ports.metrics.count(METRIC.SplitBrainDetected);
  // Kept on the site until one of the two stops running it, for the detector's lasting gauge.
  await recordRunningTwice(ctx, control.site.siteId, record.vmId, [other, hostId]);
  const incidentId = otherSummary?.incidentId ?? control.hosts[hostId]?.incidentId ?? null;
  if (incidentId !== null) {
    await appendEvent(
      ctx,
      incidentId,
      'split-brain',
      `VM ${record.vmId} reported running on ${hostId} while recorded running on ${other}, which is not confirmed off`,
      { vmId: record.vmId, hostId, recordedHostId: other, recordedHostStatus: otherSummary?.status ?? null },
    );
  }
}
