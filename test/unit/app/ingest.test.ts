import { beforeEach, describe, expect, it } from 'vitest';
import {
  BadCredentialError,
  ClockSkewError,
  RelayRevokedError,
  StaleSequenceError,
  UnauthorizedError,
  UnknownRelayError,
  WrongSiteError,
} from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import { recordReport } from '../../../app/ingest/record-report';
import { setMaintenance } from '../../../app/operator/maintenance';
import type { CommandResult, FenceCommand, ObservedVm } from '../../../contracts/relay-protocol';
import { type PlanOutput, WORKFLOW_ERROR } from '../../../contracts/workflow';
import {
  createWorld,
  enrolledRelay,
  fencedH1,
  GiB,
  host,
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
  world.clock.advance(2_000);
  world.calls.length = 0;
  world.metrics.points.length = 0;
});

async function fenceCommand(relayToken = 'tok-fence-1'): Promise<FenceCommand> {
  const incident = await openH1Incident(world, site);
  await runStep(world.ctx, { step: 'dispatch-fence', incident, taskToken: relayToken });
  const commands = await world.stores.commands.listForIncident(SITE, incident.incidentId);
  const fence = commands[0]?.command;
  if (fence?.kind !== 'fence') throw new Error('no fence command');
  return fence;
}

function fenceResult(fence: FenceCommand, over: Partial<CommandResult> = {}): CommandResult {
  return {
    commandId: fence.commandId,
    incidentId: fence.incidentId,
    outcome: 'succeeded',
    powerState: 'off',
    finishedAt: world.clock.now(),
    ...over,
  };
}

describe('recordReport: the liveness path', () => {
  it('given nothing changed, when a relay reports, then it costs one read and one liveness write', async () => {
    const response = await site.r1.report(site.hosts());

    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport']);
    expect(response).toEqual({ protocol: 1, acceptedSeq: site.r1.seq, commands: [], nextReportInMs: 10_000 });
    expect(world.metrics.total('ReportsIngested')).toBe(1);
  });

  it('given a first report, then hosts, VMs, clusters and summaries are recorded', async () => {
    const h1 = await world.stores.hosts.getHost(SITE, 'h1');
    expect(h1).toMatchObject({
      cluster: 'c1',
      cpus: 16,
      memoryMiB: 32 * GiB,
      usedCpus: 8,
      usedMiB: 15 * GiB,
      lifecycle: { status: 'up', bootId: 'h1-boot-1' },
    });
    expect(await world.stores.vms.getVm(SITE, 'db-1')).toMatchObject({
      hostId: 'h1',
      state: 'running',
      ha: true,
    });
    const control = await world.stores.sites.loadControl(SITE);
    expect(control?.clusters.map((c) => c.clusterId)).toEqual(['c1']);
    expect(control?.hosts.h1).toMatchObject({ cluster: 'c1', status: 'up', incidentId: null });
  });

  it('given one host changed its inventory, then only that host and its changed VM are written', async () => {
    await site.r1.report(site.hosts({ h2: { vms: [vm('app-2', 16 * GiB, 8), vm('new-1', 2 * GiB, 1)] } }));

    expect(world.calls).toEqual([
      'sites.loadControl',
      'relays.acceptReport',
      'vms.listVms',
      'hosts.getHost',
      'hosts.saveInventory',
      'vms.saveObserved',
      'sites.putHostSummary',
    ]);
    expect(await world.stores.vms.getVm(SITE, 'new-1')).toMatchObject({ hostId: 'h2', state: 'running' });
    expect(await world.stores.hosts.getHost(SITE, 'h2')).toMatchObject({ usedMiB: 18 * GiB, usedCpus: 9 });
  });

  it('given a VM the host no longer lists, then it is recorded shut off there', async () => {
    await site.r1.report(site.hosts({ h3: { vms: [] } }));

    expect(await world.stores.vms.getVm(SITE, 'app-3')).toMatchObject({ hostId: 'h3', state: 'shut-off' });
    expect(await world.stores.hosts.getHost(SITE, 'h3')).toMatchObject({ usedMiB: 0, usedCpus: 0 });
  });

  it('given the same inventory from the second relay, then it writes nothing more', async () => {
    await site.r1.report(site.hosts({ h3: { vms: [] } }));
    world.calls.length = 0;

    await site.r2.report(site.hosts({ h3: { vms: [] } }));

    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport']);
  });

  it('given an up host that rebooted unnoticed, then its lifecycle records the new boot', async () => {
    await site.r1.report(site.hosts({ h2: { bootId: 'h2-boot-2' } }));

    expect((await world.stores.hosts.getHost(SITE, 'h2'))?.lifecycle).toEqual({
      status: 'up',
      bootId: 'h2-boot-2',
    });
  });
});

