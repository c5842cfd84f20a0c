import type { IdGenerator } from '../../app/ports';
import { REPORT_ROUTE } from '../../contracts/operator-api';
import type { AnyRelayReport, ObservedVm, ReportResponse } from '../../contracts/relay-protocol';
import type { ScenarioLan } from '../../contracts/scenario';
import { HttpUplink, reportAnswer } from '../../site/adapters/http-uplink';
import { DEFAULT_LAN_HTTP_TIMEOUT_MS, DEFAULT_LAN_MAX_SKEW_MS } from '../../site/adapters/lan-transport';
import { DATAGRAM_KINDS, type LanMessage } from '../../site/lan-protocol';
import {
  type Clock,
  type FenceDevice,
  type HostCapacity,
  type Hypervisor,
  type Lan,
  type PowerStatus,
  type RelayState,
  type RelayStateStore,
  type Uplink,
  UplinkError,
  type VmSpec,
} from '../../site/ports';
import type { LocalDispatcher } from '../http-endpoint';
import type { World } from './world';

/**
 * Simulated implementations of the site ports (site/ports.ts): the same relay and agent code runs on them,
 * and they let it do only what the physical world allows.
 */

/** Real time: scenario timings are small, and the control plane (Step Functions runner) runs on it too. */
export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

/**
 * The clock of a site program: the true (simulated) time, off by the program's skew in the world (relays
 * with `relayClockSkewMs`). Only readings are off: a sleep lasts as long on every clock.
 */
export function programClock(world: World, programId: string): Clock {
  return { now: () => Date.now() + world.clockSkewMs(programId), sleep: realClock.sleep };
}

/** The hypervisor of one simulated host: what runs there is what the world says. */
export class SimHypervisor implements Hypervisor {
  constructor(
    private readonly world: World,
    private readonly hostId: string,
    private readonly clock: Clock,
    private readonly vmBootMs: number,
  ) {}

  private alive(): void {
    const host = this.world.host(this.hostId);
    if (!host.power || !host.running) throw new Error(`${this.hostId} is down`);
  }

  async bootId(): Promise<string> {
    this.alive();
    return this.world.host(this.hostId).bootId;
  }

  async capacity(): Promise<HostCapacity> {
    this.alive();
    const host = this.world.host(this.hostId);
    return { cpus: host.cpus, memoryMiB: host.memoryMiB };
  }

  /**
   * Every VM defined here, as libvirt lists it: running, or stopped with its state and reason (a crashed
   * VM stays defined, so it is listed `shut-off`/`crashed`; after a reboot every one is `shut-off`/`unknown`).
   */
  async listVms(): Promise<ObservedVm[]> {
    this.alive();
    const running = new Set(this.world.vmsOn(this.hostId).map((vm) => vm.id));
    return this.world.vmsDefinedOn(this.hostId).map((vm): ObservedVm => {
      const shape = { id: vm.id, cpus: vm.cpus, memoryMiB: vm.memoryMiB };
      if (running.has(vm.id)) return { ...shape, state: 'running' };
      const stopped = this.world.stoppedState(vm.id, this.hostId);
      return { ...shape, state: stopped.state, reason: stopped.reason };
    });
  }

  async startVm(vm: VmSpec): Promise<void> {
    this.alive();
    if (this.world.runningOn.get(vm.id)?.has(this.hostId) === true) return;
    if (this.world.startWouldFail(vm.id, this.hostId)) {
      throw new Error(`libvirt: ${vm.id} failed to start on ${this.hostId} (injected)`);
    }
    const bootMs = this.world.vmBootMs(vm.id) ?? this.vmBootMs;
    if (bootMs > 0) await this.clock.sleep(bootMs);
    // The host may have died while the VM was booting.
    this.alive();
    if (!this.world.vms.has(vm.id)) {
      this.world.vms.set(vm.id, { id: vm.id, cpus: vm.cpus, memoryMiB: vm.memoryMiB });
    }
    this.world.startVm(vm.id, this.hostId);
  }
}

/**
 * One host's BMC as one relay reaches it over the management network. A call takes the host's BMC latency
 * (`bmcLatencyMs`) and acts when it is answered: the power-off happens, and the status is read, at the
 * end of the call. An unreachable BMC fails only after that long too, as a session that times out.
 */
export class SimBmc implements FenceDevice {
  readonly driver = 'sim';

  constructor(
    private readonly world: World,
    private readonly relayId: string,
    private readonly hostId: string,
    private readonly clock: Clock = realClock,
  ) {}

  private relayUp(): void {
    if (!this.world.relayUp(this.relayId)) throw new Error(`relay ${this.relayId} is down`);
  }

  /** Waits out the BMC's latency, then does `act` if the BMC answers. */
  private async call<T>(act: () => T): Promise<T> {
    this.relayUp();
    const latency = this.world.bmcLatencyMs(this.hostId);
    if (latency > 0) await this.clock.sleep(latency);
    this.relayUp();
    if (this.world.host(this.hostId).bmc === 'unreachable') {
      throw new Error(`ipmitool: unable to establish IPMI v2 / RMCP+ session with bmc-${this.hostId}.sim`);
    }
    return act();
  }

