import { createHmac, timingSafeEqual } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import * as z from 'zod';
import { IdSchema } from '../../contracts/relay-protocol';
import {
  claimedSender,
  DATAGRAM_KINDS,
  LAN_PROTOCOL_VERSION,
  type LanMessage,
  LanMessageSchema,
} from '../lan-protocol';
import { type Lan, type SiteLogger, silentLogger } from '../ports';

/**
 * The production LAN between host agents and relays (LAN protocol v1, docs/protocol.md): every message is
 * authenticated with the site's shared key, small ones travel as UDP datagrams, the others as an HTTP POST
 * to the same port number. Integrity and freshness only: nothing is encrypted (nothing on the LAN is a
 * secret; BMC credentials never leave the relay).
 */

/** Length of the HMAC-SHA256 tag that prefixes every message. */
export const LAN_MAC_BYTES = 32;
/** Shortest LAN key accepted: the HMAC-SHA256 block of security. */
export const MIN_LAN_KEY_BYTES = 32;
/** Path of the HTTP half of the transport. */
export const LAN_HTTP_PATH = '/halo-lan/v1';
/** Largest datagram sent: stays under a 1500-byte Ethernet MTU with IP/UDP headers, so never fragmented. */
export const MAX_DATAGRAM_SEND_BYTES = 1400;
/** Largest datagram accepted (UDP cannot carry more anyway). */
export const MAX_DATAGRAM_RECEIVE_BYTES = 64 * 1024;
/** Largest HTTP body accepted: an inventory of 1,000 VMs is ~90 KB, so this is ample and still bounded. */
export const MAX_HTTP_BODY_BYTES = 4 * 1024 * 1024;

/** Bound into every MAC so that a tag made for anything else with the same key never verifies here. */
const MAC_CONTEXT = Buffer.from(`halo-lan/${LAN_PROTOCOL_VERSION}\n`, 'utf8');
const LOG_EVERY_MS = 60_000;
/** Rate-limit keys remembered at most: spoofed source addresses must not grow memory or the log. */
const MAX_LOG_KEYS = 4096;
/** Sequence numbers remembered per sender at most (a sender sends a few per second). */
const MAX_REMEMBERED_SEQS = 4096;
/** Largest |receiver clock − sentAt| accepted unless configured otherwise: older or newer is `stale`. */
export const DEFAULT_LAN_MAX_SKEW_MS = 10_000;
/** Longest an HTTP send may take unless configured otherwise; a message not through by then is lost. */
export const DEFAULT_LAN_HTTP_TIMEOUT_MS = 3000;
/** Port-0 binds retried when another program took the TCP port UDP got. */
const BIND_ATTEMPTS = 8;

const LanEnvelopeSchema = z.strictObject({
  v: z.literal(LAN_PROTOCOL_VERSION),
  site: IdSchema,
  from: IdSchema,
  port: z.number().int().min(1).max(65535),
  seq: z.number().int().nonnegative(),
  sentAt: z.number().int().nonnegative(),
  msg: LanMessageSchema,
});

/** What is authenticated on the wire around each LAN message. */
export type LanEnvelope = z.infer<typeof LanEnvelopeSchema>;

/** Why a message was dropped, on the way in or out. */
export type LanDropReason =
  | 'unauthenticated'
  | 'malformed'
  | 'wrong-site'
  | 'stale'
  | 'replayed'
  | 'too-large'
  | 'no-route'
  | 'send-failed';

const DROP_REASONS: readonly LanDropReason[] = [
  'unauthenticated',
  'malformed',
  'wrong-site',
  'stale',
  'replayed',
  'too-large',
  'no-route',
  'send-failed',
];

/** Counters of a transport since it opened. */
export interface LanStats {
  /** Messages handed to a socket (UDP) or to fetch (HTTP). */
  sent: number;
  /** Datagrams and POSTs to the LAN path that came in, accepted or not. */
  received: number;
  /** Inbound messages that passed every check and were handed to `receive`. */
  accepted: number;
  dropped: Record<LanDropReason, number>;
}

/** Where a peer listens: one port number for both UDP and HTTP. */
export interface LanAddress {
  readonly host: string;
  readonly port: number;
}

