import { beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, RelayExistsError, RelayRevokedError } from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import {
  capacityReport,
  confirmPowerOff,
  enrollRelay,
  getIncident,
  listHosts,
  listIncidents,
  listSites,
  listVms,
  revokeRelay,
  setFencing,
  setMaintenance,
  setVmMetadata,
} from '../../../app/operator';
import { VmViewSchema } from '../../../contracts/operator-api';
import type { ObservedVm } from '../../../contracts/relay-protocol';
import type { IncidentInput } from '../../../contracts/workflow';
import { executionArnOf, testHasher } from './fakes';
import {
  createWorld,
  GiB,
  levelDown,
  levelUp,
  openH1Incident,
  readiness,
  SITE,
  type StandardSite,
  standardSite,
  T0,
  TestRelay,
  vm,
  type World,
} from './world';

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
});

describe('inventory views', () => {
  it('lists sites, hosts and VMs', async () => {
    expect((await listSites(world.ctx)).map((s) => s.siteId)).toEqual([SITE]);
    expect((await listHosts(world.ctx, { siteId: SITE })).map((h) => [h.hostId, h.lifecycle.status])).toEqual(
      [
        ['h1', 'up'],
        ['h2', 'up'],
        ['h3', 'up'],
      ],
    );
    expect((await listVms(world.ctx, { siteId: SITE })).map((v) => v.vmId).sort()).toEqual(
      ['app-2', 'app-3', 'batch-1', 'db-1', 'scratch-1', 'web-1'].sort(),
    );
  });

  it('refuses an unknown site with NotFoundError', async () => {
    await expect(listHosts(world.ctx, { siteId: 'nowhere' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(listVms(world.ctx, { siteId: 'nowhere' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(capacityReport(world.ctx, { siteId: 'nowhere' })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('fence readiness in the host views', () => {
  beforeEach(async () => {
    const down = [levelDown(1, 'connection timed out')];
    await site.r1.report(site.hosts(), [], [readiness('h1', T0, down), readiness('h2', T0, down)]);
    await site.r2.report(site.hosts(), [], [readiness('h1', T0, down), readiness('h2', T0, [levelUp(1)])]);
  });

  it("shows each relay's readiness of each host and the verdict: not fenceable with why, fenceable, unknown", async () => {
    const hosts = new Map((await listHosts(world.ctx, { siteId: SITE })).map((h) => [h.hostId, h]));

    expect(hosts.get('h1')?.fencing).toEqual({
      fenceable: false,
      reason:
        'relay r1: level 1 ipmitool: connection timed out; relay r2: level 1 ipmitool: connection timed out',
    });
    expect(hosts.get('h1')?.fenceReadiness.r1).toEqual({
      ok: false,
      checkedAt: T0,
      reportedAt: expect.any(Number),
      levels: [levelDown(1, 'connection timed out')],
    });
    expect(hosts.get('h2')?.fencing).toEqual({ fenceable: true, reason: null });
    expect(Object.keys(hosts.get('h2')?.fenceReadiness ?? {})).toEqual(['r1', 'r2']);
    // No relay checked h3 (an older relay): unknown, not broken.
    expect(hosts.get('h3')?.fencing).toEqual({ fenceable: null, reason: null });
    expect(hosts.get('h3')?.fenceReadiness).toEqual({});
  });

  it('given the only relay that can fence h2 is revoked, then h2 is not fenceable: a revoked relay fences nothing', async () => {
    await revokeRelay(world.ctx, { siteId: SITE, relayId: 'r2' });

    const h2 = (await listHosts(world.ctx, { siteId: SITE })).find((h) => h.hostId === 'h2');

    expect(h2?.fencing).toEqual({
      fenceable: false,
      reason: 'relay r1: level 1 ipmitool: connection timed out',
    });
  });

  it('given h1 cannot be fenced, then N+1 still holds but failover is not automatic: h1 needs an operator', async () => {
    const [cluster] = (await capacityReport(world.ctx, { siteId: SITE })).clusters;

    expect(cluster?.report.survivesAnyOneHostFailure).toBe(true);
    expect(cluster?.report.automaticFailover).toBe(false);
    expect(cluster?.report.notFenceable).toEqual([
      {
        hostId: 'h1',
        reason:
          'cannot be fenced: relay r1: level 1 ipmitool: connection timed out; relay r2: level 1 ipmitool: connection timed out',
      },
    ]);
    const plans = new Map(cluster?.report.plans.map((p) => [p.failedHostId, p]));
    expect(plans.get('h1')).toMatchObject({ needsOperator: true, survives: true });
    expect(plans.get('h2')).toMatchObject({ needsOperator: false, operatorReason: null });
    expect(plans.get('h3')).toMatchObject({ needsOperator: false, operatorReason: null });
  });
});

describe('capacityReport', () => {
  it("given room for every host's HA VMs elsewhere, then the cluster survives any one host failure", async () => {
    const report = await capacityReport(world.ctx, { siteId: SITE });

    expect(report.clusters).toHaveLength(1);
    expect(report.clusters[0]?.clusterId).toBe('c1');
    expect(report.clusters[0]?.report.survivesAnyOneHostFailure).toBe(true);
    // No relay has reported fence readiness: unknown counts as fenceable, not as broken.
    expect(report.clusters[0]?.report.automaticFailover).toBe(true);
    expect(report.clusters[0]?.report.notFenceable).toEqual([]);
    const h1Plan = report.clusters[0]?.report.plans.find((p) => p.failedHostId === 'h1');
    expect(h1Plan?.plan.placements.map((p) => p.vmId)).toEqual(['db-1', 'web-1', 'batch-1']);
    expect(h1Plan?.plan.skipped).toEqual([{ vmId: 'scratch-1', reason: 'not-ha' }]);
  });

  it("given h2's big VM is HA and the others are full, then the cluster fails N+1 and says which VM stays down", async () => {
    await site.r1.report(
      site.hosts({ h2: { vms: [vm('app-2', 20 * GiB, 8)] }, h3: { vms: [vm('app-3', 24 * GiB, 4)] } }),
    );
    await setVmMetadata(world.ctx, {
      siteId: SITE,
      vmId: 'app-2',
      body: { ha: true, priority: 'high', antiAffinity: null },
    });

    const [cluster] = (await capacityReport(world.ctx, { siteId: SITE })).clusters;

    expect(cluster?.report.survivesAnyOneHostFailure).toBe(false);
    expect(cluster?.report.staysDown).toEqual([
      { failedHostId: 'h2', vms: [expect.objectContaining({ vmId: 'app-2', reason: 'memory' })] },
    ]);
  });
});

describe('running on one host, defined on several, in the views', () => {
  // web-1 (HA) runs on h1 and is defined, shut off, on h2 and h3: its restart targets.
  const definedOnH2H3 = (h2: Partial<ObservedVm> = {}, h3: Partial<ObservedVm> = {}) =>
    site.hosts({
      h2: { vms: [vm('app-2', 16 * GiB, 8), { ...vm('web-1', 4 * GiB, 2, 'shut-off'), ...h2 }] },
      h3: { vms: [vm('app-3', 8 * GiB, 4), { ...vm('web-1', 4 * GiB, 2, 'shut-off'), ...h3 }] },
    });

  it('given web-1 runs on h1 and is defined shut off on h2 and h3, then the plan for losing h1 still restarts it', async () => {
    await site.r1.report(definedOnH2H3({ reason: 'shutdown' }, { reason: 'destroyed' }));

    const [cluster] = (await capacityReport(world.ctx, { siteId: SITE })).clusters;
    const plans = new Map(cluster?.report.plans.map((p) => [p.failedHostId, p]));
    expect(plans.get('h1')?.plan.placements.map((p) => p.vmId)).toEqual(['db-1', 'web-1', 'batch-1']);
    // Its shut-off copies are no load and no plan of h2 or h3.
    expect(plans.get('h2')?.plan.placements).toEqual([]);
    expect(plans.get('h3')?.plan.placements).toEqual([]);
    expect(plans.get('h2')?.plan.skipped.map((v) => v.vmId)).toEqual(['app-2']);
    expect(cluster?.report.haVmsWithAutostart).toEqual([]);
  });

  it('lists where each VM runs and where it is defined, with libvirt reason and autostart, and flags autostart on an HA VM', async () => {
    const h1 = (site.hosts()[0]?.vms ?? []).map((v) =>
      v.id === 'scratch-1' ? { ...v, reason: 'booted', autostart: true } : v,
    );
    await site.r1.report(
      definedOnH2H3({ reason: 'shutdown', autostart: false }, { reason: 'shutdown', autostart: true }).map(
        (h) => (h.hostId === 'h1' ? { ...h, vms: h1 } : h),
      ),
    );

    const vms = await listVms(world.ctx, { siteId: SITE });
    // The contract's view of each VM holds (its schema keeps only the fields it documents).
    expect(VmViewSchema.array().safeParse(vms).success).toBe(true);
    const byId = new Map(vms.map((v) => [v.vmId, v]));
    expect(byId.get('web-1')).toEqual({
      siteId: SITE,
      vmId: 'web-1',
      hostId: 'h1',
      cpus: 2,
      memoryMiB: 4 * GiB,
      state: 'running',
      reason: null,
      autostart: null,
      definedOn: ['h1', 'h2', 'h3'],
      autostartOn: ['h3'],
      ha: true,
      priority: 'medium',
      antiAffinity: null,
      observedAt: T0,
      misconfigurations: [
        'libvirt autostart is on (h3): a fenced host that boots again would start a second copy',
      ],
    });
    // Not HA: autostart is the operator's business, nothing restarts it anyway.
    expect(byId.get('scratch-1')).toMatchObject({
      reason: 'booted',
      autostart: true,
      autostartOn: ['h1'],
      misconfigurations: [],
    });
    expect(byId.get('db-1')?.misconfigurations).toEqual([]);

    const [cluster] = (await capacityReport(world.ctx, { siteId: SITE })).clusters;
    expect(cluster?.report.haVmsWithAutostart).toEqual([{ vmId: 'web-1', hostId: 'h1' }]);
    // A warning, not a verdict.
    expect(cluster?.report.survivesAnyOneHostFailure).toBe(true);
    expect(cluster?.report.automaticFailover).toBe(true);
  });
});

describe('setVmMetadata', () => {
  it('sets HA, priority and anti-affinity, keeping what the agents observed', async () => {
    const vmRecord = await setVmMetadata(world.ctx, {
      siteId: SITE,
      vmId: 'app-3',
      body: { ha: true, priority: 'low', antiAffinity: 'web' },
    });
    expect(vmRecord).toMatchObject({
      vmId: 'app-3',
      hostId: 'h3',
      ha: true,
      priority: 'low',
      antiAffinity: 'web',
      state: 'running',
    });
  });
});

describe('setMaintenance (safety rule 7)', () => {
  it('puts a host into maintenance and takes it out again', async () => {
    expect(
      await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h2', enabled: true, caller: 'alice' }),
    ).toEqual({
      siteId: SITE,
      hostId: 'h2',
      status: 'maintenance',
      by: 'alice',
    });
    expect((await world.stores.sites.loadControl(SITE))?.hosts.h2?.status).toBe('maintenance');
    expect(
      (await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h2', enabled: false, caller: 'alice' }))
        .status,
    ).toBe('up');
  });

  it('given a fence in flight, then ConflictError with the reason', async () => {
    const incident = await openH1Incident(world, site);
    await runStep(world.ctx, { step: 'dispatch-fence', incident, taskToken: 't' });

    await expect(
      setMaintenance(world.ctx, { siteId: SITE, hostId: 'h1', enabled: true, caller: 'alice' }),
    ).rejects.toThrow(
      expect.objectContaining({
        name: 'ConflictError',
        message: expect.stringMatching(/fence is in flight/),
      }),
    );
  });

  it('given a host under suspicion, then maintenance ends its incident, and the timeline says who did it', async () => {
    const incident = await openH1Incident(world, site);
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h1', enabled: true, caller: 'alice' });

    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.find((e) => e.kind === 'maintenance')?.data).toEqual({ by: 'alice' });
  });

  it('refuses an unknown host with NotFoundError', async () => {
    await expect(
      setMaintenance(world.ctx, { siteId: SITE, hostId: 'h9', enabled: true, caller: 'alice' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('setFencing (safety rule 7)', () => {
  it("switches the cluster's fencing off and on", async () => {
    const off = await setFencing(world.ctx, {
      siteId: SITE,
      clusterId: 'c1',
      enabled: false,
      caller: 'alice',
    });
    expect(off).toMatchObject({ cluster: { clusterId: 'c1', fencingEnabled: false }, by: 'alice' });
    const on = await setFencing(world.ctx, { siteId: SITE, clusterId: 'c1', enabled: true, caller: 'bob' });
    expect(on.cluster.fencingEnabled).toBe(true);
  });

  it('refuses an unknown cluster with NotFoundError', async () => {
    await expect(
      setFencing(world.ctx, { siteId: SITE, clusterId: 'c9', enabled: false, caller: 'alice' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('enrollRelay and revokeRelay', () => {
  it('returns the credential once, stores only its hash, and the credential then works for reports', async () => {
    const enrolled = await enrollRelay(world.ctx, { siteId: 'dc2', relayId: 'edge.r1' });

    expect(enrolled.credential).toMatch(/^hrc1\.dc2\.edge\.r1\.[A-Za-z0-9_-]{43}$/);
    const secret = enrolled.credential.split('.').at(-1) ?? '';
    const record = await world.stores.relays.getRelay('dc2', 'edge.r1');
    expect(record?.credentialHash).toBe(testHasher.hash(secret));
    expect(JSON.stringify(record)).not.toContain(secret);
    expect((await listSites(world.ctx)).map((s) => s.siteId)).toEqual(['dc1', 'dc2']);

    const relay = new TestRelay(world, 'dc2', 'edge.r1', enrolled.credential);
    expect((await relay.report([])).acceptedSeq).toBe(1);
  });

  it('refuses to enrol a relay twice with RelayExistsError', async () => {
    await expect(enrollRelay(world.ctx, { siteId: SITE, relayId: 'r1' })).rejects.toBeInstanceOf(
      RelayExistsError,
    );
  });

  it('revokes a relay: its reports are refused from then on', async () => {
    await revokeRelay(world.ctx, { siteId: SITE, relayId: 'r2' });
    await expect(site.r2.report(site.hosts())).rejects.toBeInstanceOf(RelayRevokedError);
  });

  it('refuses to revoke an unknown relay with NotFoundError', async () => {
    await expect(revokeRelay(world.ctx, { siteId: SITE, relayId: 'r9' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });
});

describe('listIncidents and getIncident', () => {
  it('lists incidents and shows one with its timeline and execution', async () => {
    const incident = await openH1Incident(world, site);
    await runStep(world.ctx, { step: 'suspect', incident });

    expect((await listIncidents(world.ctx, { siteId: SITE, open: true })).map((i) => i.incidentId)).toEqual([
      incident.incidentId,
    ]);
    expect(await listIncidents(world.ctx, { siteId: 'dc2' })).toEqual([]);
    expect(await listIncidents(world.ctx, { limit: 0 })).toEqual([]);
    const view = await getIncident(world.ctx, { incidentId: incident.incidentId });
    expect(view.executionArn).toBe(executionArnOf(incident.incidentId));
    expect(view.events.map((e) => e.kind)).toEqual(['ha-vms', 'suspected']);
  });

  it('refuses an unknown incident with NotFoundError', async () => {
    await expect(getIncident(world.ctx, { incidentId: 'dc1:h9:1' })).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('confirmPowerOff', () => {
  let incident: IncidentInput;

  beforeEach(async () => {
    incident = await openH1Incident(world, site);
  });

  async function awaitingOperator(): Promise<void> {
    await runStep(world.ctx, {
      step: 'fence-failed',
      incident,
      error: { Error: 'FenceDeadlinePassedError' },
    });
    await runStep(world.ctx, { step: 'await-operator', incident, taskToken: 'tok-op' });
  }

  it('given the incident awaits the operator, then it completes the task, records who confirmed, once', async () => {
    await awaitingOperator();

    const decision = await confirmPowerOff(world.ctx, {
      incidentId: incident.incidentId,
      hostId: 'h1',
      operator: 'alice',
    });

    expect(decision).toEqual({
      decision: 'confirmed-off',
      by: 'alice',
      at: world.clock.now(),
      incidentId: incident.incidentId,
      hostId: 'h1',
    });
    expect(world.workflow.completionOf('tok-op')).toEqual({
      kind: 'success',
      token: 'tok-op',
      output: { decision: 'confirmed-off', by: 'alice', at: world.clock.now() },
    });
    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.find((e) => e.kind === 'power-off-confirmed')?.data).toEqual({
      by: 'operator',
      operator: 'alice',
    });
    // A repeat is the same confirmation: answered once, the task completed once.
    world.clock.advance(1_000);
    await expect(
      confirmPowerOff(world.ctx, { incidentId: incident.incidentId, hostId: 'h1', operator: 'bob' }),
    ).resolves.toMatchObject({ decision: 'confirmed-off', by: 'alice' });
    expect(world.workflow.completions).toHaveLength(1);
  });

  it('given the incident is not waiting for an operator, then ConflictError and nothing is sent', async () => {
    await expect(
      confirmPowerOff(world.ctx, { incidentId: incident.incidentId, hostId: 'h1', operator: 'alice' }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(world.workflow.completions).toEqual([]);
  });

  it('given another host is named, then ConflictError', async () => {
    await awaitingOperator();
    await expect(
      confirmPowerOff(world.ctx, { incidentId: incident.incidentId, hostId: 'h2', operator: 'alice' }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it('given an unknown incident, then NotFoundError', async () => {
    await expect(
      confirmPowerOff(world.ctx, { incidentId: 'dc1:h9:1', hostId: 'h9', operator: 'alice' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});
