import { describe, expect, it } from 'vitest';
import {
  ClusterFailoverViewSchema,
  ClusterPolicyViewSchema,
  EventFeedSchema,
  HostFenceViewSchema,
  IncidentDetailSchema,
  IncidentListSchema,
  OPERATOR_ROUTES,
  RelayListSchema,
  SiteDowntimeSchema,
  VmDowntimeSchema,
  VmViewSchema,
} from '../../contracts/operator-api';
import { ErrorBodySchema } from '../../contracts/relay-protocol';
import type { IncidentInput } from '../../contracts/workflow';
import { makeIngestHandler } from '../../functions/ingest/ingest';
import { makeOperatorApiHandler, OPERATOR_ROUTE_KEYS } from '../../functions/operator-api/operator-api';
import {
  bodyOf,
  CALLER,
  httpEvent,
  memoryContext,
  operatorEvent,
  quietLogger,
  RELAY,
  report,
  SITE,
  T0,
} from './support';

/** A site with relay-1 enrolled through the API and one report of three hosts (node01..03, cluster c1). */
async function setup() {
  const env = memoryContext();
  const logger = quietLogger();
  const api = makeOperatorApiHandler(env.ctx, logger);
  const call = (
    routeKey: string,
    opts: {
      params?: Record<string, string>;
      query?: Record<string, string>;
      body?: unknown;
      caller?: string | null;
    } = {},
  ) =>
    api(
      operatorEvent({
        routeKey,
        pathParameters: opts.params,
        queryStringParameters: opts.query,
        body:
          opts.body === undefined
            ? undefined
            : typeof opts.body === 'string'
              ? opts.body
              : JSON.stringify(opts.body),
        caller: opts.caller,
      }),
    );
  const enrolled = await call('POST /v1/sites/{siteId}/relays', {
    params: { siteId: SITE },
    body: { relayId: RELAY },
  });
  const { credential } = bodyOf(enrolled) as { credential: string };
  const ingest = makeIngestHandler(env.ctx, logger);
  const accepted = await ingest(
    httpEvent({ body: JSON.stringify(report()), headers: { authorization: `Bearer ${credential}` } }),
  );
  expect(accepted.statusCode).toBe(200);
  return { ...env, logger, call, enrolled };
}

function errorOf(response: { statusCode?: number; body?: string }) {
  return { status: response.statusCode, ...ErrorBodySchema.parse(bodyOf(response)) };
}

/** An incident of node01 waiting for an operator, with the AwaitOperator task token `tok-1`. */
async function incidentAwaitingOperator(env: Awaited<ReturnType<typeof setup>>) {
  const { hosts, incidents } = env.ctx.ports;
  const node = await hosts.getHost(SITE, 'node01');
  if (node === null) throw new Error('node01 missing');
  await hosts.setLifecycle(SITE, 'node01', node.version, {
    status: 'awaiting-operator',
    bootId: node.bootId,
    incidentId: 'inc-1',
    reason: 'fence failed',
    since: T0,
  });
  const input: IncidentInput = {
    incidentId: 'inc-1',
    siteId: SITE,
    hostId: 'node01',
    cluster: 'c1',
    bootId: node.bootId,
    openedAt: T0,
    timing: {
      confirmSilenceSeconds: 2,
      fenceAttemptTimeoutSeconds: 20,
      startTimeoutSeconds: 20,
      operatorTimeoutSeconds: 3600,
    },
    evidence: { relays: [{ relayId: RELAY, lastHeardMsAgo: 7000 }], silentAfterMs: 6000 },
  };
  await incidents.create({
    incidentId: 'inc-1',
    siteId: SITE,
    hostId: 'node01',
    cluster: 'c1',
    bootId: node.bootId,
    openedAt: T0,
    outcome: 'awaiting-operator',
    input,
    executionArn: null,
    fencedAt: null,
    closedAt: null,
    operatorTaskToken: 'tok-1',
  });
  await env.ctx.ports.sites.setIncidentOpen(SITE, 'inc-1', true);
}

