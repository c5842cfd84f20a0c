import type { Scenario, ScenarioLan, ViolationRule } from '../../contracts/scenario';
import { type HaPolicy, hostSilentAfterMs } from '../../core/policy';
import { DEFAULT_LAN_MAX_SKEW_MS } from '../../site/adapters/lan-transport';
import type { VmStopCause, World, WorldEvent } from './world';

/**
 * The oracle's availability rules: `ha-vm-down` (an HA VM left down longer than its recovery needs while
 * nothing excused it) and `false-recovered` (an incident closed `recovered` while one of its HA VMs was
 * down), and every VM's down time for the report. Safety rules say what must never happen; these say
 * what must happen, so they are judged against time: the runner calls {@link AvailabilityRules.check}
 * as it polls, not only on world events.
 */

/** How long an HA VM may stay down, unexcused, before `ha-vm-down`: one bound per way of going down. */
export interface HaDownBounds {
  /** The VM went with its host: detection, confirmation, fencing, three waves of starts, margin. */
  readonly hostFailureMs: number;
  /** Its process died on a healthy host: the report, restart attempts in place then elsewhere, margin. */
  readonly vmFailureMs: number;
  /**
   * Once something that excused it ends (room returns, an operator confirms, a partition heals): the
   * slow retry pace, then every start attempt, margin; the longer of this and its own path's bound holds.
   */
  readonly afterWaitMs: number;
}

/** Restarts of one VM's crashes the control plane makes per window (vSphere's VM monitoring: 3 an hour). */
export interface RestartBudget {
  readonly restarts: number;
  readonly windowMs: number;
  /** Extra wait the control plane may put before the restart that follows the n-th crash (1-based). */
  readonly backoffMs: (crash: number) => number;
}

/**
 * The policy's restart budget: `vmRestartLimit` restarts per `vmRestartWindowMs`, the first at once and
 * the n-th (n ≥ 2) a backoff of `vmRestartBackoffMs × 2^(n−2)` after the one before.
 */
export function restartBudgetOf(
  policy: Pick<HaPolicy, 'vmRestartLimit' | 'vmRestartWindowMs' | 'vmRestartBackoffMs'>,
): RestartBudget {
  return {
    restarts: policy.vmRestartLimit,
    windowMs: policy.vmRestartWindowMs,
    backoffMs: (crash) => (crash < 2 ? 0 : policy.vmRestartBackoffMs * 2 ** (crash - 2)),
  };
}

/** A whole-second wait as Step Functions counts it (the production definition; the runner's are shorter). */
const wholeSeconds = (ms: number): number => Math.ceil(ms / 1000) * 1000;

/**
 * The `ha-vm-down` bounds the policy implies: each is the longest a correct control plane may take on that
 * path, plus a margin (twenty heartbeats, at least 4 s: it was sized for the real-time simulator sharing
 * its CPU; on virtual time it is the slack for the steps' own latencies and for a lossy LAN's rarer,
 * longer recoveries).
 *
 * - With its host: the host's silence (missed heartbeats) and one relay report, the fence deadline (from
 *   the incident's opening, the confirmation wait included) and the last attempt's whole window (it may
 *   be dispatched just before the deadline), then three priority waves, each allowed every start attempt
 *   its full timeout plus the slowest VM's boot.
 * - Alone, on a healthy host: the agent's next heartbeat and one relay report, one detector tick, then
 *   every start attempt (in place, then elsewhere) its full timeout plus the VM's boot. A VM that crashed
 *   before adds the restart backoff (see {@link restartBudgetOf}).
 * - After a wait: the retry interval (a retry on the capacity change itself comes sooner), then every
 *   start attempt.
 *
 * `lanHopMs` ({@link lanHopMs}) is added to each: the control plane learns what changed on a host (a VM
 * stopped, room freed) from the host's inventory, one reliable LAN hop from a relay. A slow LAN does not
 * lengthen detection (a heartbeat still in flight when its host goes is lost with it), nor a start beyond
 * its attempt (the agent starts nothing past the command's notAfter, and a VM runs at most its boot later).
 * A slow BMC does not lengthen the fence past the deadline and its last attempt; one too slow to confirm
 * within an attempt is an excuse (the operator's), not a longer bound.
 */
