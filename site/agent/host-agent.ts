import type { ObservedVm } from '../../contracts/relay-protocol';
import {
  type Heartbeat,
  type Inventory as InventoryMessage,
  inventoryDigest,
  type LanMessage,
  type StartVmReply,
  type StartVmRequest,
} from '../lan-protocol';
import {
  type Clock,
  type HostCapacity,
  type Hypervisor,
  type Lan,
  type SiteLogger,
  silentLogger,
} from '../ports';

/** A host agent's settings (from the host's local configuration). */
export interface HostAgentConfig {
  readonly hostId: string;
  readonly cluster: string;
  /** Every relay of the site: each one gets every heartbeat. */
  readonly relays: readonly string[];
  /** Heartbeat interval (the policy's `hostHeartbeatMs`). */
  readonly hostHeartbeatMs: number;
  /** How long past a request's notAfter its answer is remembered for repeats; default 10 minutes. */
  readonly resultRetentionMs?: number;
}

/** What the agent talks to. */
export interface HostAgentPorts {
  readonly clock: Clock;
  readonly hypervisor: Hypervisor;
  readonly lan: Lan;
  readonly log?: SiteLogger;
}

const DEFAULT_RESULT_RETENTION_MS = 10 * 60 * 1000;

interface StartRecord {
  /** Shared by every repeat of the request, so a repeat that arrives mid-start waits for the same answer. */
  readonly answer: Promise<StartVmReply>;
  readonly forgetAfter: number;
}

interface Inventory {
  readonly bootId: string;
  readonly capacity: HostCapacity;
  readonly vms: readonly ObservedVm[];
  readonly digest: string;
}

/**
 * The host agent: tells every relay of its site what runs on this host, every `hostHeartbeatMs`, and starts
 * the VMs relays ask for, once per command id.
 *
 * It is driven from outside: `tick()` sends the heartbeat when due and `receive()` takes each LAN message,
 * so the simulator can run it on virtual time; `run()` is the loop of the real program.
 */
export class HostAgent {
  private readonly log: SiteLogger;
  private readonly retentionMs: number;
  private readonly starts = new Map<string, StartRecord>();
  private nextHeartbeatAt: number | null = null;
  private lastInventory: Inventory | null = null;
  /** The digest every relay was last sent the full inventory of. */
  private pushedDigest: string | null = null;
  private beating = false;

  constructor(
    private readonly config: HostAgentConfig,
    private readonly ports: HostAgentPorts,
  ) {
    this.log = ports.log ?? silentLogger;
    this.retentionMs = config.resultRetentionMs ?? DEFAULT_RESULT_RETENTION_MS;
  }

  /** Sends the heartbeat when due (at once on the first tick); forgets answers past their retention. */
  async tick(): Promise<void> {
    const now = this.ports.clock.now();
    this.forgetOldStarts(now);
    if (this.beating || (this.nextHeartbeatAt !== null && now < this.nextHeartbeatAt)) return;
    this.beating = true;
    try {
      await this.heartbeat(now);
    } finally {
      this.beating = false;
    }
  }

  /**
   * Handles one LAN message: start requests meant for this host and a relay's request for the inventory;
   * anything else is not for an agent. Only the site's configured relays are obeyed.
   */
  async receive(message: LanMessage): Promise<void> {
    if (message.kind !== 'start-vm' && message.kind !== 'inventory-request') return;
    if (!this.config.relays.includes(message.relayId)) {
      this.log.warn('request from a relay that is not configured ignored', {
        kind: message.kind,
        relayId: message.relayId,
      });
      return;
    }
    if (message.kind === 'inventory-request') {
      const inventory = this.lastInventory;
      if (inventory !== null) this.ports.lan.send(message.relayId, this.inventoryMessage(inventory));
      return;
    }
    if (message.hostId !== this.config.hostId) {
      // A misrouted start would put the VM where the control plane reserved no capacity (safety rule 5).
      this.log.warn('start request for another host ignored', {
        commandId: message.commandId,
        hostId: message.hostId,
      });
      return;
    }
    const answer = this.startOnce(message);
    this.ports.lan.send(message.relayId, await answer);
  }

  /** The real program's loop: one tick per heartbeat interval until `signal` aborts. */
  async run(signal?: AbortSignal): Promise<void> {
    while (signal?.aborted !== true) {
      await this.tick();
      const now = this.ports.clock.now();
      const wait = (this.nextHeartbeatAt ?? now) - now;
      await this.ports.clock.sleep(Math.max(1, wait));
    }
  }

