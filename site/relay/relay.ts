import {
  type CommandResult,
  type FenceReadiness,
  type HostReport,
  INVENTORY_REORDER_WINDOW_MS,
  type PeerRelay,
  PROTOCOL_VERSION,
  REPORT_BUDGET_BYTES,
  REPORT_DIGEST_HEX,
  type RelayCommand,
  type RelayReportV2,
  type ReportResponse,
} from '../../contracts/relay-protocol';
import { type HaPolicy, hostSilentAfterMs, resolvePolicy } from '../../core/policy';
import {
  type Definitions,
  DefinitionsSchema,
  type Heartbeat,
  HeartbeatSchema,
  type Inventory,
  InventorySchema,
  inventoryDigest,
  type LanMessage,
  type StartVmReply,
} from '../lan-protocol';
import {
  type Clock,
  type DefinitionStore,
  type HeardHost,
  type Lan,
  type RelayState,
  type RelayStateStore,
  type SavedCommand,
  type SiteLogger,
  silentLogger,
  type Uplink,
  UplinkError,
} from '../ports';
import { type CommandRun, describeError } from './command-run';
import { DEFAULT_FENCE_CHECK_MS, type RelayConfig } from './config';
import { SiteDefinitions } from './definitions';
import { FenceRun } from './fence-run';
import { checkHosts, sameReadiness } from './readiness';
import { makeRedactor } from './redact';
import { StartRun } from './start-run';

/** What the relay talks to. */
export interface RelayPorts {
  readonly clock: Clock;
  readonly uplink: Uplink;
  readonly lan: Lan;
  readonly state: RelayStateStore;
  /** Where the site's VM definitions are kept across restarts; in memory only when left out. */
  readonly definitions?: DefinitionStore;
  readonly log?: SiteLogger;
  /** Uniform in [0, 1): the jitter of retries and readiness checks; Math.random when left out. */
  readonly random?: () => number;
}

/** Longest `detail` the protocol accepts; a longer one would get the whole report refused. */
const MAX_DETAIL = 1000;

/** A finished command is remembered this long past its notAfter, so a late repeat is still recognised. */
const REMEMBER_DONE_MS = 15 * 60 * 1000;

interface Job {
  readonly command: RelayCommand;
  run: CommandRun | null;
  busy: boolean;
  finished: boolean;
  result: CommandResult | null;
}

/**
 * The site relay: hears the host agents, sends the site's batched report to the control plane, and carries
 * out the commands its responses bring (fence through a BMC, start a VM through an agent).
 *
 * It observes; the control plane decides. It is driven from outside like the agent: `receive()` takes each
 * LAN message and `tick()` does whatever is due (command steps, the report), awaiting what it started, so
 * the simulator runs it deterministically on virtual time; `run()` is the real program's loop.
 */