  powerOff(): Promise<void> {
    return this.call(() => {
      // A BMC that ignores power-off acknowledges it all the same: only the read-back tells.
      if (this.world.host(this.hostId).bmc === 'ignores-off') return;
      this.world.powerOff(this.hostId, `fenced through ${this.relayId}`);
    });
  }

  powerStatus(): Promise<PowerStatus> {
    return this.call(() => (this.world.host(this.hostId).power ? 'on' : 'off'));
  }
}

/** Linux's minimum TCP retransmission timeout: a lost segment is resent after it, then after twice as long… */
export const TCP_RTO_MIN_MS = 200;

/** Something that takes LAN messages: an agent or a relay. */
export interface LanPeer {
  receive(message: LanMessage): unknown;
}

/**
 * The site LANs: delivers a message when both ends are up and reachable, else drops it silently. Peers
 * register by id and are looked up at delivery, so a message to a restarted program reaches the new
 * instance.
 *
 * A perfect LAN (the default) delivers on the next turn of the event loop. A site's LAN conditions
 * (World.lanOf: the scenario's `lan`, `lan-degrade`) delay each message by `delayMs` plus a uniform draw of
 * up to `jitterMs` (messages overtake each other), and lose each transmission with probability `lossPct`
 * %. What is lost depends on the transport, as in production (site/adapters/lan-transport.ts): a datagram
 * (heartbeat, inventory or definition request: UDP) is gone; an HTTP message (inventory, definitions,
 * start request and answer: TCP) is retransmitted after TCP's retransmission timeout, doubling each time,
 * so it arrives late, and is lost only when it cannot get through within the transport's HTTP timeout.
 * The programs recover either way: heartbeats repeat, a relay asks again for an inventory whose digest it
 * lacks, and resends a start request until it is answered.
 *
 * Clocks: each message carries its sender's clock (the transport's envelope `sentAt`), and the receiver
 * refuses it as stale when its own clock differs by more than the transport's window (10 s), as the
 * production transport does. Only relays are skewed (World.clockSkewMs).
 *
 * A message in flight is lost when either end leaves the LAN before it arrives, so a delay never lets a
 * heartbeat from a host that is gone arrive late: a relay's silence still starts at the loss.
 */
export class SimNetwork {
  private readonly peers = new Map<string, LanPeer>();
  /** Messages delivered and dropped (any reason), for the curious. */
  delivered = 0;
  dropped = 0;
  /** Of the dropped: lost on a degraded LAN, and refused as stale for a sender's skewed clock. */
  lost = 0;
  stale = 0;
  /** When each host's latest heartbeat reached a relay, in scenario time (ms). */
  readonly lastHeartbeatAt = new Map<string, number>();

  constructor(
    private readonly world: World,
    private readonly onError: (error: unknown) => void = () => undefined,
    /** Draws of delay and loss: a seeded stream, so a run replays; Math.random (seeded in a virtual run) by default. */
    private readonly random: () => number = Math.random,
  ) {}

  attach(id: string, peer: LanPeer): void {
    this.peers.set(id, peer);
  }

  detach(id: string, peer: LanPeer): void {
    if (this.peers.get(id) === peer) this.peers.delete(id);
  }

  /** The LAN port of one program (a host agent by host id, a relay by relay id). */
  lanFor(selfId: string): Lan {
    return { send: (to, message) => this.send(selfId, to, message) };
  }

  private up(id: string): boolean {
    if (this.world.relaysUp.has(id)) return this.world.relayUp(id);
    return this.world.onLan(id);
  }

  private siteOf(id: string): string | undefined {
    return this.world.relaySite.get(id) ?? this.world.hosts.get(id)?.site;
  }

  /**
   * How long the message takes on a LAN in these conditions (ms), or null when it is lost. Draws nothing
   * on a perfect LAN, so a scenario without LAN conditions runs as it always did.
   */
  transitMs(kind: LanMessage['kind'], lan: ScenarioLan): number | null {
    if (lan.delayMs === 0 && lan.jitterMs === 0 && lan.lossPct === 0) return 0;
    let delay = lan.delayMs + (lan.jitterMs > 0 ? Math.floor(this.random() * (lan.jitterMs + 1)) : 0);
    if (DATAGRAM_KINDS.has(kind)) return this.transmissionLost(lan) ? null : delay;
    for (
      let rto = TCP_RTO_MIN_MS;
      delay < DEFAULT_LAN_HTTP_TIMEOUT_MS && this.transmissionLost(lan);
      rto *= 2
    )
      delay += rto;
    return delay < DEFAULT_LAN_HTTP_TIMEOUT_MS ? delay : null;
  }

  /** Whether one transmission is lost (a draw only on a lossy LAN). */
  private transmissionLost(lan: ScenarioLan): boolean {
    return lan.lossPct > 0 && this.random() * 100 < lan.lossPct;
  }