describe('recordReport: refusals change nothing', () => {
  async function unchanged(run: () => Promise<unknown>, error: abstract new (...args: never[]) => Error) {
    const before = await world.stores.relays.getRelay(SITE, 'r1');
    await expect(run()).rejects.toBeInstanceOf(error);
    expect(await world.stores.relays.getRelay(SITE, 'r1')).toEqual(before);
    // The refused report's only possible write is the conditional liveness write, which refused it.
    expect(world.calls.filter((c) => !['sites.loadControl', 'relays.acceptReport'].includes(c))).toEqual([]);
  }

  it('when the Authorization header is missing, then UnauthorizedError', async () => {
    const report = site.r1.build(site.hosts());
    await unchanged(() => recordReport(world.ctx, { authorization: undefined, report }), UnauthorizedError);
  });

  it.each([
    ['not a bearer token', 'Basic abc'],
    ['another format', 'Bearer hrc2.dc1.r1.secret'],
    ['no secret', 'Bearer hrc1.dc1.r1.'],
    ['no relay id', 'Bearer hrc1.dc1secret'],
  ])('when the credential is malformed (%s), then UnauthorizedError', async (_, authorization) => {
    const report = site.r1.build(site.hosts());
    await unchanged(() => recordReport(world.ctx, { authorization, report }), UnauthorizedError);
  });

  it('when the secret is wrong, then BadCredentialError', async () => {
    const report = site.r1.build(site.hosts());
    await unchanged(
      () => recordReport(world.ctx, { authorization: 'Bearer hrc1.dc1.r1.c2VjcmV0LWJ1dC13cm9uZw', report }),
      BadCredentialError,
    );
  });

  it("when r1's credential comes with r2's report, then WrongSiteError", async () => {
    const report = site.r2.build(site.hosts());
    await unchanged(
      () => recordReport(world.ctx, { authorization: `Bearer ${site.r1.credential}`, report }),
      WrongSiteError,
    );
  });

  it('when a credential of another site is used, then WrongSiteError', async () => {
    const other = await enrolledRelay(world, 'r9', 'dc2');
    const report = site.r1.build(site.hosts());
    world.calls.length = 0;
    await unchanged(
      () => recordReport(world.ctx, { authorization: `Bearer ${other.credential}`, report }),
      WrongSiteError,
    );
  });

  it('when a report is replayed, then StaleSequenceError', async () => {
    const report = site.r1.build(site.hosts({ h3: { vms: [] } }));
    await site.r1.send(report);
    world.calls.length = 0;

    await expect(site.r1.send(report)).rejects.toBeInstanceOf(StaleSequenceError);
    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport']);
  });

  it('when the relay clock is off by more than the policy allows, then ClockSkewError before any store call', async () => {
    const report = { ...site.r1.build(site.hosts()), sentAt: world.clock.now() - 301_000 };
    await expect(site.r1.send(report)).rejects.toBeInstanceOf(ClockSkewError);
    expect(world.calls).toEqual([]);
  });

  it('when the site is unknown, then UnknownRelayError', async () => {
    const report = { ...site.r1.build([]), siteId: 'dc4' };
    await expect(
      recordReport(world.ctx, { authorization: 'Bearer hrc1.dc4.r1.c2VjcmV0', report }),
    ).rejects.toBeInstanceOf(UnknownRelayError);
    expect(world.calls).toEqual(['sites.loadControl']);
  });

  it('when the relay is revoked, then RelayRevokedError', async () => {
    await world.stores.relays.revoke(SITE, 'r1', world.clock.now());
    await expect(site.r1.report(site.hosts())).rejects.toBeInstanceOf(RelayRevokedError);
  });
});

