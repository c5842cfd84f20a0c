import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LAN_HTTP_PATH,
  LAN_MAC_BYTES,
  type LanEnvelope,
  LanTransport,
  type LanTransportOptions,
  MAX_DATAGRAM_SEND_BYTES,
  MAX_HTTP_BODY_BYTES,
  openEnvelope,
  readLanKey,
  sealEnvelope,
} from '../../../site/adapters/lan-transport';
import {
  type Heartbeat,
  type Inventory,
  InventorySchema,
  inventoryDigest,
  type LanMessage,
  type StartVmRequest,
} from '../../../site/lan-protocol';
import type { SiteLogger } from '../../../site/ports';

const SITE = 'dc1';
const KEY = randomBytes(32);
const LOOPBACK = '127.0.0.1';

/** Everything a transport handed to its program, and every log line it wrote. */
class Program {
  readonly messages: LanMessage[] = [];
  readonly logs: { level: 'info' | 'warn'; message: string; data?: Readonly<Record<string, unknown>> }[] = [];
  readonly receive = (message: LanMessage): void => {
    this.messages.push(message);
  };
  readonly log: SiteLogger = {
    info: (message, data) => this.logs.push({ level: 'info', message, data }),
    warn: (message, data) => this.logs.push({ level: 'warn', message, data }),
  };
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function open(
  selfId: string,
  program: Program,
  options: Partial<LanTransportOptions> = {},
): Promise<LanTransport> {
  const transport = await LanTransport.open({
    siteId: SITE,
    selfId,
    key: KEY,
    listen: { host: LOOPBACK, port: 0 },
    receive: program.receive,
    log: program.log,
    ...options,
  });
  cleanups.push(() => transport.close());
  return transport;
}

/** A relay and an agent whose configuration names it, both on loopback. */
async function relayAndAgent() {
  const relayProgram = new Program();
  const agentProgram = new Program();
  const relay = await open('relay-a', relayProgram);
  const agent = await open('node01', agentProgram, { peers: { 'relay-a': relay.address() } });
  return { relay, agent, relayProgram, agentProgram };
}

async function rawSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  cleanups.push(() => new Promise((resolve) => socket.close(() => resolve())));
  return socket;
}

function sendRaw(socket: Socket, bytes: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(bytes, port, LOOPBACK, (error) => (error ? reject(error) : resolve())),
  );
}

