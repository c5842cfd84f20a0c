import type { Scenario, ScenarioFault, ScenarioLan } from '../../contracts/scenario';
import { type HaPolicy, hostSilentAfterMs } from '../../core/policy';
import { fenceGivesUpMs, scenarioBounds, scenarioPolicy, simRelayLoopMs } from './policy';

/**
 * Random scenarios for the simulator: a pure function of a seed, so that any run that breaks a safety rule
 * is reproduced by its seed alone (`npm run sim -- --random 1 --seed <seed>`).
 */

type Vm = Scenario['vms'][number];
type Host = Scenario['hosts'][number];
type Priority = Vm['priority'];

/** A seeded source of randomness: mulberry32, small and good enough to spread scenarios over a space. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    // Fold any number (negative, fractional, beyond 32 bits) into the 32-bit state the generator needs.
    this.state = Math.trunc(seed) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  }

  /** One element, chosen with the given relative weights. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    const total = choices.reduce((sum, [, w]) => sum + w, 0);
    let roll = this.next() * total;
    for (const [value, w] of choices) {
      roll -= w;
      if (roll < 0) return value;
    }
    const last = choices[choices.length - 1];
    if (last === undefined) throw new RangeError('weighted pick from an empty list');
    return last[0];
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const a = out[i] as T;
      out[i] = out[j] as T;
      out[j] = a;
    }
    return out;
  }
}

const GiB = 1024;
const SITE = 'dc1';
const RELAYS = ['relay-a', 'relay-b'] as const;
/** Faults start once relays have reported the site a few times, so the control plane knows every host. */
const FIRST_FAULT_MS = { min: 1000, max: 2000 } as const;
/** Unpaired faults and the first fault of each episode fall inside this window: the "first part". */
const FAULT_WINDOW_MS = 2000;
/**
 * After the last fault, this many heartbeats plus the margin let detection, fencing and three waves
 * settle. The margin is generous because a run ends as soon as everything has settled: it costs only the
 * runs that never settle by themselves, and an incident cut short would read as in-progress.
 */
export const SETTLE_HEARTBEATS = 20;
const SETTLE_MARGIN_MS = 4000;

const HOST_SHAPES = [
  { cpus: 16, memoryMiB: 32 * GiB },
  { cpus: 24, memoryMiB: 48 * GiB },
  { cpus: 32, memoryMiB: 64 * GiB },
] as const;

// A handful of VMs per host, mostly mid-sized: enough for three waves and anti-affinity to matter, few
// enough that a run (every VM registered, reported and restarted through the local control plane) stays
// short. The 16 GiB ones make placement work for their room; 2 GiB ones top hosts up.
const VM_SHAPES: readonly (readonly [{ memoryMiB: number; cpus: readonly number[] }, number])[] = [
  [{ memoryMiB: 4 * GiB, cpus: [1, 2] }, 3],
  [{ memoryMiB: 8 * GiB, cpus: [2, 4] }, 4],
  [{ memoryMiB: 16 * GiB, cpus: [4] }, 2],
];

const SMALLEST_VM = { memoryMiB: 2 * GiB, cpus: 1 } as const;

const PRIORITIES: readonly (readonly [Priority, number])[] = [
  ['high', 1],
  ['medium', 2],
  ['low', 1],
];

/** Generates a valid, reproducible scenario from `seed`: the same seed always gives a deep-equal one. */
export function generateScenario(seed: number): Scenario {
  const rng = new Rng(seed);
  const timing = generateTiming(rng);
  const policy: Scenario['policy'] = {
    cpuOvercommit: rng.pick([1, 1.5, 2]),
    reserveMiB: 0,
    reserveCpus: 0,
    massSilenceShare: 0.5,
    // Now and then the cluster switch is off: the incident must end as fencing-suppressed, nothing restarted.
    fencingEnabled: !rng.chance(0.08),
  };
  const relays = RELAYS.slice(0, rng.int(1, 2));
  const hosts = generateHosts(rng);
  const vms = generateVms(rng, hosts, policy.cpuOvercommit);
  const site: Scenario['sites'][number] = { id: SITE, relays: [...relays] };
  const world = generateConditions(rng, {
    name: `random ${seed}`,
    timing,
    policy,
    sites: [site],
    hosts,
    vms,
    faults: [],
    durationMs: 1,
  });
  const resolved = scenarioPolicy(world);
  const faults = generateFaults(rng, {
    hosts: world.hosts,
    vms: world.vms,
    relays,
    heartbeatMs: timing.hostHeartbeatMs,
    fenceGivesUpMs: fenceGivesUpMs(resolved),
    phases: failoverPhases(resolved),
  });
  const lastFaultMs = Math.max(0, ...faults.map((f) => f.atMs));
  const scenario: Scenario = {
    ...world,
    name: `random ${seed}: ${[...faults.map(describeFault), ...describeConditions(world)].join(', ')}`.slice(
      0,
      200,
    ),
    faults,
  };
  // Long enough for an HA VM down since the last fault to pass its ha-vm-down bound: a run that ends
  // before would judge nothing. A run that settles ends sooner, so only a run where something is
  // still owed (or an operator still waits) pays for the length.
  const bounds = scenarioBounds(scenario);
  const settle = Math.max(
    SETTLE_HEARTBEATS * timing.hostHeartbeatMs + SETTLE_MARGIN_MS,
    Math.max(bounds.hostFailureMs, bounds.vmFailureMs) + SETTLE_MARGIN_MS,
  );
  return { ...scenario, durationMs: lastFaultMs + settle };
}

