import { beforeEach, describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import { runStep } from '../../../app/failover/steps';
import { setFencing, setMaintenance, setVmMetadata } from '../../../app/operator';
import type { FencingPolicyOutput } from '../../../contracts/workflow';
import {
  createWorld,
  GiB,
  h1Silent,
  levelDown,
  levelUp,
  openH1Incident,
  readiness,
  SILENT_MS,
  SITE,
  type StandardSite,
  standardSite,
  T0,
  vm,
  type World,
} from './world';

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
});

describe('detectOnce', () => {
  it('given every relay is silent, then the site is partitioned: alerted on, nothing opened (safety rule 2)', async () => {
    await site.r1.report(h1Silent(site));
    world.clock.advance(31_000);

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report).toMatchObject({
      sitesChecked: 1,
      partitionedSites: [SITE],
      silentRelays: 2,
      incidentsOpened: [],
    });
    expect(world.metrics.total('SitePartitioned')).toBe(1);
    expect(world.workflow.startCalls).toEqual([]);
  });

  it('given the relay that still heard h1 died, then the surviving view opens the incident once that relay is overdue', async () => {
    // r2 last reported (hearing h1) when nothing was silent: asked for the next report within 10 s, its
    // vote counts 10 s + one incident-pace interval (2 s).
    await site.r1.report(h1Silent(site));
    world.clock.advance(10_000);
    await site.r1.report(h1Silent(site));
    expect(world.workflow.startCalls).toEqual([]);
    world.clock.advance(2_001);

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report).toMatchObject({
      partitionedSites: [],
      silentRelays: 0,
      silentHosts: 1,
      incidentsOpened: ['dc1:h1:1'],
    });
    expect(world.workflow.startCalls.map((i) => i.evidence)).toEqual([
      {
        relays: [{ relayId: 'r1', lastHeardMsAgo: SILENT_MS }],
        overdueRelays: [{ relayId: 'r2', reportAgeMs: 12_001 }],
        silentAfterMs: 6_000,
      },
    ]);
  });

  it('given nothing is silent, then it opens nothing and reports zero gauges', async () => {
    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report).toEqual({
      alerts: [],
      sitesChecked: 1,
      partitionedSites: [],
      silentRelays: 0,
      silentHosts: 0,
      incidentsOpened: [],
      clustersFailingNPlusOne: [],
      hostsNotFenceable: [],
      haVmsWithAutostart: null,
      haVmsDown: 0,
      vmStartsOrdered: 0,
    });
    expect(world.metrics.of('HostsSilent').map((p) => p.value)).toEqual([0]);
    expect(world.metrics.of('HaVmsDown').map((p) => p.value)).toEqual([0]);
    expect(world.metrics.of('HostsNotFenceable').map((p) => p.value)).toEqual([0]);
    // Only a capacity pass reads the VMs: the others say nothing about autostart.
    expect(world.metrics.of('HaVmsWithAutostart')).toEqual([]);
  });

  describe('given a fence suppressed because fencing was disabled', () => {
    beforeEach(async () => {
      await setFencing(world.ctx, { siteId: SITE, clusterId: 'c1', enabled: false, caller: 'alice' });
      const incident = await openH1Incident(world, site);
      const policy = (await runStep(world.ctx, {
        step: 'check-fencing-policy',
        incident,
      })) as FencingPolicyOutput;
      await runStep(world.ctx, { step: 'fencing-suppressed', incident, policy });
    });

    it('when the guard still holds, then nothing is reopened', async () => {
      const report = await detectOnce(world.ctx, { evaluateCapacity: false });

      expect(report.incidentsOpened).toEqual([]);
      expect(world.workflow.startCalls).toHaveLength(1);
    });

    it('when fencing is enabled again and h1 is still silent, then a new incident takes over', async () => {
      await setFencing(world.ctx, { siteId: SITE, clusterId: 'c1', enabled: true, caller: 'alice' });
      await site.r1.report(h1Silent(site));

      const report = await detectOnce(world.ctx, { evaluateCapacity: false });
      await detectOnce(world.ctx, { evaluateCapacity: false });

      expect(report.incidentsOpened).toEqual(['dc1:h1:2']);
      expect(world.workflow.startCalls.map((i) => i.incidentId)).toEqual(['dc1:h1:1', 'dc1:h1:2']);
      expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle).toMatchObject({
        status: 'suspect',
        incidentId: 'dc1:h1:2',
      });
      const old = await world.stores.incidents.listEvents('dc1:h1:1');
      expect(old.find((e) => e.kind === 'reopened')?.data).toEqual({ newIncidentId: 'dc1:h1:2' });
    });
  });

  it('given capacity is evaluated, then NPlusOneBroken is published per cluster', async () => {
    await detectOnce(world.ctx, { evaluateCapacity: true });
    expect(world.metrics.of('NPlusOneBroken').map((p) => p.value)).toEqual([0]);

    await site.r1.report(
      site.hosts({ h2: { vms: [vm('app-2', 20 * GiB, 8)] }, h3: { vms: [vm('app-3', 24 * GiB, 4)] } }),
    );
    await setVmMetadata(world.ctx, {
      siteId: SITE,
      vmId: 'app-2',
      body: { ha: true, priority: 'high', antiAffinity: null },
    });
    const report = await detectOnce(world.ctx, { evaluateCapacity: true });

    expect(report.clustersFailingNPlusOne).toEqual([{ siteId: SITE, clusterId: 'c1' }]);
    expect(world.metrics.of('NPlusOneBroken').map((p) => p.value)).toEqual([0, 1]);
  });
});