export function haVmDownBounds(policy: HaPolicy, vmBootMs = 0, lanHop = 0): HaDownBounds {
  const margin = Math.max(4000, 20 * policy.hostHeartbeatMs);
  const attempts = policy.maxStartAttempts * (wholeSeconds(policy.startTimeoutMs) + vmBootMs);
  const detectHost = hostSilentAfterMs(policy) + policy.relayReportMs;
  const fence = policy.fenceDeadlineMs + wholeSeconds(policy.fenceAttemptTimeoutMs);
  return {
    hostFailureMs: detectHost + fence + 3 * attempts + lanHop + margin,
    vmFailureMs:
      policy.hostHeartbeatMs + lanHop + policy.relayReportMs + policy.hostHeartbeatMs + attempts + margin,
    afterWaitMs: policy.vmRetryIntervalMs + lanHop + attempts + margin,
  };
}

/**
 * The longest one reliable LAN message (HTTP: an inventory, a start and its answer) takes on a LAN in
 * these conditions before it arrives: its delay and jitter; on a lossy LAN, up to the transport's HTTP
 * timeout (TCP resends it until then; after that it is lost, and the next heartbeat has the relay ask
 * again, which the margin covers).
 */
export function lanHopMs(lan: ScenarioLan, httpTimeoutMs: number): number {
  if (lan.lossPct > 0) return httpTimeoutMs;
  return Math.min(httpTimeoutMs, lan.delayMs + lan.jitterMs);
}

/** What the availability rules need to know besides the world. */
export interface AvailabilityConfig {
  readonly hosts: Scenario['hosts'];
  readonly vms: Scenario['vms'];
  readonly policy: Pick<
    Scenario['policy'],
    'cpuOvercommit' | 'reserveMiB' | 'reserveCpus' | 'massSilenceShare' | 'fencingEnabled'
  >;
  readonly bounds: HaDownBounds;
  readonly restartBudget: RestartBudget;
  /**
   * How late the control plane may hear of a VM's stop (agent heartbeat, relay report): a VM that stopped
   * this shortly before an incident closed `recovered` is not held against the close.
   */
  readonly reportLagMs: number;
  /**
   * A fence attempt's window (fenceAttemptTimeoutMs) and how late after its dispatch its command may
   * reach a relay (the relay's next report at the incident pace, and its loop). With them, a host whose BMC
   * answers too slowly, or whose relays' clocks run too far ahead, for a fence to confirm within one
   * attempt is not provable off (see {@link fenceTooSlow}); left out, every fence can confirm.
   */
  readonly fence?: {
    readonly windowMs: number;
    readonly deliverMs: number;
    /**
     * From a host's loss to the end of its fence's last attempt: detection and one relay report, the fence
     * deadline (from the incident's opening) and one more attempt window. A site cut off from the cloud at
     * any moment of it may have had the fence give up (its deadline is policy: the operator decides then).
     */
    readonly givesUpMs: number;
  };
}

/** An incident as the runner reads it from the control plane, times in scenario ms. */
export interface ClosedIncident {
  readonly incidentId: string;
  readonly host: string;
  /** The VM of a VM-level incident: then it alone is judged. */
  readonly vm?: string | undefined;
  readonly outcome: string;
  readonly openedAtMs: number;
  readonly closedAtMs: number;
}

/** One stretch of time a VM ran nowhere. */
interface Spell {
  readonly vm: string;
  readonly from: number;
  to: number | null;
  /** Where it last ran. */
  readonly host: string;
  /** Why it stopped there; a VM-level stop becomes `host` when that host is lost while the VM is down. */
  cause: VmStopCause;
  /** Shut down by its guest: down on purpose, never owed. */
  readonly onPurpose: boolean;
  /** Since when nothing excuses the VM being down; null while something does. */
  owedSince: number | null;
  /** `ha-vm-down` was raised for this spell (once is enough). */
  reported: boolean;
}

/** The availability rules over one world; violations go to `violate`. */
export class AvailabilityRules {
  private readonly meta: ReadonlyMap<string, Scenario['vms'][number]>;
  private readonly hostMeta: ReadonlyMap<string, Scenario['hosts'][number]>;
  private readonly spells = new Map<string, Spell[]>();
  /** Times each VM crashed (its process died while it ran). */
  private readonly crashes = new Map<string, number[]>();
  /** When each host last booted afresh (a new boot id: the old boot's VMs are gone). */
  private readonly bootedAt = new Map<string, number>();
  /** When each host last came back: booted, powered on or back on the LAN. */
  private readonly backAt = new Map<string, number>();
  /** When the control plane last accepted an operator's confirmation that each host is off. */
  private readonly confirmedAt = new Map<string, number>();
  /** Every time each host left the LAN (crash, power-off, cable cut). */
  private readonly losses = new Map<string, number[]>();
  /** When each site was cut off from the cloud (uplink down or every relay down), to when (null: still). */
  private readonly cutOff = new Map<string, { readonly from: number; to: number | null }[]>();
  /** The last start the control plane ordered for each VM: where, and when. */
  private readonly orders = new Map<string, { readonly host: string; readonly at: number }>();
  private readonly judged = new Set<string>();

