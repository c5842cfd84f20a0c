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
  /** The hosts this plan adds VMs to, in id order, with their load afterwards. */
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

type Rejection = Exclude<UnplacedReason, 'no-eligible-host'>;

/**
 * Hosts compiled once into flat arrays, sorted by id: planning scans them for every VM, so the hot loop
 * touches numbers only. N+1 reuses one compilation for all its plans.
 */
export interface CompiledHosts {
  readonly hosts: readonly HostLoad[];
  readonly policy: PlacementPolicy;
  readonly memoryMiB: Float64Array;
  /** 1 / memoryMiB: load is compared for every host and VM, and a product is cheaper than a quotient. */
  readonly invMemoryMiB: Float64Array;
  readonly memLimit: Float64Array;
  readonly cpuLimit: Float64Array;
  readonly cpuCapacity: Float64Array;
  readonly usedMiB: Float64Array;
  readonly usedCpus: Float64Array;
  /** 1 where the host takes nothing (maintenance). */
  readonly ineligible: Uint8Array;
  /**
   * Hosts of identical shape (size, limits) grouped together, each group sorted by load (used memory, then
   * used CPUs, then id). Inside a group the first host that fits is the best one, so planning looks at a
   * few hosts per group instead of every host of the cluster.
   */
  readonly shapes: readonly (readonly number[])[];
  /** Hosts already running each anti-affinity group (usually a handful per group). */
  readonly hostsByGroup: ReadonlyMap<string, readonly number[]>;
  readonly indexById: ReadonlyMap<string, number>;
}

/** Working state of one plan over compiled hosts. */
interface PlanState {
  readonly c: CompiledHosts;
  readonly usedMiB: Float64Array;
  readonly usedCpus: Float64Array;
  readonly ineligible: Uint8Array;
  /** Hosts the plan itself gave a VM of each anti-affinity group. */
  readonly addedByGroup: Map<string, number[]>;
}

const byId = (a: HostLoad, b: HostLoad): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Validates hosts and policy and compiles them for planning. */
export function compileHosts(hosts: readonly HostLoad[], policy: PlacementPolicy): CompiledHosts {
  validatePolicy(policy);
  validateHosts(hosts);
  const sorted = [...hosts].sort(byId);
  const n = sorted.length;
  const c = {
    hosts: sorted,
    policy,
    memoryMiB: new Float64Array(n),
    invMemoryMiB: new Float64Array(n),
    memLimit: new Float64Array(n),
    cpuLimit: new Float64Array(n),
    cpuCapacity: new Float64Array(n),
    usedMiB: new Float64Array(n),
    usedCpus: new Float64Array(n),
    ineligible: new Uint8Array(n),
    shapes: [] as number[][],
    hostsByGroup: new Map<string, number[]>(),
    indexById: new Map(sorted.map((h, i) => [h.id, i])),
  };
  sorted.forEach((h, i) => {
    c.memoryMiB[i] = h.memoryMiB;
    c.invMemoryMiB[i] = 1 / h.memoryMiB;
    c.memLimit[i] = h.memoryMiB - policy.reserveMiB;
    c.cpuLimit[i] = (h.cpus - policy.reserveCpus) * policy.cpuOvercommit + EPSILON;
    c.cpuCapacity[i] = h.cpus * policy.cpuOvercommit;
    c.usedMiB[i] = h.usedMiB;
    c.usedCpus[i] = h.usedCpus;
    c.ineligible[i] = h.maintenance ? 1 : 0;
    for (const g of h.antiAffinityGroups) {
      const hosts = c.hostsByGroup.get(g);
      if (hosts === undefined) c.hostsByGroup.set(g, [i]);
      else if (hosts[hosts.length - 1] !== i) hosts.push(i);
    }
  });
  const byShape = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const key = `${c.memoryMiB[i]}/${c.memLimit[i]}/${c.cpuLimit[i]}/${c.cpuCapacity[i]}`;
    const members = byShape.get(key) ?? [];
    members.push(i);
    byShape.set(key, members);
  }
  for (const members of byShape.values()) {
    c.shapes.push(members.sort((a, b) => compareLoad(c.usedMiB, c.usedCpus, a, b)));
  }
  return c;
}

