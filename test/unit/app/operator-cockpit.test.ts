import { beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import {
  getClusterPolicy,
  getIncident,
  listEventFeed,
  listIncidents,
  listRelays,
  revokeRelay,
  setClusterPolicy,
} from '../../../app/operator';
import { capacityReport } from '../../../app/operator/capacity-report';
import {
  ClusterPolicyViewSchema,
  EventFeedSchema,
  IncidentDetailSchema,
  IncidentListSchema,
  RelayListSchema,
} from '../../../contracts/operator-api';
import { resolvePolicy } from '../../../core/policy';
import {
  CLUSTER,
  createWorld,
  enrolledRelay,
  GiB,
  openH1Incident,
  SILENT_MS,
  SITE,
  type StandardSite,
  standardSite,
  T0,
  type World,
} from './world';

/** The operator routes issue 14 adds, on in-memory stores: relays, policy, the event feed, incidents. */

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld({ hostHeartbeatMs: 2000 });
  site = await standardSite(world);
});

describe('listRelays', () => {
  it('shows each relay: last report, age, seq, pace, live and on time, hosts heard and silent; no credential', async () => {
    world.clock.advance(1_000);
    await site.r2.report(site.hosts({ h3: { lastHeardMsAgo: SILENT_MS } }));
    const spare = await enrolledRelay(world, 'r3');
    await revokeRelay(world.ctx, { siteId: SITE, relayId: 'r3' });
    world.clock.advance(500);

    const relays = await listRelays(world.ctx, { siteId: SITE });

    expect(RelayListSchema.parse(relays)).toEqual(relays);
    expect(JSON.stringify(relays)).not.toMatch(/credential|hash/i);
    expect(relays).toEqual([
      {
        siteId: SITE,
        relayId: 'r1',
        status: 'enrolled',
        enrolledAt: T0,
        lastReportAt: T0,
        lastReportAgeMs: 1_500,
        seq: 1,
        nextReportInMs: expect.any(Number),
        live: true,
        onTime: true,
        hostsHeard: ['h1', 'h2', 'h3'],
        hostsSilent: [],
      },
      {
        siteId: SITE,
        relayId: 'r2',
        status: 'enrolled',
        enrolledAt: T0,
        lastReportAt: T0 + 1_000,
        lastReportAgeMs: 500,
        seq: 2,
        nextReportInMs: expect.any(Number),
        live: true,
        onTime: true,
        hostsHeard: ['h1', 'h2'],
        hostsSilent: [{ hostId: 'h3', lastHeardMsAgo: SILENT_MS }],
      },
      {
        siteId: SITE,
        relayId: spare.relayId,
        status: 'revoked',
        enrolledAt: T0 + 1_000,
        lastReportAt: null,
        lastReportAgeMs: null,
        seq: null,
        nextReportInMs: null,
        live: false,
        onTime: false,
        hostsHeard: [],
        hostsSilent: [],
      },
    ]);
  });

  it('names the hosts a relay did not list at all (not heard since it started) apart from heard ones', async () => {
    await site.r2.report(site.hosts().filter((h) => h.hostId === 'h1'));
    const [, r2] = await listRelays(world.ctx, { siteId: SITE });
    expect(r2).toMatchObject({ hostsHeard: ['h1'], hostsSilent: [], hostsUnheard: ['h2', 'h3'] });
    expect(RelayListSchema.parse([r2])).toEqual([r2]);
  });

  it('says a relay silent for longer than the relay silence is neither live nor on time', async () => {
    world.clock.advance(31_000);
    await site.r2.report(site.hosts());
    const [r1, r2] = await listRelays(world.ctx, { siteId: SITE });
    expect([r1?.live, r1?.onTime, r2?.live]).toEqual([false, false, true]);
  });

  it('refuses an unknown site', async () => {
    await expect(listRelays(world.ctx, { siteId: 'nowhere' })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('cluster policy: effective = defaults + override', () => {
  it('shows the defaults alone while there is no override', async () => {
    const view = await getClusterPolicy(world.ctx, { siteId: SITE, clusterId: CLUSTER });
    expect(ClusterPolicyViewSchema.parse(view)).toEqual(view);
    expect(view).toMatchObject({
      siteId: SITE,
      clusterId: CLUSTER,
      defaults: { hostHeartbeatMs: 2000 },
      override: {},
      overridden: [],
      version: 1,
      fencingEnabled: true,
    });
    expect(view.effective).toEqual(resolvePolicy({ hostHeartbeatMs: 2000 }));
  });

  it('replaces the override on the version read and names what it overrides', async () => {
    const view = await setClusterPolicy(world.ctx, {
      siteId: SITE,
      clusterId: CLUSTER,
      override: { cpuOvercommit: 2, confirmSilenceMs: 5000 },
      caller: 'alice',
    });
    expect(view.overridden).toEqual(['confirmSilenceMs', 'cpuOvercommit']);
    expect(view.effective).toMatchObject({ cpuOvercommit: 2, confirmSilenceMs: 5000, hostHeartbeatMs: 2000 });
    expect(view.version).toBe(2);
    expect(await getClusterPolicy(world.ctx, { siteId: SITE, clusterId: CLUSTER })).toEqual(view);
    // The same override again writes nothing; an empty one removes it.
    await setClusterPolicy(world.ctx, {
      siteId: SITE,
      clusterId: CLUSTER,
      override: { confirmSilenceMs: 5000, cpuOvercommit: 2 },
      caller: 'alice',
    });
    expect((await getClusterPolicy(world.ctx, { siteId: SITE, clusterId: CLUSTER })).version).toBe(2);
    const cleared = await setClusterPolicy(world.ctx, {
      siteId: SITE,
      clusterId: CLUSTER,
      override: {},
      caller: 'alice',
    });
    expect(cleared).toMatchObject({ override: {}, overridden: [], version: 3 });
  });

  it('is conditional on the version the caller read: ConflictError when it moved, nothing written', async () => {
    await setClusterPolicy(world.ctx, {
      siteId: SITE,
      clusterId: CLUSTER,
      override: { reserveMiB: 1024 },
      caller: 'bob',
    });
    await expect(
      setClusterPolicy(world.ctx, {
        siteId: SITE,
        clusterId: CLUSTER,
        override: { reserveMiB: 0 },
        expectedVersion: 1,
        caller: 'alice',
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await getClusterPolicy(world.ctx, { siteId: SITE, clusterId: CLUSTER })).override).toEqual({
      reserveMiB: 1024,
    });
  });

  it('refuses an override the core refuses, or a deployment-wide key, naming the field', async () => {
    const refused = async (override: Record<string, number>): Promise<ValidationError> => {
      try {
        await setClusterPolicy(world.ctx, { siteId: SITE, clusterId: CLUSTER, override, caller: 'alice' });
      } catch (error) {
        if (error instanceof ValidationError) return error;
        throw error;
      }
      throw new Error('accepted');
    };
    expect((await refused({ startTimeoutMs: -5 })).issues).toEqual([
      { path: 'override.startTimeoutMs', message: expect.stringMatching(/positive/) },
    ]);
    expect((await refused({ fenceDeadlineMs: 100, fenceAttemptTimeoutMs: 1000 })).issues[0]?.path).toBe(
      'override.fenceDeadlineMs',
    );
    expect((await refused({ maxClockSkewMs: 10 })).issues[0]?.path).toBe('override.maxClockSkewMs');
    expect((await getClusterPolicy(world.ctx, { siteId: SITE, clusterId: CLUSTER })).version).toBe(1);
  });

  it('refuses an unknown cluster or site', async () => {
    await expect(getClusterPolicy(world.ctx, { siteId: SITE, clusterId: 'c9' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await expect(
      setClusterPolicy(world.ctx, { siteId: 'nowhere', clusterId: CLUSTER, override: {}, caller: 'a' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('is what the control plane acts on: the incident timing and the N+1 room follow the override', async () => {
    const before = await capacityReport(world.ctx, { siteId: SITE });
    await setClusterPolicy(world.ctx, {
      siteId: SITE,
      clusterId: CLUSTER,
      override: { confirmSilenceMs: 7000, reserveMiB: 60 * GiB },
      caller: 'alice',
    });
    const incident = await openH1Incident(world, site);
    expect(incident.timing.confirmSilenceSeconds).toBe(7);
    const after = await capacityReport(world.ctx, { siteId: SITE });
    expect(before.clusters[0]?.report.survivesAnyOneHostFailure).toBe(true);
    // A 60 GiB reserve on 64 GiB hosts leaves no room for h1's VMs.
    expect(after.clusters[0]?.report.survivesAnyOneHostFailure).toBe(false);
  });
});

describe('incidents never show their task token', () => {
  it('lists and shows an incident awaiting the operator without its token', async () => {
    const incident = await openH1Incident(world, site);
    await runStep(world.ctx, {
      step: 'fence-failed',
      incident,
      error: { Error: 'FenceDeadlinePassedError' },
    });
    await runStep(world.ctx, { step: 'await-operator', incident, taskToken: 'tok-secret-123' });
    expect((await world.stores.incidents.get(incident.incidentId))?.operatorTaskToken).toBe('tok-secret-123');

    const listed = await listIncidents(world.ctx, { siteId: SITE });
    const shown = await getIncident(world.ctx, { incidentId: incident.incidentId });

    expect(JSON.stringify([listed, shown])).not.toContain('tok-secret-123');
    expect(listed[0]).not.toHaveProperty('operatorTaskToken');
    expect(listed[0]).toMatchObject({ kind: 'host', vmId: null, awaitingOperatorTask: true, downtime: {} });
    expect(IncidentListSchema.parse(listed)).toHaveLength(1);
    expect(IncidentDetailSchema.parse(shown).incident.awaitingOperatorTask).toBe(true);
  });

  it('lists only incidents opened since an instant', async () => {
    const incident = await openH1Incident(world, site);
    expect(await listIncidents(world.ctx, { since: incident.openedAt + 1 })).toEqual([]);
    expect((await listIncidents(world.ctx, { since: incident.openedAt })).map((i) => i.incidentId)).toEqual([
      incident.incidentId,
    ]);
  });
});

describe('the fleet-wide event feed', () => {
  it("pages through every incident's events, newest last, each with its incident's site, host and VM", async () => {
    const incident = await openH1Incident(world, site);
    world.clock.advance(1);
    await runStep(world.ctx, { step: 'suspect', incident });

    const all = await listEventFeed(world.ctx, { since: 0 });
    expect(EventFeedSchema.parse(all)).toEqual(all);
    expect(all.next).toBeNull();
    expect(all.events.map((e) => e.kind)).toEqual(['ha-vms', 'suspected']);
    expect(all.events[0]).toMatchObject({
      incidentId: incident.incidentId,
      siteId: SITE,
      incidentKind: 'host',
      hostId: 'h1',
      vmId: null,
    });

    const first = await listEventFeed(world.ctx, { since: 0, limit: 1 });
    expect(first.events.map((e) => e.kind)).toEqual(['ha-vms']);
    expect(first.next).toEqual(expect.any(String));
    const second = await listEventFeed(world.ctx, { after: first.next ?? '', limit: 1 });
    expect(second).toEqual({ events: [all.events[1]], next: null });

    expect((await listEventFeed(world.ctx, { since: 0, siteId: 'dc2' })).events).toEqual([]);
    // By default the last day: a week later, nothing.
    world.clock.advance(7 * 24 * 3600 * 1000);
    expect((await listEventFeed(world.ctx, {})).events).toEqual([]);
  });

  it('refuses a cursor it did not hand out', async () => {
    await expect(listEventFeed(world.ctx, { after: 'bm90LWEtY3Vyc29y' })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});