function post(port: number, body: Uint8Array, path = LAN_HTTP_PATH): Promise<Response> {
  return fetch(`http://${LOOPBACK}:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body,
  });
}

/** Announces a body above the limit and sends none of it: the answer must not wait for the body. */
function announceTooLarge(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: LOOPBACK,
        port,
        method: 'POST',
        path: LAN_HTTP_PATH,
        headers: { 'content-length': String(MAX_HTTP_BODY_BYTES + 1) },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode);
        request.destroy();
      },
    );
    request.on('error', reject);
    request.flushHeaders();
  });
}

/** Streams a body past the limit without announcing its length; the server may cut it off mid-way. */
function streamTooLarge(port: number): Promise<void> {
  return new Promise((resolve) => {
    const request = httpRequest({ host: LOOPBACK, port, method: 'POST', path: LAN_HTTP_PATH }, (response) => {
      response.resume();
      response.on('end', () => resolve());
      response.on('error', () => resolve());
    });
    request.on('error', () => resolve());
    const chunk = Buffer.alloc(256 * 1024);
    for (let sent = 0; sent <= MAX_HTTP_BODY_BYTES; sent += chunk.length) request.write(chunk);
    request.end();
  });
}

function heartbeat(hostId = 'node01'): Heartbeat {
  return {
    kind: 'heartbeat',
    hostId,
    cluster: 'prod',
    bootId: 'boot-1',
    cpus: 32,
    memoryMiB: 65536,
    vmCount: 0,
    digest: 'a'.repeat(64),
    sentAt: Date.now(),
  };
}

function startVm(): StartVmRequest {
  return {
    kind: 'start-vm',
    commandId: 'dc1:node02:1:start:vm-001',
    relayId: 'relay-a',
    hostId: 'node01',
    vm: { id: 'vm-001', cpus: 2, memoryMiB: 4096 },
    notAfter: Date.now() + 60_000,
  };
}

function inventory(vmCount: number): Inventory {
  const vms = Array.from({ length: vmCount }, (_, i) => ({
    id: `vm-${String(i).padStart(4, '0')}`,
    cpus: 2,
    memoryMiB: 4096,
    state: 'running' as const,
  }));
  const content = { cluster: 'prod', bootId: 'boot-1', cpus: 256, memoryMiB: 4 * 1024 * 1024, vms };
  return InventorySchema.parse({
    kind: 'inventory',
    hostId: 'node01',
    ...content,
    digest: inventoryDigest(content),
    sentAt: Date.now(),
  });
}

let nextSeq = Date.now();

/** A valid envelope from node01 (a heartbeat) unless told otherwise; each call gets a fresh seq. */
function envelope(overrides: Partial<LanEnvelope> = {}): LanEnvelope {
  nextSeq += 1;
  return {
    v: 1,
    site: SITE,
    from: 'node01',
    port: 9,
    seq: nextSeq,
    sentAt: Date.now(),
    msg: heartbeat(),
    ...overrides,
  };
}

/** The documented wire format, computed here independently of the transport's own sealEnvelope. */
function sealText(key: Buffer, json: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  const tag = createHmac('sha256', key).update('halo-lan/1\n').update(body).digest();
  return Buffer.concat([tag, body]);
}

/** A stand-in peer on one port that records what arrives by UDP and by HTTP, and answers 204. */
async function capturingPeer(): Promise<{
  port: number;
  datagrams: Buffer[];
  posts: { method: string; url: string; contentType: string; body: Buffer }[];
}> {
  const udp = await rawSocket();
  const port = udp.address().port;
  const datagrams: Buffer[] = [];
  const posts: { method: string; url: string; contentType: string; body: Buffer }[] = [];
  udp.on('message', (bytes) => datagrams.push(bytes));
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      posts.push({
        method: request.method ?? '',
        url: request.url ?? '',
        contentType: request.headers['content-type'] ?? '',
        body: Buffer.concat(chunks),
      });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, resolve);
  });
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { port, datagrams, posts };
}

describe('LanTransport between an agent and a relay', () => {
  it('carries a heartbeat by UDP, lets the relay learn the agent, and carries start-vm and a 1,000-VM inventory by HTTP', async () => {
    // given an agent configured with the relay, and a relay that knows no agent yet
    const { relay, agent, relayProgram, agentProgram } = await relayAndAgent();
    relay.send('node01', startVm());
    expect(relay.stats().dropped['no-route']).toBe(1);

    // when the agent sends a heartbeat
    const beat = heartbeat();
    agent.send('relay-a', beat);

    // then the relay's program gets it
    await expect.poll(() => relayProgram.messages).toEqual([beat]);

    // and the relay can now reach node01 at the address the heartbeat came from
    const request = startVm();
    relay.send('node01', request);
    await expect.poll(() => agentProgram.messages).toEqual([request]);

    // and an inventory of 1,000 VMs, far too big for a datagram, arrives whole
    const big = inventory(1000);
    agent.send('relay-a', big);
    await expect.poll(() => relayProgram.messages.length).toBe(2);
    expect(relayProgram.messages[1]).toEqual(big);
    expect(relay.stats()).toMatchObject({ received: 2, accepted: 2 });
    expect(agent.stats()).toMatchObject({ sent: 2, received: 1, accepted: 1 });
    expect(Object.values(agent.stats().dropped).every((n) => n === 0)).toBe(true);
  });

  it('puts datagram kinds in one MACed datagram and the others in a POST, as docs/protocol.md says', async () => {
    // given an agent whose relay is a stand-in recording what arrives
    const peer = await capturingPeer();
    const agent = await open('node01', new Program(), {
      peers: { 'relay-a': { host: LOOPBACK, port: peer.port } },
    });

    // when it sends a heartbeat and a small inventory
    const beat = heartbeat();
    agent.send('relay-a', beat);
    const small = inventory(2);
    agent.send('relay-a', small);

    // then the heartbeat is one datagram: MAC over "halo-lan/1\n" || JSON, then the envelope
    await expect.poll(() => peer.datagrams.length).toBe(1);
    const datagram = peer.datagrams[0] ?? Buffer.alloc(0);
    expect(datagram.length).toBeLessThanOrEqual(MAX_DATAGRAM_SEND_BYTES);
    const json = datagram.subarray(LAN_MAC_BYTES).toString('utf8');
    expect(sealText(KEY, json)).toEqual(datagram);
    expect(JSON.parse(json)).toEqual({
      v: 1,
      site: SITE,
      from: 'node01',
      port: agent.address().port,
      seq: expect.any(Number),
      sentAt: expect.any(Number),
      msg: beat,
    });

    // and the inventory is a POST of the same format
    await expect.poll(() => peer.posts.length).toBe(1);
    const sent = peer.posts[0];
    expect(sent).toMatchObject({
      method: 'POST',
      url: LAN_HTTP_PATH,
      contentType: 'application/octet-stream',
    });
    const opened = openEnvelope(KEY, sent?.body ?? Buffer.alloc(0));
    expect(opened.ok && opened.envelope.msg).toEqual(small);
    // seq rises from one message to the next
    const first = JSON.parse(json) as LanEnvelope;
    expect(opened.ok && opened.envelope.seq).toBeGreaterThan(first.seq);
  });
});

describe('LanTransport receive checks', () => {
  it('drops a captured datagram replayed to the relay', async () => {
    // given a valid heartbeat captured off the wire
    const peer = await capturingPeer();
    const agent = await open('node01', new Program(), {
      peers: { 'relay-a': { host: LOOPBACK, port: peer.port } },
    });
    agent.send('relay-a', heartbeat());
    await expect.poll(() => peer.datagrams.length).toBe(1);
    const captured = peer.datagrams[0] ?? Buffer.alloc(0);
    const relayProgram = new Program();
    const relay = await open('relay-a', relayProgram);
    const attacker = await rawSocket();

    // when it is delivered once, then again
    await sendRaw(attacker, captured, relay.address().port);
    await expect.poll(() => relay.stats().accepted).toBe(1);
    await sendRaw(attacker, captured, relay.address().port);

    // then the second copy is dropped as a replay
    await expect.poll(() => relay.stats().dropped.replayed).toBe(1);
    expect(relayProgram.messages).toHaveLength(1);
  });

  it('drops forged, garbage, malformed, wrong-site and impersonating datagrams without handing them on', async () => {
    const relayProgram = new Program();
    const relay = await open('relay-a', relayProgram);
    const port = relay.address().port;
    const attacker = await rawSocket();

    // a well-formed envelope MACed with another key
    await sendRaw(attacker, sealEnvelope(randomBytes(32), envelope()), port);
    // bytes that are not a message at all, and fewer bytes than a MAC
    await sendRaw(attacker, randomBytes(200), port);
    await sendRaw(attacker, Buffer.from('hi'), port);
    await expect.poll(() => relay.stats().dropped.unauthenticated).toBe(3);

    // correctly MACed: not JSON; JSON but not an envelope; an envelope with an unknown message kind
    await sendRaw(attacker, sealText(KEY, '{"v":1,'), port);
    await sendRaw(attacker, sealText(KEY, JSON.stringify({ hello: 'world' })), port);
    await sendRaw(attacker, sealText(KEY, JSON.stringify({ ...envelope(), msg: { kind: 'reboot' } })), port);
    await expect.poll(() => relay.stats().dropped.malformed).toBe(3);

    // another site's message under the same key
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ site: 'dc2' })), port);
    await expect.poll(() => relay.stats().dropped['wrong-site']).toBe(1);

    // node02 speaking for node01
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ from: 'node02', msg: heartbeat('node01') })), port);
    await expect.poll(() => relay.stats().dropped.malformed).toBe(4);

    // the relay's own message reflected back at it
    const reflected = envelope({
      from: 'relay-a',
      msg: { kind: 'inventory-request', relayId: 'relay-a', hostId: 'node01' },
    });
    await sendRaw(attacker, sealEnvelope(KEY, reflected), port);
    await expect.poll(() => relay.stats().dropped.malformed).toBe(5);

    expect(relayProgram.messages).toEqual([]);
    expect(relay.stats()).toMatchObject({ received: 9, accepted: 0 });
    // the log says why and from where, never the key or the content
    const logged = JSON.stringify(relayProgram.logs);
    expect(relayProgram.logs.filter((l) => l.level === 'warn').length).toBeGreaterThan(0);
    expect(logged).toContain(LOOPBACK);
    for (const secret of [KEY.toString('hex'), KEY.toString('base64'), 'boot-1', 'reboot']) {
      expect(logged).not.toContain(secret);
    }
    // a learned address needs an accepted message: none of these taught the relay anything
    relay.send('node01', startVm());
    expect(relay.stats().dropped['no-route']).toBe(1);
  });

  it('drops a message whose sentAt is more than maxSkewMs from its clock, either way', async () => {
    // given a relay on a clock of its own
    let now = 1_800_000_000_000;
    const relayProgram = new Program();
    const relay = await open('relay-a', relayProgram, { clock: { now: () => now }, maxSkewMs: 10_000 });
    const port = relay.address().port;
    const attacker = await rawSocket();

    // when messages come from too far in the past and the future
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ seq: 1, sentAt: now - 10_001 })), port);
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ seq: 2, sentAt: now + 10_001 })), port);

    // then both are stale
    await expect.poll(() => relay.stats().dropped.stale).toBe(2);
    expect(relayProgram.messages).toEqual([]);

    // and one right at the limit is accepted
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ seq: 3, sentAt: now - 10_000 })), port);
    await expect.poll(() => relay.stats().accepted).toBe(1);

    // and once the clock moves on, the same message has become stale
    now += 1;
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ seq: 4, sentAt: now - 10_001 })), port);
    await expect.poll(() => relay.stats().dropped.stale).toBe(3);
  });

  it('accepts messages that overtook each other, each only once, and nothing below what it forgot', async () => {
    // given a relay on a clock of its own
    let now = 1_800_000_000_000;
    const relayProgram = new Program();
    const relay = await open('relay-a', relayProgram, { clock: { now: () => now }, maxSkewMs: 10_000 });
    const port = relay.address().port;
    const attacker = await rawSocket();
    const later = sealEnvelope(KEY, envelope({ seq: now + 2, sentAt: now }));
    const earlier = sealEnvelope(KEY, envelope({ seq: now + 1, sentAt: now }));

    // when the later message arrives first (a datagram overtaking a POST), then the earlier one, twice
    await sendRaw(attacker, later, port);
    await expect.poll(() => relay.stats().accepted).toBe(1);
    await sendRaw(attacker, earlier, port);
    await expect.poll(() => relay.stats().accepted).toBe(2);
    await sendRaw(attacker, earlier, port);

    // then both were accepted once and the copy is a replay
    await expect.poll(() => relay.stats().dropped.replayed).toBe(1);

    // and once both are old enough to be forgotten, a fresh message with a lower seq is still refused
    now += 10_001;
    await sendRaw(attacker, sealEnvelope(KEY, envelope({ seq: now - 20_000, sentAt: now })), port);
    await expect.poll(() => relay.stats().dropped.replayed).toBe(2);
    expect(relayProgram.messages).toHaveLength(2);
  });

  it('answers HTTP with a status only: 204 accepted, 401 bad MAC, 409 replay, 400 wrong site, 413 too large', async () => {
    const relayProgram = new Program();
    const relay = await open('relay-a', relayProgram);
    const port = relay.address().port;

    const forged = sealEnvelope(KEY, envelope());
    forged[0] = (forged[0] ?? 0) ^ 1;
    const refused = await post(port, forged);
    expect(refused.status).toBe(401);
    expect(await refused.text()).toBe('');
    expect(relay.stats().dropped.unauthenticated).toBe(1);
    expect(relayProgram.messages).toEqual([]);

    const valid = sealEnvelope(KEY, envelope());
    expect((await post(port, valid)).status).toBe(204);
    expect(relayProgram.messages).toHaveLength(1);
    expect((await post(port, valid)).status).toBe(409);
    expect((await post(port, sealEnvelope(KEY, envelope({ site: 'dc2' })))).status).toBe(400);
    expect(await announceTooLarge(port)).toBe(413);
    // a chunked body with no length announced is cut off once past the limit
    await streamTooLarge(port);
    await expect.poll(() => relay.stats().dropped['too-large']).toBe(2);
    expect((await post(port, valid, '/other')).status).toBe(404);

    expect(relay.stats()).toMatchObject({ received: 6, accepted: 1 });
    expect(relay.stats().dropped).toMatchObject({
      unauthenticated: 1,
      replayed: 1,
      'wrong-site': 1,
      'too-large': 2,
    });
    expect(relayProgram.messages).toHaveLength(1);
  });
});

describe('LanTransport sending', () => {
  it('drops a message to an unknown peer as no-route, logging it once a minute', async () => {
    const program = new Program();
    const agent = await open('node01', program);

    expect(() => agent.send('relay-z', heartbeat())).not.toThrow();
    expect(() => agent.send('relay-z', inventory(1))).not.toThrow();

    expect(agent.stats().dropped['no-route']).toBe(2);
    expect(agent.stats().sent).toBe(0);
    expect(program.logs.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', message: 'LAN peer unknown: message dropped', data: { to: 'relay-z' } },
    ]);
  });

  it('counts an HTTP send nobody answers as send-failed, without throwing', async () => {
    // given a relay address where nothing listens any more
    const gone = await open('relay-a', new Program());
    const address = gone.address();
    await gone.close();
    const program = new Program();
    const agent = await open('node01', program, { peers: { 'relay-a': address } });

    agent.send('relay-a', inventory(1));

    await expect.poll(() => agent.stats().dropped['send-failed']).toBe(1);
    expect(program.logs.some((l) => l.message === 'LAN send failed')).toBe(true);
  });

  it('keeps going when the program fails on a message', async () => {
    const relayProgram = new Program();
    let calls = 0;
    const relay = await open('relay-a', relayProgram, {
      receive: () => {
        calls += 1;
        if (calls === 1) throw new Error('first fails');
        return Promise.reject(new Error('second fails'));
      },
    });
    const agent = await open('node01', new Program(), { peers: { 'relay-a': relay.address() } });

    agent.send('relay-a', heartbeat());
    agent.send('relay-a', heartbeat());

    await expect
      .poll(() => relayProgram.logs.filter((l) => l.message === 'LAN message handler failed'))
      .toHaveLength(2);
    expect(relay.stats().accepted).toBe(2);
  });
});

describe('LAN key', () => {
  it('reads base64 (openssl rand -base64 32) and hex, and refuses anything shorter than 32 bytes', async () => {
    const key = randomBytes(32);
    expect(readLanKey(`${key.toString('base64')}\n`)).toEqual(key);
    expect(readLanKey(`  ${key.toString('hex')}\n`)).toEqual(key);
    const long = randomBytes(64);
    // openssl wraps long base64 output at 64 characters
    const wrapped = long.toString('base64').replace(/(.{64})/g, '$1\n');
    expect(readLanKey(wrapped)).toEqual(long);

    for (const bad of ['', 'secret-password', randomBytes(31).toString('base64'), 'ab'.repeat(31), '%%%%']) {
      expect(() => readLanKey(bad)).toThrow(new Error('LAN key: expected at least 32 bytes, base64 or hex'));
    }
    await expect(
      LanTransport.open({
        siteId: SITE,
        selfId: 'node01',
        key: randomBytes(31),
        listen: { host: LOOPBACK, port: 0 },
        receive: () => undefined,
      }),
    ).rejects.toThrow('at least 32 bytes');
  });
});