/** Load order inside a shape group: less memory used first, then fewer CPUs, then id (index order). */
function compareLoad(usedMiB: Float64Array, usedCpus: Float64Array, a: number, b: number): number {
  return at(usedMiB, a) - at(usedMiB, b) || at(usedCpus, a) - at(usedCpus, b) || a - b;
}

/**
 * Moves host `i` to its place in its sorted shape group after its load grew: load only grows, so it moves
 * towards the end, past the hosts now less loaded (binary search from its old place), which shift back one
 * in a single native move. The host is usually among the first of its group (the best is the least loaded).
 */
function resort(members: Int32Array, s: PlanState, i: number): void {
  const from = members.indexOf(i);
  let lo = from + 1;
  let hi = members.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareLoad(s.usedMiB, s.usedCpus, members[mid] as number, i) < 0) lo = mid + 1;
    else hi = mid;
  }
  const to = lo - 1;
  members.copyWithin(from, from + 1, to + 1);
  members[to] = i;
}

function freshState(c: CompiledHosts, exclude: readonly string[]): PlanState {
  const ineligible = c.ineligible.slice();
  for (const id of exclude) {
    const i = c.indexById.get(id);
    if (i !== undefined) ineligible[i] = 1;
  }
  return { c, usedMiB: c.usedMiB.slice(), usedCpus: c.usedCpus.slice(), ineligible, addedByGroup: new Map() };
}

/** Element `i` of a host array; every index used is below the host count. */
function at(a: Float64Array, i: number): number {
  return a[i] as number;
}

function hasGroup(s: PlanState, i: number, group: string): boolean {
  return s.c.hostsByGroup.get(group)?.includes(i) === true || s.addedByGroup.get(group)?.includes(i) === true;
}

/** Sets `mask` to `value` for every host of a group's hosts: those it ran on before, and by this plan. */
function setMask(
  mask: Uint8Array,
  before: readonly number[] | undefined,
  added: readonly number[] | undefined,
  value: 0 | 1,
): void {
  if (before !== undefined) for (let k = 0; k < before.length; k++) mask[before[k] as number] = value;
  if (added !== undefined) for (let k = 0; k < added.length; k++) mask[added[k] as number] = value;
}

/** The one statement of the placement rules: why host `i` cannot take `vm` now, or null if it can. */
function rejection(s: PlanState, i: number, vm: Vm): Rejection | null {
  if (vm.antiAffinity !== undefined && hasGroup(s, i, vm.antiAffinity)) return 'anti-affinity';
  if (at(s.usedMiB, i) + vm.memoryMiB > at(s.c.memLimit, i)) return 'memory';
  if (at(s.usedCpus, i) + vm.cpus > at(s.c.cpuLimit, i)) return 'cpu';
  return null;
}

const memoryLoadAfter = (s: PlanState, i: number, vm: Vm): number =>
  (at(s.usedMiB, i) + vm.memoryMiB) * at(s.c.invMemoryMiB, i);
const cpuLoadAfter = (s: PlanState, i: number, vm: Vm): number =>
  (at(s.usedCpus, i) + vm.cpus) / at(s.c.cpuCapacity, i);

/** Hosts that can take `vm`, best first: lowest memory load after, then CPU load, then id. */
function candidates(s: PlanState, vm: Vm): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.c.hosts.length; i++) {
    if (s.ineligible[i] === 0 && rejection(s, i, vm) === null) out.push(i);
  }
  // Hosts are in id order and the sort is stable, so ties keep the lowest id first.
  return out.sort(
    (a, b) =>
      memoryLoadAfter(s, a, vm) - memoryLoadAfter(s, b, vm) ||
      cpuLoadAfter(s, a, vm) - cpuLoadAfter(s, b, vm),
  );
}

/**
 * The VMs in placement order (comparePlacementOrder). Priority, memory and CPUs are ranked densely (few
 * distinct values) into one integer key per VM, packed with the VM's index into a float that a native
 * numeric sort orders; only VMs of equal key are then ordered by id, each run on its own. A comparator sort
 * of 10,000 VMs ran some 140,000 comparisons; this is one native sort and a few short string sorts. Keys
 * too many to pack exactly (not in practice) fall back to the comparator sort.
 */
