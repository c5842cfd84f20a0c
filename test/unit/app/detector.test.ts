import { beforeEach, describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import { runStep } from '../../../app/failover/steps';
import { setFencing, setVmMetadata } from '../../../app/operator';
import type { FencingPolicyOutput } from '../../../contracts/workflow';
import {
  createWorld,
  GiB,
  h1Silent,
  openH1Incident,
  SITE,
  type StandardSite,
  standardSite,
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

  it('given the relay that still heard h1 died, then the surviving view opens the incident', async () => {
    await site.r1.report(h1Silent(site));
    await site.r2.report(site.hosts());
    world.clock.advance(10_000);
    await site.r1.report(h1Silent(site));
    expect(world.workflow.startCalls).toEqual([]);
    world.clock.advance(21_000);

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report).toMatchObject({
      partitionedSites: [],
      silentRelays: 1,
      silentHosts: 1,
      incidentsOpened: ['dc1:h1:1'],
    });
    expect(world.workflow.startCalls.map((i) => i.evidence.relays.map((r) => r.relayId))).toEqual([['r1']]);
  });

  it('given nothing is silent, then it opens nothing and reports zero gauges', async () => {
    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(report).toEqual({
      sitesChecked: 1,
      partitionedSites: [],
      silentRelays: 0,
      silentHosts: 0,
      incidentsOpened: [],
      clustersFailingNPlusOne: [],
    });
    expect(world.metrics.of('HostsSilent').map((p) => p.value)).toEqual([0]);
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
