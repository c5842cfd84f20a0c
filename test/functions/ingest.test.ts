import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorBodySchema, MAX_REPORT_BYTES, ReportResponseSchema } from '../../contracts/relay-protocol';
import { makeIngestHandler } from '../../functions/ingest/ingest';
import {
  bearer,
  bodyOf,
  httpEvent,
  memoryContext,
  quietLogger,
  RELAY,
  report,
  SITE,
  seedSite,
  snapshot,
  T0,
} from './support';

async function setup() {
  const env = memoryContext();
  await seedSite(env.ctx);
  const logger = quietLogger();
  const handle = makeIngestHandler(env.ctx, logger);
  const post = (body: string | undefined, opts: { auth?: string | null; base64?: boolean } = {}) =>
    handle(
      httpEvent({
        body,
        isBase64Encoded: opts.base64 ?? false,
        headers: opts.auth === null ? {} : { authorization: opts.auth ?? bearer() },
      }),
    );
  return { ...env, logger, post };
}

/** Status and parsed error body of a refused request, checked against the contract's ErrorBody. */
function refusal(response: { statusCode?: number; body?: string }) {
  const body = ErrorBodySchema.parse(bodyOf(response));
  return { status: response.statusCode, ...body };
}

describe('ingest handler', () => {
  it('accepts a valid report: 200 with a ReportResponse', async () => {
    const { post, state } = await setup();
    const response = await post(JSON.stringify(report()));
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toMatch(/^application\/json/);
    const body = ReportResponseSchema.parse(bodyOf(response));
    expect(body.acceptedSeq).toBe(1);
    expect(body.commands).toEqual([]);
    expect(state.relays.get(`${SITE}/${RELAY}`)?.lastSeq).toBe(1);
  });

  it('answers an HA VM crashed on a healthy host with its start in place, in the same response', async () => {
    const { post, ctx } = await setup();
    expect((await post(JSON.stringify(report()))).statusCode).toBe(200);
    await ctx.ports.vms.setMetadata(SITE, 'node01-vm0', { ha: true, priority: 'high', antiAffinity: null });
    const body = report({ seq: 2 });
    const [node01] = body.hosts;
    if (node01 === undefined) throw new Error('no host');
    const crashed = node01.vms.map((vm, i) =>
      i === 0 ? { ...vm, state: 'shut-off' as const, reason: 'crashed' } : vm,
    );
    const response = await post(
      JSON.stringify({ ...body, hosts: [{ ...node01, vms: crashed }, ...body.hosts.slice(1)] }),
    );

    expect(response.statusCode).toBe(200);
    const { commands } = ReportResponseSchema.parse(bodyOf(response));
    expect(commands).toEqual([
      expect.objectContaining({
        kind: 'start-vm',
        incidentId: `${SITE}:vm:node01-vm0:1`,
        hostId: 'node01',
        vm: { id: 'node01-vm0', cpus: 2, memoryMiB: 4096 },
      }),
    ]);
  });

  it('accepts the same VM on two hosts: running on one, defined (shut off) on the other', async () => {
    const { post, state } = await setup();
    const body = report();
    const [node01, node02] = body.hosts;
    const web = node01?.vms[0];
    if (node01 === undefined || node02 === undefined || web === undefined) throw new Error('no hosts');
    const defined = { ...node02, vms: [...node02.vms, { ...web, state: 'shut-off' as const }] };
    const response = await post(
      JSON.stringify({ ...body, hosts: [node01, defined, ...body.hosts.slice(2)] }),
    );
    expect(response.statusCode).toBe(200);
    expect(state.vms.get(`${SITE}/${web.id}`)).toMatchObject({
      hostId: 'node01',
      state: 'running',
      definedOn: ['node01', 'node02'],
    });
  });

  it("accepts fence readiness and keeps it on the host, under the relay's id", async () => {
    const { post, state } = await setup();
    const level = { level: 1, driver: 'ipmitool', ok: false, power: null, error: 'timed out' };
    const response = await post(
      JSON.stringify(
        report({ fenceReadiness: [{ hostId: 'node01', checkedAt: T0 - 5, ok: false, levels: [level] }] }),
      ),
    );
    expect(response.statusCode).toBe(200);
    expect(state.hosts.get(`${SITE}/node01`)?.fenceReadiness).toEqual({
      [RELAY]: { ok: false, checkedAt: T0 - 5, reportedAt: T0, levels: [level] },
    });
  });

  it('reads the Authorization header case-insensitively', async () => {
    const { ctx } = await setup();
    const handle = makeIngestHandler(ctx, quietLogger());
    const response = await handle(
      httpEvent({ body: JSON.stringify(report()), headers: { AuThOrIzAtIoN: bearer() } }),
    );
    expect(response.statusCode).toBe(200);
  });

  it('accepts a base64-encoded body', async () => {
    const { post } = await setup();
    const response = await post(Buffer.from(JSON.stringify(report())).toString('base64'), { base64: true });
    expect(response.statusCode).toBe(200);
  });

  describe('refusals change nothing', () => {
    let env: Awaited<ReturnType<typeof setup>>;
    let before: ReturnType<typeof snapshot>;

    beforeEach(async () => {
      env = await setup();
      before = snapshot(env.state);
    });

    afterEach(() => {
      expect(env.state).toEqual(before);
      expect(env.workflow.started).toEqual([]);
      // Refusals are expected traffic: never logged as errors.
      expect(env.logger.error).not.toHaveBeenCalled();
      vi.restoreAllMocks();
    });

    it('malformed JSON: 400 invalid-json with the parser message', async () => {
      const r = refusal(await env.post('{"protocol": 1,'));
      expect(r.status).toBe(400);
      expect(r.error).toBe('invalid-json');
      expect(r.message).toMatch(/JSON/);
    });

    it('empty body: 400 invalid-json', async () => {
      expect(refusal(await env.post(undefined))).toMatchObject({ status: 400, error: 'invalid-json' });
      expect(refusal(await env.post('   '))).toMatchObject({ status: 400, error: 'invalid-json' });
    });

    it('schema violations: 400 invalid-request naming each path', async () => {
      const bad = report();
      const body = JSON.parse(JSON.stringify(bad));
      body.hosts[0].vms[0].memoryMiB = -5;
      body.hosts[1].cpus = 'many';
      body.extra = true;
      const r = refusal(await env.post(JSON.stringify(body)));
      expect(r.status).toBe(400);
      expect(r.error).toBe('invalid-request');
      const paths = (r.issues ?? []).map((i) => i.path);
      expect(paths).toContain('hosts.0.vms.0.memoryMiB');
      expect(paths).toContain('hosts.1.cpus');
      expect(paths).toContain('');
      expect(r.message).toMatch(/hosts\.0\.vms\.0\.memoryMiB/);
    });

    it('a bad fence readiness entry: 400 invalid-request naming each bad field', async () => {
      const body = report({
        fenceReadiness: [
          {
            hostId: 'node01',
            checkedAt: T0,
            ok: true,
            levels: [{ level: 1, driver: 'ipmitool', ok: true, power: 'on', error: null }],
          },
          {
            hostId: 'node02',
            checkedAt: T0,
            ok: false,
            levels: [{ level: 0, driver: 'ipmitool', ok: false, power: null, error: null }],
          },
        ],
      });
      const raw = JSON.parse(JSON.stringify(body));
      raw.fenceReadiness[0].levels[0].power = 'maybe';
      delete raw.fenceReadiness[1].checkedAt;
      const r = refusal(await env.post(JSON.stringify(raw)));
      expect(r).toMatchObject({ status: 400, error: 'invalid-request' });
      const paths = (r.issues ?? []).map((i) => i.path);
      expect(paths).toEqual(
        expect.arrayContaining([
          'fenceReadiness.0.levels.0.power',
          'fenceReadiness.1.checkedAt',
          'fenceReadiness.1.levels.0.level',
        ]),
      );
      expect(r.message).toMatch(/fenceReadiness\.0\.levels\.0\.power/);
    });

    it('a host reported twice, or a VM listed twice by one host: 400 invalid-request naming each repeat', async () => {
      const body = report();
      const [node01, node02] = body.hosts;
      if (node01 === undefined || node02 === undefined) throw new Error('no hosts');
      const twice = { ...node02, vms: [...node02.vms, node02.vms[1], node02.vms[3]] };
      const r = refusal(
        await env.post(JSON.stringify({ ...body, hosts: [node01, twice, { ...node01, lastHeardMsAgo: 9 }] })),
      );
      expect(r).toMatchObject({ status: 400, error: 'invalid-request' });
      expect(r.issues).toEqual([
        {
          path: 'hosts.1.vms.4.id',
          message: 'VM node02-vm1 is listed twice by host node02 (first at hosts.1.vms.1)',
        },
        {
          path: 'hosts.1.vms.5.id',
          message: 'VM node02-vm3 is listed twice by host node02 (first at hosts.1.vms.3)',
        },
        { path: 'hosts.2.hostId', message: 'host node01 is reported twice (first at hosts.0)' },
      ]);
      expect(r.message).toMatch(/hosts\.2\.hostId/);
    });

    it('caps the number of issues reported', async () => {
      const body = report({}, 200);
      const broken = { ...body, hosts: body.hosts.map((h) => ({ ...h, cpus: -1, memoryMiB: -1 })) };
      const r = refusal(await env.post(JSON.stringify(broken)));
      expect(r.status).toBe(400);
      expect(r.issues?.length).toBe(20);
      expect(r.message).toMatch(/400 issues/);
    });

    it('oversized body: 413 before any parsing', async () => {
      const big = JSON.stringify({ ...report(), pad: 'x'.repeat(MAX_REPORT_BYTES) });
      const multiByte = 'é'.repeat(MAX_REPORT_BYTES / 2 + 1); // under the limit in chars, over it in bytes
      const b64 = Buffer.from(big).toString('base64');
      const parse = vi.spyOn(JSON, 'parse');
      const responses = [
        await env.post(big),
        await env.post(multiByte),
        await env.post(b64, { base64: true }),
      ];
      expect(parse).not.toHaveBeenCalled();
      parse.mockRestore();
      for (const response of responses) {
        expect(refusal(response)).toMatchObject({ status: 413, error: 'payload-too-large' });
      }
    });

    it('missing credential: 401 unauthorized', async () => {
      const r = refusal(await env.post(JSON.stringify(report()), { auth: null }));
      expect(r).toMatchObject({ status: 401, error: 'unauthorized' });
      const basic = refusal(await env.post(JSON.stringify(report()), { auth: 'Basic dXNlcjpwdw==' }));
      expect(basic).toMatchObject({ status: 401, error: 'unauthorized' });
    });

    it('bad credential: 401 bad-credential', async () => {
      const auth = bearer(RELAY, SITE, 'd3Jvbmctc2VjcmV0');
      const r = refusal(await env.post(JSON.stringify(report()), { auth }));
      expect(r).toMatchObject({ status: 401, error: 'bad-credential' });
    });

    it('credential of another site: 403 wrong-site', async () => {
      const auth = bearer(RELAY, 'site-b');
      const r = refusal(await env.post(JSON.stringify(report()), { auth }));
      expect(r).toMatchObject({ status: 403, error: 'wrong-site' });
    });

    it('unknown relay: 403 unknown-relay', async () => {
      const r = refusal(
        await env.post(JSON.stringify(report({ relayId: 'ghost' })), { auth: bearer('ghost') }),
      );
      expect(r).toMatchObject({ status: 403, error: 'unknown-relay' });
    });

    it('clock skew: 400 clock-skew', async () => {
      const late = report({ sentAt: T0 - 10 * 60_000 });
      expect(refusal(await env.post(JSON.stringify(late)))).toMatchObject({
        status: 400,
        error: 'clock-skew',
      });
      const early = report({ sentAt: T0 + 10 * 60_000 });
      expect(refusal(await env.post(JSON.stringify(early)))).toMatchObject({
        status: 400,
        error: 'clock-skew',
      });
    });
  });

  it('revoked relay: 403 relay-revoked, nothing written', async () => {
    const env = await setup();
    await env.ctx.ports.relays.revoke(SITE, RELAY, T0);
    const before = snapshot(env.state);
    const r = refusal(await env.post(JSON.stringify(report())));
    expect(r).toMatchObject({ status: 403, error: 'relay-revoked' });
    expect(env.state).toEqual(before);
  });

  it('replayed seq: 409 stale-sequence, nothing written by the replay', async () => {
    const env = await setup();
    expect((await env.post(JSON.stringify(report({ seq: 7 })))).statusCode).toBe(200);
    const before = snapshot(env.state);
    for (const seq of [7, 6, 0]) {
      const r = refusal(await env.post(JSON.stringify(report({ seq }))));
      expect(r).toMatchObject({ status: 409, error: 'stale-sequence' });
    }
    expect(env.state).toEqual(before);
  });
});

