import type { Fenceability } from './fenceability';

/** Restart priority of an HA VM; waves start in this order. */
export type Priority = 'high' | 'medium' | 'low';

/** Priorities in wave order, highest first. */
export const PRIORITIES: readonly Priority[] = ['high', 'medium', 'low'];

/** Rank of a priority: 0 for `high`, larger is later. */
export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}

/** A virtual machine as placement and capacity see it. */
export interface Vm {
  readonly id: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly ha: boolean;
  readonly priority: Priority;
  /** VMs sharing a group never run on the same host. */
  readonly antiAffinity?: string | undefined;
  /**
   * libvirt autostart is on for the VM on some host it is defined on: that host, booting again after a
   * fence, would start a second copy. For an HA VM it is a misconfiguration the N+1 report names; it
   * changes no placement. Absent: off or not known.
   */
  readonly autostart?: boolean | undefined;
}

/** A hypervisor host of a cluster with the VMs it runs now. */
export interface Host {
  readonly id: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly maintenance?: boolean | undefined;
  readonly vms: readonly Vm[];
  /**
   * Whether a relay can fence the host (core/fenceability.ts). Absent or `fenceable: null` means unknown,
   * which counts as fenceable: only a host known not to be fenceable needs an operator to fail over.
   */
  readonly fencing?: Fenceability | undefined;
}

/** Cluster-wide placement rules. */
export interface PlacementPolicy {
  /** vCPUs a host may carry per physical CPU (1.0 = no overcommit). */
  readonly cpuOvercommit: number;
  /** Memory kept free on every host for the hypervisor itself. */
  readonly reserveMiB: number;
  /** Physical CPUs kept free on every host for the hypervisor itself. */
  readonly reserveCpus: number;
}

/** Defaults: no CPU overcommit and no reserve, so nothing is promised that the hardware lacks. */
export const DEFAULT_PLACEMENT_POLICY: PlacementPolicy = { cpuOvercommit: 1, reserveMiB: 0, reserveCpus: 0 };

/** Raised when inputs to a core function break its preconditions. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  readonly code = 'invalid-input';
}
