import type { Scenario, ViolationRule } from '../../contracts/scenario';
import { type AvailabilityConfig, AvailabilityRules, type ClosedIncident } from './availability';
import type { World, WorldEvent } from './world';

/** A broken safety rule, as the report lists it. */
export interface Violation {
  readonly rule: ViolationRule;
  readonly detail: string;
}

/** What the oracle needs to know besides the world: the VMs' metadata and the policy's limits. */
export interface OracleConfig {
  readonly vms: Scenario['vms'];
  readonly cpuOvercommit: number;
  /** One wave timeout: a lower-priority start this long after the fence may precede a late higher one. */
  readonly startTimeoutMs: number;
  /** Settings of the availability rules (`ha-vm-down`, `false-recovered`). */
  readonly availability: Omit<AvailabilityConfig, 'vms'>;
}

const RANK = { high: 0, medium: 1, low: 2 } as const;

interface Restart {
  readonly vm: string;
  readonly priority: keyof typeof RANK;
  readonly atMs: number;
  /**
   * Higher-priority VMs of the same failed host, down when this one started, that no host could take
   * even without it: a later start of theirs (room returned) is no inversion.
   */
  readonly higherWithoutRoom: ReadonlySet<string>;
  /** The incident whose start command brought it up (as a relay took it); undefined when none was seen. */
  readonly by: string | undefined;
}

/**
 * The simulator's oracle: checks the safety rules against the world's truth on every world event, so it
 * catches a rule broken for a moment even if the world looks fine by the end.
 */
export class Oracle {
  readonly violations: Violation[] = [];
  private readonly meta: ReadonlyMap<string, Scenario['vms'][number]>;
  /** The host each VM last ran on (its original host at first). */
  private readonly lastRanOn = new Map<string, string>();
  /** When each VM started on the host it last ran on (0: it was there from the start). */
  private readonly lastStartAt = new Map<string, number>();
  /** Per VM, the incident of the last start command a relay took for it. */
  private readonly lastStartBy = new Map<string, string>();
  /** Per VM, every incident a relay took a start command of for it. */
  private readonly startsBy = new Map<string, Set<string>>();
  /** When each host last lost power or was confirmed off by an operator. */
  private readonly offAt = new Map<string, number>();
  /** When each host was last fenced (lost power or confirmed off): the start of its restarts. */
  private readonly fencedAt = new Map<string, number>();
  /** Restarts away from a failed host, by host and fence: one incident's waves. */
  private readonly restarts = new Map<string, Restart[]>();
  /**
   * The failed host's HA VMs no host could take when it was last fenced (lost power or was confirmed
   * off): the instant its incident plans the waves. A plan cannot place them, so the retry list starts
   * them once room returns, which may be after a lower VM the plan did place (its target, say, booting
   * again): no inversion.
   */
  private readonly noRoomAtFence = new Map<string, ReadonlySet<string>>();
  /** When each host last booted afresh: a new boot id proves the old boot's VMs gone. */
  private readonly bootedAt = new Map<string, number>();
  /**
   * VMs whose last stop was their own (crash, guest shutdown) on a host whose agent was on the LAN to
   * report it: starting them elsewhere needs no fence, the host itself says they are not running.
   */
  private readonly stoppedAlone = new Map<string, string>();
  private readonly availability: AvailabilityRules;

  constructor(
    private readonly world: World,
    private readonly config: OracleConfig,
  ) {
    this.meta = new Map(config.vms.map((vm) => [vm.id, vm]));
    for (const vm of config.vms) this.lastRanOn.set(vm.id, vm.host);
    this.availability = new AvailabilityRules(
      world,
      { ...config.availability, vms: config.vms },
      (rule, atMs, detail) => this.violate(rule, atMs, detail),
    );
    world.subscribe((event) => {
      this.check(event);
      this.availability.observe(event);
    });
  }

  /** Judges the time-bound rules at `nowMs` (scenario time): the runner calls it as it polls. */
  tick(nowMs: number): void {
    this.availability.check(nowMs);
  }

  /** An HA VM is down and owed but still inside its bound: the run is not over yet. */
  pending(): boolean {
    return this.availability.pending();
  }

