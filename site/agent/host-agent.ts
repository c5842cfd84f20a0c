import type { ObservedVm } from '../../contracts/relay-protocol';
import {
  type DefinitionRequest,
  type Definitions,
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
import { DefinitionCache } from './definition-cache';

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
  /** Every VM definition is read again this often (those of new or changed VMs at once); default 60 s. */
  readonly definitionRefreshMs?: number;
}

/** Most definitions in one `definitions` message, and most XML bytes: one HTTP body stays small. */
const DEFINITIONS_PER_MESSAGE = 32;
const DEFINITION_BYTES_PER_MESSAGE = 1024 * 1024;

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
  readonly definitions: Readonly<Record<string, string>> | undefined;
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
  private readonly definitionCache: DefinitionCache;
  /** Ends run()'s sleep early: the hypervisor said something changed, or a VM was started. */
  private wake: (() => void) | null = null;

  constructor(
    private readonly config: HostAgentConfig,
    private readonly ports: HostAgentPorts,
  ) {
    this.log = ports.log ?? silentLogger;
    this.retentionMs = config.resultRetentionMs ?? DEFAULT_RESULT_RETENTION_MS;
    this.definitionCache = new DefinitionCache(ports.hypervisor, this.log, config.definitionRefreshMs);
  }

  /**
   * Something changed on the hypervisor (a libvirt lifecycle event): the next heartbeat, with the new
   * inventory, goes out at once rather than at the end of the interval.
   */
  changed(): void {
    this.nextHeartbeatAt = this.ports.clock.now();
    this.wake?.();
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
    if (
      message.kind !== 'start-vm' &&
      message.kind !== 'inventory-request' &&
      message.kind !== 'definition-request'
    ) {
      return;
    }
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
    if (message.kind === 'definition-request') {
      this.sendDefinitions(message);
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
    const stopped = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve()));
    while (signal?.aborted !== true) {
      await this.tick();
      const now = this.ports.clock.now();
      const wait = (this.nextHeartbeatAt ?? now) - now;
      await Promise.race([
        this.ports.clock.sleep(Math.max(1, wait)),
        stopped,
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
      ]);
      this.wake = null;
    }
  }

  /** Answers a relay's request for definitions with those the agent holds, a few per message. */
  private sendDefinitions(request: DefinitionRequest): void {
    let items: Definitions['items'][number][] = [];
    let bytes = 0;
    const flush = () => {
      if (items.length === 0) return;
      this.ports.lan.send(request.relayId, { kind: 'definitions', hostId: this.config.hostId, items });
      items = [];
      bytes = 0;
    };
    for (const vmId of request.vmIds) {
      const xml = this.definitionCache.xmlOf(vmId);
      if (xml === undefined) continue;
      if (items.length >= DEFINITIONS_PER_MESSAGE || bytes + xml.length > DEFINITION_BYTES_PER_MESSAGE)
        flush();
      items.push({ vmId, xml });
      bytes += xml.length;
    }
    flush();
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
      ...(inventory.definitions === undefined ? {} : { definitions: inventory.definitions }),
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
      const definitions = this.definitionCache.digests();
      const digest = inventoryDigest({ cluster: this.config.cluster, bootId, ...capacity, vms, definitions });
      this.lastInventory = { bootId, capacity, vms, definitions, digest };
      // Definitions are read beside the heartbeat, never on its path; a change is sent at once.
      void this.definitionCache.refresh(vms, this.ports.clock.now()).then((changed) => {
        if (changed) this.changed();
      });
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
    if (request.bootId !== undefined) {
      const boot = await hypervisor.bootId();
      if (boot !== request.bootId) {
        return reply(
          'failed',
          `ordered for boot ${request.bootId}; this host runs boot ${boot}: not started`,
        );
      }
    }
    try {
      await hypervisor.startVm(request.vm, request.definition);
    } catch (error) {
      this.log.warn('VM not started', {
        vmId: request.vm.id,
        commandId: request.commandId,
        error: describe(error),
      });
      return reply('failed', `start of ${request.vm.id} failed: ${describe(error)}`);
    }
    this.log.info('VM started', {
      vmId: request.vm.id,
      commandId: request.commandId,
      relayId: request.relayId,
      withDefinition: request.definition !== undefined,
    });
    // The relays should see the VM running soon: the next tick heartbeats at once.
    this.changed();
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
