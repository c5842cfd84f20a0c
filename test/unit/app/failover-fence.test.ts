import { beforeEach, describe, expect, it } from 'vitest';
import {
  FenceDeadlinePassedError,
  FenceNotConfirmedError,
  IncidentSupersededError,
  NoRelayAvailableError,
  NotFoundError,
} from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import { confirmPowerOff } from '../../../app/operator/confirm-power-off';
import { setFencing } from '../../../app/operator/fencing';
import { setMaintenance } from '../../../app/operator/maintenance';
import type { Clock } from '../../../app/ports';
import type { CommandResult } from '../../../contracts/relay-protocol';
import type {
  ConfirmSilenceOutput,
  FenceResult,
  FencingPolicyOutput,
  IncidentInput,
} from '../../../contracts/workflow';
import {
  createWorld,
  fencedH1,
  h1Silent,
  openH1Incident,
  relayOf,
  SILENT_MS,
  SITE,
  type StandardSite,
  standardSite,
  step,
  type World,
} from './world';

let world: World;
let site: StandardSite;
let incident: IncidentInput;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  incident = await openH1Incident(world, site);
});

async function kinds(): Promise<string[]> {
  return (await world.stores.incidents.listEvents(incident.incidentId)).map((e) => e.kind);
}

async function h1() {
  const host = await world.stores.hosts.getHost(SITE, 'h1');
  if (host === null) throw new Error('no h1');
  return host;
}

/** h1 came back, then went silent again: incident 2 owns it now. */
async function supersede(): Promise<void> {
  await site.r1.report(site.hosts());
  world.clock.advance(1_000);
  await site.r1.report(h1Silent(site));
  await site.r2.report(h1Silent(site));
}

async function fenceOrdered(token = 'tok-fence-1') {
  await step(world, { step: 'dispatch-fence', incident, taskToken: token });
  const commands = await world.stores.commands.listForIncident(SITE, incident.incidentId);
  const record = commands[commands.length - 1];
  if (record === undefined) throw new Error('no fence command');
  return record;
}

function offResult(commandId: string): CommandResult {
  return {
    commandId,
    incidentId: incident.incidentId,
    outcome: 'succeeded',
    powerState: 'off',
    finishedAt: world.clock.now(),
  };
}

