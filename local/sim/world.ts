import type { Scenario, ScenarioFault, ScenarioLan } from '../../contracts/scenario';

/**
 * The simulated physical world: the simulator's truth. The control plane, relays and agents only ever see
 * it through the simulated ports (local/sim/adapters), and the oracle checks the safety rules against it.
 * Every change is emitted as a {@link WorldEvent} stamped with the ms since the scenario started.
 */

/** How a host's BMC behaves. */
export type BmcMode = 'ok' | 'unreachable' | 'ignores-off';

/**
 * Why a VM stopped on a host: its host went (crash, power-off, fence), its own process died while the host
 * stayed up, or its guest shut down cleanly (on purpose).
 */
export type VmStopCause = 'host' | 'crashed' | 'shutdown';

/** How libvirt lists a VM defined on a running host where it does not run (state and reason, as virsh). */
export interface StoppedVm {
  readonly state: 'shut-off' | 'crashed';
  readonly reason: string;
}

/**
 * A defined VM not running on a booted host: after a reboot libvirt has lost why it stopped (its runtime
 * state lives on tmpfs) and lists every inactive definition as `shut off (unknown)`.
 */
const STOPPED_UNKNOWN: StoppedVm = { state: 'shut-off', reason: 'unknown' };

/** A LAN that delivers every message on the next turn of the event loop. */
export const PERFECT_LAN: ScenarioLan = { delayMs: 0, jitterMs: 0, lossPct: 0 };

/** One change of the world. */
export type WorldChange =
  | { readonly kind: 'fault'; readonly fault: ScenarioFault }
  | { readonly kind: 'power'; readonly host: string; readonly on: boolean; readonly why: string }
  | {
      readonly kind: 'os';
      readonly host: string;
      readonly running: boolean;
      readonly bootId: string;
      readonly why: string;
    }
  | { readonly kind: 'lan'; readonly host: string; readonly reachable: boolean }
  | { readonly kind: 'bmc'; readonly host: string; readonly mode: BmcMode }
  | { readonly kind: 'vm-start'; readonly vm: string; readonly host: string }
  | {
      readonly kind: 'vm-stop';
      readonly vm: string;
      readonly host: string;
      readonly why: string;
      readonly cause: VmStopCause;
    }
  | { readonly kind: 'relay'; readonly relay: string; readonly up: boolean }
  | { readonly kind: 'uplink'; readonly site: string; readonly up: boolean }
  | { readonly kind: 'start-fails'; readonly vm: string; readonly host: string }
  | { readonly kind: 'operator-confirms-off'; readonly host: string };

/** A change with the time it happened, in ms since the scenario started. */
export type WorldEvent = WorldChange & { readonly atMs: number };

/** A host as it physically is. */
export interface HostTruth {
  readonly id: string;
  readonly site: string;
  readonly cluster: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  power: boolean;
  /** The OS (and its agent) runs; false after a crash or without power. */
  running: boolean;
  bootId: string;
  boots: number;
  /** Reachable on the site's LAN (false: cable cut). */
  lan: boolean;
  bmc: BmcMode;
}

/** A VM's fixed shape. */
export interface VmShape {
  readonly id: string;
  readonly cpus: number;
  readonly memoryMiB: number;
}

/** The world of one scenario. Mutators emit one event per real change and nothing for a no-op. */
export class World {
  readonly hosts = new Map<string, HostTruth>();
  readonly vms = new Map<string, VmShape>();
  /** Where each VM really runs: a set, so a VM on two hosts (split brain) is representable. */
  readonly runningOn = new Map<string, Set<string>>();
  /**
   * Hosts where libvirt holds each VM's definition: where it first ran and every host it was started on.
   * A VM that stops there stays defined, so its host's agent keeps listing it, not running.
   */
  readonly definedOn = new Map<string, Set<string>>();
  /** How a VM that stopped on a host whose OS kept running is listed there, by `vm\0host`. */
  private readonly stoppedAs = new Map<string, StoppedVm>();
  readonly relaysUp = new Map<string, boolean>();
  readonly uplinksUp = new Map<string, boolean>();
  /** The site of each relay. */
  readonly relaySite = new Map<string, string>();
  /** Each site's LAN conditions now, and its own (what `lan-heal` gives back). */
  private readonly lanNow = new Map<string, ScenarioLan>();
  private readonly lanOwn = new Map<string, ScenarioLan>();
  /** How far each relay's clock is off the true time (ms, positive: ahead). */
  private readonly skew = new Map<string, number>();
  private readonly bmcLatency = new Map<string, number>();
  private readonly bootMs = new Map<string, number>();
  readonly events: WorldEvent[] = [];
  private readonly startFails = new Set<string>();
  private readonly listeners: ((event: WorldEvent) => void)[] = [];
  private sortedVms: VmShape[] = [];