  constructor(
    private readonly world: World,
    private readonly config: AvailabilityConfig,
    private readonly violate: (rule: ViolationRule, atMs: number, detail: string) => void,
  ) {
    this.meta = new Map(config.vms.map((vm) => [vm.id, vm]));
    this.hostMeta = new Map(config.hosts.map((h) => [h.id, h]));
  }

  /** Follows one world event (after the world applied it), then re-judges every VM that is down. */
  observe(event: WorldEvent): void {
    const at = event.atMs;
    switch (event.kind) {
      case 'vm-stop':
        if ((this.world.runningOn.get(event.vm)?.size ?? 0) === 0) {
          if (event.cause === 'crashed') this.crashes.set(event.vm, [...this.crashesOf(event.vm), at]);
          this.open(event.vm, event.host, event.cause, at);
        }
        break;
      case 'vm-start':
        for (const spell of this.spells.get(event.vm) ?? []) if (spell.to === null) spell.to = at;
        break;
      case 'os':
        if (event.running) {
          this.bootedAt.set(event.host, at);
          this.backAt.set(event.host, at);
        } else this.lost(event.host, at);
        break;
      case 'power':
        if (!event.on) this.lost(event.host, at);
        else this.backAt.set(event.host, at);
        break;
      case 'lan':
        if (!event.reachable) this.lost(event.host, at);
        else this.backAt.set(event.host, at);
        break;
      case 'uplink':
        this.noteCutOff(event.site, at);
        break;
      case 'relay':
        this.noteCutOff(this.world.relaySite.get(event.relay) ?? '', at);
        break;
      default:
        break;
    }
    this.rejudge(at);
    this.check(at);
  }

  /**
   * The control plane accepted an operator's confirmation that the host is off (the fault alone is the
   * operator's intent: with no incident waiting for it, the answer is refused and proves nothing).
   */
  operatorConfirmed(hostId: string, at: number): void {
    this.confirmedAt.set(hostId, at);
    this.rejudge(at);
  }

  /**
   * The control plane ordered the VM started on a host (read from its incident timelines). Until that
   * host answers or is proven off, the start may still bring the VM up there: starting it anywhere else
   * would risk two copies, so a VM whose order went to a host lost since and not provably off waits.
   */
  startOrdered(vmId: string, hostId: string, at: number): void {
    const last = this.orders.get(vmId);
    if (last !== undefined && last.at > at) return;
    this.orders.set(vmId, { host: hostId, at });
    this.rejudge(at);
  }

  /** Raises `ha-vm-down` for every VM owed longer than its bound by `now` (ms of scenario time). */
  check(now: number): void {
    for (const spell of this.openSpells()) {
      if (spell.owedSince === null || spell.reported) continue;
      const bound = this.boundOf(spell);
      if (now - spell.owedSince <= bound) continue;
      spell.reported = true;
      const meta = this.meta.get(spell.vm);
      const room = this.roomFor(spell.vm, spell.host);
      this.violate(
        'ha-vm-down',
        now,
        `${spell.vm} (HA, ${meta?.priority ?? '?'}) down since +${secs(spell.from)} (${causeText(spell)} on ${spell.host}), ` +
          `nothing excusing it for ${secs(now - spell.owedSince)} > its ${secs(bound)} bound` +
          (room === null ? '' : `, while ${room} had room`),
      );
    }
  }

  /** Some HA VM is down, owed and still inside its bound: the run must go on to see it recover or not. */
  pending(): boolean {
    return this.openSpells().some((s) => s.owedSince !== null && !s.reported);
  }

  /** Ms the VM ran nowhere up to `now`, over all its down spells. */
  downMs(vmId: string, now: number): number {
    return (this.spells.get(vmId) ?? []).reduce((sum, s) => sum + Math.max(0, (s.to ?? now) - s.from), 0);
  }

