import { beforeEach, describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import { runStep } from '../../../app/failover/steps';
import type { CommandResult } from '../../../contracts/relay-protocol';
import {
  createWorld,
  GiB,
  H1_VMS,
  h1Silent,
  openH1Incident,
  relayOf,
  SILENT_MS,
  SITE,
  type StandardSite,
  standardSite,
  step,
  vm,
  type World,
} from './world';

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
});

/** The last datapoint of a gauge. */
function gauge(name: string): number | undefined {
  return world.metrics.of(name).at(-1)?.value;
}

const GAUGES = ['HostsAwaitingOperator', 'VmsRunningTwice', 'ClustersMassSilent', 'SitesOnOneRelay'] as const;

describe('the detector’s lasting gauges', () => {
  it('given nothing is wrong, then every gauge is published as 0 each tick and no site is named', async () => {
    const first = await detectOnce(world.ctx, { evaluateCapacity: false });
    await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(first.alerts).toEqual([]);
    for (const name of GAUGES) expect(world.metrics.of(name).map((p) => p.value)).toEqual([0, 0]);
  });

  it('given a host awaits the operator, then it is counted and named every tick until it no longer does', async () => {
    const incident = await openH1Incident(world, site);
    await runStep(world.ctx, {
      step: 'fence-failed',
      incident,
      error: { Error: 'FenceDeadlinePassedError' },
    });

    for (let tick = 0; tick < 3; tick += 1) {
      const report = await detectOnce(world.ctx, { evaluateCapacity: false });
      expect(gauge('HostsAwaitingOperator')).toBe(1);
      expect(report.alerts).toEqual([
        expect.objectContaining({
          siteId: SITE,
          awaitingOperator: [{ hostId: 'h1', incidentId: incident.incidentId }],
        }),
      ]);
      world.clock.advance(10_000);
      await site.r1.report(h1Silent(site));
      await site.r2.report(h1Silent(site));
    }

    // when h1 comes back, then the gauge falls to 0
    await site.r1.report(site.hosts());
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(gauge('HostsAwaitingOperator')).toBe(0);
  });

  it('given a VM runs on two hosts, then it stays counted, with both hosts, until one copy stops', async () => {
    // given h2 reports db-1 running while h1, not fenced, still runs it
    const twice = site.hosts({ h2: { vms: [vm('app-2', 16 * GiB, 8), vm('db-1', 8 * GiB, 4)] } });
    await site.r1.report(twice);
    expect(world.metrics.total('SplitBrainDetected')).toBe(1);

    // then every tick counts it and names the VM and both hosts, however many ticks pass
    for (let tick = 0; tick < 3; tick += 1) {
      world.clock.advance(10_000);
      await site.r1.report(twice);
      await site.r2.report(twice);
      const report = await detectOnce(world.ctx, { evaluateCapacity: false });
      expect(gauge('VmsRunningTwice')).toBe(1);
      expect(report.alerts[0]?.runningTwice).toEqual([{ vmId: 'db-1', hosts: ['h1', 'h2'] }]);
    }

    // when h1 stops its copy, then the VM runs once and the gauge falls to 0
    await site.r1.report(
      site.hosts({
        h1: { vms: H1_VMS.filter((v) => v.id !== 'db-1') },
        h2: { vms: [vm('app-2', 16 * GiB, 8), vm('db-1', 8 * GiB, 4)] },
      }),
    );
    const after = await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(gauge('VmsRunningTwice')).toBe(0);
    expect(after.alerts).toEqual([]);
  });

  it('given the host running the other copy is confirmed off, then the VM no longer runs twice', async () => {
    const incident = await openH1Incident(world, site);
    await site.r1.report(
      h1Silent(site).map((h) =>
        h.hostId === 'h2' ? { ...h, vms: [vm('app-2', 16 * GiB, 8), vm('db-1', 8 * GiB, 4)] } : h,
      ),
    );
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(gauge('VmsRunningTwice')).toBe(1);

    await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok' });
    const [fence] = await world.stores.commands.listForIncident(SITE, incident.incidentId);
    const off: CommandResult = {
      commandId: fence?.command.commandId ?? '',
      incidentId: incident.incidentId,
      outcome: 'succeeded',
      powerState: 'off',
      finishedAt: world.clock.now(),
    };
    await relayOf(site, fence?.relayId ?? 'r1').report(h1Silent(site), [off]);
    await step(world, {
      step: 'mark-fenced',
      incident,
      confirmation: { by: 'ipmi-read-back', detail: 'off' },
    });

    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(gauge('VmsRunningTwice')).toBe(0);
  });

  it('given more than half a cluster is silent, then the cluster is counted and its silent hosts named', async () => {
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS }, h2: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    await site.r2.report(silent);

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(gauge('ClustersMassSilent')).toBe(1);
    expect(report.alerts[0]?.massSilence).toEqual([{ clusterId: 'c1', silentHosts: ['h1', 'h2'], hosts: 3 }]);
  });

  it('given a site is down to one of its two relays, then it is counted and the silent relay named', async () => {
    world.clock.advance(31_000);
    await site.r1.report(site.hosts());

    const report = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(gauge('SitesOnOneRelay')).toBe(1);
    expect(report.alerts[0]?.oneLiveRelay).toEqual({ relayId: 'r1', silentRelays: ['r2'] });

    // when r2 reports again, then the site has its two relays and the gauge falls to 0
    await site.r2.report(site.hosts());
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(gauge('SitesOnOneRelay')).toBe(0);
  });
});