  private async heartbeat(now: number): Promise<void> {
    const inventory = await this.readInventory();
    // Planned from the previous slot, not from now, so a slow tick does not make the interval drift.
    const planned = (this.nextHeartbeatAt ?? now) + this.config.hostHeartbeatMs;
    this.nextHeartbeatAt = planned > now ? planned : now + this.config.hostHeartbeatMs;
    if (inventory === null) return;
    // A changed inventory goes to every relay first (over the LAN's reliable channel); the heartbeat then
    // carries its digest, so a relay that missed it asks again.
    if (inventory.digest !== this.pushedDigest) {
      const message = this.inventoryMessage(inventory);
      for (const relayId of this.config.relays) this.ports.lan.send(relayId, message);
      this.pushedDigest = inventory.digest;
    }
    const heartbeat: Heartbeat = {
      kind: 'heartbeat',
      hostId: this.config.hostId,
      cluster: this.config.cluster,
      bootId: inventory.bootId,
      cpus: inventory.capacity.cpus,
      memoryMiB: inventory.capacity.memoryMiB,
      vmCount: inventory.vms.length,
      digest: inventory.digest,
      sentAt: this.ports.clock.now(),
    };
    for (const relayId of this.config.relays) this.ports.lan.send(relayId, heartbeat);
  }

  private inventoryMessage(inventory: Inventory): InventoryMessage {
    return {
      kind: 'inventory',
      hostId: this.config.hostId,
      cluster: this.config.cluster,
      bootId: inventory.bootId,
      cpus: inventory.capacity.cpus,
      memoryMiB: inventory.capacity.memoryMiB,
      vms: [...inventory.vms],
      digest: inventory.digest,
      sentAt: this.ports.clock.now(),
    };
  }

  /**
   * Reads the hypervisor. When it does not answer, the last inventory read is sent again: libvirtd restarts
   * (an upgrade) while its VMs keep running, and a host that stopped heartbeating would be fenced for it.
   * Before any inventory was read there is nothing true to send, so no heartbeat goes out.
   */
  private async readInventory(): Promise<Inventory | null> {
    const { hypervisor } = this.ports;
    try {
      const [bootId, capacity, vms] = await Promise.all([
        hypervisor.bootId(),
        hypervisor.capacity(),
        hypervisor.listVms(),
      ]);
      const digest = inventoryDigest({ cluster: this.config.cluster, bootId, ...capacity, vms });
      this.lastInventory = { bootId, capacity, vms, digest };
    } catch (error) {
      this.log.warn('hypervisor did not answer; heartbeat repeats the last inventory', {
        error: describe(error),
        hasLastInventory: this.lastInventory !== null,
      });
    }
    return this.lastInventory;
  }

  /** The answer to a start request; a repeated command id gets the first one's, so nothing starts twice. */
  private startOnce(request: StartVmRequest): Promise<StartVmReply> {
    const known = this.starts.get(request.commandId);
    if (known !== undefined) return known.answer;
    const answer = this.start(request);
    this.starts.set(request.commandId, { answer, forgetAfter: request.notAfter + this.retentionMs });
    return answer;
  }

  private async start(request: StartVmRequest): Promise<StartVmReply> {
    const { clock, hypervisor } = this.ports;
    const reply = (outcome: StartVmReply['outcome'], detail: string): StartVmReply => ({
      kind: 'start-result',
      commandId: request.commandId,
      hostId: this.config.hostId,
      outcome,
      detail: detail.slice(0, 1000),
      finishedAt: clock.now(),
    });
    if (clock.now() > request.notAfter) {
      return reply('failed', `arrived after its notAfter (${request.notAfter}); not started`);
    }
    try {
      await hypervisor.startVm(request.vm);
    } catch (error) {
      return reply('failed', `start of ${request.vm.id} failed: ${describe(error)}`);
    }
    // The relays should see the VM running soon: the next tick heartbeats at once.
    this.nextHeartbeatAt = clock.now();
    return reply('succeeded', `${request.vm.id} running on ${this.config.hostId}`);
  }

  private forgetOldStarts(now: number): void {
    for (const [commandId, record] of this.starts) {
      if (now > record.forgetAfter) this.starts.delete(commandId);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