  /**
   * Judges an incident once it closed: `recovered` is false if an HA VM that went down with the incident's
   * host (at or after the host was last lost before the incident opened, or any time before it opened
   * when the host was never lost) still ran nowhere when it closed. A VM's own incident judges that VM.
   */
  incidentClosed(incident: ClosedIncident): void {
    if (this.judged.has(incident.incidentId)) return;
    this.judged.add(incident.incidentId);
    if (incident.outcome !== 'recovered') return;
    const loss = (this.losses.get(incident.host) ?? []).filter((t) => t <= incident.openedAtMs).at(-1);
    const closed = incident.closedAtMs;
    const down = [...this.spells.values()].flatMap((spells) =>
      spells.filter(
        (s) =>
          this.meta.get(s.vm)?.ha === true &&
          !s.onPurpose &&
          (incident.vm === undefined || incident.vm === s.vm) &&
          s.host === incident.host &&
          (loss === undefined ? s.from <= incident.openedAtMs : s.from >= loss) &&
          s.from <= closed - this.config.reportLagMs &&
          (s.to === null || s.to > closed),
      ),
    );
    if (down.length === 0) return;
    this.violate(
      'false-recovered',
      closed,
      `incident ${incident.incidentId} (${incident.host}) closed recovered while ${down
        .map((s) => `${s.vm} (down since +${secs(s.from)})`)
        .join(', ')} ran nowhere`,
    );
  }

  private partitioned(siteId: string): boolean {
    const relays = [...this.world.relaySite].filter(([, s]) => s === siteId).map(([r]) => r);
    return !this.world.uplinkUp(siteId) || !relays.some((r) => this.world.relayUp(r));
  }

  /** Opens or closes the site's current cut-off spell after its uplink or a relay changed. */
  private noteCutOff(siteId: string, at: number): void {
    const spells = this.cutOff.get(siteId) ?? [];
    this.cutOff.set(siteId, spells);
    const open = spells.at(-1)?.to === null ? spells.at(-1) : undefined;
    if (this.partitioned(siteId)) {
      if (open === undefined) spells.push({ from: at, to: null });
    } else if (open !== undefined) open.to = at;
  }

  /** The site was cut off from the cloud at some moment of [from, to]. */
  private cutOffDuring(siteId: string, from: number, to: number): boolean {
    return (this.cutOff.get(siteId) ?? []).some((c) => c.from <= to && (c.to === null || c.to >= from));
  }

  private crashesOf(vmId: string): number[] {
    return this.crashes.get(vmId) ?? [];
  }

  private open(vmId: string, hostId: string, cause: VmStopCause, at: number): void {
    const spells = this.spells.get(vmId) ?? [];
    this.spells.set(vmId, spells);
    spells.push({
      vm: vmId,
      from: at,
      to: null,
      host: hostId,
      // A crash on a host cut off the LAN goes unheard: only that host's recovery path can bring it back.
      cause: cause === 'crashed' && !this.world.onLan(hostId) ? 'host' : cause,
      onPurpose: cause === 'shutdown',
      owedSince: null,
      reported: false,
    });
  }

  /** A host is lost: VMs already down from their own stop there now wait on the host's recovery path. */
  private lost(hostId: string, at: number): void {
    const losses = this.losses.get(hostId) ?? [];
    if (losses.at(-1) !== at) losses.push(at);
    this.losses.set(hostId, losses);
    for (const spell of this.openSpells()) {
      if (spell.host !== hostId || spell.cause === 'host' || spell.onPurpose) continue;
      spell.cause = 'host';
      if (spell.owedSince !== null) spell.owedSince = at;
    }
  }

  private openSpells(): Spell[] {
    return [...this.spells.values()].flatMap((spells) => spells.filter((s) => s.to === null));
  }

  private rejudge(at: number): void {
    for (const spell of this.openSpells()) {
      if (spell.onPurpose || this.meta.get(spell.vm)?.ha !== true) continue;
      if (this.excuse(spell, at) !== null) spell.owedSince = null;
      else if (spell.owedSince === null) spell.owedSince = at;
    }
  }

  private boundOf(spell: Spell): number {
    const { bounds, restartBudget } = this.config;
    const crashes = this.crashesOf(spell.vm).filter((t) => t <= spell.from).length;
    const own =
      spell.cause === 'crashed'
        ? bounds.vmFailureMs + restartBudget.backoffMs(crashes)
        : bounds.hostFailureMs;
    return spell.owedSince !== null && spell.owedSince > spell.from ? Math.max(own, bounds.afterWaitMs) : own;
  }