  constructor(
    scenario: Pick<Scenario, 'sites' | 'hosts' | 'vms'>,
    /** Ms since the scenario started; the runner passes a real-time clock, tests a hand-driven one. */
    private readonly elapsed: () => number,
  ) {
    for (const site of scenario.sites) {
      this.uplinksUp.set(site.id, true);
      const lan = site.lan ?? PERFECT_LAN;
      this.lanOwn.set(site.id, lan);
      this.lanNow.set(site.id, lan);
      for (const [relay, ms] of Object.entries(site.relayClockSkewMs ?? {})) this.skew.set(relay, ms);
      for (const relay of site.relays) {
        this.relaysUp.set(relay, true);
        this.relaySite.set(relay, site.id);
      }
    }
    for (const h of scenario.hosts) {
      this.hosts.set(h.id, {
        id: h.id,
        site: h.site,
        cluster: h.cluster,
        cpus: h.cpus,
        memoryMiB: h.memoryMiB,
        power: true,
        running: true,
        bootId: `${h.id}-boot-1`,
        boots: 1,
        lan: true,
        bmc: 'ok',
      });
      if (h.bmcLatencyMs !== undefined) this.bmcLatency.set(h.id, h.bmcLatencyMs);
    }
    for (const vm of scenario.vms) {
      this.vms.set(vm.id, { id: vm.id, cpus: vm.cpus, memoryMiB: vm.memoryMiB });
      this.runningOn.set(vm.id, new Set([vm.host]));
      this.definedOn.set(vm.id, new Set([vm.host]));
      if (vm.bootMs !== undefined) this.bootMs.set(vm.id, vm.bootMs);
    }
  }

  /** Calls `listener` with every later event, synchronously, as it happens. */
  subscribe(listener: (event: WorldEvent) => void): void {
    this.listeners.push(listener);
  }

  now(): number {
    return this.elapsed();
  }

  host(id: string): HostTruth {
    const host = this.hosts.get(id);
    if (host === undefined) throw new Error(`unknown host ${id}`);
    return host;
  }

  /** VMs running on the host, in id order. */
  vmsOn(hostId: string): VmShape[] {
    const out: VmShape[] = [];
    for (const vm of this.vmsInIdOrder()) {
      if (this.runningOn.get(vm.id)?.has(hostId) === true) out.push(vm);
    }
    return out;
  }

  /** VMs defined on the host, running there or not, in id order: what `virsh list --all` shows. */
  vmsDefinedOn(hostId: string): VmShape[] {
    const out: VmShape[] = [];
    for (const vm of this.vmsInIdOrder()) {
      if (this.definedOn.get(vm.id)?.has(hostId) === true) out.push(vm);
    }
    return out;
  }

  /**
   * Every VM in id order (`localeCompare`), sorted again only when a VM is added (none is ever removed):
   * every agent lists its host's VMs at every heartbeat, and a sort each time was most of that.
   */
  private vmsInIdOrder(): readonly VmShape[] {
    if (this.sortedVms.length !== this.vms.size) {
      this.sortedVms = [...this.vms.values()].sort((a, b) => a.id.localeCompare(b.id));
    }
    return this.sortedVms;
  }

  /** How libvirt lists a VM defined on the host but not running there. */
  stoppedState(vmId: string, hostId: string): StoppedVm {
    return this.stoppedAs.get(`${vmId}\u0000${hostId}`) ?? STOPPED_UNKNOWN;
  }