/** A fault as a short phrase, e.g. `host-crash node02@1500`, `lan-degrade dc1 40±80ms 10%@1700`. */
export function describeFault(fault: ScenarioFault): string {
  const target =
    'vm' in fault
      ? 'host' in fault
        ? `${fault.vm}→${fault.host}`
        : fault.vm
      : 'host' in fault
        ? fault.host
        : 'relay' in fault
          ? fault.relay
          : fault.site;
  const lan = fault.type === 'lan-degrade' ? ` ${describeLan(fault)}` : '';
  return `${fault.type} ${target}${lan}@${fault.atMs}`;
}

function describeLan(lan: ScenarioLan): string {
  return `${lan.delayMs}±${lan.jitterMs}ms ${lan.lossPct}%`;
}

/** The scenario's standing conditions as short phrases: its LAN, skewed clocks, slow BMCs and boots. */
export function describeConditions(s: Scenario): string[] {
  const out: string[] = [];
  for (const site of s.sites) {
    if (site.lan !== undefined) out.push(`lan ${describeLan(site.lan)}`);
    for (const [relay, ms] of Object.entries(site.relayClockSkewMs ?? {})) {
      out.push(`clock ${relay} ${ms >= 0 ? '+' : ''}${ms}ms`);
    }
  }
  const bmcs = s.hosts.filter((h) => (h.bmcLatencyMs ?? 0) > 0);
  if (bmcs.length > 0) out.push(`BMC ${bmcs.map((h) => `${h.id} ${h.bmcLatencyMs}ms`).join(' ')}`);
  const boots = s.vms.map((v) => v.bootMs ?? s.timing.vmBootMs ?? 0);
  if (Math.max(0, ...boots) > 0) out.push(`boots ≤${Math.max(...boots)}ms`);
  return out;
}

/**
 * Roughly when a host's failover reaches each phase, counted from the host's loss: the incident opens
 * (silence, a report at the incident pace), the fence is ordered (the confirming wait, the command's trip
 * to a relay), and the first wave starts (the BMC's three answers, the result's report, placement). A
 * fault aimed at a phase lands near it, on either side.
 */
export interface FailoverPhases {
  readonly openMs: number;
  readonly fenceMs: number;
  /** The first start of the wave, for a host whose BMC answers in `bmcLatencyMs`. */
  readonly startMs: (bmcLatencyMs: number) => number;
}

export function failoverPhases(policy: HaPolicy): FailoverPhases {
  const hb = policy.hostHeartbeatMs;
  const deliver = policy.incidentReportMs + simRelayLoopMs(hb);
  const openMs = hostSilentAfterMs(policy) + deliver;
  const fenceMs = openMs + policy.confirmSilenceMs + deliver;
  return { openMs, fenceMs, startMs: (latency) => fenceMs + 3 * latency + 2 * deliver };
}

/**
 * How often a relay's clock is drawn past the LAN's 10 s window (against 6 for NTP-synced, 3 drifting).
 * Such a relay is deaf (every message to or from it is refused as stale): it lists no host in its reports,
 * and the control plane takes a relay that does not list a host as no evidence either way
 * (RelayRecord.unheardHosts), so the other relay's silence fails a dead host over (scenarios/relay-deaf.json).
 */
const DEAF_RELAY_WEIGHT = 1;