describe('recordReport: opening incidents', () => {
  it('given both relays report h1 silent at the same instant, then the incident still opens at once', async () => {
    // when the two reports are ingested concurrently (each reads the site before the other's vote)
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await Promise.all([site.r1.report(silent), site.r2.report(silent)]);

    // then at least one of them saw both votes on its second, consistent read: one incident, whose
    // execution a repeated start finds by its name
    expect((await world.stores.incidents.list()).map((i) => i.incidentId)).toEqual(['dc1:h1:1']);
    expect(new Set(world.workflow.startCalls.map((c) => c.incidentId))).toEqual(new Set(['dc1:h1:1']));
  });

  it('given the report that moves h1 to suspect, then it creates the incident without reading it first, marked open before the start', async () => {
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    world.calls.length = 0;

    await site.r2.report(silent);

    // the lifecycle write made this report the opener: no incident of that id can exist yet
    const at = (call: string) => world.calls.indexOf(call);
    expect(world.calls.slice(0, at('incidents.create'))).not.toContain('incidents.get');
    expect(at('incidents.create')).toBeGreaterThan(at('hosts.setLifecycle'));
    expect(at('sites.setIncidentOpen')).toBeGreaterThan(at('hosts.setLifecycle'));
    // The summary follows the lifecycle write, once, beside the incident's first writes.
    expect(world.calls.filter((c) => c === 'sites.putHostSummary')).toHaveLength(1);
    expect(at('sites.putHostSummary')).toBeGreaterThan(at('hosts.setLifecycle'));
    expect(at('incidents.update')).toBeGreaterThan(at('incidents.create'));
    expect(world.workflow.startCalls.map((i) => i.incidentId)).toEqual(['dc1:h1:1']);
    const control = await world.stores.sites.loadControl(SITE);
    expect(control?.openIncidents).toEqual(['dc1:h1:1']);
  });

  it('given one relay calls an up host silent and no incident has it yet, then both report at the incident pace', async () => {
    // when r1 alone calls h1 silent (r2 still hears it)
    const first = await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }));
    const other = await site.r2.report(site.hosts());

    // then no incident, but the fence that may follow is picked up at the incident pace, not in 10 s
    expect(world.workflow.startCalls).toHaveLength(0);
    expect(first.nextReportInMs).toBe(2_000);
    expect(other.nextReportInMs).toBe(2_000);

    // when r1 hears h1 again, then the normal pace is back
    expect((await site.r1.report(site.hosts())).nextReportInMs).toBe(10_000);
  });

  it('given a relay calls an up host silent just past the threshold, then both report at the command pace until the silence has lasted an incident pace', async () => {
    // when r1 has just lost h1 (6 s threshold crossed 100 ms ago) and r2 still hears it
    const first = await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: 6_100 } }));
    const other = await site.r2.report(site.hosts());

    // then no incident yet, but every relay reports again within the command pace (a sixteenth of a
    // heartbeat): the incident may open with the next report, and its confirmation waits for every relay
    expect(world.workflow.startCalls).toHaveLength(0);
    expect(first.nextReportInMs).toBe(125);
    expect(other.nextReportInMs).toBe(125);

    // when the relays still disagree once the silence is older than the threshold and an incident pace
    world.clock.advance(2_000);
    const later = await site.r2.report(site.hosts());

    // then the incident pace: a lasting disagreement does not hold the site at the command pace
    expect(later.nextReportInMs).toBe(2_000);
  });

  it('given a host in maintenance is silent, then the site keeps its normal pace', async () => {
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h3', enabled: true, caller: 'alice' });
    const silent = site.hosts({ h3: { lastHeardMsAgo: SILENT_MS } });

    expect((await site.r1.report(silent)).nextReportInMs).toBe(10_000);
    expect((await site.r2.report(silent)).nextReportInMs).toBe(10_000);
    expect(world.workflow.startCalls).toHaveLength(0);
  });

  it('given both live relays call h1 silent, then ONE incident opens and ONE execution starts, even on repeats', async () => {
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    expect(world.workflow.startCalls).toHaveLength(0);

    const response = await site.r2.report(silent);
    await site.r2.report(silent);
    await site.r1.report(silent);

    const incidents = await world.stores.incidents.list();
    expect(incidents.map((i) => i.incidentId)).toEqual(['dc1:h1:1']);
    expect(world.workflow.startCalls).toHaveLength(1);
    expect(incidents[0]).toMatchObject({
      hostId: 'h1',
      cluster: 'c1',
      bootId: 'h1-boot-1',
      outcome: 'in-progress',
      executionArn: expect.stringContaining('dc1:h1:1'),
    });
    expect(world.workflow.startCalls[0]).toMatchObject({
      incidentId: 'dc1:h1:1',
      // A 125 ms grace (a sixteenth of a heartbeat): ConfirmSilence waits it, none of it in whole seconds.
      timing: { confirmSilenceSeconds: 0, fenceAttemptTimeoutSeconds: 20, startTimeoutSeconds: 20 },
      evidence: {
        relays: [
          { relayId: 'r1', lastHeardMsAgo: SILENT_MS },
          { relayId: 'r2', lastHeardMsAgo: SILENT_MS },
        ],
        silentAfterMs: 6_000,
      },
    });
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle).toMatchObject({
      status: 'suspect',
      incidentId: 'dc1:h1:1',
    });
    expect((await world.stores.sites.loadControl(SITE))?.openIncidents).toEqual(['dc1:h1:1']);
    expect(response.nextReportInMs).toBe(2_000);
    expect(world.metrics.total('IncidentOpened')).toBe(1);
  });

  it('given two reports calling h1 silent race each other, then one incident and one execution', async () => {
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);

    await Promise.all([site.r2.report(silent), site.r1.report(silent)]);

    expect(await world.stores.incidents.list()).toHaveLength(1);
    expect(world.workflow.executions.size).toBe(1);
  });

  it('given only one of two live relays calls h1 silent, then no incident opens', async () => {
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }));
    await site.r2.report(site.hosts());

    expect(await world.stores.incidents.list()).toEqual([]);
    expect(world.workflow.startCalls).toEqual([]);
  });

  it('given r2 went silent itself, then r1 alone calling h1 silent opens the incident', async () => {
    world.clock.advance(31_000);
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }));

    expect(world.workflow.startCalls.map((i) => i.incidentId)).toEqual(['dc1:h1:1']);
    expect(world.workflow.startCalls[0]?.evidence.relays).toEqual([
      { relayId: 'r1', lastHeardMsAgo: SILENT_MS },
    ]);
  });

  it('given h1 is in maintenance, when every relay calls it silent, then it is never suspected', async () => {
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h1', enabled: true, caller: 'alice' });
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    await site.r2.report(silent);

    expect(world.workflow.startCalls).toEqual([]);
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle.status).toBe('maintenance');
  });

  it("given the heard hosts' work fails, then the incident the report calls for is opened all the same", async () => {
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    const hosts = world.ctx.ports.hosts;
    const failing: typeof hosts = Object.create(hosts);
    failing.saveInventory = async () => {
      throw new Error('simulated inventory write failure');
    };
    Object.assign(world.ctx.ports, { hosts: failing });
    // h2 now runs a second VM: its inventory write is the heard hosts' work, and it fails.
    const changed = site.hosts({
      h1: { lastHeardMsAgo: SILENT_MS },
      h2: { vms: [vm('app-2', 16 * GiB, 8), vm('app-2b', 1 * GiB, 1)] },
    });

    await expect(site.r2.report(changed)).rejects.toThrow(/simulated inventory/);

    expect(world.workflow.startCalls.map((i) => i.incidentId)).toEqual(['dc1:h1:1']);
    Object.assign(world.ctx.ports, { hosts });
    await site.r2.report(changed);
    expect((await world.stores.vms.getVm(SITE, 'app-2b'))?.hostId).toBe('h2');
  });

  it('given the opening died before the execution started, then the next report starts it, with the same input', async () => {
    world.workflow.failNextStart = true;
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    await expect(site.r2.report(silent)).rejects.toThrow(/simulated/);
    expect((await world.stores.incidents.get('dc1:h1:1'))?.executionArn).toBeNull();

    await site.r1.report(silent);

    expect(world.workflow.startCalls).toHaveLength(2);
    expect(world.workflow.startCalls[1]).toEqual(world.workflow.startCalls[0]);
    expect((await world.stores.incidents.get('dc1:h1:1'))?.executionArn).toContain('dc1:h1:1');
  });
});

