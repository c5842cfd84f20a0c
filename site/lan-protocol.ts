import { createHash } from 'node:crypto';
import * as z from 'zod';
import {
  HostObservationSchema,
  IdSchema,
  type ObservedVm,
  RefSchema,
  StartVmCommandSchema,
} from '../contracts/relay-protocol';

/**
 * Messages between host agents and relays on the site's LAN (LAN protocol v1, docs/protocol.md). Built
 * from the relay protocol's schemas so that what an agent may send is exactly what a relay may forward: a
 * relay that validates each message can never be made to send a report the control plane refuses.
 *
 * A heartbeat is small (identity, boot, capacity, VM count and an inventory digest) so that it always fits
 * one UDP datagram; the full inventory travels separately (HTTP on the LAN), when its digest changes or a
 * relay asks for it. The transport (site/adapters/lan-transport.ts) authenticates every message.
 */

export const LAN_PROTOCOL_VERSION = 1 as const;

const epochMs = z.number().int().nonnegative();
const digest = z.string().regex(/^[0-9a-f]{64}$/, 'a hex SHA-256 digest');

/** Agent → every relay of its site, every `hostHeartbeatMs` (UDP). */
export const HeartbeatSchema = z.strictObject({
  kind: z.literal('heartbeat'),
  hostId: IdSchema,
  cluster: IdSchema,
  bootId: HostObservationSchema.shape.bootId,
  cpus: HostObservationSchema.shape.cpus,
  memoryMiB: HostObservationSchema.shape.memoryMiB,
  vmCount: z.number().int().nonnegative().max(1000),
  /** `inventoryDigest` of the host's full inventory at `sentAt`. */
  digest,
  /** The agent's clock. */
  sentAt: epochMs,
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

/** Largest domain XML a definition may carry (libvirt's own are a few KiB). */
export const MAX_DEFINITION_BYTES = 256 * 1024;

/** A VM's libvirt domain XML, as the site keeps it so that the VM can start on any host of its cluster. */
const DefinitionXmlSchema = z.string().min(1).max(MAX_DEFINITION_BYTES);

/** Agent → a relay: the host's full inventory (HTTP), when it changed or the relay asked for it. */
export const InventorySchema = HostObservationSchema.omit({ lastHeardMsAgo: true }).extend({
  kind: z.literal('inventory'),
  /**
   * SHA-256 of each defined VM's domain XML, by VM id (hosts whose hypervisor has definitions): a relay
   * asks for the definitions it does not hold. Never leaves the site.
   */
  definitions: z.record(IdSchema, digest).optional(),
  digest,
  sentAt: epochMs,
});
export type Inventory = z.infer<typeof InventorySchema>;

/** Relay → an agent: send me your full inventory (UDP); a heartbeat's digest differs from what it holds. */
export const InventoryRequestSchema = z.strictObject({
  kind: z.literal('inventory-request'),
  relayId: IdSchema,
  hostId: IdSchema,
});
export type InventoryRequest = z.infer<typeof InventoryRequestSchema>;

/**
 * Relay → each other relay of its site, every `hostHeartbeatMs` (UDP): "I am alive". A relay reports how
 * long ago it heard each peer, so that the control plane learns at LAN speed that a relay died (one that
 * died with a host must not keep that host from failing over), and lets relays that hear each other take
 * turns reporting. Carries nothing else: any holder of the site's key could forge it, and a forged one can
 * only keep a dead relay looking alive for as long as its own reports say, never silence a live one.
 */
export const RelayHeartbeatSchema = z.strictObject({
  kind: z.literal('relay-heartbeat'),
  relayId: IdSchema,
});
export type RelayHeartbeat = z.infer<typeof RelayHeartbeatSchema>;

/** Relay → an agent: send me these VMs' definitions (UDP, or HTTP when the list is long). */
export const DefinitionRequestSchema = z.strictObject({
  kind: z.literal('definition-request'),
  relayId: IdSchema,
  hostId: IdSchema,
  vmIds: z.array(IdSchema).min(1).max(1000),
});
export type DefinitionRequest = z.infer<typeof DefinitionRequestSchema>;

/** Agent → a relay: VM definitions it asked for (HTTP). */
export const DefinitionsSchema = z.strictObject({
  kind: z.literal('definitions'),
  hostId: IdSchema,
  items: z
    .array(z.strictObject({ vmId: IdSchema, xml: DefinitionXmlSchema }))
    .min(1)
    .max(64),
});
export type Definitions = z.infer<typeof DefinitionsSchema>;

/** Relay → the agent of `hostId`: start this VM (HTTP). Resent until answered; acted on once per commandId. */
export const StartVmRequestSchema = z.strictObject({
  kind: z.literal('start-vm'),
  commandId: RefSchema,
  /** Where to send the answer. */
  relayId: IdSchema,
  /** The host that must start it; an agent ignores a request meant for another host. */
  hostId: IdSchema,
  vm: StartVmCommandSchema.shape.vm,
  /** The VM's domain XML as the site keeps it: a host where the VM is not defined defines it first. */
  definition: DefinitionXmlSchema.optional(),
  /** Past this the agent does not start the VM any more (the control plane has moved on). */
  notAfter: epochMs,
  /**
   * The host's boot when the relay took the start: an agent in another boot does not start the VM. That
   * boot ended (a fence, a crash, a reboot), and with it the start: the control plane may have started the
   * VM elsewhere since. Absent: the relay had not heard the host.
   */
  bootId: z.string().min(1).max(200).optional(),
});
export type StartVmRequest = z.infer<typeof StartVmRequestSchema>;

/** Agent → the relay that asked: what became of a start request (HTTP). */
export const StartVmReplySchema = z.strictObject({
  kind: z.literal('start-result'),
  commandId: RefSchema,
  hostId: IdSchema,
  outcome: z.enum(['succeeded', 'failed']),
  detail: z.string().max(1000).optional(),
  finishedAt: epochMs,
});
export type StartVmReply = z.infer<typeof StartVmReplySchema>;

/** Anything that travels on the LAN; a transport adapter parses inbound bytes with it. */
export const LanMessageSchema = z.discriminatedUnion('kind', [
  HeartbeatSchema,
  InventorySchema,
  InventoryRequestSchema,
  DefinitionRequestSchema,
  DefinitionsSchema,
  StartVmRequestSchema,
  StartVmReplySchema,
  RelayHeartbeatSchema,
]);
export type LanMessage = z.infer<typeof LanMessageSchema>;

/** Kinds small enough for one datagram, sent over UDP; the others go over HTTP on the LAN. */
export const DATAGRAM_KINDS: ReadonlySet<LanMessage['kind']> = new Set([
  'heartbeat',
  'inventory-request',
  'definition-request',
  'relay-heartbeat',
]);

/** The sender a message claims: the host for agent messages, the relay for relay messages. */
export function claimedSender(message: LanMessage): string {
  switch (message.kind) {
    case 'heartbeat':
    case 'inventory':
    case 'definitions':
    case 'start-result':
      return message.hostId;
    case 'inventory-request':
    case 'definition-request':
    case 'start-vm':
    case 'relay-heartbeat':
      return message.relayId;
  }
}

/** What an inventory digest covers: everything a relay reports about the host except timings. */
export interface InventoryContent {
  readonly cluster: string;
  readonly bootId: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly vms: readonly ObservedVm[];
  /** Digests of the VMs' definitions, by VM id (absent: the hypervisor has none). */
  readonly definitions?: Readonly<Record<string, string>> | undefined;
}

/** SHA-256 (hex) of a VM's domain XML. */
export function definitionDigest(xml: string): string {
  return createHash('sha256').update(xml).digest('hex');
}

/**
 * SHA-256 (hex) of a host's inventory in a canonical form (VMs sorted by id, fields in a fixed order), so
 * that the agent and the relay compute the same digest from the same content.
 */
export function inventoryDigest(content: InventoryContent): string {
  const vms = [...content.vms]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((vm) => [vm.id, vm.cpus, vm.memoryMiB, vm.state, vm.reason ?? null, vm.autostart ?? null]);
  const parts: unknown[] = [content.cluster, content.bootId, content.cpus, content.memoryMiB, vms];
  // Definitions only when there are some, so the digest of a host without them is what v1 agents send.
  if (content.definitions !== undefined) {
    parts.push(Object.entries(content.definitions).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  const canonical = JSON.stringify(parts);
  return createHash('sha256').update(canonical).digest('hex');
}