/**
 * The standing conditions a scenario runs in, each drawn now and then so that most runs keep the plain
 * site: a LAN with some delay, jitter or loss; relays whose clocks are off (mostly by an NTP-synced few
 * ms, sometimes by a good part of a fence attempt, rarely past the LAN's 10 s window, which makes that
 * relay deaf: its messages and the agents' to it are refused); BMCs that answer slowly (mostly within
 * what a fence attempt allows, sometimes too slowly for one); VMs that boot slowly.
 */
function generateConditions(rng: Rng, s: Scenario): Scenario {
  const hb = s.timing.hostHeartbeatMs;
  const window = scenarioPolicy(s).fenceAttemptTimeoutMs;
  const site = s.sites[0] ?? { id: SITE, relays: [] };
  const lan: ScenarioLan | undefined = rng.chance(0.25)
    ? {
        delayMs: rng.int(0, Math.floor(hb / 20)),
        jitterMs: rng.int(0, Math.floor(hb / 8)),
        lossPct: rng.pick([0, 0, 1, 2, 5]),
      }
    : undefined;
  let skew: Record<string, number> | undefined;
  if (rng.chance(0.25)) {
    skew = {};
    let deaf = false;
    for (const relay of site.relays) {
      const sign = rng.chance(0.5) ? 1 : -1;
      const kind = rng.weighted([
        ['ntp', 6],
        ['drifting', 3],
        // Only one relay of two: a site whose only relay is deaf never hears a host at all.
        ['deaf', !deaf && site.relays.length >= 2 ? DEAF_RELAY_WEIGHT : 0],
      ] as const);
      if (kind === 'deaf') deaf = true;
      skew[relay] =
        kind === 'ntp'
          ? rng.int(-20, 20)
          : kind === 'drifting'
            ? sign * rng.int(Math.floor(window / 10), Math.floor(window / 4))
            : sign * rng.int(10_500, 20_000);
    }
  }
  const slowBmcs = rng.chance(0.3);
  const deliver = scenarioPolicy(s).incidentReportMs + simRelayLoopMs(hb);
  const fitting = Math.floor((window - deliver) / 3) - 20;
  const hosts = s.hosts.map((h) => {
    if (!slowBmcs || rng.chance(0.4)) return h;
    const bmcLatencyMs = rng.weighted([
      [rng.int(5, 60), 5],
      [rng.int(Math.floor(window / 10), fitting), 3],
      // Too slow for one attempt to confirm: the fence may give up and leave the host to its operator.
      [rng.int(fitting + 40, window), 1],
    ]);
    return { ...h, bmcLatencyMs };
  });
  const slowBoots = rng.chance(0.3);
  const vms = s.vms.map((v) =>
    slowBoots && rng.chance(0.6)
      ? { ...v, bootMs: rng.chance(0.8) ? rng.int(0, hb) : rng.int(hb, 5 * hb) }
      : v,
  );
  const timing = rng.chance(0.1) ? { ...s.timing, vmBootMs: rng.int(1, 2 * hb) } : s.timing;
  return {
    ...s,
    timing,
    sites: [
      {
        ...site,
        ...(lan === undefined ? {} : { lan }),
        ...(skew === undefined ? {} : { relayClockSkewMs: skew }),
      },
    ],
    hosts,
    vms,
  };
}

function generateTiming(rng: Rng): Scenario['timing'] {
  // Mostly the default timing, the benchmarked one; sometimes slightly off it so no constant is baked in.
  const timing = rng.chance(0.75)
    ? { hostHeartbeatMs: 200, missedHeartbeats: 3, relayReportMs: 500 }
    : {
        hostHeartbeatMs: rng.pick([150, 200, 250]),
        missedHeartbeats: rng.pick([3, 4]),
        relayReportMs: rng.pick([400, 500, 600]),
      };
  // Now and then an operator wait of one second (a day in production): an operator who confirms a host
  // off then often answers after it, and the VMs must recover all the same.
  return rng.chance(0.25) ? { ...timing, operatorTimeoutMs: 1000 } : timing;
}

function generateHosts(rng: Rng): Host[] {
  const count = rng.int(3, 6);
  // Two clusters only when each gets at least two hosts: a one-host cluster has nowhere to restart.
  const sizes = count >= 4 && rng.chance(0.5) ? splitInTwo(rng, count) : [count];
  const hosts: Host[] = [];
  sizes.forEach((size, c) => {
    const shape = rng.pick(HOST_SHAPES);
    for (let i = 0; i < size; i++) {
      // Mostly uniform clusters (as bought), with the occasional odd host.
      const { cpus, memoryMiB } = rng.chance(0.25) ? rng.pick(HOST_SHAPES) : shape;
      const n = hosts.length + 1;
      hosts.push({
        id: `node${String(n).padStart(2, '0')}`,
        site: SITE,
        cluster: `c${c + 1}`,
        cpus,
        memoryMiB,
        maintenance: false,
      });
    }
  });
  return hosts;
}

