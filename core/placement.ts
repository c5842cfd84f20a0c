import {
  type Host,
  InvalidInputError,
  type PlacementPolicy,
  PRIORITIES,
  type Priority,
  priorityRank,
  type Vm,
} from './model';

/** What placement needs to know about a candidate host: its size and what it already carries. */
export interface HostLoad {
  readonly id: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly usedCpus: number;
  readonly usedMiB: number;
  /** Anti-affinity groups of the VMs already on the host. */
  readonly antiAffinityGroups: readonly string[];
  readonly maintenance: boolean;
}

/** One VM of the plan: where it goes, in which wave, and why there. */
export interface Placement {
  readonly vmId: string;
  readonly hostId: string;
  readonly priority: Priority;
  /** 1-based position in the whole plan; starts follow this order inside a wave. */
  readonly order: number;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly reason: string;
}

/** Why no host could take a VM. */
export type UnplacedReason = 'no-eligible-host' | 'memory' | 'cpu' | 'anti-affinity';

/** A VM the plan could not place, never silently dropped. */
export interface Unplaced {
  readonly vmId: string;
  readonly priority: Priority;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly reason: UnplacedReason;
  readonly detail: string;
}

/** The result of placement: ordered starts, what could not be placed, and the hosts' load afterwards. */
export interface PlacementPlan {
  readonly placements: readonly Placement[];
  readonly unplaced: readonly Unplaced[];
  /** VMs that are not HA: never restarted elsewhere. */
  readonly skipped: readonly { readonly vmId: string; readonly reason: 'not-ha' }[];
  readonly hostsAfter: readonly HostLoad[];
}

/** Load of a host from the VMs it runs. */
export function hostLoad(host: Host): HostLoad {
  let usedCpus = 0;
  let usedMiB = 0;
  const groups: string[] = [];
  for (const vm of host.vms) {
    usedCpus += vm.cpus;
    usedMiB += vm.memoryMiB;
    if (vm.antiAffinity !== undefined) groups.push(vm.antiAffinity);
  }
  return {
    id: host.id,
    cpus: host.cpus,
    memoryMiB: host.memoryMiB,
    usedCpus,
    usedMiB,
    antiAffinityGroups: groups,
    maintenance: host.maintenance === true,
  };
}

// Float error in (cpus − reserve) × overcommit must never turn "exactly full" into "over".
const EPSILON = 1e-9;

/** Mutable working copy of a host while a plan is built. */
interface Slot {
  readonly id: string;
  readonly memoryMiB: number;
  readonly memLimit: number;
  readonly cpuLimit: number;
  readonly cpuCapacity: number;
  usedMiB: number;
  usedCpus: number;
  readonly groups: Set<string>;
  readonly source: HostLoad;
}

type Rejection = Exclude<UnplacedReason, 'no-eligible-host'>;

function toSlot(host: HostLoad, policy: PlacementPolicy): Slot {
  return {
    id: host.id,
    memoryMiB: host.memoryMiB,
    memLimit: host.memoryMiB - policy.reserveMiB,
    cpuLimit: (host.cpus - policy.reserveCpus) * policy.cpuOvercommit + EPSILON,
    cpuCapacity: host.cpus * policy.cpuOvercommit,
    usedMiB: host.usedMiB,
    usedCpus: host.usedCpus,
    groups: new Set(host.antiAffinityGroups),
    source: host,
  };
}

function rejection(vm: Vm, slot: Slot): Rejection | null {
  if (vm.antiAffinity !== undefined && slot.groups.has(vm.antiAffinity)) return 'anti-affinity';
  if (slot.usedMiB + vm.memoryMiB > slot.memLimit) return 'memory';
  if (slot.usedCpus + vm.cpus > slot.cpuLimit) return 'cpu';
  return null;
}

const memoryLoadAfter = (vm: Vm, slot: Slot): number => (slot.usedMiB + vm.memoryMiB) / slot.memoryMiB;
const cpuLoadAfter = (vm: Vm, slot: Slot): number =>
  slot.cpuCapacity > 0 ? (slot.usedCpus + vm.cpus) / slot.cpuCapacity : Number.POSITIVE_INFINITY;