export class Relay {
  private readonly log: SiteLogger;
  private readonly policy: HaPolicy;
  private readonly silentAfterMs: number;
  private readonly random: () => number;
  /** Blanks every configured secret from a text; applied to everything that leaves the relay. */
  readonly redact: (text: string) => string;
  private readonly hosts = new Map<string, HeardHost>();
  /**
   * The boot each host last said it runs, from its heartbeats as well as its inventories: a reboot shows in
   * the first heartbeat, before the new inventory has come, and a fence for the old boot must see it.
   */
  private readonly heardBoot = new Map<string, string>();
  /** The inventory digest each host's latest heartbeat announced: a held inventory with another is stale. */
  private readonly announced = new Map<string, string>();
  /** When an inventory was last asked of each host, so a stream of heartbeats asks once per interval. */
  private readonly askedAt = new Map<string, number>();
  /** When definitions were last asked of each host, and which. */
  private readonly definitionsAskedAt = new Map<string, { at: number; key: string }>();
  /** The site's VM definitions, attached to start requests. */
  readonly definitions: SiteDefinitions;
  /** Latest readiness per host, and the ones not yet taken by the control plane. */
  private readonly readiness = new Map<string, FenceReadiness>();
  private readonly unsentReadiness = new Map<string, FenceReadiness>();
  private nextCheckAt: number;
  private checking: Promise<void> | null = null;
  /** Saves run one at a time, each writing the latest state; a save asked for during one runs after it. */
  private saving: Promise<void> | null = null;
  private saveAgain = false;
  private readonly jobs = new Map<string, Job>();
  /** Results not yet taken by the control plane, by command id. */
  private readonly unsent = new Map<string, CommandResult>();
  /** Hosts the last report called silent: a host crossing the threshold either way is reported at once. */
  private reportedSilent = new Set<string>();
  /**
   * The digest of each host's inventory the control plane took from this relay (a report carrying it was
   * accepted): the inventory goes again only when the digest moves on, or when the control plane asks.
   * Kept in memory only, so a relay that restarts sends every inventory once more.
   */
  private readonly acceptedDigest = new Map<string, string>();
  /** Hosts whose inventory the last response asked for (it holds another digest, or none). */
  private wanted = new Set<string>();
  /** When each of the site's other relays was last heard on the LAN (its relay heartbeats). */
  private readonly peerHeardAt = new Map<string, number>();
  /** Peer relays the last report called silent: one crossing the threshold either way is reported at once. */
  private reportedSilentPeers = new Set<string>();
  /** When this relay last sent its heartbeat to its peers. */
  private peerBeatAt = Number.NEGATIVE_INFINITY;
  private nextSeq: number;
  /** A restarted relay first listens one silence threshold, so live hosts are heard before any report. */
  private readonly quietUntil: number;
  private nextReportAt: number;
  private lastReportAt = Number.NEGATIVE_INFINITY;
  private changed = false;
  /**
   * Something a failover waits on changed since the last report (a command finished, a host crossed the
   * silence threshold either way): it goes out at once, whatever the report gap.
   */
  private urgent = false;
  /** Ends run()'s current sleep early (a command finished between ticks). */
  private wake: (() => void) | null = null;
  private sending = false;
  private failures = 0;
  private staleJump = 1000;

  private constructor(
    private readonly config: RelayConfig,
    private readonly ports: RelayPorts,
    saved: RelayState | null,
  ) {
    this.log = ports.log ?? silentLogger;
    this.policy = resolvePolicy(config.timing);
    this.silentAfterMs = hostSilentAfterMs(this.policy);
    this.random = ports.random ?? Math.random;
    this.redact = makeRedactor(config.credential, config.secrets ?? []);
    this.definitions = new SiteDefinitions(ports.definitions, this.log, () => ports.clock.now());
    const now = ports.clock.now();
    // Never below a seq handed out before the restart, nor below the wall clock (a lost state file).
    this.nextSeq = Math.max((saved?.seq ?? -1) + 1, now);
    for (const host of saved?.hosts ?? []) {
      // State files of relays before LAN protocol v1 carry no digest: the first heartbeat asks again.
      this.hosts.set(host.hostId, { ...host, digest: host.digest ?? '' });
    }
    for (const command of saved?.commands ?? []) this.restore(command, now);
    this.quietUntil = now + this.silentAfterMs;
    this.nextReportAt = this.quietUntil;
    // The first check runs at once: an operator starting a relay wants to know whether it can fence.
    this.nextCheckAt = now;
  }

  /** Opens a relay with its saved state (sequence number, hosts heard before a restart). */
  static async open(config: RelayConfig, ports: RelayPorts): Promise<Relay> {
    let saved: RelayState | null = null;
    try {
      saved = await ports.state.load();
    } catch (error) {
      // Still safe: the wall clock keeps seq above anything sent before, and hosts are heard again.
      (ports.log ?? silentLogger).warn('relay state unreadable; starting afresh', {
        error: describeError(error),
      });
    }
    const relay = new Relay(config, ports, saved);
    await relay.definitions.load();
    return relay;
  }

  /** Handles one message from the LAN: an agent's heartbeat, its inventory, or its answer to a start. */
  receive(message: LanMessage): void {
    if (message.kind === 'heartbeat') this.heard(message);
    else if (message.kind === 'inventory') this.inventory(message);
    else if (message.kind === 'definitions') this.receiveDefinitions(message);
    else if (message.kind === 'start-result') this.answered(message);
    else if (message.kind === 'relay-heartbeat') this.peerHeard(message.relayId);
  }

