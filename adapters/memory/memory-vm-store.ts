import { ConcurrentUpdateError, NotFoundError } from '../../app/errors';
import type { VmRecord, VmRecovery, VmStore } from '../../app/ports';
import type { ObservedVm } from '../../contracts/relay-protocol';
import type { Priority } from '../../core/model';
import { compareStrings, copy, type MemoryState, rowKey, rowsOfSite } from './memory-state';

/** Metadata of a VM no operator registered: not HA (safety first), middle priority. */
const DEFAULT_META = { ha: false, priority: 'medium', antiAffinity: null } as const;

/** In-memory VmStore with the DynamoDB store's semantics. */
export class MemoryVmStore implements VmStore {
  constructor(private readonly state: MemoryState) {}

  async getVm(siteId: string, vmId: string): Promise<VmRecord | null> {
    const vm = this.state.vms.get(rowKey(siteId, vmId));
    return vm === undefined ? null : copy(vm);
  }

  async listVms(siteId: string, filter?: { hostId?: string }): Promise<VmRecord[]> {
    const hostId = filter?.hostId;
    return rowsOfSite(this.state.vms, siteId).filter((vm) => hostId === undefined || vm.hostId === hostId);
  }

  async saveObserved(
    siteId: string,
    hostId: string,
    vm: ObservedVm,
    at: number,
    options?: { readonly listed?: boolean; readonly overActiveOn?: string },
  ): Promise<boolean> {
    const key = rowKey(siteId, vm.id);
    const existing = this.state.vms.get(key);
    // An observation older than the stored one is dropped, not written over a newer one; an inactive one
    // from another host than the one the VM is active on is a definition elsewhere, not where it runs.
    if (existing !== undefined && existing.observedAt > at) return false;
    if (
      existing !== undefined &&
      !isActive(vm.state) &&
      existing.hostId !== hostId &&
      (options?.overActiveOn === undefined || existing.hostId !== options.overActiveOn) &&
      isActive(existing.state)
    ) {
      return false;
    }
    const listed = options?.listed ?? true;
    this.state.vms.set(key, {
      siteId,
      vmId: vm.id,
      ha: existing?.ha ?? DEFAULT_META.ha,
      priority: existing?.priority ?? DEFAULT_META.priority,
      antiAffinity: existing === undefined ? DEFAULT_META.antiAffinity : existing.antiAffinity,
      hostId,
      cpus: vm.cpus,
      memoryMiB: vm.memoryMiB,
      state: vm.state,
      reason: vm.reason ?? null,
      autostart: vm.autostart ?? null,
      definedOn: withMember(existing?.definedOn ?? [], hostId, listed),
      autostartOn: withMember(existing?.autostartOn ?? [], hostId, listed && vm.autostart === true),
      observedAt: at,
      // The recovery is VM-level HA's, written only by saveRecovery: an observation keeps it as it is.
      ...(existing?.recovery === undefined ? {} : { recovery: existing.recovery }),
    });
    return true;
  }

  async setListing(
    siteId: string,
    vmId: string,
    hostId: string,
    listing: { readonly listed: boolean; readonly autostart: boolean },
  ): Promise<void> {
    const key = rowKey(siteId, vmId);
    const vm = this.state.vms.get(key);
    if (vm === undefined) return;
    this.state.vms.set(key, {
      ...vm,
      definedOn: withMember(vm.definedOn, hostId, listing.listed),
      autostartOn: withMember(vm.autostartOn, hostId, listing.listed && listing.autostart),
    });
  }

  async setMetadata(
    siteId: string,
    vmId: string,
    meta: { ha: boolean; priority: Priority; antiAffinity: string | null },
  ): Promise<VmRecord> {
    const key = rowKey(siteId, vmId);
    // A VM never observed gets a placeholder (nowhere, size 0, down) that its first observation overwrites.
    const base: VmRecord = this.state.vms.get(key) ?? {
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
      observedAt: 0,
      ...DEFAULT_META,
    };
    const next: VmRecord = { ...base, ha: meta.ha, priority: meta.priority, antiAffinity: meta.antiAffinity };
    this.state.vms.set(key, next);
    return copy(next);
  }

  async markDown(siteId: string, vmId: string, hostId: string, at: number): Promise<void> {
    const key = rowKey(siteId, vmId);
    const vm = this.state.vms.get(key);
    // Only if still recorded on the fenced host; hostId stays, as where it last ran.
    if (vm === undefined || vm.hostId !== hostId) return;
    this.state.vms.set(key, { ...vm, state: 'down', reason: null, observedAt: at });
  }

  async saveRecovery(
    siteId: string,
    vmId: string,
    expectedVersion: number | null,
    recovery: Omit<VmRecovery, 'version'>,
  ): Promise<VmRecord> {
    const key = rowKey(siteId, vmId);
    const vm = this.state.vms.get(key);
    if (vm === undefined) throw new NotFoundError(`vm ${siteId}/${vmId} not found`);
    const found = vm.recovery?.version ?? null;
    if (found !== expectedVersion) {
      throw new ConcurrentUpdateError(
        `recovery of vm ${siteId}/${vmId} changed: expected version ${String(expectedVersion)}, found ${String(found)}`,
      );
    }
    const next: VmRecord = { ...vm, recovery: { ...copy(recovery), version: (found ?? 0) + 1 } };
    this.state.vms.set(key, next);
    return copy(next);
  }
}

/** Running or paused: the VM holds its host. */
function isActive(state: VmRecord['state']): boolean {
  return state === 'running' || state === 'paused';
}

/** `hosts` with `hostId` in or out, in id order: a string set, as DynamoDB's ADD and DELETE keep it. */
function withMember(hosts: readonly string[], hostId: string, member: boolean): string[] {
  const set = new Set(hosts);
  if (member) set.add(hostId);
  else set.delete(hostId);
  return [...set].sort(compareStrings);
}