describe('recordReport: hosts coming back', () => {
  it('given h1 is suspect, when a relay hears it again, then it is up and the timeline says so', async () => {
    const incident = await openH1Incident(world, site);
    await site.r1.report(site.hosts());

    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle).toEqual({
      status: 'up',
      bootId: 'h1-boot-1',
    });
    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.map((e) => e.kind)).toContain('host-came-back');
  });

  it('given h1 awaits the operator, when it comes back, then the operator task completes with host-came-back', async () => {
    const incident = await openH1Incident(world, site);
    await runStep(world.ctx, { step: 'fence-failed', incident, error: { Error: 'NoRelayAvailableError' } });
    await runStep(world.ctx, { step: 'await-operator', incident, taskToken: 'tok-operator' });

    await site.r2.report(site.hosts());

    expect(world.workflow.completionOf('tok-operator')).toEqual({
      kind: 'success',
      token: 'tok-operator',
      output: { decision: 'host-came-back', by: 'relay:r2', at: world.clock.now() },
    });
    expect((await world.stores.incidents.get(incident.incidentId))?.operatorTaskToken).toBeNull();
  });

  it('given h1 was fenced, when its fenced boot is heard alive, then SplitBrainDetected and the report still succeeds', async () => {
    const fence = await fenceCommand();
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [fenceResult(fence)]);
    const incident = world.workflow.startCalls[0];
    if (incident === undefined) throw new Error('no incident');
    await runStep(world.ctx, {
      step: 'mark-fenced',
      incident,
      confirmation: { by: 'ipmi-read-back', detail: 'off' },
    });

    const response = await site.r1.report(site.hosts());

    expect(response.acceptedSeq).toBe(site.r1.seq);
    expect(world.metrics.total('SplitBrainDetected')).toBe(1);
    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.filter((e) => e.kind === 'split-brain')).toHaveLength(1);
  });

  it('given h1 was fenced, when it is heard with a new boot, then it is up again', async () => {
    const fence = await fenceCommand();
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [fenceResult(fence)]);
    const incident = world.workflow.startCalls[0];
    if (incident === undefined) throw new Error('no incident');
    await runStep(world.ctx, {
      step: 'mark-fenced',
      incident,
      confirmation: { by: 'ipmi-read-back', detail: 'off' },
    });

    await site.r1.report(site.hosts({ h1: { bootId: 'h1-boot-2', vms: [] } }));

    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle).toEqual({
      status: 'up',
      bootId: 'h1-boot-2',
    });
    expect(world.metrics.total('SplitBrainDetected')).toBe(0);
  });
});