  /** Whether the host's agent can talk on the LAN: powered, its OS running, its cable in. */
  onLan(hostId: string): boolean {
    const host = this.hosts.get(hostId);
    return host?.power === true && host.running && host.lan;
  }

  relayUp(relayId: string): boolean {
    return this.relaysUp.get(relayId) === true;
  }

  uplinkUp(siteId: string): boolean {
    return this.uplinksUp.get(siteId) === true;
  }

  /** The site's LAN conditions now. */
  lanOf(siteId: string): ScenarioLan {
    return this.lanNow.get(siteId) ?? PERFECT_LAN;
  }

  /** How far the program's clock is off the true time (ms, positive: ahead); 0 but for skewed relays. */
  clockSkewMs(programId: string): number {
    return this.skew.get(programId) ?? 0;
  }

  /** How long the host's BMC takes to answer a call (ms). */
  bmcLatencyMs(hostId: string): number {
    return this.bmcLatency.get(hostId) ?? 0;
  }

  /** The VM's own boot time (ms), if the scenario gives it one. */
  vmBootMs(vmId: string): number | undefined {
    return this.bootMs.get(vmId);
  }

  startWouldFail(vmId: string, hostId: string): boolean {
    return this.startFails.has(`${vmId}\u0000${hostId}`);
  }

  /** Applies a scenario fault. `operator-confirms-off` only records the operator's act: the runner calls the API. */
  inject(fault: ScenarioFault): void {
    this.emit({ kind: 'fault', fault });
    switch (fault.type) {
      case 'host-crash':
        this.crash(fault.host, 'crashed');
        return;
      case 'host-isolate':
        this.setLan(fault.host, false);
        return;
      case 'host-recover':
        this.recover(fault.host);
        return;
      case 'bmc-unreachable':
        this.setBmc(fault.host, 'unreachable');
        return;
      case 'bmc-ignores-off':
        this.setBmc(fault.host, 'ignores-off');
        return;
      case 'power-loss':
        // A dead PSU or PDU takes the BMC with it: nothing answers, nothing can confirm.
        this.setBmc(fault.host, 'unreachable');
        this.powerOff(fault.host, 'power lost');
        return;
      case 'operator-confirms-off':
        this.emit({ kind: 'operator-confirms-off', host: fault.host });
        return;
      case 'relay-down':
      case 'relay-up':
        if (this.relayUp(fault.relay) !== (fault.type === 'relay-up')) {
          this.relaysUp.set(fault.relay, fault.type === 'relay-up');
          this.emit({ kind: 'relay', relay: fault.relay, up: fault.type === 'relay-up' });
        }
        return;
      case 'uplink-down':
      case 'uplink-up':
        if (this.uplinkUp(fault.site) !== (fault.type === 'uplink-up')) {
          this.uplinksUp.set(fault.site, fault.type === 'uplink-up');
          this.emit({ kind: 'uplink', site: fault.site, up: fault.type === 'uplink-up' });
        }
        return;
      case 'vm-start-fails':
        this.startFails.add(`${fault.vm}\u0000${fault.host}`);
        this.emit({ kind: 'start-fails', vm: fault.vm, host: fault.host });
        return;
      case 'vm-crash':
        // libvirt's default on_crash is destroy: the domain is left shut off, reason crashed.
        this.vmStops(fault.vm, { state: 'shut-off', reason: 'crashed' }, 'crashed', 'process crashed');
        return;
      case 'vm-guest-shutdown':
        this.vmStops(fault.vm, { state: 'shut-off', reason: 'shutdown' }, 'shutdown', 'guest shut down');
        return;
      case 'lan-degrade':
        this.lanNow.set(fault.site, {
          delayMs: fault.delayMs,
          jitterMs: fault.jitterMs,
          lossPct: fault.lossPct,
        });
        return;
      case 'lan-heal':
        this.lanNow.set(fault.site, this.lanOwn.get(fault.site) ?? PERFECT_LAN);
        return;
    }
  }