/** Settings of a LAN transport. */
export interface LanTransportOptions {
  readonly siteId: string;
  /** This program's id: a host id for an agent, a relay id for a relay. */
  readonly selfId: string;
  /** The site's LAN key (readLanKey); at least 32 bytes. */
  readonly key: Buffer;
  /** One port number, bound by both the UDP socket and the HTTP server; 0 picks a free one. */
  readonly listen: LanAddress;
  /** Peers known from configuration (an agent's relays); others are learned from their messages. */
  readonly peers?: Readonly<Record<string, LanAddress>>;
  /** Hands each accepted message to the program; its failures are logged, never propagated. */
  readonly receive: (message: LanMessage) => void | Promise<void>;
  /** Default Date.now. */
  readonly clock?: { now(): number };
  /** Largest |receiver clock − sentAt| accepted; default 10 s. Also bounds how long replays are remembered. */
  readonly maxSkewMs?: number;
  readonly log?: SiteLogger;
  /** Longest an HTTP send may take; default 3 s. */
  readonly httpTimeoutMs?: number;
}

/** What openEnvelope makes of inbound bytes. */
export type OpenedEnvelope =
  | { readonly ok: true; readonly envelope: LanEnvelope }
  | { readonly ok: false; readonly reason: 'unauthenticated' | 'malformed' };

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(MAC_CONTEXT).update(body).digest();
}

/** Serialises an envelope and prefixes it with its MAC: the bytes of one datagram or HTTP body. */
export function sealEnvelope(key: Buffer, envelope: LanEnvelope): Buffer {
  const body = Buffer.from(JSON.stringify(envelope), 'utf8');
  return Buffer.concat([mac(key, body), body]);
}

/**
 * Checks the MAC of inbound bytes and only then parses them (so nobody without the key reaches the JSON
 * parser or the schemas), returning the envelope or why it is refused.
 */
export function openEnvelope(key: Buffer, bytes: Uint8Array): OpenedEnvelope {
  if (bytes.length <= LAN_MAC_BYTES) return { ok: false, reason: 'unauthenticated' };
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const body = buffer.subarray(LAN_MAC_BYTES);
  if (!timingSafeEqual(buffer.subarray(0, LAN_MAC_BYTES), mac(key, body))) {
    return { ok: false, reason: 'unauthenticated' };
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const parsed = LanEnvelopeSchema.safeParse(json);
  return parsed.success ? { ok: true, envelope: parsed.data } : { ok: false, reason: 'malformed' };
}

const KEY_ERROR = 'LAN key: expected at least 32 bytes, base64 or hex';

/**
 * Reads a LAN key file's content (make one with `openssl rand -base64 32 > lan.key`): hex when it is 64 or
 * more hex digits, else base64. The error never repeats the content, which may be a mistyped key.
 */
export function readLanKey(text: string): Buffer {
  const trimmed = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length >= 64 && trimmed.length % 2 === 0) {
    key = Buffer.from(trimmed, 'hex');
  } else {
    // openssl wraps long base64 output over several lines.
    const compact = trimmed.replace(/\s+/g, '');
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(compact) && compact.length % 4 === 0) {
      const decoded = Buffer.from(compact, 'base64');
      // Node's decoder skips what it does not understand; a round trip proves nothing was skipped.
      if (decoded.toString('base64') === compact) key = decoded;
    }
  }
  if (key === undefined || key.length < MIN_LAN_KEY_BYTES) throw new Error(KEY_ERROR);
  return key;
}

/**
 * Accepts each (sender, seq) at most once. It remembers the seqs it accepted from a sender for as long as
 * those messages would still pass the freshness check, and refuses any seq not above every seq it has
 * forgotten. Unlike "above the highest seq", this lets messages overtake each other (a datagram overtakes
 * an HTTP POST sent just before it; two concurrent POSTs land in either order) without being refused.
 */
class ReplayGuard {
  private readonly senders = new Map<string, { floor: number; seen: Map<number, number> }>();

  isNew(sender: string, seq: number, now: number): boolean {
    const state = this.senders.get(sender);
    if (state === undefined) return true;
    for (const [remembered, until] of state.seen) {
      if (until < now) {
        state.seen.delete(remembered);
        state.floor = Math.max(state.floor, remembered);
      }
    }
    return seq > state.floor && !state.seen.has(seq);
  }