describe('recordReport: command results', () => {
  it('given a fence read back off, then the Fence task succeeds with the FenceResult', async () => {
    const fence = await fenceCommand();
    const relayId = (await world.stores.commands.listForIncident(SITE, fence.incidentId))[0]?.relayId;
    const relay = relayId === 'r1' ? site.r1 : site.r2;

    await relay.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [
      fenceResult(fence, { detail: 'chassis off' }),
    ]);

    expect(world.workflow.completionOf('tok-fence-1')).toEqual({
      kind: 'success',
      token: 'tok-fence-1',
      output: {
        commandId: fence.commandId,
        relayId,
        powerState: 'off',
        finishedAt: world.clock.now(),
        detail: 'chassis off',
      },
    });
  });

  it('given a fence read back off by level 2, then the FenceResult names the level and its driver', async () => {
    const fence = await fenceCommand();
    const relayId = (await world.stores.commands.listForIncident(SITE, fence.incidentId))[0]?.relayId;
    const relay = relayId === 'r1' ? site.r1 : site.r2;

    await relay.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [
      fenceResult(fence, { level: 2, driver: 'fence_apc_snmp' }),
    ]);

    expect(world.workflow.completionOf('tok-fence-1')).toEqual({
      kind: 'success',
      token: 'tok-fence-1',
      output: {
        commandId: fence.commandId,
        relayId,
        powerState: 'off',
        level: 2,
        driver: 'fence_apc_snmp',
        finishedAt: world.clock.now(),
      },
    });
    const [stored] = await world.stores.commands.listForIncident(SITE, fence.incidentId);
    expect(stored?.result).toMatchObject({ level: 2, driver: 'fence_apc_snmp' });
  });

  it('given a fence read back on by its last level, then the failure and the timeline name that level', async () => {
    const fence = await fenceCommand();
    const relayId = (await world.stores.commands.listForIncident(SITE, fence.incidentId))[0]?.relayId;
    const relay = relayId === 'r1' ? site.r1 : site.r2;

    await relay.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [
      fenceResult(fence, { powerState: 'on', level: 2, driver: 'fence_apc_snmp' }),
    ]);

    expect(world.workflow.completionOf('tok-fence-1')).toMatchObject({
      kind: 'failure',
      cause: expect.stringContaining('power read back on, through level 2 (fence_apc_snmp)'),
    });
    const failed = (await world.stores.incidents.listEvents(fence.incidentId)).find(
      (e) => e.kind === 'fence-failed',
    );
    expect(failed?.data).toMatchObject({ powerState: 'on', level: 2, driver: 'fence_apc_snmp' });
  });

  it.each([
    ['acknowledged but read back on', { powerState: 'on' as const }],
    ['acknowledged without a read-back', { powerState: undefined }],
    ['failed', { outcome: 'failed' as const, powerState: 'unknown' as const }],
  ])('given a fence %s, then the Fence task fails with FenceNotConfirmedError', async (_, over) => {
    const fence = await fenceCommand();
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [fenceResult(fence, over)]);

    expect(world.workflow.completionOf('tok-fence-1')).toMatchObject({
      kind: 'failure',
      error: WORKFLOW_ERROR.FenceNotConfirmed,
    });
  });

  it('given a result from the relay the fence was not sent to, then it changes nothing', async () => {
    const fence = await fenceCommand();
    const relayId = (await world.stores.commands.listForIncident(SITE, fence.incidentId))[0]?.relayId;
    const other = relayId === 'r1' ? site.r2 : site.r1;

    await other.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }), [fenceResult(fence)]);

    expect(world.workflow.completions).toEqual([]);
    expect((await world.stores.commands.listForIncident(SITE, fence.incidentId))[0]).toMatchObject({
      result: null,
    });
  });

  it('given a result already recorded, when it is reported again, then it is ignored', async () => {
    const fence = await fenceCommand();
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent, [fenceResult(fence)]);
    await site.r2.report(silent, [fenceResult(fence, { powerState: 'on' })]);

    expect(world.workflow.completions).toHaveLength(1);
    expect(world.workflow.completions[0]?.kind).toBe('success');
  });
});

describe('recordReport: commands in the response', () => {
  it('given no open incident, then commands are not even looked up', async () => {
    const response = await site.r1.report(site.hosts());

    expect(response.commands).toEqual([]);
    expect(world.calls).not.toContain('commands.listOpen');
  });

  it('given an open incident, then the relay gets its commands, marked delivered, until notAfter', async () => {
    const fence = await fenceCommand();
    const record = (await world.stores.commands.listForIncident(SITE, fence.incidentId))[0];
    const relay = record?.relayId === 'r1' ? site.r1 : site.r2;
    const other = relay === site.r1 ? site.r2 : site.r1;
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });

    const response = await relay.report(silent);
    const otherResponse = await other.report(silent);

    expect(response.commands).toEqual([fence]);
    // The command pace while a failover works through the relays: a sixteenth of a heartbeat.
    expect(response.nextReportInMs).toBe(125);
    expect(otherResponse.commands).toEqual([]);
    expect((await world.stores.commands.listForIncident(SITE, fence.incidentId))[0]?.status).toBe(
      'delivered',
    );
    // Delivered again until done (a response can be lost), but never after notAfter.
    expect((await relay.report(silent)).commands).toEqual([fence]);
    world.clock.advance(fence.notAfter - world.clock.now() + 1);
    expect((await relay.report(silent)).commands).toEqual([]);
  });
});