function splitInTwo(rng: Rng, count: number): number[] {
  const first = rng.int(2, count - 2);
  return [first, count - first];
}

function generateVms(rng: Rng, hosts: readonly Host[], cpuOvercommit: number): Vm[] {
  const vms: Vm[] = [];
  for (const host of hosts) {
    // Aimed a little above 30 %: VMs come in whole units, so a host may stop one small VM short of its aim.
    const load = 0.37 + rng.next() * 0.33;
    const memLimit = host.memoryMiB * load;
    const cpuLimit = host.cpus * cpuOvercommit * load;
    let mem = 0;
    let cpu = 0;
    const add = (memoryMiB: number, cpus: number): boolean => {
      if (mem + memoryMiB > memLimit || cpu + cpus > cpuLimit) return false;
      mem += memoryMiB;
      cpu += cpus;
      vms.push({
        id: `vm-${String(vms.length + 1).padStart(3, '0')}`,
        host: host.id,
        cpus,
        memoryMiB,
        ha: rng.chance(0.7),
        priority: rng.weighted(PRIORITIES),
      });
      return true;
    };
    // Draw VMs until the host is near its target load; a VM that would overshoot is skipped, not forced.
    for (let misses = 0; misses < 12; ) {
      const shape = rng.weighted(VM_SHAPES);
      if (!add(shape.memoryMiB, rng.pick(shape.cpus))) misses++;
    }
    // Then top up with the smallest VM, so the host ends within one small VM of its aim.
    while (add(SMALLEST_VM.memoryMiB, SMALLEST_VM.cpus)) {
      // add() did the work.
    }
  }
  return addAntiAffinity(rng, hosts, vms);
}

/** Puts a few groups of VMs, each on distinct hosts of one cluster, in anti-affinity groups. */
function addAntiAffinity(rng: Rng, hosts: readonly Host[], vms: Vm[]): Vm[] {
  const clusters = [...new Set(hosts.map((h) => h.cluster))];
  const groups = rng.int(0, 2);
  const groupOf = new Map<string, string>();
  let named = 0;
  for (let g = 0; g < groups; g++) {
    const cluster = rng.pick(clusters);
    const members = rng
      .shuffle(hosts.filter((h) => h.cluster === cluster))
      .slice(0, rng.int(2, 3))
      .map((h) => rng.shuffle(vms.filter((v) => v.host === h.id && !groupOf.has(v.id)))[0])
      .filter((v): v is Vm => v !== undefined);
    if (members.length < 2) continue;
    named++;
    for (const vm of members) groupOf.set(vm.id, `aa-${named}`);
  }
  return vms.map((vm) => {
    const antiAffinity = groupOf.get(vm.id);
    return antiAffinity === undefined ? vm : { ...vm, antiAffinity };
  });
}

interface FaultContext {
  readonly hosts: readonly Host[];
  readonly vms: readonly Vm[];
  readonly relays: readonly string[];
  readonly heartbeatMs: number;
  /** From a host's loss to its fence giving up: detection, the fence deadline and its last attempt. */
  readonly fenceGivesUpMs: number;
  /** When a failover reaches each phase after its host's loss, for faults aimed at a recovery under way. */
  readonly phases: FailoverPhases;
}

/** One episode: a fault and, for some, its partner (recover after crash, relay-up after relay-down…). */
interface Episode {
  readonly name: string;
  readonly weight: number;
  /** It takes a host down: a second one is drawn less often, so mass silence is a case, not the rule. */
  readonly losesHost: boolean;
  /** Faults this episode adds, at most; the budget of 1–4 faults is never exceeded. */
  readonly size: number;
  /** The faults, starting at `t`; null when the scenario has no fitting target left. */
  readonly build: (rng: Rng, t: number, ctx: FaultContext, claims: Claims) => ScenarioFault[] | null;
}

/**
 * Targets (hosts, relays, the uplink) no other episode touches yet, so that two episodes never fight over
 * one target: a stray relay-up never lands between another episode's relay-down and relay-up.
 */
class Claims {
  private readonly used = new Set<string>();