  /** `until`: the receiver's time after which this message would be stale anyway. */
  remember(sender: string, seq: number, until: number): void {
    let state = this.senders.get(sender);
    if (state === undefined) {
      state = { floor: -1, seen: new Map() };
      this.senders.set(sender, state);
    }
    state.seen.set(seq, until);
    if (state.seen.size > MAX_REMEMBERED_SEQS) {
      const lowest = Math.min(...state.seen.keys());
      state.seen.delete(lowest);
      state.floor = Math.max(state.floor, lowest);
    }
  }
}

type Via = 'udp' | 'http';

/** HTTP answer to an inbound message: only a status, which tells a peer what it needs and nothing more. */
const STATUS_OF: Record<LanDropReason, number> = {
  unauthenticated: 401,
  malformed: 400,
  'wrong-site': 400,
  stale: 400,
  replayed: 409,
  'too-large': 413,
  'no-route': 400,
  'send-failed': 400,
};

function errorCode(error: unknown): string {
  if (error instanceof Error) {
    // fetch wraps the socket error (ECONNREFUSED…) in `cause`; its own message is just "fetch failed".
    const cause: unknown = error.cause;
    if (cause instanceof Error && 'code' in cause && typeof cause.code === 'string') return cause.code;
    if ('code' in error && typeof error.code === 'string') return error.code;
    return error.name;
  }
  return 'unknown';
}

function urlHost(host: string): string {
  return isIPv6(host) ? `[${host.replaceAll('%', '%25')}]` : host;
}

/** A socket and a server bound to the same port number. */
interface Bound {
  readonly udp: Socket;
  readonly server: Server;
  readonly port: number;
}

function bindUdp(host: string, port: number): Promise<Socket> {
  const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    const failed = (error: Error): void => {
      try {
        udp.close();
      } catch {
        // Never bound: nothing to close.
      }
      reject(error);
    };
    udp.once('error', failed);
    udp.bind({ port, address: host }, () => {
      udp.off('error', failed);
      resolve(udp);
    });
  });
}

function listenHttp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeUdp(udp: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      udp.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections would hold close() open until they time out.
    server.closeAllConnections();
  });
}

async function bindBoth(host: string, port: number): Promise<Bound> {
  // With port 0, UDP picks the number and TCP follows it; that TCP port may belong to someone else.
  const attempts = port === 0 ? BIND_ATTEMPTS : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const udp = await bindUdp(host, port);
    const bound = udp.address().port;
    const server = createServer();
    try {
      await listenHttp(server, host, bound);
      return { udp, server, port: bound };
    } catch (error) {
      await closeUdp(udp);
      lastError = error;
      const inUse = error instanceof Error && 'code' in error && error.code === 'EADDRINUSE';
      if (!inUse) break;
    }
  }
  throw lastError;
}

/** The production `Lan`: authenticated UDP datagrams and HTTP POSTs between a site's agents and relays. */
export class LanTransport implements Lan {
  private readonly siteId: string;
  private readonly selfId: string;
  private readonly key: Buffer;
  private readonly listenHost: string;
  private readonly staticPeers: ReadonlyMap<string, LanAddress>;
  private readonly learnedPeers = new Map<string, LanAddress>();
  private readonly clock: { now(): number };
  private readonly maxSkewMs: number;
  private readonly httpTimeoutMs: number;
  private readonly log: SiteLogger;
  private readonly deliver: (message: LanMessage) => void | Promise<void>;
  private readonly replays = new ReplayGuard();
  private readonly lastLogged = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private closed: Promise<void> | null = null;
  private lastSeq = 0;
  private readonly counters: LanStats = {
    sent: 0,
    received: 0,
    accepted: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<LanDropReason, number>,
  };

  private constructor(
    options: LanTransportOptions,
    private readonly bound: Bound,
  ) {
    this.siteId = options.siteId;
    this.selfId = options.selfId;
    this.key = Buffer.from(options.key); // a caller reusing its buffer must not change our key
    this.listenHost = options.listen.host;
    this.staticPeers = new Map(Object.entries(options.peers ?? {}));
    this.clock = options.clock ?? { now: () => Date.now() };
    this.maxSkewMs = options.maxSkewMs ?? DEFAULT_LAN_MAX_SKEW_MS;
    this.httpTimeoutMs = options.httpTimeoutMs ?? DEFAULT_LAN_HTTP_TIMEOUT_MS;
    this.log = options.log ?? silentLogger;
    this.deliver = options.receive;
    bound.udp.on('message', (bytes, remote) => this.onDatagram(bytes, remote.address));
    bound.udp.on('error', (error) => this.log.warn('LAN UDP socket error', { code: errorCode(error) }));
    bound.server.on('request', (request, response) => this.onRequest(request, response));
    bound.server.on('error', (error) => this.log.warn('LAN HTTP server error', { code: errorCode(error) }));
    bound.server.requestTimeout = 30_000;
    bound.server.headersTimeout = 10_000;
  }