describe('suspect', () => {
  it('puts the evidence at the head of the timeline, once', async () => {
    await step(world, { step: 'suspect', incident });
    await step(world, { step: 'suspect', incident });

    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.filter((e) => e.kind === 'suspected')).toHaveLength(1);
    expect(events.find((e) => e.kind === 'suspected')?.data).toEqual({ evidence: incident.evidence });
  });

  it('refuses an unknown incident with NotFoundError', async () => {
    await expect(
      runStep(world.ctx, { step: 'suspect', incident: { ...incident, incidentId: 'dc1:h9:1' } }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('confirm-silence', () => {
  it('given every live relay still calls h1 silent, then still silent, with each relay view aged to now', async () => {
    world.clock.advance(2_000);
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(out.stillSilent).toBe(true);
    expect(out.relays).toEqual([
      { relayId: 'r1', live: true, lastHeardMsAgo: SILENT_MS + 2_000 },
      { relayId: 'r2', live: true, lastHeardMsAgo: SILENT_MS + 2_000 },
    ]);
    expect(await kinds()).toContain('silence-confirmed');
  });

  it('given a relay heard h1 again, then not silent', async () => {
    await site.r2.report(site.hosts());
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(out.stillSilent).toBe(false);
    expect(out.detail).toMatch(/came back/);
  });

  it('given no relay is live, then still silent: the fencing policy judges the partition', async () => {
    world.clock.advance(31_000);
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(out.stillSilent).toBe(true);
    expect(out.relays.every((r) => !r.live)).toBe(true);
    expect(out.detail).toMatch(/partitioned/);
  });

  it('given h1 belongs to a newer incident, then IncidentSupersededError', async () => {
    await supersede();
    await expect(runStep(world.ctx, { step: 'confirm-silence', incident })).rejects.toBeInstanceOf(
      IncidentSupersededError,
    );
  });
});

describe('confirm-silence waits for the evidence, not for a heartbeat', () => {
  /**
   * Gives the clock a sleep that moves it on, then lets `during` act at the new instant (relays reporting
   * while the step waits), as the simulator's virtual time does.
   */
  function sleepingClock(during: (elapsedSinceOpening: number) => Promise<void>): number[] {
    const sleeps: number[] = [];
    const clock: Clock = world.clock;
    clock.sleep = async (ms) => {
      sleeps.push(ms);
      world.clock.advance(ms);
      await during(world.clock.now() - incident.openedAt);
    };
    return sleeps;
  }

  it('given both relays report h1 silent again 300 and 400 ms after the opening, then it confirms at the second report, not a heartbeat later', async () => {
    let reported = 0;
    sleepingClock(async (elapsed) => {
      if (elapsed >= 300 && reported === 0) {
        reported = 1;
        await site.r1.report(h1Silent(site));
      }
      if (elapsed >= 400 && reported === 1) {
        reported = 2;
        await site.r2.report(h1Silent(site));
      }
    });
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(out.stillSilent).toBe(true);
    expect(out.detail).toMatch(/the last reported again 400 ms after the opening/);
    // The relays' reports are the evidence: confirmed at the first poll after the second one (25 ms
    // apart at the 2 s heartbeat), long before the heartbeat the fixed wait used to take.
    const confirmedAfter = world.clock.now() - incident.openedAt;
    expect(confirmedAfter).toBeGreaterThanOrEqual(400);
    expect(confirmedAfter).toBeLessThan(425);
    const event = (await world.stores.incidents.listEvents(incident.incidentId)).find(
      (e) => e.kind === 'silence-confirmed',
    );
    expect(event?.data).toMatchObject({ fresh: true, waitedMs: confirmedAfter, lastWordMs: 400 });
  });

  it('given the relays reported at once, then it still gives h1 the grace (a sixteenth of a heartbeat) to be heard again', async () => {
    world.clock.advance(10);
    await site.r1.report(h1Silent(site));
    await site.r2.report(h1Silent(site));
    const sleeps = sleepingClock(async () => {});
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(out.stillSilent).toBe(true);
    expect(sleeps).toEqual([115]);
    expect(world.clock.now() - incident.openedAt).toBe(125);
  });

  it('given a relay does not report again, then it is judged on its last report one incident pace after the grace', async () => {
    sleepingClock(async (elapsed) => {
      if (elapsed >= 200 && elapsed < 250) await site.r1.report(h1Silent(site));
    });
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    // r2's last report (at the opening) still calls h1 silent and r2 is live and on time: still silent.
    expect(out.stillSilent).toBe(true);
    expect(out.detail).toMatch(/not every live relay reported again/);
    expect(world.clock.now() - incident.openedAt).toBe(125 + 2_000);
  });

  it('given a relay hears h1 again during the wait, then not silent, at once', async () => {
    sleepingClock(async (elapsed) => {
      if (elapsed >= 200) await site.r2.report(site.hosts());
    });
    const out = (await runStep(world.ctx, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(out.stillSilent).toBe(false);
    expect(out.detail).toMatch(/came back/);
    expect(world.clock.now() - incident.openedAt).toBeLessThan(250);
  });
});

describe('false-alarm', () => {
  it('closes the incident as a false alarm, once, with h1 up', async () => {
    await site.r2.report(site.hosts());
    const silence = (await step(world, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;

    expect(await step(world, { step: 'false-alarm', incident, silence })).toEqual({ outcome: 'false-alarm' });
    await step(world, { step: 'false-alarm', incident, silence });

    expect(await world.stores.incidents.get(incident.incidentId)).toMatchObject({
      outcome: 'false-alarm',
      closedAt: expect.any(Number),
    });
    expect((await world.stores.sites.loadControl(SITE))?.openIncidents).toEqual([]);
    expect((await h1()).lifecycle.status).toBe('up');
    expect(world.metrics.of('IncidentClosed')).toEqual([
      { unit: 'count', name: 'IncidentClosed', value: 1, dimensions: { outcome: 'false-alarm' } },
    ]);
    expect(await kinds()).toEqual(expect.arrayContaining(['false-alarm', 'closed']));
  });
});

describe('check-fencing-policy', () => {
  const check = async () =>
    (await runStep(world.ctx, { step: 'check-fencing-policy', incident })) as FencingPolicyOutput;

  it('given one silent host of three and two live relays, then fence, with the evidence', async () => {
    expect(await check()).toMatchObject({
      action: 'fence',
      reason: 'host-silent',
      evidence: {
        liveRelays: 2,
        clusterHosts: 3,
        silentHostsInCluster: 1,
        fencingEnabled: true,
        hostInMaintenance: false,
      },
    });
  });

  it('given fencing is disabled for the cluster, then suppress (safety rule 7)', async () => {
    await setFencing(world.ctx, { siteId: SITE, clusterId: 'c1', enabled: false, caller: 'alice' });
    expect(await check()).toMatchObject({ action: 'suppress', reason: 'fencing-disabled' });
  });

  it('given h1 was put into maintenance, then suppress (safety rule 7)', async () => {
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h1', enabled: true, caller: 'alice' });
    expect(await check()).toMatchObject({ action: 'suppress', reason: 'maintenance' });
  });

  it('given two of three hosts are silent, then suppress as mass silence (safety rule 3)', async () => {
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS }, h2: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    await site.r2.report(silent);
    expect(await check()).toMatchObject({
      action: 'suppress',
      reason: 'mass-silence',
      evidence: { silentHostsInCluster: 2 },
    });
  });

  it('given every relay is silent, then suppress: the site is partitioned (safety rule 2)', async () => {
    world.clock.advance(31_000);
    expect(await check()).toMatchObject({
      action: 'suppress',
      reason: 'site-partitioned',
      evidence: { liveRelays: 0 },
    });
  });

  it('given h1 came back, then suppress as recovered', async () => {
    await site.r1.report(site.hosts());
    expect(await check()).toMatchObject({ action: 'suppress', reason: 'host-recovered' });
  });
});

describe('fencing-suppressed', () => {
  it('closes the incident as fencing-suppressed and leaves h1 suspect', async () => {
    await setFencing(world.ctx, { siteId: SITE, clusterId: 'c1', enabled: false, caller: 'alice' });
    const policy = (await step(world, { step: 'check-fencing-policy', incident })) as FencingPolicyOutput;

    expect(await step(world, { step: 'fencing-suppressed', incident, policy })).toEqual({
      outcome: 'fencing-suppressed',
    });
    await step(world, { step: 'fencing-suppressed', incident, policy });

    expect(await world.stores.incidents.get(incident.incidentId)).toMatchObject({
      outcome: 'fencing-suppressed',
      closedAt: expect.any(Number),
    });
    expect((await h1()).lifecycle).toMatchObject({ status: 'suspect', incidentId: incident.incidentId });
    expect(world.metrics.total('FencingSuppressed')).toBe(1);
    expect(await kinds()).toContain('fencing-suppressed');
  });
});

describe('dispatch-fence', () => {
  it('orders a live relay to fence, carrying the task token, and marks h1 fencing', async () => {
    const record = await fenceOrdered();

    expect(record).toMatchObject({
      taskToken: 'tok-fence-1',
      status: 'pending',
      command: {
        kind: 'fence',
        commandId: `${incident.incidentId}:fence:1`,
        incidentId: incident.incidentId,
        hostId: 'h1',
      },
    });
    expect(record.command.notAfter - record.command.issuedAt).toBe(20_000);
    expect((await h1()).lifecycle).toMatchObject({ status: 'fencing', incidentId: incident.incidentId });
    expect(await kinds()).toContain('fence-ordered');
  });

  it('goes out only after h1 is marked fencing, in one read round: the command, its line and the summary side by side', async () => {
    world.calls.length = 0;
    await fenceOrdered();

    const at = (call: string) => world.calls.indexOf(call);
    // The host was read with the incident, the scope and the commands: not again before its write.
    expect(world.calls.slice(0, at('hosts.setLifecycle')).filter((c) => c === 'hosts.getHost')).toHaveLength(
      1,
    );
    expect(at('commands.create')).toBeGreaterThan(at('hosts.setLifecycle'));
    expect(at('sites.putHostSummary')).toBeGreaterThan(at('hosts.setLifecycle'));
    expect((await world.stores.sites.loadControl(SITE))?.hosts.h1).toMatchObject({ status: 'fencing' });
  });

  it('given the same task delivered twice, then one command', async () => {
    await fenceOrdered('tok-a');
    await fenceOrdered('tok-a');
    expect(await world.stores.commands.listForIncident(SITE, incident.incidentId)).toHaveLength(1);
  });

  it('given a read-back off that came after its task timed out, then the retry is answered with it, no new fence', async () => {
    const first = await fenceOrdered('tok-a');
    await world.stores.commands.complete(
      SITE,
      first.command.commandId,
      {
        commandId: first.command.commandId,
        incidentId: incident.incidentId,
        outcome: 'succeeded',
        powerState: 'off',
        finishedAt: world.clock.now(),
      },
      first.relayId,
    );
    await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok-b' });
    expect(world.workflow.completionOf('tok-b')).toMatchObject({
      kind: 'success',
      output: { commandId: first.command.commandId, relayId: first.relayId, powerState: 'off' },
    });
    expect(await world.stores.commands.listForIncident(SITE, incident.incidentId)).toHaveLength(1);
  });

  it('given retries, then an untried relay first, then the one used longest ago', async () => {
    const first = await fenceOrdered('tok-a');
    const second = await fenceOrdered('tok-b');
    const third = await fenceOrdered('tok-c');

    expect(second.relayId).not.toBe(first.relayId);
    expect(third.relayId).toBe(first.relayId);
    expect(third.command.commandId).toBe(`${incident.incidentId}:fence:3`);
  });

  it('given the fence deadline passed, then FenceDeadlinePassedError and no command', async () => {
    world.clock.advance(50_001);
    await expect(
      runStep(world.ctx, { step: 'dispatch-fence', incident, taskToken: 't' }),
    ).rejects.toBeInstanceOf(FenceDeadlinePassedError);
    expect(await world.stores.commands.listForIncident(SITE, incident.incidentId)).toEqual([]);
  });

  it('given no live relay, then NoRelayAvailableError', async () => {
    world.clock.advance(31_000);
    await expect(
      runStep(world.ctx, { step: 'dispatch-fence', incident, taskToken: 't' }),
    ).rejects.toBeInstanceOf(NoRelayAvailableError);
  });

  it('given h1 belongs to a newer incident, then IncidentSupersededError and no command', async () => {
    await supersede();
    await expect(
      runStep(world.ctx, { step: 'dispatch-fence', incident, taskToken: 't' }),
    ).rejects.toBeInstanceOf(IncidentSupersededError);
    expect(await world.stores.commands.listForIncident(SITE, incident.incidentId)).toEqual([]);
  });
});

describe('verify-power-off (safety rule 1)', () => {
  async function resultFor(powerState: 'off' | 'on') {
    const record = await fenceOrdered();
    await relayOf(site, record.relayId).report(h1Silent(site), [
      { ...offResult(record.command.commandId), powerState },
    ]);
    const fence: FenceResult = {
      commandId: record.command.commandId,
      relayId: record.relayId,
      powerState,
      finishedAt: world.clock.now(),
    };
    return fence;
  }

  it('given the power read back off, then confirmed by IPMI read-back', async () => {
    const fence = await resultFor('off');
    expect(await runStep(world.ctx, { step: 'verify-power-off', incident, fence })).toEqual({
      by: 'ipmi-read-back',
      detail: expect.stringContaining('off'),
    });
    expect(await kinds()).toContain('power-off-confirmed');
  });

  it('given the power read back off by fence level 2, then the timeline says which level confirmed it', async () => {
    const record = await fenceOrdered();
    await relayOf(site, record.relayId).report(h1Silent(site), [
      { ...offResult(record.command.commandId), level: 2, driver: 'fence_apc_snmp' },
    ]);
    const completion = world.workflow.completionOf('tok-fence-1');
    if (completion?.kind !== 'success') throw new Error('fence not confirmed');
    const fence = completion.output as FenceResult;
    expect(fence).toMatchObject({ powerState: 'off', level: 2, driver: 'fence_apc_snmp' });

    const confirmation = (await step(world, { step: 'verify-power-off', incident, fence })) as {
      by: 'ipmi-read-back';
      detail: string;
    };
    await step(world, { step: 'mark-fenced', incident, confirmation });

    const events = await world.stores.incidents.listEvents(incident.incidentId);
    const confirmed = events.find((e) => e.kind === 'power-off-confirmed');
    expect(confirmed?.detail).toBe(
      `relay ${record.relayId} read the power of h1 back as off (${record.command.commandId}); ` +
        'power-off confirmed by level 2 (fence_apc_snmp)',
    );
    expect(confirmed?.data).toMatchObject({ level: 2, driver: 'fence_apc_snmp' });
    // MarkFenced's evidence keeps it too: its line repeats the confirmation and its data names the level.
    const fenced = events.find((e) => e.kind === 'fenced');
    expect(fenced?.detail).toContain('power-off confirmed by level 2 (fence_apc_snmp)');
    expect(fenced?.data).toMatchObject({ by: 'ipmi-read-back', level: 2, driver: 'fence_apc_snmp' });
  });

  it('given a relay that predates fence levels, then the confirmation reads as before, with no level', async () => {
    const fence = await resultFor('off');
    await step(world, { step: 'verify-power-off', incident, fence });

    const events = await world.stores.incidents.listEvents(incident.incidentId);
    const confirmed = events.find((e) => e.kind === 'power-off-confirmed');
    expect(confirmed?.detail).toBe(
      `relay ${fence.relayId} read the power of h1 back as off (${fence.commandId})`,
    );
    expect(confirmed?.data).not.toHaveProperty('level');
    expect(confirmed?.data).not.toHaveProperty('driver');
  });

  it('given the power read back on, then FenceNotConfirmedError', async () => {
    const fence = await resultFor('on');
    await expect(runStep(world.ctx, { step: 'verify-power-off', incident, fence })).rejects.toBeInstanceOf(
      FenceNotConfirmedError,
    );
    expect(await kinds()).toContain('fence-failed');
  });

  it('given a result that says off while the stored result says on, then FenceNotConfirmedError', async () => {
    const fence = await resultFor('on');
    await expect(
      runStep(world.ctx, { step: 'verify-power-off', incident, fence: { ...fence, powerState: 'off' } }),
    ).rejects.toBeInstanceOf(FenceNotConfirmedError);
  });

  it('given a command of another incident, then FenceNotConfirmedError', async () => {
    const fence = await resultFor('off');
    await expect(
      runStep(world.ctx, {
        step: 'verify-power-off',
        incident,
        fence: { ...fence, commandId: 'dc1:h2:1:fence:1' },
      }),
    ).rejects.toBeInstanceOf(FenceNotConfirmedError);
  });
});

describe('fence-failed', () => {
  it('gives up fencing: h1 awaits the operator, once', async () => {
    await fenceOrdered();
    const error = { Error: 'FenceDeadlinePassedError', Cause: 'deadline' };

    expect(await step(world, { step: 'fence-failed', incident, error })).toEqual({
      outcome: 'awaiting-operator',
      reason: 'FenceDeadlinePassedError: deadline',
    });
    await step(world, { step: 'fence-failed', incident, error });

    expect((await h1()).lifecycle).toMatchObject({
      status: 'awaiting-operator',
      reason: 'FenceDeadlinePassedError: deadline',
    });
    expect((await world.stores.incidents.get(incident.incidentId))?.outcome).toBe('awaiting-operator');
    expect(world.metrics.total('FenceFailed')).toBe(1);
  });
});

describe('report pace', () => {
  it('an incident left to the operator no longer holds the relays at the incident pace', async () => {
    // given h1's incident is under way (suspect): the relays report at the command pace (its fence is near)
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
    expect((await site.r1.report(silent)).nextReportInMs).toBe(125);

    // when fencing fails and the incident waits for an operator
    await step(world, { step: 'fence-failed', incident, error: { Error: 'NoRelayAvailableError' } });
    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });

    // then the next reports are back at the normal pace: the wait may last hours
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle.status).toBe('awaiting-operator');
    expect((await site.r1.report(silent)).nextReportInMs).toBe(10_000);
    expect((await site.r2.report(silent)).nextReportInMs).toBe(10_000);
  });
});

describe('await-operator', () => {
  beforeEach(async () => {
    await step(world, { step: 'fence-failed', incident, error: { Error: 'NoRelayAvailableError' } });
  });

  it('stores the task token for the operator, once', async () => {
    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });
    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });

    expect((await world.stores.incidents.get(incident.incidentId))?.operatorTaskToken).toBe('tok-op');
    expect(world.metrics.total('AwaitingOperator')).toBe(1);
    expect(world.workflow.completions).toEqual([]);
  });

  it('given h1 came back before the token was stored, then the wait resolves at once', async () => {
    await site.r1.report(site.hosts());
    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });

    expect(world.workflow.completionOf('tok-op')).toMatchObject({
      kind: 'success',
      output: { decision: 'host-came-back' },
    });
  });
});