describe('recordReport: split brain (safety rule 6)', () => {
  it('given db-1 runs on h1, when h2 reports it running while h1 still lists it, then SplitBrainDetected', async () => {
    await site.r1.report(site.hosts({ h2: { vms: [vm('app-2', 16 * GiB, 8), vm('db-1', 8 * GiB, 4)] } }));

    expect(world.metrics.total('SplitBrainDetected')).toBe(1);
    expect(await world.stores.vms.getVm(SITE, 'db-1')).toMatchObject({ hostId: 'h2' });
  });

  it('given db-1 moved from h1 to h2 within one report (live migration), then no alarm', async () => {
    await site.r1.report(
      site.hosts({
        h1: { vms: (site.hosts()[0]?.vms ?? []).filter((v) => v.id !== 'db-1') },
        h2: { vms: [vm('app-2', 16 * GiB, 8), vm('db-1', 8 * GiB, 4)] },
      }),
    );

    expect(world.metrics.total('SplitBrainDetected')).toBe(0);
    expect(await world.stores.vms.getVm(SITE, 'db-1')).toMatchObject({ hostId: 'h2', state: 'running' });
  });

  it('given h1 is suspect (not fenced), when h2 reports its VM running, then the alarm goes and the incident records it', async () => {
    const incident = await openH1Incident(world, site);
    await site.r1.report(
      site.hosts({
        h1: { lastHeardMsAgo: SILENT_MS },
        h2: { vms: [vm('app-2', 16 * GiB, 8), vm('db-1', 8 * GiB, 4)] },
      }),
    );

    expect(world.metrics.total('SplitBrainDetected')).toBe(1);
    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.find((e) => e.kind === 'split-brain')?.data).toMatchObject({
      vmId: 'db-1',
      hostId: 'h2',
      recordedHostId: 'h1',
    });
  });
});