  /** Does what is due now (command steps and the report, side by side) and awaits it. */
  async tick(): Promise<void> {
    const now = this.ports.clock.now();
    this.beatToPeers(now);
    this.noticeSilence(now);
    const steps = this.stepDueCommands(now);
    const report = this.reportIfDue();
    await Promise.all(steps);
    await report;
    // Commands the report's response brought take their first step now, not a tick later: a fence's
    // power-off is on every failover's critical path.
    await Promise.all(this.stepDueCommands(this.ports.clock.now()));
    // A command that finished during this tick is reported at once, not at the next interval.
    await this.reportIfDue();
    this.forgetDone(this.ports.clock.now());
    this.checkReadinessIfDue(this.ports.clock.now());
  }

  /**
   * Reads every host's fence levels (power status only, nothing changes) and queues the readiness of
   * those whose answer changed for the next report. Runs every `fenceCheckMs`, jittered, beside the loop.
   */
  checkFenceReadiness(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  /** The real program's loop: a tick every `loopMs`, not awaited, so a slow BMC cannot hold reports back. */
  async run(signal?: AbortSignal): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const loopMs = this.config.loopMs ?? 100;
    while (signal?.aborted !== true) {
      const tick = this.tick().catch((error: unknown) => {
        this.log.warn('relay tick failed', { error: describeError(error) });
      });
      inFlight.add(tick);
      void tick.finally(() => inFlight.delete(tick));
      // The next tick comes early for a result that arrives between ticks (an agent's start answer, the
      // start's last hop to the control plane) and at the instant a host crosses the silence threshold,
      // so neither waits out loopMs.
      await Promise.race([
        this.ports.clock.sleep(Math.min(loopMs, this.untilNextSilence(this.ports.clock.now()))),
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
      ]);
      this.wake = null;
    }
    // The steps under way finish (a fence reads its power back), then the state is saved.
    await Promise.all(inFlight);
    await this.checking;
    await this.persist();
  }

  // ------------------------------------------------------------------ hosts

  private heard(message: Heartbeat): void {
    // The report is the site's only voice: one malformed heartbeat must not get it refused as a whole.
    const parsed = HeartbeatSchema.safeParse(message);
    if (!parsed.success) {
      this.log.warn('malformed heartbeat dropped', { issues: parsed.error.issues.length });
      return;
    }
    const hb = parsed.data;
    const now = this.ports.clock.now();
    const known = this.hosts.get(hb.hostId);
    if (known === undefined || known.digest !== hb.digest) {
      // What is reported changes only with a full inventory, which the agent sends on change; this asks
      // again for one that was lost (and for a host this relay has never heard).
      this.askInventory(hb.hostId, now);
    }
    if (known === undefined) return;
    this.heardBoot.set(hb.hostId, hb.bootId);
    this.announced.set(hb.hostId, hb.digest);
    this.hosts.set(hb.hostId, { ...known, heardAt: now });
    this.cameBack(hb.hostId);
  }

  private inventory(message: Inventory): void {
    const parsed = InventorySchema.safeParse(message);
    if (!parsed.success) {
      this.log.warn('malformed inventory dropped', { issues: parsed.error.issues.length });
      return;
    }
    const inv = parsed.data;
    const digest = inventoryDigest(inv);
    if (digest !== inv.digest) {
      this.log.warn('inventory dropped: its digest does not match its content', { hostId: inv.hostId });
      return;
    }
    const previous = this.hosts.get(inv.hostId);
    // An older inventory of the same boot arriving after a newer one (two pushes out of order) is dropped:
    // the newer one stands, and the heartbeats' digest asks again should this one have been the newest.
    if (
      previous !== undefined &&
      previous.bootId === inv.bootId &&
      previous.takenAt !== undefined &&
      inv.sentAt < previous.takenAt &&
      previous.takenAt - inv.sentAt < INVENTORY_REORDER_WINDOW_MS
    ) {
      this.log.warn('inventory dropped: older than the one held', { hostId: inv.hostId });
      return;
    }
    const host: HeardHost = {
      hostId: inv.hostId,
      cluster: inv.cluster,
      bootId: inv.bootId,
      cpus: inv.cpus,
      memoryMiB: inv.memoryMiB,
      vms: inv.vms,
      ...(inv.definitions === undefined ? {} : { definitions: inv.definitions }),
      digest,
      heardAt: this.ports.clock.now(),
      takenAt: inv.sentAt,
    };
    this.hosts.set(inv.hostId, host);
    this.heardBoot.set(inv.hostId, inv.bootId);
    this.askedAt.delete(inv.hostId);
    this.cameBack(inv.hostId);
    if (previous === undefined || previous.digest !== digest) this.changed = true;
    this.askDefinitions(host);
  }