  /** Binds the UDP socket and the HTTP server on `listen` and starts handing accepted messages to `receive`. */
  static async open(options: LanTransportOptions): Promise<LanTransport> {
    if (options.key.length < MIN_LAN_KEY_BYTES) throw new Error(KEY_ERROR);
    if (!IdSchema.safeParse(options.siteId).success) throw new Error('LAN transport: invalid siteId');
    if (!IdSchema.safeParse(options.selfId).success) throw new Error('LAN transport: invalid selfId');
    const bound = await bindBoth(options.listen.host, options.listen.port);
    const transport = new LanTransport(options, bound);
    transport.log.info('LAN transport listening', { host: options.listen.host, port: bound.port });
    return transport;
  }

  /** Where this transport listens (the actual port when `listen.port` was 0). */
  address(): LanAddress {
    return { host: this.listenHost, port: this.bound.port };
  }

  /** A copy of the counters. */
  stats(): LanStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** Sends one message to a peer by id: UDP for datagram kinds that fit, HTTP otherwise. Never throws. */
  send(to: string, message: LanMessage): void {
    if (this.closed !== null) {
      this.counters.dropped['send-failed'] += 1;
      return;
    }
    const address = this.staticPeers.get(to) ?? this.learnedPeers.get(to);
    if (address === undefined) {
      this.counters.dropped['no-route'] += 1;
      if (this.mayLog(`no-route|${to}`)) this.log.warn('LAN peer unknown: message dropped', { to });
      return;
    }
    const now = this.clock.now();
    // Time-based so that it keeps rising across restarts without being stored anywhere.
    this.lastSeq = Math.max(this.lastSeq + 1, now);
    const bytes = sealEnvelope(this.key, {
      v: LAN_PROTOCOL_VERSION,
      site: this.siteId,
      from: this.selfId,
      port: this.bound.port,
      seq: this.lastSeq,
      sentAt: now,
      msg: message,
    });
    this.counters.sent += 1;
    if (DATAGRAM_KINDS.has(message.kind) && bytes.length <= MAX_DATAGRAM_SEND_BYTES) {
      this.sendDatagram(to, address, bytes);
    } else {
      const post = this.post(to, address, bytes).finally(() => this.inFlight.delete(post));
      this.inFlight.add(post);
    }
  }

  /** Closes the UDP socket and the HTTP server, aborts HTTP sends in flight, and waits for all of it. */
  close(): Promise<void> {
    if (this.closed === null) {
      this.closing.abort();
      this.closed = (async () => {
        await Promise.allSettled([...this.inFlight]);
        await Promise.all([closeUdp(this.bound.udp), closeServer(this.bound.server)]);
      })();
    }
    return this.closed;
  }

  private sendDatagram(to: string, address: LanAddress, bytes: Buffer): void {
    try {
      this.bound.udp.send(bytes, address.port, address.host, (error) => {
        if (error) this.sendFailed(to, 'udp', { code: errorCode(error) });
      });
    } catch (error) {
      this.sendFailed(to, 'udp', { code: errorCode(error) });
    }
  }