  /** Why the VM may stay down right now, or null when nothing excuses it. */
  private excuse(spell: Spell, now: number): string | null {
    const vm = this.meta.get(spell.vm);
    const lastHost = this.world.hosts.get(spell.host);
    if (vm === undefined || lastHost === undefined) return 'not a scenario VM';
    const cluster = lastHost.cluster;
    const site = lastHost.site;
    const relays = [...this.world.relaySite].filter(([, s]) => s === site).map(([r]) => r);
    if (!this.world.uplinkUp(site) || !relays.some((r) => this.world.relayUp(r))) {
      return `site ${site} is partitioned`;
    }
    // A relay whose clock is past the LAN's window hears nothing (every message to or from it is stale):
    // with only such relays up, the site is as deaf as partitioned.
    if (
      !relays.some(
        (r) => this.world.relayUp(r) && Math.abs(this.world.clockSkewMs(r)) <= DEFAULT_LAN_MAX_SKEW_MS,
      )
    ) {
      return `site ${site} has no live relay that can hear its hosts (the live ones' clocks are past the LAN's window)`;
    }
    const members = [...this.world.hosts.values()].filter((h) => h.cluster === cluster);
    const silent = members.filter((h) => !this.world.onLan(h.id)).length;
    if (silent / members.length > this.config.policy.massSilenceShare) {
      return `mass silence in ${cluster} (${silent} of ${members.length} hosts)`;
    }
    const order = this.orders.get(spell.vm);
    if (order !== undefined && order.at >= spell.from && !this.world.onLan(order.host)) {
      const unprovable = this.unprovable(order.host, order.at);
      if (unprovable !== null) return `its start on ${order.host} got no answer and ${unprovable}`;
    }
    if (spell.cause === 'host') {
      const fenceNeeded = this.fenceNeeded(spell);
      if (fenceNeeded !== null) return fenceNeeded;
    } else if (spell.cause === 'crashed') {
      const budget = this.config.restartBudget;
      const recent = this.crashesOf(spell.vm).filter((t) => t > now - budget.windowMs).length;
      if (recent > budget.restarts) {
        return `restart budget spent (${recent} crashes within ${secs(budget.windowMs)})`;
      }
    }
    if (this.roomFor(spell.vm, spell.host) === null) return `no host of ${cluster} has room for it`;
    return null;
  }

  /**
   * For a VM that went with its host: what keeps the control plane from proving the old copy dead, or null
   * when it has (or can get) the proof: a new boot of the host heard on the LAN, an operator's
   * confirmation, or a fence whose power-off can be read back.
   */
  private fenceNeeded(spell: Spell): string | null {
    return this.unprovable(spell.host, spell.from);
  }

  /**
   * Why the control plane cannot prove that the host runs nothing it ran since `since`, or null when it
   * has (or can get) the proof: a new boot of the host heard on the LAN, an operator's confirmation
   * accepted, or a fence whose power-off can be read back (maintenance and a disabled switch forbid one).
   */
  private unprovable(hostId: string, since: number): string | null {
    const host = this.world.host(hostId);
    const booted = this.bootedAt.get(host.id);
    if (booted !== undefined && booted >= since && this.world.onLan(host.id)) return null;
    const confirmed = this.confirmedAt.get(host.id);
    if (confirmed !== undefined && confirmed >= since) return null;
    if (this.hostMeta.get(host.id)?.maintenance === true) return `${host.id} is in maintenance: never fenced`;
    if (!this.config.policy.fencingEnabled) return `fencing is disabled in ${host.cluster}`;
    const readable = host.bmc === 'ok' || (host.bmc === 'ignores-off' && !host.power);
    if (!readable) return `${host.id} cannot be confirmed off (BMC ${host.bmc}): awaiting its operator`;
    const fence = this.config.fence;
    const lostAt = (this.losses.get(host.id) ?? []).filter((t) => t >= since)[0] ?? since;
    if (fence !== undefined && this.cutOffDuring(host.site, lostAt, lostAt + fence.givesUpMs)) {
      return `site ${host.site} was cut off while ${host.id}'s fence could run: it may have given up, awaiting its operator`;
    }
    return this.fenceTooSlow(host.id);
  }