  /** Asks a host for the definitions the relay wants from it (the same list at most once per interval). */
  private askDefinitions(host: HeardHost): void {
    const vmIds = this.definitions.wanted(host);
    if (vmIds.length === 0) return;
    const now = this.ports.clock.now();
    const key = vmIds.join(',');
    const asked = this.definitionsAskedAt.get(host.hostId);
    if (asked !== undefined && asked.key === key && now - asked.at < this.policy.hostHeartbeatMs) return;
    this.definitionsAskedAt.set(host.hostId, { at: now, key });
    this.ports.lan.send(host.hostId, {
      kind: 'definition-request',
      relayId: this.config.relayId,
      hostId: host.hostId,
      vmIds: vmIds.slice(0, 1000),
    });
  }

  private receiveDefinitions(message: Definitions): void {
    const parsed = DefinitionsSchema.safeParse(message);
    if (!parsed.success) {
      this.log.warn('malformed definitions dropped', { issues: parsed.error.issues.length });
      return;
    }
    void this.definitions.accept(this.hosts.get(parsed.data.hostId), parsed.data);
  }

  /** A host heard again after the last report called it silent: reported at once. */
  private cameBack(hostId: string): void {
    if (this.reportedSilent.has(hostId)) {
      this.urgent = true;
      this.changed = true;
    }
  }

  private askInventory(hostId: string, now: number): void {
    const asked = this.askedAt.get(hostId);
    if (asked !== undefined && now - asked < this.policy.hostHeartbeatMs) return;
    this.askedAt.set(hostId, now);
    this.ports.lan.send(hostId, { kind: 'inventory-request', relayId: this.config.relayId, hostId });
  }

  private isSilent(host: HeardHost, now: number): boolean {
    // Strictly above, as the control plane judges lastHeardMsAgo.
    return now - host.heardAt > this.silentAfterMs;
  }

  /** Time until the next heard host or peer relay would cross the silence threshold (strictly above it). */
  private untilNextSilence(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    const heardAt = [...[...this.hosts.values()].map((h) => h.heardAt), ...this.peerHeardAt.values()];
    for (const at of heardAt) {
      const until = at + this.silentAfterMs + 1 - now;
      // Already past it: the tick that saw it has made the report urgent, so no wake-up is owed.
      if (until > 0) next = Math.min(next, until);
    }
    return next;
  }

  private noticeSilence(now: number): void {
    for (const host of this.hosts.values()) {
      if (this.isSilent(host, now) !== this.reportedSilent.has(host.hostId)) {
        this.changed = true;
        this.urgent = true;
      }
    }
    // A peer relay going silent is news at once too: it may have died with a host it heard, and until the
    // control plane knows, that relay's word still keeps the host from failing over.
    for (const [relayId, heardAt] of this.peerHeardAt) {
      if (now - heardAt > this.silentAfterMs !== this.reportedSilentPeers.has(relayId)) {
        this.changed = true;
        this.urgent = true;
      }
    }
  }

  // ------------------------------------------------------------------ peer relays

  /** Every `hostHeartbeatMs`, a relay heartbeat to each of the site's other relays (LAN, UDP). */
  private beatToPeers(now: number): void {
    const peers = this.config.peers ?? [];
    if (peers.length === 0 || now < this.peerBeatAt + this.policy.hostHeartbeatMs) return;
    this.peerBeatAt = now;
    for (const peer of peers) {
      this.ports.lan.send(peer, { kind: 'relay-heartbeat', relayId: this.config.relayId });
    }
  }

  /** A peer relay's heartbeat; one that is not a configured peer is ignored. */
  private peerHeard(relayId: string): void {
    if (!(this.config.peers ?? []).includes(relayId)) return;
    this.peerHeardAt.set(relayId, this.ports.clock.now());
    // Heard again after the last report called it silent: reported at once, as for a host.
    if (this.reportedSilentPeers.has(relayId)) {
      this.changed = true;
      this.urgent = true;
    }
  }