  private async post(to: string, address: LanAddress, bytes: Buffer): Promise<void> {
    try {
      const response = await fetch(`http://${urlHost(address.host)}:${address.port}${LAN_HTTP_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
        redirect: 'error',
        signal: AbortSignal.any([AbortSignal.timeout(this.httpTimeoutMs), this.closing.signal]),
      });
      // Read to the end so that the connection goes back to the pool.
      await response.arrayBuffer();
      if (response.status !== 204) this.sendFailed(to, 'http', { status: response.status });
    } catch (error) {
      this.sendFailed(to, 'http', { code: errorCode(error) });
    }
  }

  private sendFailed(to: string, via: Via, detail: Readonly<Record<string, unknown>>): void {
    this.counters.dropped['send-failed'] += 1;
    if (this.closed === null && this.mayLog(`send-failed|${to}`)) {
      this.log.warn('LAN send failed', { to, via, ...detail });
    }
  }

  private onDatagram(bytes: Buffer, remoteHost: string): void {
    this.counters.received += 1;
    if (bytes.length > MAX_DATAGRAM_RECEIVE_BYTES) {
      this.drop('too-large', remoteHost, 'udp');
      return;
    }
    this.accept(bytes, remoteHost, 'udp');
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    request.on('error', () => undefined); // a peer that hangs up mid-body: nothing to answer
    if (request.method !== 'POST' || request.url !== LAN_HTTP_PATH) {
      request.resume();
      response.writeHead(404).end();
      return;
    }
    this.counters.received += 1;
    const remoteHost = request.socket.remoteAddress ?? '';
    const refuseTooLarge = (): void => {
      this.drop('too-large', remoteHost, 'http');
      // Close rather than read the rest of a body we will not use.
      response.writeHead(STATUS_OF['too-large'], { connection: 'close' });
      response.end(() => request.destroy());
    };
    if (Number(request.headers['content-length'] ?? 0) > MAX_HTTP_BODY_BYTES) {
      refuseTooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    request.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_HTTP_BODY_BYTES) {
        refused = true;
        chunks.length = 0;
        refuseTooLarge();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (refused) return;
      const dropped = this.accept(Buffer.concat(chunks, size), remoteHost, 'http');
      response.writeHead(dropped === null ? 204 : STATUS_OF[dropped]).end();
    });
  }

  /** The receive path, for both channels: each check in order, the first failure drops the message. */
  private accept(bytes: Buffer, remoteHost: string, via: Via): LanDropReason | null {
    const opened = openEnvelope(this.key, bytes);
    if (!opened.ok) return this.drop(opened.reason, remoteHost, via);
    const { envelope } = opened;
    const from = envelope.from;
    if (envelope.site !== this.siteId) return this.drop('wrong-site', remoteHost, via, from);
    // The key is shared by the whole site: without this any host could speak for any other.
    if (claimedSender(envelope.msg) !== from) return this.drop('malformed', remoteHost, via, from);
    const now = this.clock.now();
    if (Math.abs(now - envelope.sentAt) > this.maxSkewMs) return this.drop('stale', remoteHost, via, from);
    if (!this.replays.isNew(from, envelope.seq, now)) return this.drop('replayed', remoteHost, via, from);
    // Our own message reflected back at us.
    if (from === this.selfId) return this.drop('malformed', remoteHost, via, from);
    this.replays.remember(from, envelope.seq, envelope.sentAt + this.maxSkewMs);
    this.counters.accepted += 1;
    // How a relay finds each agent: where its authenticated messages come from, at its listen port.
    if (!this.staticPeers.has(from)) this.learnedPeers.set(from, { host: remoteHost, port: envelope.port });
    try {
      Promise.resolve(this.deliver(envelope.msg)).catch((error: unknown) =>
        this.receiveFailed(envelope, error),
      );
    } catch (error) {
      this.receiveFailed(envelope, error);
    }
    return null;
  }

  private receiveFailed(envelope: LanEnvelope, error: unknown): void {
    this.log.warn('LAN message handler failed', {
      kind: envelope.msg.kind,
      from: envelope.from,
      error: error instanceof Error ? error.message : String(error),
    });
  }

  private drop(reason: LanDropReason, remoteHost: string, via: Via, peer?: string): LanDropReason {
    this.counters.dropped[reason] += 1;
    if (this.mayLog(`${reason}|${remoteHost}`)) {
      // The address and, once authenticated, the claimed id; never the bytes.
      this.log.warn('LAN message dropped', {
        reason,
        from: remoteHost,
        via,
        ...(peer === undefined ? {} : { peer }),
      });
    }
    return reason;
  }

  /** Once per key per minute, with bounded memory even when source addresses are spoofed. */
  private mayLog(key: string): boolean {
    const now = this.clock.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return false;
    if (last === undefined && this.lastLogged.size >= MAX_LOG_KEYS) {
      for (const [k, at] of this.lastLogged) if (now - at >= LOG_EVERY_MS) this.lastLogged.delete(k);
      if (this.lastLogged.size >= MAX_LOG_KEYS) return false;
    }
    this.lastLogged.set(key, now);
    return true;
  }
}