  private send(from: string, to: string, message: LanMessage): void {
    const site = this.siteOf(from);
    if (!this.up(from) || !this.up(to) || site === undefined || site !== this.siteOf(to)) {
      this.dropped += 1;
      return;
    }
    const transit = this.transitMs(message.kind, this.world.lanOf(site));
    if (transit === null) {
      this.lost += 1;
      this.dropped += 1;
      return;
    }
    // The receiver's clock on arrival against the sender's on sending, as the transport's envelope tells.
    const skew = this.world.clockSkewMs(to) - this.world.clockSkewMs(from);
    if (Math.abs(transit + skew) > DEFAULT_LAN_MAX_SKEW_MS) {
      this.stale += 1;
      this.dropped += 1;
      return;
    }
    // The message and its ends ride on the timer (no closure per message: a run sends thousands).
    if (transit === 0) setImmediate(arrive, this, from, to, message);
    else setTimeout(arrive, transit, this, from, to, message);
  }

  /** A message reaches its receiver, unless either end left the LAN while it was in flight. */
  deliver(from: string, to: string, message: LanMessage): void {
    // Checked again on arrival: a cable cut while the datagram was in flight loses it.
    const peer = this.peers.get(to);
    if (peer === undefined || !this.up(to) || !this.up(from)) {
      this.dropped += 1;
      return;
    }
    this.delivered += 1;
    if (message.kind === 'heartbeat') this.lastHeartbeatAt.set(from, this.world.now());
    try {
      const result = peer.receive(message);
      if (result instanceof Promise) result.catch(this.onError);
    } catch (error) {
      this.onError(error);
    }
  }
}

function arrive(network: SimNetwork, from: string, to: string, message: LanMessage): void {
  network.deliver(from, to, message);
}

/**
 * A relay's uplink: the production HTTP uplink to a real-time local control plane, or the in-process
 * {@link DispatchUplink} on virtual time, unless the relay is down or its site's internet link is cut,
 * which fail like an unreachable endpoint (no status).
 */
export class SimUplink implements Uplink {
  constructor(
    private readonly world: World,
    private readonly relayId: string,
    private readonly siteId: string,
    private readonly inner: Uplink,
  ) {}

  async send(report: AnyRelayReport, credential: string): Promise<ReportResponse> {
    this.reachable();
    try {
      return await this.inner.send(report, credential);
    } finally {
      // The link may have been cut while the request was out: the answer, whatever it was, never arrives.
      this.reachable();
    }
  }

  private reachable(): void {
    if (!this.world.relayUp(this.relayId)) throw new UplinkError(null, null, `relay ${this.relayId} is down`);
    if (!this.world.uplinkUp(this.siteId)) {
      throw new UplinkError(null, null, `site ${this.siteId} has no internet link`);
    }
  }
}

/** The HTTP uplink of a real relay, to a control plane's base URL (real-time runs). */
export function httpUplink(baseUrl: string): Uplink {
  return new HttpUplink(baseUrl, 60_000);
}

/**
 * The report request as the HTTP uplink sends it (JSON body, bearer credential), served in-process by the
 * control plane's dispatcher, its answer read as the HTTP uplink reads it: the same bytes cross the
 * boundary, without a socket.
 */
export class DispatchUplink implements Uplink {
  constructor(private readonly dispatch: LocalDispatcher) {}

  async send(report: AnyRelayReport, credential: string): Promise<ReportResponse> {
    const result = await this.dispatch({
      method: REPORT_ROUTE.method,
      rawPath: REPORT_ROUTE.path,
      rawQueryString: '',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${credential}` },
      body: Buffer.from(JSON.stringify(report)),
      sourceIp: '127.0.0.1',
      protocol: 'HTTP/1.1',
    });
    return reportAnswer(result.statusCode ?? 200, bodyText(result.body, result.isBase64Encoded === true));
  }
}

/** A lone surrogate: the one thing a UTF-8 round trip changes in a string (to U+FFFD). */
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * The response body as the HTTP uplink reads it: its UTF-8 bytes decoded. A string without surrogates
 * (every JSON answer in practice) reads back as itself, so it is not encoded and decoded again.
 */
function bodyText(body: string | undefined, base64: boolean): string {
  if (body === undefined) return '';
  if (!base64 && !SURROGATE.test(body)) return body;
  return Buffer.from(body, base64 ? 'base64' : 'utf8').toString();
}

/** Ids and secrets drawn from a seeded generator: a virtual run names everything the same way each time. */
export class SeededIds implements IdGenerator {
  constructor(private readonly random: () => number) {}

  private chars(n: number): string {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[Math.floor(this.random() * 64)] ?? 'A';
    return out;
  }

  newId(prefix: string): string {
    return `${prefix}-${this.chars(22)}`;
  }

  newSecret(): string {
    return this.chars(43);
  }
}

/** A relay's state file, kept in memory: survives the relay going down and up. */
export class MemoryRelayStateStore implements RelayStateStore {
  private state: RelayState | null = null;

  async load(): Promise<RelayState | null> {
    return this.state;
  }

  async save(state: RelayState): Promise<void> {
    this.state = state;
  }
}