describe('mark-fenced', () => {
  it('given a read-back off, then h1 is fenced, its non-HA VMs are down, SecondsToFence is published once', async () => {
    // beforeEach opened the incident already: the helper finds it and drives it through the fence.
    const fenced = await fencedH1(world, site);
    expect(fenced.hostId).toBe('h1');
    const host = await world.stores.hosts.getHost(SITE, 'h1');
    expect(host?.lifecycle).toMatchObject({ status: 'fenced', confirmedBy: 'ipmi-read-back' });
    expect((await world.stores.incidents.get(fenced.incidentId))?.fencedAt).toEqual(expect.any(Number));
    const vms = await world.stores.vms.listVms(SITE, { hostId: 'h1' });
    // The HA ones are left to the waves (their records move with their restarts) and to Close.
    expect(vms.map((v) => [v.vmId, v.state])).toEqual([
      ['batch-1', 'running'],
      ['db-1', 'running'],
      ['scratch-1', 'down'],
      ['web-1', 'running'],
    ]);
    await step(world, {
      step: 'mark-fenced',
      incident: fenced,
      confirmation: { by: 'ipmi-read-back', detail: 'again' },
    });
    expect(world.metrics.of('SecondsToFence')).toHaveLength(1);
  });

  it('given no fence read back off, then FenceNotConfirmedError and h1 is not fenced', async () => {
    await fenceOrdered();
    await expect(
      runStep(world.ctx, {
        step: 'mark-fenced',
        incident,
        confirmation: { by: 'ipmi-read-back', detail: 'trust me' },
      }),
    ).rejects.toBeInstanceOf(FenceNotConfirmedError);
    expect((await h1()).lifecycle.status).toBe('fencing');
    expect(await world.stores.vms.getVm(SITE, 'db-1')).toMatchObject({ state: 'running' });
  });

  it('given no operator confirmed, then FenceNotConfirmedError', async () => {
    await step(world, { step: 'fence-failed', incident, error: 'gave up' });
    await expect(
      runStep(world.ctx, {
        step: 'mark-fenced',
        incident,
        confirmation: { by: 'operator', detail: 'trust me' },
      }),
    ).rejects.toBeInstanceOf(FenceNotConfirmedError);
    expect((await h1()).lifecycle.status).toBe('awaiting-operator');
  });

  it("given the operator's confirmation, then h1 is fenced by the operator", async () => {
    await step(world, { step: 'fence-failed', incident, error: 'gave up' });
    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });
    await confirmPowerOff(world.ctx, { incidentId: incident.incidentId, hostId: 'h1', operator: 'alice' });

    await step(world, { step: 'mark-fenced', incident, confirmation: { by: 'operator', detail: 'alice' } });

    expect((await h1()).lifecycle).toMatchObject({ status: 'fenced', confirmedBy: 'operator' });
  });
});