  /** The peer relays heard since this relay started, with how long ago; the silent ones among them. */
  private peerViews(now: number): { relays: PeerRelay[]; silent: Set<string> } {
    const relays: PeerRelay[] = [];
    const silent = new Set<string>();
    for (const relayId of this.config.peers ?? []) {
      const heardAt = this.peerHeardAt.get(relayId);
      if (heardAt === undefined) continue;
      const lastHeardMsAgo = Math.max(0, Math.round(now - heardAt));
      relays.push({ relayId, lastHeardMsAgo });
      if (lastHeardMsAgo > this.silentAfterMs) silent.add(relayId);
    }
    return { relays, silent };
  }

  /** The boot the host is heard alive in now; null while it is silent or was never heard. */
  private aliveBoot(hostId: string): string | null {
    const host = this.hosts.get(hostId);
    if (host === undefined || this.isSilent(host, this.ports.clock.now())) return null;
    return this.heardBoot.get(hostId) ?? host.bootId;
  }

  private seenRunning(hostId: string, vmId: string): boolean {
    const host = this.hosts.get(hostId);
    return host?.vms.some((vm) => vm.id === vmId && vm.state === 'running') ?? false;
  }

  // ------------------------------------------------------------------ report

  private reportIfDue(): Promise<void> | null {
    const now = this.ports.clock.now();
    if (this.sending || now < this.quietUntil) return null;
    // After a failure the backoff decides: changes ride on the retry, which carries the latest state.
    // Urgent changes skip the gap: results come one per command and a host crosses the threshold at most
    // once per silence, so they cannot flood the API, and each is the cue for a failover's next step.
    const early =
      this.failures === 0 &&
      (this.urgent || (this.changed && now >= this.lastReportAt + (this.config.minReportGapMs ?? 250)));
    return now >= this.nextReportAt || early ? this.report(now) : null;
  }

  private async report(now: number): Promise<void> {
    this.sending = true;
    const report = this.buildReport(now);
    // Saved first (seq above all), though sent anyway when that fails: a seq reused after a restart is
    // only refused (409), and the wall clock makes it unlikely.
    await this.persist();
    try {
      const response = await this.ports.uplink.send(report, this.config.credential);
      this.failures = 0;
      this.staleJump = 1000;
      // The control plane sets the pace: its interval, shorter during incidents, longer while the site's
      // relays take turns, never past the relay silence (it would be taken for dead).
      this.nextReportAt =
        this.ports.clock.now() + Math.min(response.nextReportInMs, this.policy.relaySilentAfterMs);
      if (this.accepted(report, response)) await this.persist();
    } catch (error) {
      this.refused(error);
    } finally {
      this.sending = false;
    }
  }

  private buildReport(now: number): RelayReportV2 {
    const hosts: HostReport[] = [];
    const silent = new Set<string>();
    /** Inventories the control plane lacks, most wanted first: the ones it asked for. */
    const due: { readonly index: number; readonly wanted: boolean }[] = [];
    for (const h of this.hosts.values()) {
      if (this.isSilent(h, now)) silent.add(h.hostId);
      // The digest reported is the one the agent announces now. Heard in another boot than the inventory
      // held, or announcing another digest, the host runs something this relay does not hold yet: it is
      // reported for liveness with that digest, never with the old inventory, until the inventory comes.
      const digest = reportDigest(this.announced.get(h.hostId) ?? h.digest);
      const entry: HostReport = {
        hostId: h.hostId,
        lastHeardMsAgo: Math.max(0, Math.round(now - h.heardAt)),
        digest,
      };
      const wanted = this.wanted.has(h.hostId);
      if (this.holdsCurrent(h.hostId) && (wanted || this.acceptedDigest.get(h.hostId) !== digest)) {
        due.push({ index: hosts.length, wanted });
      }
      hosts.push(entry);
    }
    this.reportedSilent = silent;
    this.changed = false;
    this.urgent = false;
    this.lastReportAt = now;
    const seq = this.nextSeq;
    // Every attempt takes a new seq, sent or not: a retry is a new report with the latest state.
    this.nextSeq += 1;
    const peers = this.peerViews(now);
    this.reportedSilentPeers = peers.silent;
    const base: RelayReportV2 = {
      protocol: PROTOCOL_VERSION,
      siteId: this.config.siteId,
      relayId: this.config.relayId,
      seq,
      sentAt: now,
      hosts,
      results: [...this.unsent.values()],
      ...(this.config.peers === undefined || this.config.peers.length === 0 ? {} : { relays: peers.relays }),
    };
    const report =
      this.unsentReadiness.size === 0
        ? base
        : { ...base, fenceReadiness: [...this.unsentReadiness.values()] };
    // Inventories fill the report up to its budget; the rest go in the reports that follow, each of which
    // carries every host's liveness all the same (docs/protocol.md, "A site larger than one report").
    let size = JSON.stringify(report).length;
    let deferred = false;
    for (const { index } of [...due].sort((a, b) => Number(b.wanted) - Number(a.wanted))) {
      const entry = hosts[index];
      const held = entry === undefined ? undefined : this.hosts.get(entry.hostId);
      if (entry === undefined || held === undefined) continue;
      const inventory = {
        cluster: held.cluster,
        bootId: held.bootId,
        cpus: held.cpus,
        memoryMiB: held.memoryMiB,
        vms: [...held.vms],
        ...(held.takenAt === undefined ? {} : { takenAt: held.takenAt }),
      };
      // `,"inventory":` and the inventory itself.
      const more = 13 + JSON.stringify(inventory).length;
      if (size + more > REPORT_BUDGET_BYTES) {
        deferred = true;
        continue;
      }
      size += more;
      hosts[index] = { ...entry, inventory };
    }
    // What did not fit goes next, after the least gap between reports.
    if (deferred) this.changed = true;
    return report;
  }