describe('recordReport: running on one host, defined on several', () => {
  // web-1 (HA) runs on h1; its libvirt definition also exists, shut off, on h2 and h3, so that it can
  // restart there: what a cluster of HA hosts looks like.
  const defined = (state: 'shut-off' | 'crashed' = 'shut-off', extra: Partial<ObservedVm> = {}) => ({
    ...vm('web-1', 4 * GiB, 2, state),
    ...extra,
  });
  const withWeb1 = (h2: ObservedVm = defined(), h3: ObservedVm = defined()) =>
    site.hosts({
      h2: { vms: [vm('app-2', 16 * GiB, 8), h2] },
      h3: { vms: [vm('app-3', 8 * GiB, 4), h3] },
    });

  it('given web-1 runs on h1, when h2 and h3 report it shut off or crashed, then it still runs on h1, defined on all three', async () => {
    await site.r1.report(withWeb1(defined('shut-off', { reason: 'shutdown' }), defined('crashed')));

    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({
      hostId: 'h1',
      state: 'running',
      reason: null,
      definedOn: ['h1', 'h2', 'h3'],
      ha: true,
    });
    // Only the listings are written: the record itself is not touched.
    expect(world.calls.filter((c) => c.startsWith('vms.') && c !== 'vms.listVms')).toEqual([
      'vms.setListing',
      'vms.setListing',
    ]);
    // Its host's usage counts it once, and only there.
    expect(await world.stores.hosts.getHost(SITE, 'h2')).toMatchObject({ usedMiB: 16 * GiB, usedCpus: 8 });
  });

  it('given web-1 is defined on h2 and h3 already, then reports write nothing for it, even when h2 changes otherwise', async () => {
    await site.r1.report(withWeb1());
    world.calls.length = 0;

    await site.r2.report(withWeb1());
    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport']);

    await site.r1.report(
      site.hosts({
        h2: { vms: [vm('app-2', 16 * GiB, 8), defined(), vm('new-1', 2 * GiB, 1)] },
        h3: { vms: [vm('app-3', 8 * GiB, 4), defined()] },
      }),
    );
    expect(world.calls.filter((c) => c.startsWith('vms.'))).toEqual(['vms.listVms', 'vms.saveObserved']);
    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({ hostId: 'h1', state: 'running' });
  });

  it('given web-1 stops on h1, then its record says so there; with no host running it, the latest report takes it', async () => {
    await site.r1.report(withWeb1());
    const h1 = (site.hosts()[0]?.vms ?? []).map((v) =>
      v.id === 'web-1' ? defined('shut-off', { reason: 'destroyed' }) : v,
    );

    await site.r1.report(withWeb1().map((h) => (h.hostId === 'h1' ? { ...h, vms: h1 } : h)));
    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({
      hostId: 'h1',
      state: 'shut-off',
      reason: 'destroyed',
    });

    // Stopped everywhere: a change on h3 takes the record, as any inactive report of a VM nothing runs.
    world.clock.advance(1_000);
    await site.r1.report(
      withWeb1(defined(), defined('crashed')).map((h) => (h.hostId === 'h1' ? { ...h, vms: h1 } : h)),
    );
    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({
      hostId: 'h3',
      state: 'crashed',
      definedOn: ['h1', 'h2', 'h3'],
    });

    // And a start anywhere takes it back.
    world.clock.advance(1_000);
    await site.r1.report(
      withWeb1(vm('web-1', 4 * GiB, 2)).map((h) => (h.hostId === 'h1' ? { ...h, vms: h1 } : h)),
    );
    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({ hostId: 'h2', state: 'running' });
    expect(world.metrics.total('SplitBrainDetected')).toBe(0);
  });

  it('given h2 no longer lists web-1 (undefined there), then only its definedOn changes', async () => {
    await site.r1.report(withWeb1());
    world.calls.length = 0;

    await site.r1.report(site.hosts({ h3: { vms: [vm('app-3', 8 * GiB, 4), defined()] } }));

    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({
      hostId: 'h1',
      state: 'running',
      definedOn: ['h1', 'h3'],
    });
    expect(world.calls.filter((c) => c.startsWith('vms.') && c !== 'vms.listVms')).toEqual([
      'vms.setListing',
    ]);
  });

  it('given h1 is fenced, when h2 and h3 report web-1 shut off meanwhile, then PlanPlacement still restarts it', async () => {
    await site.r1.report(withWeb1());
    const incident = await fencedH1(world, site);
    world.clock.advance(1_000);
    await site.r1.report(
      withWeb1(defined('shut-off', { reason: 'shutdown' }), defined('crashed')).map((h) =>
        h.hostId === 'h1' ? { ...h, lastHeardMsAgo: SILENT_MS } : h,
      ),
    );

    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({ hostId: 'h1', state: 'running' });
    const plan = (await runStep(world.ctx, { step: 'plan-placement', incident })) as PlanOutput;
    expect(plan.waves.flatMap((w) => w.vms.map((v) => v.vmId))).toEqual(['db-1', 'web-1', 'batch-1']);
  });

  it("keeps libvirt's reason and autostart of the host the record names, and every host with autostart on, writing only changes", async () => {
    const h1 = (autostart: boolean) =>
      (site.hosts()[0]?.vms ?? []).map((v) => (v.id === 'web-1' ? { ...v, reason: 'booted', autostart } : v));
    const hosts = (autostartH1: boolean, autostartH3: boolean) =>
      withWeb1(defined(), defined('shut-off', { autostart: autostartH3 })).map((h) =>
        h.hostId === 'h1' ? { ...h, vms: h1(autostartH1) } : h,
      );
    await site.r1.report(hosts(false, true));
    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({
      hostId: 'h1',
      reason: 'booted',
      autostart: false,
      definedOn: ['h1', 'h2', 'h3'],
      autostartOn: ['h3'],
    });
    world.calls.length = 0;

    await site.r2.report(hosts(false, true));
    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport']);

    await site.r1.report(hosts(true, false));
    expect(world.calls.filter((c) => c.startsWith('vms.') && c !== 'vms.listVms').sort()).toEqual([
      'vms.saveObserved',
      'vms.setListing',
    ]);
    expect(await world.stores.vms.getVm(SITE, 'web-1')).toMatchObject({
      hostId: 'h1',
      autostart: true,
      autostartOn: ['h1'],
    });
  });
});

describe('recordReport: the same VM active on two hosts (safety rule 6)', () => {
  it('given a VM first reported running on h2 and h3 in one report, then SplitBrainDetected, and its record names one host', async () => {
    await site.r1.report(
      site.hosts({
        h2: { vms: [vm('app-2', 16 * GiB, 8), vm('twin-1', 2 * GiB, 1)] },
        h3: { vms: [vm('app-3', 8 * GiB, 4), vm('twin-1', 2 * GiB, 1)] },
      }),
    );

    expect(world.metrics.total('SplitBrainDetected')).toBe(1);
    const record = await world.stores.vms.getVm(SITE, 'twin-1');
    expect(record).toMatchObject({ hostId: 'h3', state: 'running', definedOn: ['h2', 'h3'] });
    const running = (await world.stores.vms.listVms(SITE)).filter(
      (v) => v.vmId === 'twin-1' && v.state === 'running',
    );
    expect(running.map((v) => v.hostId)).toEqual(['h3']);
  });
});

describe('recordReport: reservations', () => {
  it('given capacity reserved on h3 for db-1, when h3 reports db-1 running, then the reservation is released', async () => {
    await world.stores.hosts.reserve(
      SITE,
      'h3',
      { id: 'x.db-1.1', vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB },
      { memoryMiB: 32 * GiB, cpus: 16 },
    );

    await site.r1.report(
      site.hosts({ h1: { vms: [] }, h3: { vms: [vm('app-3', 8 * GiB, 4), vm('db-1', 8 * GiB, 4)] } }),
    );

    expect((await world.stores.hosts.getHost(SITE, 'h3'))?.reservations).toEqual({});
  });
});

