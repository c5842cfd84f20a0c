import type { HostObservation, ObservedVm } from '../../contracts/relay-protocol';
import { initialHostState } from '../../core/lifecycle';
import type { AppContext } from '../context';
import type { HostRecord, SiteControl, VmRecord } from '../ports';
import { isRunning } from '../shared/capacity';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { appendEvent } from '../shared/events';
import { summaryOf } from '../shared/host-lifecycle';
import { METRIC } from '../shared/metrics';
import { retryOnConflict } from '../shared/retry';
import { inventoryDigest, occupies, usageOf } from './digest';

/** What one report's inventory changed. */
export interface InventoryOutcome {
  /** Hosts whose boot differs from the one their up lifecycle records: an unnoticed reboot to record. */
  readonly rebooted: readonly HostObservation[];
}

/**
 * Writes the inventory of hosts whose digest changed, and nothing for the others (data flow 4): the host
 * item, its cluster if new, the VMs that changed, the reservations that the host now fulfils, and the
 * host's summary last, so that a crash midway leaves the digest stale and the next report redoes it.
 */
export async function recordInventory(
  ctx: AppContext,
  args: { readonly control: SiteControl; readonly heard: readonly HostObservation[]; readonly now: number },
): Promise<InventoryOutcome> {
  const { control, heard, now } = args;
  const changed = heard
    .map((obs) => ({ obs, digest: inventoryDigest(ctx.hasher, obs) }))
    .filter(({ obs, digest }) => control.hosts[obs.hostId]?.digest !== digest);
  if (changed.length === 0) return { rebooted: [] };

  const siteId = control.site.siteId;
  const { sites, vms } = ctx.ports;
  const known = new Map((await vms.listVms(siteId)).map((vm) => [vm.vmId, vm]));
  const clusters = new Set(control.clusters.map((c) => c.clusterId));
  const inReport = new Map(heard.map((obs) => [obs.hostId, obs]));
  const rebooted: HostObservation[] = [];
  for (const { obs, digest } of changed) {
    const host = await saveHost(ctx, siteId, obs, digest, now);
    if (!clusters.has(obs.cluster)) {
      await sites.ensureCluster(siteId, obs.cluster);
      clusters.add(obs.cluster);
    }
    await saveVms(ctx, { control, obs, known, inReport, now });
    await sites.putHostSummary(siteId, obs.hostId, summaryOf(host));
    if (host.lifecycle.status === 'up' && host.lifecycle.bootId !== obs.bootId) rebooted.push(obs);
  }
  return { rebooted };
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

function sameVm(record: VmRecord, hostId: string, vm: ObservedVm): boolean {
  return (
    record.hostId === hostId &&
    record.state === vm.state &&
    record.cpus === vm.cpus &&
    record.memoryMiB === vm.memoryMiB
  );
}

async function saveVms(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly obs: HostObservation;
    readonly known: Map<string, VmRecord>;
    readonly inReport: ReadonlyMap<string, HostObservation>;
    readonly now: number;
  },
): Promise<void> {
  const { control, obs, known, inReport, now } = args;
  const siteId = control.site.siteId;
  const { vms } = ctx.ports;
  const seen = new Set(obs.vms.map((vm) => vm.id));
  // Each VM is an item of its own, decided on what was known before this host's pass: the writes go out
  // side by side (a move between two hosts of one report still sees the hosts in order).
  const changed = obs.vms.filter((vm) => {
    const record = known.get(vm.id);
    return record === undefined || !sameVm(record, obs.hostId, vm);
  });
  await forEachConcurrently(changed, STEP_WRITE_CONCURRENCY, async (vm) => {
    const record = known.get(vm.id);
    if (record !== undefined && vm.state === 'running') {
      await checkSplitBrain(ctx, { control, record, hostId: obs.hostId, inReport });
    }
    await vms.saveObserved(siteId, obs.hostId, vm, now);
    known.set(vm.id, { ...(record ?? defaultMeta(siteId, vm.id)), ...observed(obs.hostId, vm, now) });
  });
  // A VM the host no longer lists is not running there any more (shut down, undefined or moved away).
  const gone = [...known.values()].filter(
    (record) => record.hostId === obs.hostId && isRunning(record) && !seen.has(record.vmId),
  );
  await forEachConcurrently(gone, STEP_WRITE_CONCURRENCY, async (record) => {
    const off: ObservedVm = {
      id: record.vmId,
      cpus: record.cpus,
      memoryMiB: record.memoryMiB,
      state: 'shut-off',
    };
    await vms.saveObserved(siteId, obs.hostId, off, now);
    known.set(record.vmId, { ...record, ...observed(obs.hostId, off, now) });
  });
}

function observed(hostId: string, vm: ObservedVm, at: number): Partial<VmRecord> {
  return { hostId, cpus: vm.cpus, memoryMiB: vm.memoryMiB, state: vm.state, observedAt: at };
}

function defaultMeta(siteId: string, vmId: string): VmRecord {
  return {
    siteId,
    vmId,
    hostId: null,
    cpus: 0,
    memoryMiB: 0,
    state: 'down',
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