  /**
   * The relay holds the inventory the host's agent announces now: the heartbeats' digest (which covers the
   * boot) is the held inventory's, or no heartbeat has come since the inventory.
   */
  private holdsCurrent(hostId: string): boolean {
    const held = this.hosts.get(hostId);
    if (held === undefined) return false;
    const announced = this.announced.get(hostId);
    return announced === undefined || announced === held.digest;
  }

  /**
   * A response: the results its report carried are done unless still listed; new commands are taken.
   * True when the state must be saved before anything else happens (a command taken, a result done).
   */
  private accepted(report: RelayReportV2, response: ReportResponse): boolean {
    // The inventories it carried are the control plane's now; what it asks for goes with the next report.
    for (const host of report.hosts) {
      if (host.inventory !== undefined) this.acceptedDigest.set(host.hostId, host.digest);
    }
    this.wanted = new Set(response.inventoryWanted ?? []);
    if ([...this.wanted].some((hostId) => this.holdsCurrent(hostId))) this.changed = true;
    const listed = new Set(response.commands.map((c) => c.commandId));
    let taken = false;
    for (const result of report.results) {
      if (!listed.has(result.commandId)) taken = this.unsent.delete(result.commandId) || taken;
    }
    for (const entry of report.fenceReadiness ?? []) {
      // Taken, unless a newer check changed it while the report was out.
      if (this.unsentReadiness.get(entry.hostId) === entry) this.unsentReadiness.delete(entry.hostId);
    }
    const before = this.jobs.size;
    for (const command of response.commands) this.take(command);
    // A command taken is on disk before its first step acts; a result taken is not resent after a restart.
    return taken || this.jobs.size !== before;
  }

  private refused(error: unknown): void {
    this.failures += 1;
    const base = Math.min(1000, this.policy.relayReportMs);
    const ceiling = Math.min(this.policy.relayReportMs, base * 2 ** (this.failures - 1));
    // Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): the relays of every site that
    // lost the control plane at the same moment do not all come back at the same moment. Never below
    // 50 ms, so a relay cannot spin.
    const backoff = Math.max(50, Math.round(this.random() * ceiling));
    this.nextReportAt = this.ports.clock.now() + backoff;
    const status = error instanceof UplinkError ? error.status : null;
    if (status === 409) {
      // The control plane accepted a higher seq than we know of (state lost, clock behind): leap past it.
      this.nextSeq = Math.max(this.nextSeq + this.staleJump, this.ports.clock.now());
      this.staleJump *= 2;
    }
    this.log.warn('report not accepted; retrying', {
      status,
      code: error instanceof UplinkError ? error.code : null,
      error: describeError(error),
      failures: this.failures,
      retryInMs: backoff,
    });
  }

  // ------------------------------------------------------------------ commands

