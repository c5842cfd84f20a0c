import * as z from 'zod';
import {
  HostObservationSchema,
  IdSchema,
  RefSchema,
  StartVmCommandSchema,
} from '../contracts/relay-protocol';

/**
 * Messages between host agents and relays on the site's LAN. Built from the relay protocol's schemas so
 * that what an agent may send is exactly what a relay may forward: a relay that validates each heartbeat
 * can never be made to send a report the control plane refuses as a whole.
 */

const epochMs = z.number().int().nonnegative();

/** Agent → every relay of its site, every `hostHeartbeatMs`. */
export const HeartbeatSchema = HostObservationSchema.omit({ lastHeardMsAgo: true }).extend({
  kind: z.literal('heartbeat'),
  /** The agent's clock. */
  sentAt: epochMs,
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

/** Relay → the agent of `hostId`: start this VM. Resent until answered; acted on once per commandId. */
export const StartVmRequestSchema = z.strictObject({
  kind: z.literal('start-vm'),
  commandId: RefSchema,
  /** Where to send the answer. */
  relayId: IdSchema,
  /** The host that must start it; an agent ignores a request meant for another host. */
  hostId: IdSchema,
  vm: StartVmCommandSchema.shape.vm,
  /** Past this the agent does not start the VM any more (the control plane has moved on). */
  notAfter: epochMs,
});
export type StartVmRequest = z.infer<typeof StartVmRequestSchema>;

/** Agent → the relay that asked: what became of a start request. */
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
  StartVmRequestSchema,
  StartVmReplySchema,
]);
export type LanMessage = z.infer<typeof LanMessageSchema>;