function placementOrder(vms: readonly Vm[]): Vm[] {
  const n = vms.length;
  const memRank = denseRanks(vms.map((vm) => vm.memoryMiB));
  const cpuRank = denseRanks(vms.map((vm) => vm.cpus));
  const m = memRank.distinct;
  const c = cpuRank.distinct;
  if (PRIORITIES.length * m * c * n >= Number.MAX_SAFE_INTEGER) return [...vms].sort(comparePlacementOrder);
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const vm = vms[i] as Vm;
    // Larger memory and more CPUs first: their ranks count down.
    const key =
      (priorityRank(vm.priority) * m + (m - 1 - (memRank.rank[i] as number))) * c +
      (c - 1 - (cpuRank.rank[i] as number));
    packed[i] = key * n + i;
  }
  packed.sort();
  const out = new Array<Vm>(n);
  const byId = (a: Vm, b: Vm): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  let start = 0;
  while (start < n) {
    const key = Math.floor((packed[start] as number) / n);
    let end = start + 1;
    while (end < n && Math.floor((packed[end] as number) / n) === key) end++;
    for (let k = start; k < end; k++) out[k] = vms[(packed[k] as number) % n] as Vm;
    if (end - start > 1) {
      const run = out.slice(start, end).sort(byId);
      for (let k = start; k < end; k++) out[k] = run[k - start] as Vm;
    }
    start = end;
  }
  return out;
}

/** Each value's rank among the distinct values, ascending (0 for the smallest), and how many there are. */
function denseRanks(values: readonly number[]): { rank: Int32Array; distinct: number } {
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  const rankOf = new Map(distinct.map((v, r) => [v, r]));
  const rank = new Int32Array(values.length);
  values.forEach((v, i) => {
    rank[i] = rankOf.get(v) as number;
  });
  return { rank, distinct: distinct.length };
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

function validatePolicy(policy: PlacementPolicy): void {
  if (!(policy.cpuOvercommit > 0))
    throw new InvalidInputError(`cpuOvercommit must be > 0, got ${policy.cpuOvercommit}`);
  if (!(policy.reserveMiB >= 0))
    throw new InvalidInputError(`reserveMiB must be >= 0, got ${policy.reserveMiB}`);
  if (!(policy.reserveCpus >= 0))
    throw new InvalidInputError(`reserveCpus must be >= 0, got ${policy.reserveCpus}`);
}

function validateHosts(hosts: readonly HostLoad[]): void {
  const hostIds = new Set<string>();
  for (const host of hosts) {
    if (hostIds.has(host.id)) throw new InvalidInputError(`host ${host.id} appears twice`);
    hostIds.add(host.id);
    if (!(host.cpus > 0) || !(host.memoryMiB > 0)) {
      throw new InvalidInputError(`host ${host.id} needs positive cpus and memoryMiB`);
    }
  }
}

function validateVms(vms: readonly Vm[]): void {
  const vmIds = new Set<string>();
  for (const vm of vms) {
    if (vmIds.has(vm.id)) throw new InvalidInputError(`VM ${vm.id} appears twice`);
    vmIds.add(vm.id);
    if (!(vm.cpus > 0) || !(vm.memoryMiB > 0)) {
      throw new InvalidInputError(`VM ${vm.id} needs positive cpus and memoryMiB`);
    }
  }
}

/** Whole percentages as text, made once each: a plan writes two per VM placed. */
const PERCENT_TEXT: string[] = [];

function pct(x: number): string {
  const n = Math.round(x * 100);
  if (!(n >= 0 && n <= 1000)) return `${n}%`;
  let text = PERCENT_TEXT[n];
  if (text === undefined) {
    text = `${n}%`;
    PERCENT_TEXT[n] = text;
  }
  return text;
}

/**
 * Why the VM goes to `chosen`. A plan builds 10,000 of these: one concat of the parts builds each in one
 * go, several times faster than the template literal with its numbers to convert (same text).
 */
function placementReason(s: PlanState, vm: Vm, chosen: number, runnerUp: number): string {
  const host = s.c.hosts[chosen]?.id;
  const after = pct(memoryLoadAfter(s, chosen, vm));
  const size = ''.concat(vm.priority, ' wave: ', String(vm.memoryMiB), ' MiB/', String(vm.cpus), ' vCPU; ');
  if (runnerUp < 0)
    return ''.concat(size, String(host), ' is the only host it fits (memory ', after, ' after)');
  return ''.concat(
    size,
    String(host),
    ' keeps the cluster most even (memory ',
    after,
    ' after; next best ',
    String(s.c.hosts[runnerUp]?.id),
    ' at ',
    pct(memoryLoadAfter(s, runnerUp, vm)),
    ')',
  );
}

/**
 * Why no host took the VM. `blocked` marks the hosts that run the VM's anti-affinity group (the rules of
 * `rejection`, read from the mask instead of the group maps: every host is counted).
 */
function explainUnplaced(
  s: PlanState,
  vm: Vm,
  blocked: Uint8Array,
): { reason: UnplacedReason; detail: string } {
  const need = `needs ${vm.memoryMiB} MiB and ${vm.cpus} vCPU`;
  const counts: Record<Rejection, number> = { memory: 0, cpu: 0, 'anti-affinity': 0 };
  let eligible = 0;
  let roomiest = -1;
  let roomiestFree = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < s.c.hosts.length; i++) {
    if (s.ineligible[i] === 1) continue;
    eligible += 1;
    if (blocked[i] === 1) counts['anti-affinity'] += 1;
    else if (at(s.usedMiB, i) + vm.memoryMiB > at(s.c.memLimit, i)) counts.memory += 1;
    else if (at(s.usedCpus, i) + vm.cpus > at(s.c.cpuLimit, i)) counts.cpu += 1;
    const free = at(s.c.memLimit, i) - at(s.usedMiB, i);
    if (free > roomiestFree) {
      roomiest = i;
      roomiestFree = free;
    }
  }
  if (eligible === 0)
    return { reason: 'no-eligible-host', detail: `${need}; no host of the cluster is eligible` };
  // The constraint that turned away the most hosts is the one to relieve first.
  const order: Rejection[] = ['memory', 'cpu', 'anti-affinity'];
  const reason = order.reduce((best, r) => (counts[r] > counts[best] ? r : best), 'memory' as Rejection);
  const parts: string[] = [];
  if (counts.memory > 0) {
    const free = Math.max(0, roomiestFree);
    parts.push(`${counts.memory} lack memory (most free: ${s.c.hosts[roomiest]?.id} with ${free} MiB)`);
  }
  if (counts.cpu > 0) parts.push(`${counts.cpu} lack CPU`);
  if (counts['anti-affinity'] > 0) {
    parts.push(`${counts['anti-affinity']} already run anti-affinity group ${vm.antiAffinity}`);
  }
  return { reason, detail: `${need}; of ${eligible} eligible hosts ${parts.join(', ')}` };
}

