import type { Scenario, ViolationRule } from '../../contracts/scenario';
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
}

const RANK = { high: 0, medium: 1, low: 2 } as const;

interface Restart {
  readonly vm: string;
  readonly priority: keyof typeof RANK;
  readonly atMs: number;
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
  /** When each host last lost power or was confirmed off by an operator. */
  private readonly offAt = new Map<string, number>();
  /** When each host was last fenced (lost power or confirmed off): the start of its restarts. */
  private readonly fencedAt = new Map<string, number>();
  /** Restarts away from a failed host, by host and fence: one incident's waves. */
  private readonly restarts = new Map<string, Restart[]>();

  constructor(
    private readonly world: World,
    private readonly config: OracleConfig,
  ) {
    this.meta = new Map(config.vms.map((vm) => [vm.id, vm]));
    for (const vm of config.vms) this.lastRanOn.set(vm.id, vm.host);
    world.subscribe((event) => this.check(event));
  }

  /** Checks one world event (the world calls this for every event once subscribed). */
  check(event: WorldEvent): void {
    switch (event.kind) {
      case 'power':
        if (!event.on) {
          this.offAt.set(event.host, event.atMs);
          this.fencedAt.set(event.host, event.atMs);
        }
        return;
      case 'operator-confirms-off':
        this.offAt.set(event.host, event.atMs);
        this.fencedAt.set(event.host, event.atMs);
        return;
      case 'vm-start':
        this.started(event.vm, event.host, event.atMs);
        return;
      default:
        return;
    }
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
    this.lastRanOn.set(vmId, hostId);
    this.lastStartAt.set(vmId, atMs);
    if (previous === undefined || previous === hostId) return;
    // Safe only if the previous host lost power, or was confirmed off, after the VM started there: a host
    // powered back on later boots without it, but one that never went off may still be running it.
    const off = this.offAt.get(previous);
    if (off === undefined || off < ranSince) {
      this.violate(
        'restart-before-fence',
        atMs,
        `${vmId} started on ${hostId} while ${previous}, where it last ran, had not lost power nor been confirmed off since`,
      );
    }
    if (meta !== undefined) this.checkPriority(previous, { vm: vmId, priority: meta.priority, atMs });
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
    for (const before of earlier) {
      if (RANK[before.priority] <= RANK[restart.priority]) continue;
      // A wave moves on after its timeout without the VMs it still waits for: then the order may flip.
      if (before.atMs - fencedAt >= this.config.startTimeoutMs) continue;
      this.violate(
        'priority-order',
        restart.atMs,
        `${before.vm} (${before.priority}) started before ${restart.vm} (${restart.priority}) after ${failedHost} failed`,
      );
    }
  }
}