  /** Ms the VM ran nowhere up to `nowMs`. */
  downMs(vmId: string, nowMs: number): number {
    return this.availability.downMs(vmId, nowMs);
  }

  /** The control plane accepted an operator's confirmation that the host is off (for `ha-vm-down`). */
  operatorConfirmed(hostId: string, atMs: number): void {
    this.availability.operatorConfirmed(hostId, atMs);
  }

  /**
   * A relay took a command (before it reaches any agent): a start's id, `{incidentId}:start:{vmId}:{n}`,
   * says whose start the VM's next coming up is.
   */
  commandTaken(commandId: string): void {
    const start = /^(.+):start:([^:]+):\d+$/.exec(commandId);
    if (start?.[1] === undefined || start[2] === undefined) return;
    this.lastStartBy.set(start[2], start[1]);
    const by = this.startsBy.get(start[2]) ?? new Set<string>();
    by.add(start[1]);
    this.startsBy.set(start[2], by);
  }

  /** The control plane ordered the VM started on the host (for `ha-vm-down`: see AvailabilityRules). */
  startOrdered(vmId: string, hostId: string, atMs: number): void {
    this.availability.startOrdered(vmId, hostId, atMs);
  }

  /** Judges a closed incident (`false-recovered`); once per incident, however often it is passed. */
  incidentClosed(incident: ClosedIncident): void {
    this.availability.incidentClosed(incident);
  }

  /** Checks one world event (the world calls this for every event once subscribed). */
  check(event: WorldEvent): void {
    switch (event.kind) {
      case 'power':
        if (!event.on) this.fenced(event.host, event.atMs);
        return;
      case 'operator-confirms-off':
        this.fenced(event.host, event.atMs);
        return;
      case 'vm-start':
        this.started(event.vm, event.host, event.atMs);
        return;
      case 'vm-stop':
        if (event.cause !== 'host' && this.world.onLan(event.host))
          this.stoppedAlone.set(event.vm, event.host);
        else this.stoppedAlone.delete(event.vm);
        return;
      case 'os':
        if (event.running) this.bootedAt.set(event.host, event.atMs);
        return;
      default:
        return;
    }
  }

  private fenced(hostId: string, atMs: number): void {
    this.offAt.set(hostId, atMs);
    this.fencedAt.set(hostId, atMs);
    const noRoom = new Set<string>();
    for (const [vmId, last] of this.lastRanOn) {
      if (last !== hostId || this.meta.get(vmId)?.ha !== true) continue;
      // As the control plane's plan may see the site: its reports lag the world (a host just back, a VM
      // just stopped, are not known yet).
      const knownAt = atMs - this.config.availability.reportLagMs;
      if (this.availability.roomFor(vmId, hostId, undefined, knownAt) === null) noRoom.add(vmId);
    }
    this.noRoomAtFence.set(hostId, noRoom);
  }

  private violate(rule: ViolationRule, atMs: number, detail: string): void {
    this.violations.push({ rule, detail: `at +${(atMs / 1000).toFixed(3)}s: ${detail}` });
  }

  private started(vmId: string, hostId: string, atMs: number): void {
    const hosts = this.world.runningOn.get(vmId) ?? new Set<string>();
    if (hosts.size > 1) {
      this.violate('split-brain', atMs, `${vmId} runs on ${[...hosts].sort().join(' and ')} at once`);
    }
    this.checkCapacity(hostId, atMs);
    const meta = this.meta.get(vmId);
    if (meta !== undefined && !meta.ha && hostId !== meta.host) {
      this.violate(
        'non-ha-restarted',
        atMs,
        `${vmId} is not HA but was started on ${hostId} (its host: ${meta.host})`,
      );
    }
    const previous = this.lastRanOn.get(vmId);
    const ranSince = this.lastStartAt.get(vmId) ?? 0;
    const alone = this.stoppedAlone.get(vmId);
    this.lastRanOn.set(vmId, hostId);
    this.lastStartAt.set(vmId, atMs);
    this.stoppedAlone.delete(vmId);
    if (previous === undefined || previous === hostId) return;
    // Its own stop, reported by a live host: a VM-level restart elsewhere, no host failed, no fence due.
    if (alone === previous) return;
    // Safe only if the previous host lost power, was confirmed off, or booted afresh after the VM started
    // there: a host powered back on or rebooted runs none of its old VMs, but one that never went off may
    // still be running it.
    const off = Math.max(this.offAt.get(previous) ?? -1, this.bootedAt.get(previous) ?? -1);
    if (off < ranSince) {
      this.violate(
        'restart-before-fence',
        atMs,
        `${vmId} started on ${hostId} while ${previous}, where it last ran, had not lost power, been confirmed off nor booted afresh since`,
      );
    }
    if (meta !== undefined) {
      this.checkPriority(previous, {
        vm: vmId,
        priority: meta.priority,
        atMs,
        higherWithoutRoom: this.higherWithoutRoom(previous, vmId, hostId, meta.priority),
        by: this.lastStartBy.get(vmId),
      });
    }
  }