/**
 * The best two hosts for a VM of `mem` and `cpu` (indexes into `out`, -1 where none): lowest memory load
 * after, then CPU load, then index. The best two of each shape group are its first two hosts that fit, so
 * the plan's best two are among them. A function of its own, over numbers only: it stays small enough to
 * be optimized at once, its loads and comparisons unboxed.
 */
function bestTwo(
  s: PlanState,
  shapes: readonly Int32Array[],
  blocked: Uint8Array,
  mem: number,
  cpu: number,
  out: Int32Array,
): void {
  const c = s.c;
  let best = -1;
  let bestMem = Number.POSITIVE_INFINITY;
  let bestCpu = Number.POSITIVE_INFINITY;
  let second = -1;
  let secondMem = Number.POSITIVE_INFINITY;
  let secondCpu = Number.POSITIVE_INFINITY;
  // The best two of each shape group are its first two hosts that fit; the plan's best two are among them.
  for (const members of shapes) {
    let found = 0;
    for (let k = 0; k < members.length && found < 2; k++) {
      const i = members[k] as number;
      if (s.ineligible[i] === 1 || blocked[i] === 1) continue;
      const um = at(s.usedMiB, i) + mem;
      // Sorted by used memory under one limit: if this host lacks memory, so does every later one.
      if (um > at(c.memLimit, i)) break;
      const uc = at(s.usedCpus, i) + cpu;
      if (uc > at(c.cpuLimit, i)) continue;
      found += 1;
      const ml = um * at(c.invMemoryMiB, i);
      const cl = uc / at(c.cpuCapacity, i);
      if (ml < bestMem || (ml === bestMem && (cl < bestCpu || (cl === bestCpu && i < best)))) {
        second = best;
        secondMem = bestMem;
        secondCpu = bestCpu;
        best = i;
        bestMem = ml;
        bestCpu = cl;
      } else if (
        ml < secondMem ||
        (ml === secondMem && (cl < secondCpu || (cl === secondCpu && i < second)))
      ) {
        second = i;
        secondMem = ml;
        secondCpu = cl;
      }
    }
  }
  out[0] = best;
  out[1] = second;
}