  /**
   * The VM stops by itself wherever it runs (every copy, should it run twice) while its host stays up; a
   * VM that runs nowhere is left as it is.
   */
  private vmStops(vmId: string, listed: StoppedVm, cause: VmStopCause, why: string): void {
    for (const hostId of [...(this.runningOn.get(vmId) ?? [])].sort()) {
      this.stoppedAs.set(`${vmId}\u0000${hostId}`, listed);
      this.stopVm(vmId, hostId, why, cause);
    }
  }

  /** The OS dies; power stays on. Its VMs die with it. */
  crash(hostId: string, why: string): void {
    const host = this.host(hostId);
    if (!host.running) return;
    host.running = false;
    this.emit({ kind: 'os', host: hostId, running: false, bootId: host.bootId, why });
    this.stopAllOn(hostId, why);
  }

  /** The host loses power: OS and VMs stop. */
  powerOff(hostId: string, why: string): void {
    const host = this.host(hostId);
    if (!host.power) return;
    host.power = false;
    this.emit({ kind: 'power', host: hostId, on: false, why });
    if (host.running) {
      host.running = false;
      this.emit({ kind: 'os', host: hostId, running: false, bootId: host.bootId, why });
    }
    this.stopAllOn(hostId, why);
  }

  /** The host is whole again: powered, booted (a new boot if it was down), on the LAN, its BMC answering. */
  recover(hostId: string): void {
    const host = this.host(hostId);
    this.setBmc(hostId, 'ok');
    if (!host.power) {
      host.power = true;
      this.emit({ kind: 'power', host: hostId, on: true, why: 'recovered' });
    }
    if (!host.running) {
      host.boots += 1;
      host.bootId = `${hostId}-boot-${host.boots}`;
      // A fresh boot runs no VM (HA VMs have autostart off) and remembers no reason for any stop.
      for (const key of [...this.stoppedAs.keys()]) {
        if (key.endsWith(`\u0000${hostId}`)) this.stoppedAs.delete(key);
      }
      host.running = true;
      this.emit({ kind: 'os', host: hostId, running: true, bootId: host.bootId, why: 'booted' });
    }
    this.setLan(hostId, true);
  }

  setLan(hostId: string, reachable: boolean): void {
    const host = this.host(hostId);
    if (host.lan === reachable) return;
    host.lan = reachable;
    this.emit({ kind: 'lan', host: hostId, reachable });
  }

  setBmc(hostId: string, mode: BmcMode): void {
    const host = this.host(hostId);
    if (host.bmc === mode) return;
    host.bmc = mode;
    this.emit({ kind: 'bmc', host: hostId, mode });
  }

  /**
   * The VM now runs on the host, defined there from now on (also where it already runs elsewhere: that is
   * split brain, for the oracle). A VM stopped on that host runs there again: a restart in place.
   */
  startVm(vmId: string, hostId: string): void {
    const hosts = this.runningOn.get(vmId) ?? new Set<string>();
    this.runningOn.set(vmId, hosts);
    const defined = this.definedOn.get(vmId) ?? new Set<string>();
    this.definedOn.set(vmId, defined);
    defined.add(hostId);
    if (hosts.has(hostId)) return;
    this.stoppedAs.delete(`${vmId}\u0000${hostId}`);
    hosts.add(hostId);
    this.emit({ kind: 'vm-start', vm: vmId, host: hostId });
  }

  /** The VM stops running on the host (it stays defined there); `cause` says whose doing it was. */
  stopVm(vmId: string, hostId: string, why: string, cause: VmStopCause = 'host'): void {
    const hosts = this.runningOn.get(vmId);
    if (hosts === undefined || !hosts.delete(hostId)) return;
    this.emit({ kind: 'vm-stop', vm: vmId, host: hostId, why, cause });
  }

  private stopAllOn(hostId: string, why: string): void {
    for (const vm of this.vmsOn(hostId)) this.stopVm(vm.id, hostId, why, 'host');
  }

  private emit(change: WorldChange): void {
    const event: WorldEvent = { ...change, atMs: this.elapsed() };
    this.events.push(event);
    for (const listener of this.listeners) listener(event);
  }
}