describe('ingest handler: hostile bodies get a clean 4xx and write nothing', () => {
  const valid = () => JSON.stringify(report());
  const depth = 100_000;
  const hostile: [string, string, { base64?: boolean }?][] = [
    ['__proto__ key at the top', valid().replace('{', '{"__proto__":{"polluted":true},')],
    [
      '__proto__ inside a host',
      JSON.stringify(report()).replace('{"hostId"', '{"__proto__":{"isAdmin":true},"hostId"'),
    ],
    ['constructor.prototype key', valid().replace('{', '{"constructor":{"prototype":{"polluted":true}},')],
    ['deeply nested arrays', `${'['.repeat(depth)}${']'.repeat(depth)}`],
    [
      'deeply nested objects in a field',
      valid().replace('"hosts":', `"junk":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)},"hosts":`),
    ],
    [
      'deeply nested junk as hosts',
      valid().replace(
        /"hosts":\[.*?\],"results"/,
        `"hosts":${'['.repeat(50_000)}${']'.repeat(50_000)},"results"`,
      ),
    ],
    ['a number beyond double range', valid().replace('"seq":1', '"seq":1e400')],
    ['an unsafe integer', valid().replace('"seq":1', '"seq":18446744073709551616')],
    ['a huge memory size', valid().replace('"memoryMiB":65536', '"memoryMiB":1e308')],
    ['a negative zero sequence', valid().replace('"seq":1', '"seq":-0.5')],
    ['NUL in an id', valid().replace('"hostId":"node01"', '"hostId":"node\\u000001"')],
    ['a lone surrogate in an id', valid().replace('"siteId":"site-a"', '"siteId":"site-\\ud800"')],
    ['emoji in an id', valid().replace('"relayId":"relay-1"', '"relayId":"relay-💥"')],
    ['raw NUL bytes', `\u0000${valid()}`],
    ['a BOM before the JSON', `\ufeff${valid()}`],
    ['XML', '<?xml version="1.0"?><report><seq>1</seq></report>'],
    ['form-encoded', 'protocol=1&siteId=site-a&relayId=relay-1'],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['a JSON string', '"report"'],
    ['a JSON number', '42'],
    [
      'duplicate keys overriding the site',
      valid()
        .replace('{', '{"siteId":"site-b",')
        .replace('"siteId":"site-a"', '"siteId":"site-a","siteId":"site-b"'),
    ],
    ['an unknown protocol version', valid().replace('"protocol":1', '"protocol":2')],
    [
      'too many hosts',
      JSON.stringify({ ...report(), hosts: Array.from({ length: 501 }, () => report().hosts[0]) }),
    ],
    ['base64 of garbage', Buffer.from([0xff, 0xfe, 0x00, 0x81]).toString('base64'), { base64: true }],
    ['base64 of not-JSON', Buffer.from('hello').toString('base64'), { base64: true }],
    ['a base64 flag on plain JSON', valid(), { base64: true }],
  ];

  for (const [name, body, opts] of hostile) {
    it(name, async () => {
      const env = await setup();
      const before = snapshot(env.state);
      const response = await env.post(body, opts);
      const r = refusal(response);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(env.state).toEqual(before);
      expect(env.workflow.started).toEqual([]);
      expect(env.logger.error).not.toHaveBeenCalled();
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    });
  }
});

describe('ingest handler: unexpected failures', () => {
  it('maps an unknown error to 500 internal without leaking it, and logs it', async () => {
    const env = await setup();
    vi.spyOn(env.ctx.ports.sites, 'loadControl').mockRejectedValue(new Error('secret table name halo-prod'));
    const response = await env.post(JSON.stringify(report()));
    expect(response.statusCode).toBe(500);
    expect(bodyOf(response)).toEqual({ error: 'internal', message: 'internal error' });
    expect(response.body).not.toMatch(/halo-prod/);
    expect(env.logger.error).toHaveBeenCalledTimes(1);
  });
});