  /**
   * A command from a response. One already taken is never carried out again (safety rule 4): its result
   * is queued again for as long as the control plane keeps sending it. One past notAfter is not started.
   */
  private take(command: RelayCommand): void {
    const known = this.jobs.get(command.commandId);
    if (known !== undefined) {
      if (known.result !== null && !this.unsent.has(command.commandId)) {
        this.unsent.set(command.commandId, known.result);
      }
      return;
    }
    const job: Job = { command, run: null, busy: false, finished: false, result: null };
    this.jobs.set(command.commandId, job);
    const now = this.ports.clock.now();
    if (now > command.notAfter) {
      this.finish(
        job,
        notStarted(command, now, `received after its notAfter (${command.notAfter}); not started`),
      );
      return;
    }
    if (!this.startRun(job, now)) return;
    this.log.info('command taken', {
      commandId: command.commandId,
      kind: command.kind,
      hostId: command.hostId,
    });
  }

  /** Gives a job its run; false when it cannot be carried out here (finished as failed at once). */
  private startRun(job: Job, now: number): boolean {
    const { command } = job;
    if (command.kind === 'fence') {
      const levels = this.config.fence[command.hostId] ?? [];
      if (levels.length === 0) {
        this.finish(job, {
          ...notStarted(
            command,
            now,
            `no fence level configured for ${command.hostId} on relay ${this.config.relayId}`,
          ),
          powerState: 'unknown',
        });
        return false;
      }
      const run = new FenceRun(command, levels, {
        clock: this.ports.clock,
        pollMs: this.config.bmcPollMs ?? 1000,
        aliveBoot: () => this.aliveBoot(command.hostId),
      });
      // Refused at once, before a step: the host is already heard in another boot than the fence's.
      const stale = run.staleBoot();
      if (stale !== null) {
        this.log.warn('fence refused: the host is alive in another boot', {
          commandId: command.commandId,
          hostId: command.hostId,
        });
        this.finish(job, stale);
        return false;
      }
      job.run = run;
    } else {
      job.run = new StartRun(command, {
        relayId: this.config.relayId,
        lan: this.ports.lan,
        clock: this.ports.clock,
        resendMs: this.config.startResendMs ?? this.policy.hostHeartbeatMs,
        seenRunning: (hostId, vmId) => this.seenRunning(hostId, vmId),
        definitionOf: (vmId) => this.definitions.xmlOf(vmId),
        heardBoot: (hostId) => this.heardBoot.get(hostId) ?? this.hosts.get(hostId)?.bootId,
      });
    }
    return true;
  }

  /**
   * A command from the state file. A finished one is remembered (never carried out again; its result is
   * resent if the control plane had not taken it); one in flight when the relay died is resumed, which is
   * safe because each run starts by reading: a fence reads the power status before sending anything, and
   * an agent answers a repeated start request from memory or finds the VM already running.
   */
  private restore(saved: SavedCommand, now: number): void {
    const { command, result } = saved;
    const job: Job = { command, run: null, busy: false, finished: result !== null, result };
    this.jobs.set(command.commandId, job);
    if (result !== null) {
      if (saved.unsent) this.unsent.set(command.commandId, result);
      return;
    }
    if (now > command.notAfter) {
      // Its time ran out while the relay was down: nothing true to say, the control plane times it out.
      job.finished = true;
      this.log.warn('command in flight at restart is past its notAfter; left to the control plane', {
        commandId: command.commandId,
      });
      return;
    }
    if (this.startRun(job, now)) {
      this.log.info('command resumed after restart', { commandId: command.commandId, kind: command.kind });
    }
  }

  /** The state to save: seq, hosts and every command not yet forgotten. */
  private snapshot(): RelayState {
    const commands: SavedCommand[] = [];
    for (const job of this.jobs.values()) {
      commands.push({
        command: job.command,
        result: job.result,
        unsent: this.unsent.has(job.command.commandId),
      });
    }
    return { seq: this.nextSeq - 1, hosts: [...this.hosts.values()], commands };
  }

  /** Saves the latest state; concurrent calls share one write and the write after it. Never throws. */
  private persist(): Promise<void> {
    if (this.saving !== null) {
      this.saveAgain = true;
      return this.saving;
    }
    const write = async () => {
      do {
        this.saveAgain = false;
        try {
          await this.ports.state.save(this.snapshot());
        } catch (error) {
          this.log.warn('relay state not saved', { error: this.redact(describeError(error)) });
        }
      } while (this.saveAgain);
    };
    this.saving = write().finally(() => {
      this.saving = null;
    });
    return this.saving;
  }