/** True when host `a` is the better target for `vm` than `b`: lower memory load after, then CPU load, then id. */
function better(vm: Vm, a: Slot, b: Slot): boolean {
  const ma = memoryLoadAfter(vm, a);
  const mb = memoryLoadAfter(vm, b);
  if (ma !== mb) return ma < mb;
  const ca = cpuLoadAfter(vm, a);
  const cb = cpuLoadAfter(vm, b);
  if (ca !== cb) return ca < cb;
  return a.id < b.id;
}

/** Placement order: wave by priority, then largest memory first, then most CPUs, then id (deterministic). */
export function comparePlacementOrder(a: Vm, b: Vm): number {
  return (
    priorityRank(a.priority) - priorityRank(b.priority) ||
    b.memoryMiB - a.memoryMiB ||
    b.cpus - a.cpus ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

function validate(vms: readonly Vm[], hosts: readonly HostLoad[], policy: PlacementPolicy): void {
  if (!(policy.cpuOvercommit > 0))
    throw new InvalidInputError(`cpuOvercommit must be > 0, got ${policy.cpuOvercommit}`);
  if (!(policy.reserveMiB >= 0))
    throw new InvalidInputError(`reserveMiB must be >= 0, got ${policy.reserveMiB}`);
  if (!(policy.reserveCpus >= 0))
    throw new InvalidInputError(`reserveCpus must be >= 0, got ${policy.reserveCpus}`);
  const vmIds = new Set<string>();
  for (const vm of vms) {
    if (vmIds.has(vm.id)) throw new InvalidInputError(`VM ${vm.id} appears twice`);
    vmIds.add(vm.id);
    if (!(vm.cpus > 0) || !(vm.memoryMiB > 0)) {
      throw new InvalidInputError(`VM ${vm.id} needs positive cpus and memoryMiB`);
    }
  }
  const hostIds = new Set<string>();
  for (const host of hosts) {
    if (hostIds.has(host.id)) throw new InvalidInputError(`host ${host.id} appears twice`);
    hostIds.add(host.id);
    if (!(host.cpus > 0) || !(host.memoryMiB > 0)) {
      throw new InvalidInputError(`host ${host.id} needs positive cpus and memoryMiB`);
    }
  }
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;

function explainPlacement(vm: Vm, chosen: Slot, runnerUp: Slot | null, candidates: number): string {
  const size = `${vm.memoryMiB} MiB/${vm.cpus} vCPU`;
  const where = `memory ${pct(memoryLoadAfter(vm, chosen))} after`;
  if (runnerUp === null) return `${size}; ${chosen.id} is the only host it fits (${where})`;
  return (
    `${size}; ${chosen.id} keeps the cluster most even (${where}; ` +
    `next best ${runnerUp.id} at ${pct(memoryLoadAfter(vm, runnerUp))}, ${candidates} hosts fit)`
  );
}

function explainUnplaced(vm: Vm, slots: readonly Slot[]): { reason: UnplacedReason; detail: string } {
  const need = `needs ${vm.memoryMiB} MiB and ${vm.cpus} vCPU`;
  if (slots.length === 0)
    return { reason: 'no-eligible-host', detail: `${need}; no host of the cluster is eligible` };
  const counts: Record<Rejection, number> = { memory: 0, cpu: 0, 'anti-affinity': 0 };
  let roomiest: Slot | null = null;
  for (const slot of slots) {
    const why = rejection(vm, slot);
    if (why !== null) counts[why] += 1;
    if (roomiest === null || slot.memLimit - slot.usedMiB > roomiest.memLimit - roomiest.usedMiB)
      roomiest = slot;
  }
  // The constraint that turned away the most hosts is the one to relieve first.
  const order: Rejection[] = ['memory', 'cpu', 'anti-affinity'];
  const reason = order.reduce((best, r) => (counts[r] > counts[best] ? r : best), 'memory' as Rejection);
  const parts: string[] = [];
  if (counts.memory > 0) {
    const free = roomiest === null ? 0 : Math.max(0, roomiest.memLimit - roomiest.usedMiB);
    parts.push(`${counts.memory} lack memory (most free: ${roomiest?.id} with ${free} MiB)`);
  }
  if (counts.cpu > 0) parts.push(`${counts.cpu} lack CPU`);
  if (counts['anti-affinity'] > 0) {
    parts.push(`${counts['anti-affinity']} already run anti-affinity group ${vm.antiAffinity}`);
  }
  return { reason, detail: `${need}; of ${slots.length} eligible hosts ${parts.join(', ')}` };
}

/**
 * Plans where the given VMs restart: HA VMs in priority waves, largest first, each onto the host that keeps
 * the cluster most even, within memory, CPU overcommit, reserve and anti-affinity. Deterministic.
 */
export function planPlacement(
  vms: readonly Vm[],
  hosts: readonly HostLoad[],
  policy: PlacementPolicy,
): PlacementPlan {
  validate(vms, hosts, policy);
  const slots = hosts
    .filter((h) => !h.maintenance)
    .map((h) => toSlot(h, policy))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const skipped = vms.filter((vm) => !vm.ha).map((vm) => ({ vmId: vm.id, reason: 'not-ha' as const }));
  const queue = vms.filter((vm) => vm.ha).sort(comparePlacementOrder);

  const placements: Placement[] = [];
  const unplaced: Unplaced[] = [];
  for (const vm of queue) {
    let best: Slot | null = null;
    let second: Slot | null = null;
    let fits = 0;
    for (const slot of slots) {
      if (rejection(vm, slot) !== null) continue;
      fits += 1;
      if (best === null || better(vm, slot, best)) {
        second = best;
        best = slot;
      } else if (second === null || better(vm, slot, second)) {
        second = slot;
      }
    }
    if (best === null) {
      unplaced.push({
        vmId: vm.id,
        priority: vm.priority,
        cpus: vm.cpus,
        memoryMiB: vm.memoryMiB,
        ...explainUnplaced(vm, slots),
      });
      continue;
    }
    const reason = `${vm.priority} wave: ${explainPlacement(vm, best, second, fits)}`;
    best.usedMiB += vm.memoryMiB;
    best.usedCpus += vm.cpus;
    if (vm.antiAffinity !== undefined) best.groups.add(vm.antiAffinity);
    placements.push({
      vmId: vm.id,
      hostId: best.id,
      priority: vm.priority,
      order: placements.length + 1,
      cpus: vm.cpus,
      memoryMiB: vm.memoryMiB,
      reason,
    });
  }

  const after = new Map(slots.map((s) => [s.id, s]));
  const hostsAfter = hosts.map((h): HostLoad => {
    const slot = after.get(h.id);
    if (slot === undefined) return h;
    return { ...h, usedMiB: slot.usedMiB, usedCpus: slot.usedCpus, antiAffinityGroups: [...slot.groups] };
  });
  return { placements, unplaced, skipped, hostsAfter };
}

/** One candidate host for a VM, best first. */
export interface RankedHost {
  readonly hostId: string;
  readonly memoryLoadAfter: number;
  readonly cpuLoadAfter: number;
}

/**
 * Every host that can take the VM now, best first, for a retry on the next best host after a failed start.
 * Hosts in `exclude` (where the start already failed) are left out.
 */
export function rankHosts(
  vm: Vm,
  hosts: readonly HostLoad[],
  policy: PlacementPolicy,
  exclude: readonly string[] = [],
): RankedHost[] {
  validate([vm], hosts, policy);
  const excluded = new Set(exclude);
  const slots = hosts
    .filter((h) => !h.maintenance && !excluded.has(h.id))
    .map((h) => toSlot(h, policy))
    .filter((slot) => rejection(vm, slot) === null);
  slots.sort((a, b) => (better(vm, a, b) ? -1 : better(vm, b, a) ? 1 : 0));
  return slots.map((s) => ({
    hostId: s.id,
    memoryLoadAfter: memoryLoadAfter(vm, s),
    cpuLoadAfter: cpuLoadAfter(vm, s),
  }));
}

/** Waves of a plan in start order, each with its placements. */
export function wavesOf(plan: PlacementPlan): { priority: Priority; placements: Placement[] }[] {
  return PRIORITIES.map((priority) => ({
    priority,
    placements: plan.placements.filter((p) => p.priority === priority),
  })).filter((w) => w.placements.length > 0);
}