  /** Claims one unclaimed host passing `filter`; null when none is left. */
  host(rng: Rng, hosts: readonly Host[], filter: (h: Host) => boolean = () => true): Host | null {
    const candidates = hosts.filter((h) => !this.used.has(`host:${h.id}`) && filter(h));
    if (candidates.length === 0) return null;
    const host = rng.pick(candidates);
    this.used.add(`host:${host.id}`);
    return host;
  }

  /** Claims one unclaimed VM passing `filter`; null when none is left. */
  vm(rng: Rng, vms: readonly Vm[], filter: (v: Vm) => boolean = () => true): Vm | null {
    const candidates = vms.filter((v) => !this.used.has(`vm:${v.id}`) && filter(v));
    if (candidates.length === 0) return null;
    const vm = rng.pick(candidates);
    this.used.add(`vm:${vm.id}`);
    return vm;
  }

  /** Claims one unclaimed id of `kind`; null when all are taken. */
  one(rng: Rng, kind: 'relay' | 'site' | 'lan', ids: readonly string[]): string | null {
    const candidates = ids.filter((id) => !this.used.has(`${kind}:${id}`));
    if (candidates.length === 0) return null;
    const id = rng.pick(candidates);
    this.used.add(`${kind}:${id}`);
    return id;
  }
}

/**
 * An offset that lands near a failover phase (ms after the loss): a little before it, as it begins, or
 * while it runs (`spanMs`: how long it runs, such as a fence's BMC answers), within a few heartbeats.
 */
function aroundPhase(rng: Rng, phaseMs: number, heartbeatMs: number, spanMs: number): number {
  return Math.max(1, phaseMs + rng.int(-heartbeatMs, heartbeatMs + spanMs));
}

/** A delay after which a partner fault lands: before detection, mid-incident, or after the failover. */
function partnerDelay(rng: Rng, heartbeatMs: number): number {
  return rng.weighted([
    [rng.int(1, 2) * heartbeatMs, 1],
    [rng.int(3, 6) * heartbeatMs, 2],
    [rng.int(12, 20) * heartbeatMs, 2],
  ]);
}

/**
 * How a host is lost. A power loss takes the BMC with it, so nothing can confirm the fence and it always
 * ends with the operator: rarer alone, and the usual loss of the episode where the operator confirms.
 */
const hostLoss: readonly (readonly ['host-crash' | 'host-isolate' | 'power-loss', number])[] = [
  ['host-crash', 3],
  ['host-isolate', 3],
  ['power-loss', 1],
];

const operatorLoss: readonly (readonly ['host-crash' | 'power-loss', number])[] = [
  ['host-crash', 1],
  ['power-loss', 2],
];