describe('operator API handler', () => {
  it('serves every route of the contract', () => {
    expect([...OPERATOR_ROUTE_KEYS.values()].sort()).toEqual(OPERATOR_ROUTES.map((r) => r.name).sort());
  });

  it('listSites: 200', async () => {
    const { call } = await setup();
    const response = await call('GET /v1/sites');
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual([expect.objectContaining({ siteId: SITE })]);
  });

  it('listHosts: 200, and 400 for a bad site id, 404 for an unknown site', async () => {
    const { call } = await setup();
    const response = await call('GET /v1/sites/{siteId}/hosts', { params: { siteId: SITE } });
    expect(response.statusCode).toBe(200);
    expect((bodyOf(response) as { hostId: string }[]).map((h) => h.hostId).sort()).toEqual([
      'node01',
      'node02',
      'node03',
    ]);
    const bad = errorOf(await call('GET /v1/sites/{siteId}/hosts', { params: { siteId: '../x' } }));
    expect(bad).toMatchObject({ status: 400, error: 'invalid-request' });
    expect(bad.issues?.[0]?.path).toBe('siteId');
    const unknown = errorOf(await call('GET /v1/sites/{siteId}/hosts', { params: { siteId: 'nowhere' } }));
    expect(unknown).toMatchObject({ status: 404, error: 'not-found' });
  });

  it("listHosts and capacityReport: each host's fence readiness and verdict, and whose failover needs an operator", async () => {
    const { call, enrolled, ctx, logger } = await setup();
    const { credential } = bodyOf(enrolled) as { credential: string };
    const down = { level: 1, driver: 'ipmitool', ok: false, power: null, error: 'timed out' };
    const fenceReadiness = [{ hostId: 'node01', checkedAt: T0, ok: false, levels: [down] }];
    const accepted = await makeIngestHandler(
      ctx,
      logger,
    )(
      httpEvent({
        body: JSON.stringify(report({ seq: 2, fenceReadiness })),
        headers: { authorization: `Bearer ${credential}` },
      }),
    );
    expect(accepted.statusCode).toBe(200);

    const hosts = HostFenceViewSchema.array().parse(
      bodyOf(await call('GET /v1/sites/{siteId}/hosts', { params: { siteId: SITE } })),
    );
    const node01 = hosts.find((h) => h.hostId === 'node01');
    expect(node01?.fencing).toEqual({
      fenceable: false,
      reason: `relay ${RELAY}: level 1 ipmitool: timed out`,
    });
    expect(node01?.fenceReadiness[RELAY]).toMatchObject({ ok: false, checkedAt: T0, levels: [down] });
    expect(hosts.find((h) => h.hostId === 'node02')?.fencing).toEqual({ fenceable: null, reason: null });

    const capacity = bodyOf(await call('GET /v1/sites/{siteId}/capacity', { params: { siteId: SITE } })) as {
      clusters: unknown[];
    };
    const [cluster] = ClusterFailoverViewSchema.array().parse(capacity.clusters);
    expect(cluster?.report.automaticFailover).toBe(false);
    expect(cluster?.report.notFenceable.map((h) => h.hostId)).toEqual(['node01']);
    expect(cluster?.report.plans.find((p) => p.failedHostId === 'node01')?.needsOperator).toBe(true);
  });

  it('listVms: 200, and 400 without a site id', async () => {
    const { call } = await setup();
    const response = await call('GET /v1/sites/{siteId}/vms', { params: { siteId: SITE } });
    expect(response.statusCode).toBe(200);
    const vms = VmViewSchema.array().parse(bodyOf(response));
    expect(vms).toHaveLength(12);
    expect(vms[0]).toMatchObject({ hostId: 'node01', state: 'running', definedOn: ['node01'] });
    expect(vms.every((vm) => vm.misconfigurations.length === 0)).toBe(true);
    expect(errorOf(await call('GET /v1/sites/{siteId}/vms'))).toMatchObject({ status: 400 });
  });

  it('capacityReport: 200, and 404 for an unknown site', async () => {
    const { call } = await setup();
    const response = await call('GET /v1/sites/{siteId}/capacity', { params: { siteId: SITE } });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toBeTypeOf('object');
    const unknown = await call('GET /v1/sites/{siteId}/capacity', { params: { siteId: 'nowhere' } });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('setVmMetadata: 200 with defaults applied, and 400 naming the bad field', async () => {
    const { call, ctx } = await setup();
    const params = { siteId: SITE, vmId: 'node01-vm0' };
    const response = await call('PUT /v1/sites/{siteId}/vms/{vmId}', { params, body: { ha: true } });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({
      vmId: 'node01-vm0',
      ha: true,
      priority: 'medium',
      antiAffinity: null,
    });
    expect((await ctx.ports.vms.getVm(SITE, 'node01-vm0'))?.ha).toBe(true);
    const bad = errorOf(await call('PUT /v1/sites/{siteId}/vms/{vmId}', { params, body: { ha: 'yes' } }));
    expect(bad).toMatchObject({ status: 400, error: 'invalid-request' });
    expect(bad.issues?.map((i) => i.path)).toEqual(['ha']);
  });

  it('setVmDownOnPurpose: 409 while the VM runs, 200 once it is down, 404 for an unknown VM, 400 for a bad body', async () => {
    const { call, ctx } = await setup();
    const route = 'PUT /v1/sites/{siteId}/vms/{vmId}/down-on-purpose';
    const params = { siteId: SITE, vmId: 'node01-vm0' };
    expect(errorOf(await call(route, { params, body: { enabled: true } }))).toMatchObject({
      status: 409,
      error: 'conflict',
    });
    await ctx.ports.vms.saveObserved(
      SITE,
      'node01',
      { id: 'node01-vm0', cpus: 2, memoryMiB: 4096, state: 'shut-off', reason: 'destroyed' },
      T0 + 1,
    );
    const marked = await call(route, { params, body: { enabled: true } });
    expect(marked.statusCode).toBe(200);
    expect(bodyOf(marked)).toMatchObject({
      vmId: 'node01-vm0',
      recovery: { status: 'down-on-purpose', by: CALLER },
    });
    const unknown = await call(route, { params: { siteId: SITE, vmId: 'nope' }, body: { enabled: true } });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
    const bad = errorOf(await call(route, { params, body: { downOnPurpose: true } }));
    expect(bad).toMatchObject({ status: 400, error: 'invalid-request' });
  });

  it('setMaintenance: 200 recording the caller, and 400 invalid-json for a broken body', async () => {
    const { call } = await setup();
    const params = { siteId: SITE, hostId: 'node02' };
    const response = await call('PUT /v1/sites/{siteId}/hosts/{hostId}/maintenance', {
      params,
      body: { enabled: true },
    });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ hostId: 'node02', status: 'maintenance', by: CALLER });
    const bad = errorOf(
      await call('PUT /v1/sites/{siteId}/hosts/{hostId}/maintenance', { params, body: '{enabled' }),
    );
    expect(bad).toMatchObject({ status: 400, error: 'invalid-json' });
  });

  it('setFencing: 200, and 404 for an unknown cluster', async () => {
    const { call } = await setup();
    const response = await call('PUT /v1/sites/{siteId}/clusters/{clusterId}/fencing', {
      params: { siteId: SITE, clusterId: 'c1' },
      body: { enabled: false },
    });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({
      cluster: { clusterId: 'c1', fencingEnabled: false },
      by: CALLER,
    });
    const unknown = await call('PUT /v1/sites/{siteId}/clusters/{clusterId}/fencing', {
      params: { siteId: SITE, clusterId: 'c9' },
      body: { enabled: false },
    });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('enrollRelay: 201 with the credential, 409 for a relay enrolled twice, 400 for a bad id', async () => {
    const { call, enrolled } = await setup();
    expect(enrolled.statusCode).toBe(201);
    expect(bodyOf(enrolled)).toMatchObject({ relayId: RELAY, credential: expect.stringMatching(/^hrc1\./) });
    const again = await call('POST /v1/sites/{siteId}/relays', {
      params: { siteId: SITE },
      body: { relayId: RELAY },
    });
    expect(errorOf(again)).toMatchObject({ status: 409, error: 'relay-exists' });
    const bad = await call('POST /v1/sites/{siteId}/relays', {
      params: { siteId: SITE },
      body: { relayId: 'a b' },
    });
    expect(errorOf(bad)).toMatchObject({ status: 400, error: 'invalid-request' });
  });

  it('revokeRelay: 204 with no body, and 404 for an unknown relay', async () => {
    const { call, state } = await setup();
    const response = await call('DELETE /v1/sites/{siteId}/relays/{relayId}', {
      params: { siteId: SITE, relayId: RELAY },
    });
    expect(response.statusCode).toBe(204);
    expect(response.body).toBeUndefined();
    expect(state.relays.get(`${SITE}/${RELAY}`)?.revoked).toBe(true);
    const unknown = await call('DELETE /v1/sites/{siteId}/relays/{relayId}', {
      params: { siteId: SITE, relayId: 'ghost' },
    });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('listIncidents: 200 with query filters, and 400 for a bad limit or an unknown parameter', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    const response = await env.call('GET /v1/incidents', {
      query: { siteId: SITE, open: 'true', limit: '5' },
    });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual([expect.objectContaining({ incidentId: 'inc-1' })]);
    expect(errorOf(await env.call('GET /v1/incidents', { query: { limit: '0' } }))).toMatchObject({
      status: 400,
    });
    const unknown = errorOf(await env.call('GET /v1/incidents', { query: { sort: 'asc' } }));
    expect(unknown).toMatchObject({ status: 400, error: 'invalid-request' });
  });

  it('getIncident: 200, and 404 for an unknown incident', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    const response = await env.call('GET /v1/incidents/{incidentId}', { params: { incidentId: 'inc-1' } });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ incident: { incidentId: 'inc-1' } });
    const unknown = await env.call('GET /v1/incidents/{incidentId}', { params: { incidentId: 'inc-404' } });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('confirmPowerOff: 200 completing the operator task as the caller, and 409 for the wrong host', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    const route = 'POST /v1/incidents/{incidentId}/confirm-power-off';
    const params = { incidentId: 'inc-1' };
    const wrong = await env.call(route, { params, body: { hostId: 'node02' } });
    expect(errorOf(wrong)).toMatchObject({ status: 409, error: 'conflict' });
    const response = await env.call(route, { params, body: { hostId: 'node01' } });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ decision: 'confirmed-off', by: CALLER, hostId: 'node01' });
    expect(env.workflow.successes).toEqual([
      { taskToken: 'tok-1', output: expect.objectContaining({ decision: 'confirmed-off', by: CALLER }) },
    ]);
  });

  it('confirmPowerOff: an operator named in the body is recorded instead of the IAM identity', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    const response = await env.call('POST /v1/incidents/{incidentId}/confirm-power-off', {
      params: { incidentId: 'inc-1' },
      body: { hostId: 'node01', operator: 'bob (on site, pulled the plug)' },
    });
    expect(bodyOf(response)).toMatchObject({ by: 'bob (on site, pulled the plug)' });
  });

  it('listIncidents and getIncident: never the task token (the operator wait is shown as a flag)', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    const listed = await env.call('GET /v1/incidents');
    const shown = await env.call('GET /v1/incidents/{incidentId}', { params: { incidentId: 'inc-1' } });
    for (const response of [listed, shown]) {
      expect(response.body).not.toContain('tok-1');
      expect(response.body).not.toContain('operatorTaskToken');
    }
    expect(IncidentListSchema.parse(bodyOf(listed))[0]).toMatchObject({ awaitingOperatorTask: true });
    expect(IncidentDetailSchema.parse(bodyOf(shown)).incident.incidentId).toBe('inc-1');
    const since = await env.call('GET /v1/incidents', { query: { since: new Date(T0 + 1).toISOString() } });
    expect(bodyOf(since)).toEqual([]);
  });

  it('listRelays: 200 with last report, seq and hosts heard, never a credential hash; 404 for an unknown site', async () => {
    const { call } = await setup();
    const response = await call('GET /v1/sites/{siteId}/relays', { params: { siteId: SITE } });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toMatch(/credential|hash/i);
    const [relay] = RelayListSchema.parse(bodyOf(response));
    expect(relay).toMatchObject({
      relayId: RELAY,
      status: 'enrolled',
      seq: expect.any(Number),
      live: true,
      hostsHeard: ['node01', 'node02', 'node03'],
      hostsSilent: [],
    });
    const unknown = await call('GET /v1/sites/{siteId}/relays', { params: { siteId: 'nowhere' } });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('getClusterPolicy and setClusterPolicy: 200 effective with the override, 400 naming the field, 409 on a stale version', async () => {
    const { call } = await setup();
    const route = '/v1/sites/{siteId}/clusters/{clusterId}/policy';
    const params = { siteId: SITE, clusterId: 'c1' };
    const read = ClusterPolicyViewSchema.parse(bodyOf(await call(`GET ${route}`, { params })));
    expect(read).toMatchObject({ override: {}, overridden: [], version: 1 });

    const set = await call(`PUT ${route}`, {
      params,
      body: { override: { cpuOvercommit: 1.5 }, expectedVersion: read.version },
    });
    expect(set.statusCode).toBe(200);
    expect(ClusterPolicyViewSchema.parse(bodyOf(set))).toMatchObject({
      effective: { cpuOvercommit: 1.5 },
      override: { cpuOvercommit: 1.5 },
      overridden: ['cpuOvercommit'],
      version: 2,
    });

    const stale = await call(`PUT ${route}`, { params, body: { override: {}, expectedVersion: 1 } });
    expect(errorOf(stale)).toMatchObject({ status: 409 });
    const typo = errorOf(await call(`PUT ${route}`, { params, body: { override: { cpuOvercomit: 2 } } }));
    expect(typo).toMatchObject({ status: 400, issues: [{ path: 'override' }] });
    expect(typo.message).toContain('cpuOvercomit');
    const negative = errorOf(
      await call(`PUT ${route}`, { params, body: { override: { startTimeoutMs: -1 } } }),
    );
    expect(negative).toMatchObject({ status: 400, issues: [{ path: 'override.startTimeoutMs' }] });
    const notANumber = errorOf(
      await call(`PUT ${route}`, { params, body: { override: { reserveMiB: 'x' } } }),
    );
    expect(notANumber).toMatchObject({ status: 400, issues: [{ path: 'override.reserveMiB' }] });
    const unknown = await call(`GET ${route}`, { params: { siteId: SITE, clusterId: 'c9' } });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('listEvents: 200 a page of the fleet feed with its cursor; 400 for a bad since or cursor', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    for (const [at, kind] of [
      [T0, 'suspected'],
      [T0 + 10, 'fence-ordered'],
      [T0 + 20, 'awaiting-operator'],
    ] as const) {
      await env.ctx.ports.incidents.appendEvent({ incidentId: 'inc-1', at, kind, detail: kind });
    }
    const first = await env.call('GET /v1/events', { query: { since: String(T0), limit: '2' } });
    expect(first.statusCode).toBe(200);
    const page = EventFeedSchema.parse(bodyOf(first));
    expect(page.events.map((e) => [e.kind, e.siteId, e.hostId])).toEqual([
      ['suspected', SITE, 'node01'],
      ['fence-ordered', SITE, 'node01'],
    ]);
    const rest = EventFeedSchema.parse(
      bodyOf(await env.call('GET /v1/events', { query: { after: page.next ?? '' } })),
    );
    expect(rest).toMatchObject({ events: [{ kind: 'awaiting-operator' }], next: null });
    const iso = await env.call('GET /v1/events', { query: { since: new Date(T0 + 15).toISOString() } });
    expect(EventFeedSchema.parse(bodyOf(iso)).events.map((e) => e.kind)).toEqual(['awaiting-operator']);
    const bad = errorOf(await env.call('GET /v1/events', { query: { since: 'yesterday' } }));
    expect(bad).toMatchObject({ status: 400, issues: [{ path: 'since' }] });
    expect(errorOf(await env.call('GET /v1/events', { query: { after: '!!' } }))).toMatchObject({
      status: 400,
    });
  });

  it('siteDowntime and vmDowntime: 200 the periods the incidents recorded, within the window', async () => {
    const env = await setup();
    await incidentAwaitingOperator(env);
    const record = await env.ctx.ports.incidents.get('inc-1');
    await env.ctx.ports.incidents.update('inc-1', record?.version ?? 0, {
      downtime: { 'node01-vm0': { from: T0 - 7000, to: T0 + 53_000 } },
    });
    const query = { since: String(T0 - 60_000), until: String(T0 + 60_000) };
    const vm = await env.call('GET /v1/sites/{siteId}/vms/{vmId}/downtime', {
      params: { siteId: SITE, vmId: 'node01-vm0' },
      query,
    });
    expect(vm.statusCode).toBe(200);
    expect(VmDowntimeSchema.parse(bodyOf(vm))).toMatchObject({
      downMs: 60_000,
      periods: [{ incidentId: 'inc-1', cause: 'host', hostId: 'node01', downMs: 60_000 }],
    });
    const site = await env.call('GET /v1/sites/{siteId}/downtime', { params: { siteId: SITE }, query });
    expect(SiteDowntimeSchema.parse(bodyOf(site)).vms.map((v) => [v.vmId, v.downMs])).toEqual([
      ['node01-vm0', 60_000],
    ]);
    const backwards = await env.call('GET /v1/sites/{siteId}/downtime', {
      params: { siteId: SITE },
      query: { since: String(T0), until: String(T0 - 1) },
    });
    expect(errorOf(backwards)).toMatchObject({ status: 400 });
    const unknown = await env.call('GET /v1/sites/{siteId}/vms/{vmId}/downtime', {
      params: { siteId: SITE, vmId: 'nope' },
    });
    expect(errorOf(unknown)).toMatchObject({ status: 404 });
  });

  it('unknown route: 404', async () => {
    const { call } = await setup();
    expect(errorOf(await call('GET /v1/secrets'))).toMatchObject({ status: 404, error: 'not-found' });
    expect(errorOf(await call('$default'))).toMatchObject({ status: 404 });
    expect(errorOf(await call('PATCH /v1/sites'))).toMatchObject({ status: 404 });
  });

  it('a request without an IAM identity: 401 (fail closed)', async () => {
    const { call } = await setup();
    expect(errorOf(await call('GET /v1/sites', { caller: null }))).toMatchObject({ status: 401 });
  });

  it('an oversized operator body: 413', async () => {
    const { call } = await setup();
    const response = await call('PUT /v1/sites/{siteId}/vms/{vmId}', {
      params: { siteId: SITE, vmId: 'node01-vm0' },
      body: { ha: true, pad: 'x'.repeat(20_000) },
    });
    expect(errorOf(response)).toMatchObject({ status: 413 });
  });
});