describe('detectOnce: HA VMs with libvirt autostart on', () => {
  it('given a capacity pass, then HaVmsWithAutostart counts running HA VMs whose definition autostarts anywhere', async () => {
    await detectOnce(world.ctx, { evaluateCapacity: true });
    // db-1 (HA) runs on h1 and is defined, shut off, on h2 with autostart on; scratch-1 (not HA) autostarts
    // where it runs, which is no HA risk.
    const h1 = site.hosts()[0]?.vms ?? [];
    await site.r1.report(
      site.hosts({
        h1: { vms: h1.map((v) => (v.id === 'scratch-1' ? { ...v, autostart: true } : v)) },
        h2: {
          vms: [vm('app-2', 16 * GiB, 8), { ...vm('db-1', 8 * GiB, 4, 'shut-off'), autostart: true }],
        },
      }),
    );

    const report = await detectOnce(world.ctx, { evaluateCapacity: true });

    expect(report.haVmsWithAutostart).toBe(1);
    expect(world.metrics.of('HaVmsWithAutostart').map((p) => p.value)).toEqual([0, 1]);
  });
});

describe('detectOnce: hosts that cannot be fenced', () => {
  const down = [levelDown(1, 'connection timed out')];
  const gauge = () => world.metrics.of('HostsNotFenceable').map((p) => p.value);

  it('given no relay can fence h1, then HostsNotFenceable counts it on every tick until a relay can', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h1', T0, down)]);
    await site.r2.report(site.hosts(), [], [readiness('h1', T0, down)]);

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });
    await detectOnce(world.ctx, { evaluateCapacity: false });
    await site.r2.report(site.hosts(), [], [readiness('h1', T0 + 1, [levelUp(2, 'fence_apc_snmp')])]);
    const mended = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report.hostsNotFenceable).toEqual([{ siteId: SITE, hostId: 'h1' }]);
    expect(mended.hostsNotFenceable).toEqual([]);
    expect(gauge()).toEqual([1, 1, 0]);
  });

  it('given a host no relay checked (older relays), then it is unknown and not counted', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h1', T0, [levelUp(1)])]);

    expect((await detectOnce(world.ctx, { evaluateCapacity: false })).hostsNotFenceable).toEqual([]);
    expect(gauge()).toEqual([0]);
  });

  it('given h2 cannot be fenced but is in maintenance, then it counts only once maintenance ends', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h2', T0, down)]);
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h2', enabled: true, caller: 'alice' });
    await detectOnce(world.ctx, { evaluateCapacity: false });

    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h2', enabled: false, caller: 'alice' });
    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report.hostsNotFenceable).toEqual([{ siteId: SITE, hostId: 'h2' }]);
    expect(gauge()).toEqual([0, 1]);
  });

  it('given the site is partitioned, then its hosts still count on their last readiness', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h3', T0, down)]);
    world.clock.advance(31_000);

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report.partitionedSites).toEqual([SITE]);
    expect(report.hostsNotFenceable).toEqual([{ siteId: SITE, hostId: 'h3' }]);
    expect(gauge()).toEqual([1]);
  });
});
