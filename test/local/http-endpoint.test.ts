import { request } from 'node:http';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterPolicyViewSchema,
  EventFeedSchema,
  RelayListSchema,
  SiteDowntimeSchema,
  VmDowntimeSchema,
} from '../../contracts/operator-api';
import { ErrorBodySchema, ReportResponseSchema } from '../../contracts/relay-protocol';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane';
import {
  LOCAL_OPERATOR_ARN,
  MAX_LOCAL_BODY_BYTES,
  matchRoute,
  REPORT_ROUTE_KEY,
  toApiEvent,
} from '../../local/http-endpoint';
import { credentialOf, HOSTS, HttpRelay, observed, postJson, SITE, TEST_POLICY } from './support';

/** The local endpoint end to end: real HTTP, the ingest and operator handlers, DynamoDB on dynalite. */

let plane: LocalControlPlane;
let startupMs = 0;

beforeAll(async () => {
  const started = performance.now();
  plane = await startLocalControlPlane({ policy: TEST_POLICY, detectorTickMs: 0 });
  startupMs = performance.now() - started;
});

afterAll(async () => {
  await plane.stop();
});

/** A request whose body is streamed chunked (no content-length), `total` bytes in 64 KiB chunks. */
function streamedPost(url: string, total: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    // The server may close the connection once it has answered: that is not the test's failure.
    req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

describe('local HTTP endpoint', () => {
  it('starts (synth, dynalite, table, endpoint) and serves on loopback', () => {
    expect(plane.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // Printed, not asserted (no test depends on how fast the machine is): a slow start shows in the output.
    console.info(`local control plane started in ${Math.round(startupMs)} ms`);
  });

  it('enrols a relay through the operator API and accepts its report over HTTP', async () => {
    const enrolled = await plane.operator('enrollRelay', {
      params: { siteId: SITE },
      body: { relayId: 'relay-a' },
    });
    expect(enrolled.status).toBe(201);
    const relay = new HttpRelay(plane.url, 'relay-a', credentialOf(enrolled.body));

    const answer = await relay.report(HOSTS.map((h) => observed(h)));
    expect(answer.status).toBe(200);
    const response = ReportResponseSchema.parse(answer.body);
    expect(response.acceptedSeq).toBe(1);
    expect(response.commands).toEqual([]);

    // What the report wrote is in dynalite, read back through the operator API.
    const hosts = await plane.operator('listHosts', { params: { siteId: SITE } });
    expect(hosts.status).toBe(200);
    expect(JSON.stringify(hosts.body)).toContain('node01');
    const sites = await plane.operator('listSites');
    expect(sites).toMatchObject({ status: 200, body: [{ siteId: SITE }] });
    expect(plane.metrics.total('ReportsIngested')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a report without a valid credential with 401', async () => {
    const answer = await postJson(`${plane.url}/v1/reports`, {
      protocol: 1,
      siteId: SITE,
      relayId: 'relay-a',
      seq: 99,
      sentAt: Date.now(),
      hosts: [],
    });
    expect(answer.status).toBe(401);
    expect(ErrorBodySchema.parse(answer.body).error).toBeTruthy();
  });

  it('answers a bad body with 400 and its issues, and bad JSON with 400 invalid-json', async () => {
    const bad = await postJson(`${plane.url}/v1/reports`, { protocol: 2, siteId: '' });
    expect(bad.status).toBe(400);
    const body = ErrorBodySchema.parse(bad.body);
    expect(body.error).toBe('invalid-request');
    expect(body.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['siteId', 'relayId']));
    // A protocol the control plane does not speak is named as such.
    const unknown = ErrorBodySchema.parse((await postJson(`${plane.url}/v1/reports`, { protocol: 99 })).body);
    expect(unknown.issues?.map((i) => i.path)).toEqual(['protocol']);

    const notJson = await postJson(`${plane.url}/v1/reports`, '{"protocol":');
    expect(notJson.status).toBe(400);
    expect(ErrorBodySchema.parse(notJson.body).error).toBe('invalid-json');

    const noBody = await plane.operator('enrollRelay', { params: { siteId: SITE } });
    expect(noBody.status).toBe(400);
  });

  it('answers an unknown route, or a known path with another method, with 404 JSON', async () => {
    const unknown = await fetch(`${plane.url}/v2/nothing`);
    expect(unknown.status).toBe(404);
    expect(ErrorBodySchema.parse(await unknown.json()).error).toBe('not-found');
    const wrongMethod = await fetch(`${plane.url}/v1/reports`);
    expect(wrongMethod.status).toBe(404);
    await wrongMethod.body?.cancel();
  });

  it('refuses a body over 1 MiB with 413, declared or streamed, and keeps serving', async () => {
    const declared = await fetch(`${plane.url}/v1/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'a'.repeat(MAX_LOCAL_BODY_BYTES + 1),
    });
    expect(declared.status).toBe(413);
    expect(ErrorBodySchema.parse(await declared.json()).error).toBe('payload-too-large');

    expect(await streamedPost(plane.url, 2 * MAX_LOCAL_BODY_BYTES)).toBe(413);

    const after = await plane.operator('listSites');
    expect(after.status).toBe(200);
  });

  it('gives operator routes the local IAM identity and the report route none', async () => {
    const request = {
      method: 'GET',
      rawPath: '/v1/sites/s%2D1/hosts',
      rawQueryString: 'a=1&a=2',
      headers: { 'X-Trace': 'x', accept: ['a', 'b'] },
      body: Buffer.alloc(0),
      sourceIp: '127.0.0.1',
      protocol: 'HTTP/1.1',
    };
    const match = matchRoute('GET', '/v1/sites/s%2D1/hosts');
    expect(match).toMatchObject({
      routeKey: 'GET /v1/sites/{siteId}/hosts',
      pathParameters: { siteId: 's-1' },
    });
    if (match === null) return;
    const event = toApiEvent(request, match, 1_700_000_000_000, 'req-1');
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'GET /v1/sites/{siteId}/hosts',
      rawPath: '/v1/sites/s%2D1/hosts',
      headers: { 'x-trace': 'x', accept: 'a,b' },
      queryStringParameters: { a: '1,2' },
      isBase64Encoded: false,
      requestContext: {
        http: { method: 'GET', path: '/v1/sites/s%2D1/hosts', sourceIp: '127.0.0.1' },
        authorizer: { iam: { userArn: LOCAL_OPERATOR_ARN } },
        time: '14/Nov/2023:22:13:20 +0000',
      },
    });
    expect(event.body).toBeUndefined();

    const report = matchRoute('POST', '/v1/reports');
    expect(report?.routeKey).toBe(REPORT_ROUTE_KEY);
    if (report === null) return;
    const reportEvent = toApiEvent(
      { ...request, method: 'POST', rawPath: '/v1/reports', body: Buffer.from('{}') },
      report,
      0,
    );
    expect(reportEvent.requestContext.authorizer).toBeUndefined();
    expect(reportEvent.body).toBe('{}');
    // Bytes that are not UTF-8 go on base64-encoded, so the handler refuses them as it would in Lambda.
    const binary = toApiEvent({ ...request, body: Buffer.from([0xff, 0xfe]) }, report, 0);
    expect(binary).toMatchObject({ isBase64Encoded: true, body: '//4=' });

    expect(matchRoute('GET', '/v1/sites/')).toBeNull();
    expect(matchRoute('GET', '/v1/sites/%E0%A4%A/hosts')).toBeNull();
  });
});

describe('stop', () => {
  it('releases the port, and a second stop is harmless', async () => {
    const other = await startLocalControlPlane({ policy: TEST_POLICY, detectorTickMs: 0 });
    const port = Number(new URL(other.url).port);
    await Promise.all([other.stop(), other.stop()]);
    await other.stop();
    await expect(fetch(`${other.url}/v1/sites`)).rejects.toThrow();
    // The port is free again: something else can listen on it.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
});

/** One raw request over HTTP with exactly the headers given (node:http lets a test set Host). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: unknown }> {
  const { port } = new URL(plane.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers, setHost: !('host' in headers) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('local mode is not an open door', () => {
  const own = () => `127.0.0.1:${new URL(plane.url).port}`;
  const bearer = () => ({ authorization: `Bearer ${plane.operatorToken}` });
  const json = { 'content-type': 'application/json' };
  const enrol = (relayId: string) => JSON.stringify({ relayId });
  const relayIds = async () =>
    ((await plane.operator('listRelays', { params: { siteId: SITE } })).body as { relayId: string }[]).map(
      (r) => r.relayId,
    );

  it('serves an operator request with the token, a loopback Host and JSON', async () => {
    expect(plane.operatorToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const port = new URL(plane.url).port;
    for (const host of [own(), `localhost:${port}`]) {
      const answer = await raw('GET', '/v1/sites', { host, ...bearer() });
      expect(answer.status).toBe(200);
    }
    const withOrigin = await raw('GET', '/v1/sites', { origin: `http://${own()}`, ...bearer() });
    expect(withOrigin.status).toBe(200);
  });

  it('refuses an operator request without the local operator token, or with another, with 401', async () => {
    const none = await raw('GET', '/v1/sites', {});
    expect(none.status).toBe(401);
    expect(ErrorBodySchema.parse(none.body)).toMatchObject({ error: 'unauthorized' });
    expect((await raw('GET', '/v1/sites', { authorization: 'Bearer not-the-token' })).status).toBe(401);
    expect((await raw('GET', '/v1/sites', { authorization: plane.operatorToken })).status).toBe(401);
    const wrongCase = { authorization: `Bearer ${plane.operatorToken.toUpperCase()}x` };
    expect((await raw('GET', '/v1/sites', wrongCase)).status).toBe(401);
    // Nothing was done by a refused write either.
    const write = await raw('POST', `/v1/sites/${SITE}/relays`, json, enrol('relay-no-token'));
    expect(write.status).toBe(401);
    expect(await relayIds()).not.toContain('relay-no-token');
  });

  it("refuses a body that is not declared application/json with 415 (a cross-origin 'simple' POST)", async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const answer = await raw(
        'POST',
        `/v1/sites/${SITE}/relays`,
        { 'content-type': type, ...bearer() },
        enrol('relay-plain'),
      );
      expect(answer.status).toBe(415);
      expect(ErrorBodySchema.parse(answer.body)).toMatchObject({ error: 'unsupported-media-type' });
    }
    const untyped = await raw('POST', `/v1/sites/${SITE}/relays`, bearer(), enrol('relay-plain'));
    expect(untyped.status).toBe(415);
    expect(await relayIds()).not.toContain('relay-plain');
    const typed = await raw(
      'POST',
      `/v1/sites/${SITE}/relays`,
      { 'content-type': 'application/json; charset=utf-8', ...bearer() },
      enrol('relay-json'),
    );
    expect(typed.status).toBe(201);
  });

  it('refuses a Host that is not loopback with this port (DNS rebinding) with 421, on every route', async () => {
    const port = new URL(plane.url).port;
    for (const host of [
      `evil.example:${port}`,
      'evil.example',
      `127.0.0.1:${Number(port) + 1}`,
      '127.0.0.1',
    ]) {
      const answer = await raw('GET', '/v1/sites', { host, ...bearer() });
      expect(answer.status).toBe(421);
      expect(ErrorBodySchema.parse(answer.body)).toMatchObject({ error: 'misdirected-request' });
    }
    const report = await raw('POST', '/v1/reports', { host: `rebound.example:${port}`, ...json }, '{}');
    expect(report.status).toBe(421);
  });

  it('refuses any Origin but its own with 403, on every route', async () => {
    for (const origin of ['http://evil.example', 'null', `https://${own()}`, 'http://127.0.0.1:1']) {
      const answer = await raw(
        'POST',
        `/v1/sites/${SITE}/relays`,
        { origin, ...json, ...bearer() },
        enrol('relay-origin'),
      );
      expect(answer.status).toBe(403);
      expect(ErrorBodySchema.parse(answer.body)).toMatchObject({ error: 'forbidden-origin' });
    }
    expect(await relayIds()).not.toContain('relay-origin');
    const report = await raw('POST', '/v1/reports', { origin: 'http://evil.example', ...json }, '{}');
    expect(report.status).toBe(403);
  });

  it('refuses the attack the issue reproduced: a web page POSTing text/plain to confirm a power-off', async () => {
    // What a browser sends for a cross-origin <form> or fetch(…, {mode: 'no-cors'}) of text/plain.
    const answer = await raw(
      'POST',
      '/v1/incidents/site-1%3Anode01%3A1/confirm-power-off',
      { origin: 'http://evil.example', 'content-type': 'text/plain' },
      JSON.stringify({ hostId: 'node01' }),
    );
    expect([401, 403, 415]).toContain(answer.status);
  });

  it('keeps the report route on its own credential: no operator token needed', async () => {
    const enrolled = await plane.operator('enrollRelay', {
      params: { siteId: SITE },
      body: { relayId: 'relay-own-credential' },
    });
    const relay = new HttpRelay(plane.url, 'relay-own-credential', credentialOf(enrolled.body));
    expect((await relay.report(HOSTS.map((h) => observed(h)))).status).toBe(200);
  });
});

describe("issue 14's operator routes over HTTP, on dynalite", () => {
  const site = 'site-cockpit';

  it('relays, cluster policy, the event feed and down time', async () => {
    const enrolled = await plane.operator('enrollRelay', {
      params: { siteId: site },
      body: { relayId: 'r1' },
    });
    const hosts = HOSTS.map((h) => observed(h));
    await postJson(
      `${plane.url}/v1/reports`,
      { protocol: 1, siteId: site, relayId: 'r1', seq: 1, sentAt: Date.now(), hosts, results: [] },
      { authorization: `Bearer ${credentialOf(enrolled.body)}` },
    );

    const relays = await plane.operator('listRelays', { params: { siteId: site } });
    expect(relays.status).toBe(200);
    expect(RelayListSchema.parse(relays.body)[0]).toMatchObject({ relayId: 'r1', seq: 1, hostsHeard: HOSTS });
    expect(JSON.stringify(relays.body)).not.toMatch(/hash|credential/i);

    const params = { siteId: site, clusterId: 'c1' };
    const read = ClusterPolicyViewSchema.parse((await plane.operator('getClusterPolicy', { params })).body);
    const set = await plane.operator('setClusterPolicy', {
      params,
      body: { override: { cpuOvercommit: 2 }, expectedVersion: read.version },
    });
    expect(set.status).toBe(200);
    expect(ClusterPolicyViewSchema.parse(set.body)).toMatchObject({
      overridden: ['cpuOvercommit'],
      effective: { cpuOvercommit: 2 },
    });
    const stale = await plane.operator('setClusterPolicy', {
      params,
      body: { override: {}, expectedVersion: read.version },
    });
    expect(stale.status).toBe(409);

    // An incident with a timeline and a down period, written through the DynamoDB stores.
    const { incidents } = plane.ctx.ports;
    const at = Date.now() - 60_000;
    await incidents.create({
      incidentId: `${site}:node01:1`,
      siteId: site,
      hostId: 'node01',
      cluster: 'c1',
      bootId: 'boot-node01',
      openedAt: at,
      outcome: 'recovered',
      input: null,
      executionArn: null,
      fencedAt: at + 10_000,
      closedAt: at + 30_000,
      operatorTaskToken: 'secret-task-token',
    });
    await incidents.appendEvent({ incidentId: `${site}:node01:1`, at, kind: 'suspected', detail: 'x' });
    await incidents.appendEvent({
      incidentId: `${site}:node01:1`,
      at: at + 30_000,
      kind: 'closed',
      detail: 'y',
    });
    await incidents.update(`${site}:node01:1`, 1, {
      downtime: { 'node01-vm1': { from: at - 1_000, to: at + 29_000 } },
    });

    const feed = await plane.operator('listEvents', {
      query: { since: String(at), siteId: site, limit: '1' },
    });
    const page = EventFeedSchema.parse(feed.body);
    expect(page.events.map((e) => [e.kind, e.hostId])).toEqual([['suspected', 'node01']]);
    const rest = EventFeedSchema.parse(
      (await plane.operator('listEvents', { query: { after: page.next ?? '', siteId: site } })).body,
    );
    expect(rest.events.map((e) => e.kind)).toEqual(['closed']);

    const down = await plane.operator('vmDowntime', {
      params: { siteId: site, vmId: 'node01-vm1' },
      query: { since: new Date(at - 3_600_000).toISOString() },
    });
    expect(VmDowntimeSchema.parse(down.body)).toMatchObject({ downMs: 30_000 });
    const all = await plane.operator('siteDowntime', { params: { siteId: site } });
    expect(SiteDowntimeSchema.parse(all.body).vms.map((v) => v.vmId)).toEqual(['node01-vm1']);
    const listed = await plane.operator('listIncidents', { query: { siteId: site } });
    expect(JSON.stringify(listed.body)).not.toContain('secret-task-token');
  });
});