describe('recordReport: hosts of several clusters', () => {
  it('given a cluster with a shorter report interval, then the relay reports at the fastest interval', async () => {
    await site.r1.report([...site.hosts(), host('k1', { cluster: 'c2' })]);
    const control = await world.stores.sites.loadControl(SITE);
    const c2 = control?.clusters.find((c) => c.clusterId === 'c2');
    if (c2 === undefined) throw new Error('no c2');
    await world.stores.sites.updateCluster(SITE, 'c2', c2.version, { policy: { relayReportMs: 5_000 } });

    expect((await site.r1.report(site.hosts())).nextReportInMs).toBe(5_000);
  });
});

describe('recordReport: fence readiness', () => {
  const broken = [
    levelDown(1, 'connection timed out'),
    levelDown(2, 'authentication failed', 'fence_apc_snmp'),
  ];

  async function summaryOf(hostId: string) {
    return (await world.stores.sites.loadControl(SITE))?.hosts[hostId];
  }

  it("given each relay reports h1's readiness, then the host keeps both, per relay, and the summary each verdict", async () => {
    const checkedAt = world.clock.now() - 100;
    await site.r1.report(site.hosts(), [], [readiness('h1', checkedAt, broken)]);
    await site.r2.report(site.hosts(), [], [readiness('h1', checkedAt, [levelUp(1)])]);

    const reportedAt = world.clock.now();
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.fenceReadiness).toEqual({
      r1: { ok: false, checkedAt, reportedAt, levels: broken },
      r2: { ok: true, checkedAt, reportedAt, levels: [levelUp(1)] },
    });
    expect((await summaryOf('h1'))?.fenceOk).toEqual({ r1: false, r2: true });
    expect(await summaryOf('h2')).not.toHaveProperty('fenceOk');
  });

  it('given a readiness change, then one read, one conditional host write and the summary, nothing else', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h2', T0, broken)]);

    expect(world.calls).toEqual([
      'sites.loadControl',
      'relays.acceptReport',
      'hosts.getHost',
      'hosts.saveFenceReadiness',
      'sites.putHostSummary',
    ]);
  });

  it('given the same finding again (the relay restarted), then the host is only read, and keeps its first check', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h2', T0, broken)]);
    world.calls.length = 0;
    world.clock.advance(300_000);

    await site.r1.report(site.hosts(), [], [readiness('h2', T0 + 300_000, broken)]);

    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport', 'hosts.getHost']);
    expect((await world.stores.hosts.getHost(SITE, 'h2'))?.fenceReadiness.r1?.checkedAt).toBe(T0);
  });

  it('given a check older than the one held (reports handled out of order), then it is ignored', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h2', T0 + 10, [levelUp(1)])]);

    await site.r1.report(site.hosts(), [], [readiness('h2', T0, broken)]);

    expect((await world.stores.hosts.getHost(SITE, 'h2'))?.fenceReadiness.r1).toMatchObject({
      ok: true,
      checkedAt: T0 + 10,
    });
    expect((await summaryOf('h2'))?.fenceOk).toEqual({ r1: true });
  });

  it('given readiness of a host no relay ever reported, then it creates and writes nothing', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h9', T0, broken)]);

    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport', 'hosts.getHost']);
    expect(await world.stores.hosts.getHost(SITE, 'h9')).toBeNull();
    expect(await summaryOf('h9')).toBeUndefined();
  });

  it('given a host first seen in the very report that carries its readiness, then the readiness is kept', async () => {
    await site.r1.report([...site.hosts(), host('h4')], [], [readiness('h4', T0, [levelUp(1)])]);

    expect((await world.stores.hosts.getHost(SITE, 'h4'))?.fenceReadiness.r1).toMatchObject({ ok: true });
    expect(await summaryOf('h4')).toMatchObject({ status: 'up', fenceOk: { r1: true } });
  });

  it('given the summary write was lost after the host write, then the readiness the relay resends repairs it', async () => {
    // The relay resends what was not accepted; the host already holds it (a crash between the writes).
    const h1 = await world.stores.hosts.getHost(SITE, 'h1');
    if (h1 === null) throw new Error('no h1');
    await world.stores.hosts.saveFenceReadiness(SITE, 'h1', h1.version, {
      r1: { ok: false, checkedAt: T0, reportedAt: T0, levels: broken },
    });

    await site.r1.report(site.hosts(), [], [readiness('h1', T0, broken)]);

    expect(world.calls).toEqual([
      'sites.loadControl',
      'relays.acceptReport',
      'hosts.getHost',
      'sites.putHostSummary',
    ]);
    expect((await summaryOf('h1'))?.fenceOk).toEqual({ r1: false });
  });

  it('given inventory and lifecycle writes to the same host later, then its readiness stays', async () => {
    await site.r1.report(site.hosts(), [], [readiness('h2', T0, broken)]);

    await site.r1.report(site.hosts({ h2: { vms: [] } }));

    expect((await world.stores.hosts.getHost(SITE, 'h2'))?.fenceReadiness.r1?.ok).toBe(false);
    expect((await summaryOf('h2'))?.fenceOk).toEqual({ r1: false });
  });
});