const EPISODES: readonly Episode[] = [
  {
    name: 'host lost',
    weight: 6,
    losesHost: true,
    size: 1,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      return host === null ? null : [{ atMs: t, type: rng.weighted(hostLoss), host: host.id }];
    },
  },
  {
    name: 'host lost, then back',
    weight: 4,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      return [
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
        { atMs: t + partnerDelay(rng, ctx.heartbeatMs), type: 'host-recover', host: host.id },
      ];
    },
  },
  {
    name: 'host lost with a broken BMC',
    weight: 2,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      const bmc = rng.pick(['bmc-unreachable', 'bmc-ignores-off'] as const);
      return [
        { atMs: t, type: bmc, host: host.id },
        { atMs: t + rng.int(0, 500), type: rng.weighted(hostLoss), host: host.id },
      ];
    },
  },
  {
    // The fence cannot be confirmed, so only the operator's word releases the VMs. The host is crashed or
    // without power, never merely isolated: confirming a running host off is the operator's mistake, and
    // a split brain the simulator would rightly report.
    name: 'host dead, BMC broken, operator confirms',
    weight: 3,
    losesHost: true,
    size: 3,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      const bmc = rng.pick(['bmc-unreachable', 'bmc-ignores-off'] as const);
      return [
        { atMs: t, type: bmc, host: host.id },
        { atMs: t, type: rng.weighted(operatorLoss), host: host.id },
        {
          atMs: t + ctx.fenceGivesUpMs + rng.int(2, 12) * ctx.heartbeatMs,
          type: 'operator-confirms-off',
          host: host.id,
        },
      ];
    },
  },
  {
    name: 'host lost, a restart fails',
    weight: 3,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts, (h) => ctx.vms.some((v) => v.host === h.id && v.ha));
      if (host === null) return null;
      const vm = rng.pick(ctx.vms.filter((v) => v.host === host.id && v.ha));
      const others = ctx.hosts.filter((h) => h.cluster === host.cluster && h.id !== host.id);
      if (others.length === 0) return null;
      return [
        { atMs: t, type: 'vm-start-fails', vm: vm.id, host: rng.pick(others).id },
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
      ];
    },
  },
  {
    // A VM's process dies on a healthy host: restarted in place. Now and then it crashes again once
    // restarted (a crash of a VM that is down changes nothing, so the second waits for the restart).
    name: 'VM crash',
    weight: 4,
    losesHost: false,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const ha = !rng.chance(0.15);
      const vm = claims.vm(rng, ctx.vms, (v) => v.ha === ha);
      if (vm === null) return null;
      const first: ScenarioFault = { atMs: t, type: 'vm-crash', vm: vm.id };
      if (rng.chance(0.6)) return [first];
      return [first, { atMs: t + rng.int(8, 20) * ctx.heartbeatMs, type: 'vm-crash', vm: vm.id }];
    },
  },
  {
    // Four crashes, each after the restart of the one before: more than the restart budget (3), so the
    // fourth is left down by policy.
    name: 'VM crash loop',
    weight: 1,
    losesHost: false,
    size: 4,
    build: (rng, t, ctx, claims) => {
      const vm = claims.vm(rng, ctx.vms, (v) => v.ha);
      if (vm === null) return null;
      const faults: ScenarioFault[] = [];
      let at = t;
      for (let i = 0; i < 4; i++) {
        faults.push({ atMs: at, type: 'vm-crash', vm: vm.id });
        at += rng.int(10, 20) * ctx.heartbeatMs;
      }
      return faults;
    },
  },
  {
    // Its guest shuts the VM down: on purpose, so it must stay down.
    name: 'VM shut down by its guest',
    weight: 2,
    losesHost: false,
    size: 1,
    build: (rng, t, ctx, claims) => {
      const vm = claims.vm(rng, ctx.vms);
      return vm === null ? null : [{ atMs: t, type: 'vm-guest-shutdown', vm: vm.id }];
    },
  },
  {
    // A VM shut down on purpose, then its host is lost (and sometimes boots again): neither the failover
    // nor the new boot may bring the VM back.
    name: 'VM shut down, then its host lost',
    weight: 1,
    losesHost: true,
    size: 3,
    build: (rng, t, ctx, claims) => {
      const vm = claims.vm(rng, ctx.vms, (v) => v.ha);
      if (vm === null || claims.host(rng, ctx.hosts, (h) => h.id === vm.host) === null) return null;
      const lost = t + partnerDelay(rng, ctx.heartbeatMs);
      const faults: ScenarioFault[] = [
        { atMs: t, type: 'vm-guest-shutdown', vm: vm.id },
        { atMs: lost, type: rng.weighted(hostLoss), host: vm.host },
      ];
      if (rng.chance(0.5)) {
        faults.push({ atMs: lost + partnerDelay(rng, ctx.heartbeatMs), type: 'host-recover', host: vm.host });
      }
      return faults;
    },
  },
  {
    // A host is lost and, while its failover runs (or just after), an HA VM crashes: one of the lost
    // host's, wherever it was restarted by then (a no-op if not yet), or one on a surviving host.
    name: 'host lost, a VM crashes during the failover',
    weight: 3,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      const own = rng.chance(0.6);
      const vm = claims.vm(rng, ctx.vms, (v) => v.ha && (v.host === host.id) === own);
      if (vm === null) return null;
      return [
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
        { atMs: t + partnerDelay(rng, ctx.heartbeatMs), type: 'vm-crash', vm: vm.id },
      ];
    },
  },
  {
    // A host reboots before its relays call it silent: a new boot id, none of its VMs running.
    name: 'host reboots fast',
    weight: 2,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      return [
        { atMs: t, type: 'host-crash', host: host.id },
        { atMs: t + rng.int(1, 2) * ctx.heartbeatMs, type: 'host-recover', host: host.id },
      ];
    },
  },
  {
    // A host reboots in the middle of its incident: its BMC does not answer, so the fence cannot be
    // confirmed, and then the host is back with a new boot.
    name: 'host reboots during its incident',
    weight: 2,
    losesHost: true,
    size: 3,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      return [
        { atMs: t, type: 'bmc-unreachable', host: host.id },
        { atMs: t, type: 'host-crash', host: host.id },
        { atMs: t + rng.int(6, 20) * ctx.heartbeatMs, type: 'host-recover', host: host.id },
      ];
    },
  },
  {
    // A relay and a host die together (the relay ran on that host, or on its rack's power).
    name: 'relay dies with a host',
    weight: 1,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      if (ctx.relays.length < 2) return null;
      const relay = claims.one(rng, 'relay', ctx.relays);
      const host = claims.host(rng, ctx.hosts);
      if (relay === null || host === null) return null;
      return [
        { atMs: t, type: 'relay-down', relay },
        { atMs: t, type: rng.pick(['host-crash', 'power-loss'] as const), host: host.id },
      ];
    },
  },
  {
    // A host is lost and, just as its failover orders the fence, the relay given it dies (sometimes coming
    // back: a restarted relay resumes the fence it had taken, from its state file).
    name: 'relay dies during a fence',
    weight: 2,
    losesHost: true,
    size: 3,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      const relay = claims.one(rng, 'relay', ctx.relays);
      if (host === null || relay === null) return null;
      const down = t + aroundPhase(rng, ctx.phases.fenceMs, ctx.heartbeatMs, 3 * (host.bmcLatencyMs ?? 0));
      const faults: ScenarioFault[] = [
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
        { atMs: down, type: 'relay-down', relay },
      ];
      if (rng.chance(0.6)) {
        faults.push({ atMs: down + partnerDelay(rng, ctx.heartbeatMs), type: 'relay-up', relay });
      }
      return faults;
    },
  },
  {
    // A host is lost and, as its VMs start elsewhere, a survivor of its cluster (one of the wave's targets)
    // is lost too: its starts fail or are lost with it, and its own VMs need a failover of their own.
    name: 'a survivor is lost during the start wave',
    weight: 2,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      const survivor = claims.host(rng, ctx.hosts, (h) => h.cluster === host.cluster);
      if (survivor === null) return null;
      const at = t + aroundPhase(rng, ctx.phases.startMs(host.bmcLatencyMs ?? 0), ctx.heartbeatMs, 0);
      return [
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
        {
          atMs: at,
          type: rng.pick(['host-crash', 'power-loss', 'host-isolate'] as const),
          host: survivor.id,
        },
      ];
    },
  },
  {
    // A host is lost and its BMC stops answering while the fence runs, or its lost host boots again as its
    // VMs start elsewhere: the fence and the waves meet a world that changed under them.
    name: 'the lost host changes during its failover',
    weight: 2,
    losesHost: true,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      const latency = host.bmcLatencyMs ?? 0;
      if (rng.chance(0.5)) {
        return [
          { atMs: t, type: rng.pick(['host-crash', 'host-isolate'] as const), host: host.id },
          {
            atMs: t + aroundPhase(rng, ctx.phases.fenceMs, ctx.heartbeatMs, 2 * latency),
            type: 'bmc-unreachable',
            host: host.id,
          },
        ];
      }
      return [
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
        {
          atMs: t + aroundPhase(rng, ctx.phases.startMs(latency), ctx.heartbeatMs, 0),
          type: 'host-recover',
          host: host.id,
        },
      ];
    },
  },
  {
    // A host is lost and the site's internet link drops while its incident runs: the cloud hears nothing
    // until it is back, and the failover must pick up where it was.
    name: 'uplink lost during a failover',
    weight: 1,
    losesHost: true,
    size: 3,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null || claims.one(rng, 'site', [SITE]) === null) return null;
      const phase = rng.pick([
        ctx.phases.openMs,
        ctx.phases.fenceMs,
        ctx.phases.startMs(host.bmcLatencyMs ?? 0),
      ]);
      const down = t + aroundPhase(rng, phase, ctx.heartbeatMs, 0);
      return [
        { atMs: t, type: rng.weighted(hostLoss), host: host.id },
        { atMs: down, type: 'uplink-down', site: SITE },
        { atMs: down + partnerDelay(rng, ctx.heartbeatMs), type: 'uplink-up', site: SITE },
      ];
    },
  },
  {
    // The site's LAN degrades (delay, jitter that reorders, loss) for a while, or for good: heartbeats are
    // lost, inventories and start requests arrive late. A host the LAN hides long enough is fenced, which
    // is safe; nothing may start twice or before its fence.
    name: 'LAN degrades',
    weight: 3,
    losesHost: false,
    size: 2,
    build: (rng, t, ctx, claims) => {
      if (claims.one(rng, 'lan', [SITE]) === null) return null;
      const hb = ctx.heartbeatMs;
      const degrade: ScenarioFault = {
        atMs: t,
        type: 'lan-degrade',
        site: SITE,
        delayMs: rng.int(0, Math.floor(hb / 4)),
        jitterMs: rng.weighted([
          [0, 1],
          [rng.int(1, Math.floor(hb / 4)), 2],
          [rng.int(Math.floor(hb / 4), hb), 2],
        ]),
        lossPct: rng.weighted([
          [0, 2],
          [rng.int(1, 10), 3],
          [rng.int(10, 30), 2],
        ]),
      };
      if (rng.chance(0.25)) return [degrade];
      return [degrade, { atMs: t + partnerDelay(rng, hb), type: 'lan-heal', site: SITE }];
    },
  },
  {
    name: 'BMC fault alone',
    weight: 1,
    losesHost: false,
    size: 1,
    build: (rng, t, ctx, claims) => {
      const host = claims.host(rng, ctx.hosts);
      if (host === null) return null;
      return [{ atMs: t, type: rng.pick(['bmc-unreachable', 'bmc-ignores-off'] as const), host: host.id }];
    },
  },
  {
    name: 'relay down',
    weight: 3,
    losesHost: false,
    size: 2,
    build: (rng, t, ctx, claims) => {
      const relay = claims.one(rng, 'relay', ctx.relays);
      if (relay === null) return null;
      const down: ScenarioFault = { atMs: t, type: 'relay-down', relay };
      if (rng.chance(0.3)) return [down];
      return [down, { atMs: t + partnerDelay(rng, ctx.heartbeatMs), type: 'relay-up', relay }];
    },
  },
  {
    name: 'uplink down',
    weight: 3,
    losesHost: false,
    size: 2,
    build: (rng, t, ctx, claims) => {
      if (claims.one(rng, 'site', [SITE]) === null) return null;
      const down: ScenarioFault = { atMs: t, type: 'uplink-down', site: SITE };
      if (rng.chance(0.3)) return [down];
      return [down, { atMs: t + partnerDelay(rng, ctx.heartbeatMs), type: 'uplink-up', site: SITE }];
    },
  },
  {
    // Faults with nothing to act on: a recovery of a healthy host, a stray start failure, a relay or
    // uplink coming "up" while up, an operator confirming a host off that no incident waits on. The
    // control plane must shrug them off.
    name: 'stray fault',
    weight: 2,
    losesHost: false,
    size: 1,
    build: (rng, t, ctx, claims) => {
      const kind = rng.pick([
        'host-recover',
        'operator-confirms-off',
        'vm-start-fails',
        'relay-up',
        'uplink-up',
      ] as const);
      switch (kind) {
        case 'host-recover':
        case 'operator-confirms-off': {
          const host = claims.host(rng, ctx.hosts);
          return host === null ? null : [{ atMs: t, type: kind, host: host.id }];
        }
        case 'vm-start-fails': {
          const vm = rng.pick(ctx.vms);
          const others = ctx.hosts.filter((h) => h.id !== vm.host);
          return others.length === 0 ? null : [{ atMs: t, type: kind, vm: vm.id, host: rng.pick(others).id }];
        }
        case 'relay-up': {
          const relay = claims.one(rng, 'relay', ctx.relays);
          return relay === null ? null : [{ atMs: t, type: kind, relay }];
        }
        case 'uplink-up':
          return claims.one(rng, 'site', [SITE]) === null ? null : [{ atMs: t, type: kind, site: SITE }];
      }
    },
  },
];

function generateFaults(rng: Rng, ctx: FaultContext): ScenarioFault[] {
  const budget = rng.int(1, 4);
  const claims = new Claims();
  let hostsLost = 0;
  const faults: ScenarioFault[] = [];
  const start = rng.int(FIRST_FAULT_MS.min, FIRST_FAULT_MS.max);
  // A bounded number of draws: when no episode fits what is left, the scenario simply has fewer faults.
  for (let draws = 0; draws < 20 && faults.length < budget; draws++) {
    const fitting = EPISODES.filter((e) => e.size <= budget - faults.length);
    const episode = rng.weighted(
      fitting.map((e) => [e, e.losesHost && hostsLost > 0 ? e.weight / 4 : e.weight] as const),
    );
    const t = faults.length === 0 ? start : start + rng.int(0, FAULT_WINDOW_MS);
    const built = episode.build(rng, t, ctx, claims);
    if (built === null) continue;
    faults.push(...built);
    if (episode.losesHost) hostsLost++;
  }
  if (faults.length === 0) throw new Error('generateScenario: no fault could be placed');
  // Stable sort: faults at the same instant keep their episode's order (the BMC breaks before the crash).
  return faults.sort((a, b) => a.atMs - b.atMs);
}