/** Places HA VMs over compiled hosts, skipping the hosts in `exclude` (e.g. the failed host itself). */
export function planOnCompiled(
  c: CompiledHosts,
  vms: readonly Vm[],
  exclude: readonly string[] = [],
): PlacementPlan {
  validateVms(vms);
  const s = freshState(c, exclude);
  const skipped = vms.filter((vm) => !vm.ha).map((vm) => ({ vmId: vm.id, reason: 'not-ha' as const }));
  const queue = placementOrder(vms.filter((vm) => vm.ha));
  const placements: Placement[] = [];
  const unplaced: Unplaced[] = [];
  // The anti-affinity groups the plan adds to each host it gives a VM (undefined: untouched).
  const touched = new Array<string[] | undefined>(c.hosts.length);
  const blocked = new Uint8Array(c.hosts.length);
  const chosen = new Int32Array(2);
  const shapes = c.shapes.map((members) => Int32Array.from(members));
  const shapeOf = new Int32Array(c.hosts.length);
  shapes.forEach((members, k) => {
    for (const i of members) shapeOf[i] = k;
  });
  for (const vm of queue) {
    const mem = vm.memoryMiB;
    const cpu = vm.cpus;
    const group = vm.antiAffinity;
    // Anti-affinity blocks few hosts per group: mark them once per VM instead of a lookup per host.
    const before = group === undefined ? undefined : c.hostsByGroup.get(group);
    const added = group === undefined ? undefined : s.addedByGroup.get(group);
    setMask(blocked, before, added, 1);
    bestTwo(s, shapes, blocked, mem, cpu, chosen);
    const best = chosen[0] as number;
    const second = chosen[1] as number;
    const host = c.hosts[best];
    if (host === undefined) {
      unplaced.push({
        vmId: vm.id,
        priority: vm.priority,
        cpus: cpu,
        memoryMiB: mem,
        ...explainUnplaced(s, vm, blocked),
      });
      setMask(blocked, before, added, 0);
      continue;
    }
    setMask(blocked, before, added, 0);
    const reason = placementReason(s, vm, best, second);
    s.usedMiB[best] = at(s.usedMiB, best) + mem;
    s.usedCpus[best] = at(s.usedCpus, best) + cpu;
    const shape = shapes[shapeOf[best] as number];
    if (shape !== undefined) resort(shape, s, best);
    const groupsAdded = touched[best] ?? [];
    touched[best] = groupsAdded;
    if (group !== undefined) {
      groupsAdded.push(group);
      if (added === undefined) s.addedByGroup.set(group, [best]);
      else added.push(best);
    }
    placements.push({
      vmId: vm.id,
      hostId: host.id,
      priority: vm.priority,
      order: placements.length + 1,
      cpus: cpu,
      memoryMiB: mem,
      reason,
    });
  }
  const hostsAfter: HostLoad[] = [];
  touched.forEach((groupsAdded, i) => {
    const h = c.hosts[i] as HostLoad;
    hostsAfter.push({
      ...h,
      usedMiB: s.usedMiB[i] as number,
      usedCpus: s.usedCpus[i] as number,
      antiAffinityGroups: [...h.antiAffinityGroups, ...(groupsAdded ?? [])],
    });
  });
  return { placements, unplaced, skipped, hostsAfter };
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
  return planOnCompiled(compileHosts(hosts, policy), vms);
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
  validateVms([vm]);
  const s = freshState(compileHosts(hosts, policy), exclude);
  return candidates(s, vm).map((i) => ({
    hostId: s.c.hosts[i]?.id ?? '',
    memoryLoadAfter: memoryLoadAfter(s, i, vm),
    cpuLoadAfter: cpuLoadAfter(s, i, vm),
  }));
}

/** Waves of a plan in start order, each with its placements. */
export function wavesOf(plan: PlacementPlan): { priority: Priority; placements: Placement[] }[] {
  return PRIORITIES.map((priority) => ({
    priority,
    placements: plan.placements.filter((p) => p.priority === priority),
  })).filter((w) => w.placements.length > 0);
}