  /** The failed host's HA VMs still down, of higher priority than `priority`, with no room but its place. */
  private higherWithoutRoom(
    failedHost: string,
    vmId: string,
    hostId: string,
    priority: keyof typeof RANK,
  ): Set<string> {
    const out = new Set<string>();
    for (const [other, last] of this.lastRanOn) {
      const meta = this.meta.get(other);
      if (last !== failedHost || meta === undefined || !meta.ha || RANK[meta.priority] >= RANK[priority])
        continue;
      if ((this.world.runningOn.get(other)?.size ?? 0) > 0) continue;
      if (this.availability.roomFor(other, failedHost, { vm: vmId, host: hostId }) === null) out.add(other);
    }
    return out;
  }

  private checkCapacity(hostId: string, atMs: number): void {
    const host = this.world.hosts.get(hostId);
    if (host === undefined) return;
    const vms = this.world.vmsOn(hostId);
    const memory = vms.reduce((sum, vm) => sum + vm.memoryMiB, 0);
    const cpus = vms.reduce((sum, vm) => sum + vm.cpus, 0);
    const cpuLimit = host.cpus * this.config.cpuOvercommit;
    if (memory > host.memoryMiB) {
      this.violate('over-capacity', atMs, `${hostId} runs ${memory} MiB of VMs on ${host.memoryMiB} MiB`);
    }
    if (cpus > cpuLimit) {
      this.violate(
        'over-capacity',
        atMs,
        `${hostId} runs ${cpus} vCPUs on ${host.cpus} cores × ${this.config.cpuOvercommit} overcommit`,
      );
    }
  }

  private checkPriority(failedHost: string, restart: Restart): void {
    const fencedAt = this.fencedAt.get(failedHost) ?? 0;
    const key = `${failedHost}@${fencedAt}`;
    const earlier = this.restarts.get(key) ?? [];
    this.restarts.set(key, [...earlier, restart]);
    // The waves are the failed host's failover's. A VM that failover started and lost to another owner
    // (the start went to a host that failed in turn, whose incident took it over; then VM-level HA) left
    // its waves: the other owner's restart of it is outside them. A VM the failover never started is
    // still judged by them, whoever brought it back.
    const site = this.world.hosts.get(failedHost)?.site ?? '';
    const own = new RegExp(`^${escapeRegExp(site)}:${escapeRegExp(failedHost)}:\\d+$`);
    const leftTheWaves = (r: Restart): boolean =>
      r.by !== undefined &&
      !own.test(r.by) &&
      [...(this.startsBy.get(r.vm) ?? [])].some((incident) => own.test(incident));
    if (leftTheWaves(restart)) return;
    for (const before of earlier) {
      if (leftTheWaves(before)) continue;
      if (RANK[before.priority] <= RANK[restart.priority]) continue;
      // A wave moves on after its timeout without the VMs it still waits for: then the order may flip.
      if (before.atMs - fencedAt >= this.config.startTimeoutMs) continue;
      // No host could take the higher one then, even in the lower one's place: it started once room
      // returned (recovered later from the retry list), which is no inversion.
      if (before.higherWithoutRoom.has(restart.vm)) continue;
      // Nor when no host could take it as the waves were planned: the plan left it to the retry list.
      if (this.noRoomAtFence.get(failedHost)?.has(restart.vm) === true) continue;
      this.violate(
        'priority-order',
        restart.atMs,
        `${before.vm} (${before.priority}) started before ${restart.vm} (${restart.priority}) after ${failedHost} failed`,
      );
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
