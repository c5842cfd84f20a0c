import type { HostObservation, ObservedVm } from '../../contracts/relay-protocol';
import type { Hasher } from '../crypto';
import { compareIds } from '../shared/order';

/**
 * Digest of what a host reported that the control plane stores: boot, cluster, capacity and VMs (sorted,
 * so the agent's listing order does not matter), with each VM's libvirt reason and autostart when the
 * agent sends them. Equal digests mean nothing to write (data flow 4).
 */
export function inventoryDigest(hasher: Hasher, host: HostObservation): string {
  // Objects are built field by field so that the JSON text has one fixed key order. A reason or autostart
  // left out adds no key, so an agent that predates them keeps the digest its hosts are stored under.
  const vms = [...host.vms]
    .sort((a, b) => compareIds(a.id, b.id))
    .map((vm) => ({
      id: vm.id,
      cpus: vm.cpus,
      memoryMiB: vm.memoryMiB,
      state: vm.state,
      ...(vm.reason === undefined ? {} : { reason: vm.reason }),
      ...(vm.autostart === undefined ? {} : { autostart: vm.autostart }),
    }));
  const canonical = {
    bootId: host.bootId,
    cluster: host.cluster,
    cpus: host.cpus,
    memoryMiB: host.memoryMiB,
    vms,
  };
  return hasher.hash(JSON.stringify(canonical));
}

/** A VM that occupies its host's CPUs and memory: running, or paused (its memory stays allocated). */
export function occupies(vm: ObservedVm): boolean {
  return vm.state === 'running' || vm.state === 'paused';
}

/** CPUs and memory the host's occupying VMs use. */
export function usageOf(vms: readonly ObservedVm[]): { usedCpus: number; usedMiB: number } {
  let usedCpus = 0;
  let usedMiB = 0;
  for (const vm of vms) {
    if (!occupies(vm)) continue;
    usedCpus += vm.cpus;
    usedMiB += vm.memoryMiB;
  }
  return { usedCpus, usedMiB };
}