  private checkReadinessIfDue(now: number): void {
    const every = this.config.fenceCheckMs ?? DEFAULT_FENCE_CHECK_MS;
    if (every <= 0 || now < this.nextCheckAt || this.checking !== null) return;
    // Jittered by up to a tenth either way, so the relays of a site do not read every BMC in step.
    this.nextCheckAt = now + Math.round(every * (0.9 + 0.2 * this.random()));
    void this.checkFenceReadiness();
  }

  private async runCheck(): Promise<void> {
    // A host being fenced is left alone: its BMC is busy with the power-off, and the fence tells more.
    const fencing = new Set<string>();
    for (const job of this.jobs.values()) {
      if (!job.finished && job.command.kind === 'fence') fencing.add(job.command.hostId);
    }
    const hostIds = Object.keys(this.config.fence).filter((h) => !fencing.has(h));
    try {
      const results = await checkHosts(this.config.fence, hostIds, this.redact, () => this.ports.clock.now());
      for (const entry of results) {
        const previous = this.readiness.get(entry.hostId);
        this.readiness.set(entry.hostId, entry);
        if (previous !== undefined && sameReadiness(previous, entry)) continue;
        this.unsentReadiness.set(entry.hostId, entry);
        this.changed = true;
        const log = entry.ok ? this.log.info : this.log.warn;
        log.call(this.log, 'fence readiness changed', {
          hostId: entry.hostId,
          ok: entry.ok,
          levels: entry.levels.map((l) => `${l.level} ${l.driver}: ${l.ok ? `ok (${l.power})` : l.error}`),
        });
      }
    } catch (error) {
      this.log.warn('fence readiness check failed', { error: this.redact(describeError(error)) });
    }
  }

  private stepDueCommands(now: number): Promise<void>[] {
    const steps: Promise<void>[] = [];
    for (const job of this.jobs.values()) {
      const run = job.run;
      if (run === null || job.finished || job.busy || run.dueAt > now) continue;
      steps.push(this.step(job, run));
    }
    return steps;
  }

  private async step(job: Job, run: CommandRun): Promise<void> {
    job.busy = true;
    try {
      const outcome = await run.step();
      if (outcome.finished && !job.finished) this.finish(job, outcome.result);
    } catch (error) {
      this.log.warn('command step failed; retried at the next tick', {
        commandId: job.command.commandId,
        error: describeError(error),
      });
    } finally {
      job.busy = false;
    }
  }

  private answered(reply: StartVmReply): void {
    const job = this.jobs.get(reply.commandId);
    if (job === undefined || job.finished || !(job.run instanceof StartRun)) return;
    const result = job.run.answered(reply);
    if (result !== null) this.finish(job, result);
  }

  private finish(job: Job, result: CommandResult | null): void {
    job.finished = true;
    job.run = null;
    const commandId = job.command.commandId;
    if (result === null) {
      this.log.warn('command ended without a result; the control plane times it out', { commandId });
      return;
    }
    const clean: CommandResult =
      result.detail === undefined
        ? result
        : { ...result, detail: this.redact(result.detail).slice(0, MAX_DETAIL) };
    job.result = clean;
    this.unsent.set(commandId, clean);
    this.changed = true;
    this.urgent = true;
    this.wake?.();
    this.log.info('command finished', { commandId, outcome: clean.outcome, powerState: clean.powerState });
  }

  private forgetDone(now: number): void {
    for (const [commandId, job] of this.jobs) {
      if (!job.finished || this.unsent.has(commandId)) continue;
      if (now > job.command.notAfter + REMEMBER_DONE_MS) this.jobs.delete(commandId);
    }
  }
}

/** A failed result for a command never started. */
function notStarted(command: RelayCommand, now: number, detail: string): CommandResult {
  return {
    commandId: command.commandId,
    incidentId: command.incidentId,
    outcome: 'failed',
    detail,
    finishedAt: now,
  };
}

/** A LAN inventory digest as the relay protocol carries it: its first 128 bits. */
function reportDigest(lanDigest: string): string {
  return lanDigest.slice(0, REPORT_DIGEST_HEX);
}