  /**
   * Why a fence of the host may not confirm in time, or null when it must. An attempt's relay takes the
   * command up to `deliverMs` after its dispatch, and starts only while its own clock is before the
   * command's notAfter (a relay ahead by S loses S of the window); reading the status, powering off and
   * reading back takes three BMC answers. Confirmed for sure when that fits the window through every live
   * relay, or through one of two or more (the next attempt goes through a relay not yet tried, and the
   * fence deadline leaves room for two). Otherwise the fence may give up, and the VMs wait for the operator.
   */
  private fenceTooSlow(hostId: string): string | null {
    const fence = this.config.fence;
    if (fence === undefined) return null;
    const site = this.world.host(hostId).site;
    const latency = this.world.bmcLatencyMs(hostId);
    const relays = [...this.world.relaySite]
      .filter(([r, s]) => s === site && this.world.relayUp(r))
      .map(([r]) => r);
    const fits = (relay: string) =>
      fence.deliverMs + Math.max(0, this.world.clockSkewMs(relay)) + 3 * latency <= fence.windowMs;
    const good = relays.filter(fits).length;
    if (good === relays.length || (good >= 1 && relays.length >= 2)) return null;
    return (
      `a fence of ${hostId} may not confirm within an attempt of ${secs(fence.windowMs)} ` +
      `(BMC answers in ${secs(latency)}, relay clocks ${relays.map((r) => `${r} ${this.world.clockSkewMs(r)} ms`).join(', ')}): awaiting its operator`
    );
  }

  /**
   * A host where the VM could run now, or null: healthy (powered, booted, on the LAN), not in maintenance,
   * its start there not failing, no anti-affinity peer running there, and room for it within the host's
   * memory and CPU overcommit less the policy's reserves. Its own last host counts (a restart in place).
   * `ignore`: a VM counted as not running where it runs (the room there was before it started).
   */
  roomFor(
    vmId: string,
    lastHost: string,
    ignore?: { readonly vm: string; readonly host: string },
    /**
     * Judge as the control plane may still see the site, its reports lagging the world: as of `knownAt`,
     * hosts back on the LAN since do not count yet, and VMs that stopped on a host since still take their
     * room there (besides those running now).
     */
    knownAt?: number,
  ): string | null {
    const vm = this.meta.get(vmId);
    const last = this.world.hosts.get(lastHost);
    if (vm === undefined || last === undefined) return null;
    const { cpuOvercommit, reserveMiB, reserveCpus } = this.config.policy;
    for (const host of [...this.world.hosts.values()].sort((a, b) => a.id.localeCompare(b.id))) {
      if (host.cluster !== last.cluster || !this.world.onLan(host.id)) continue;
      if (knownAt !== undefined && (this.backAt.get(host.id) ?? Number.NEGATIVE_INFINITY) > knownAt) continue;
      if (this.hostMeta.get(host.id)?.maintenance === true || this.world.startWouldFail(vmId, host.id))
        continue;
      const stoppedSince =
        knownAt === undefined
          ? []
          : [...this.spells.values()].flatMap((spells) =>
              spells.flatMap((sp) => {
                const shape = this.world.vms.get(sp.vm);
                return sp.vm !== vmId && sp.host === host.id && sp.from > knownAt && shape !== undefined
                  ? [shape]
                  : [];
              }),
            );
      const running = [...this.world.vmsOn(host.id), ...stoppedSince].filter(
        (r) => ignore === undefined || r.id !== ignore.vm || host.id !== ignore.host,
      );
      if (
        vm.antiAffinity !== undefined &&
        running.some((r) => r.id !== vmId && this.meta.get(r.id)?.antiAffinity === vm.antiAffinity)
      ) {
        continue;
      }
      const usedMiB = running.reduce((sum, r) => sum + r.memoryMiB, 0);
      const usedCpus = running.reduce((sum, r) => sum + r.cpus, 0);
      if (usedMiB + vm.memoryMiB > host.memoryMiB - reserveMiB) continue;
      if (usedCpus + vm.cpus > (host.cpus - reserveCpus) * cpuOvercommit + 1e-9) continue;
      return host.id;
    }
    return null;
  }
}

function causeText(spell: Spell): string {
  switch (spell.cause) {
    case 'host':
      return 'its host went';
    case 'crashed':
      return 'it crashed';
    case 'shutdown':
      return 'its guest shut down';
  }
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
