import { beforeEach, describe, expect, it } from 'vitest';
import {
  FenceNotConfirmedError,
  NoCapacityError,
  NoRelayAvailableError,
  StartAttemptsExhaustedError,
} from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import { setMaintenance } from '../../../app/operator/maintenance';
import type { IncidentInput, PlanOutput, StartResult, VmAttempt } from '../../../contracts/workflow';
import {
  createWorld,
  fencedH1,
  GiB,
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
let incident: IncidentInput;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  incident = await fencedH1(world, site);
});

async function plan(): Promise<PlanOutput> {
  return (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
}

async function attemptFor(vmId: string): Promise<VmAttempt> {
  const planned = (await plan()).waves.flatMap((w) => w.vms).find((v) => v.vmId === vmId);
  if (planned === undefined) throw new Error(`${vmId} not planned`);
  return {
    incidentId: incident.incidentId,
    siteId: SITE,
    hostId: 'h1',
    vm: planned,
    targetHostId: planned.hostId,
    attempt: 1,
    triedHosts: [],
  };
}

async function reserved(attempt: VmAttempt): Promise<VmAttempt> {
  return (await step(world, { step: 'reserve-capacity', attempt })) as VmAttempt;
}

/** h3, db-1's planned host, fills up (28 GiB more): db-1 no longer fits there, h2 still takes it. */
async function fillPlannedHost(): Promise<void> {
  await site.r1.report(
    site.hosts({ h1: { lastHeardMsAgo: SILENT_MS }, h3: { vms: [vm('app-3', 28 * GiB, 4)] } }),
  );
}

/** h2 and h3 fill up (30 GiB each): no survivor fits anything of h1 any more. */
async function fillEverySurvivor(): Promise<void> {
  await site.r1.report(
    site.hosts({
      h1: { lastHeardMsAgo: SILENT_MS },
      h2: { vms: [vm('a', 30 * GiB, 4)] },
      h3: { vms: [vm('b', 30 * GiB, 4)] },
    }),
  );
}

async function reservationsOn(hostId: string) {
  return (await world.stores.hosts.getHost(SITE, hostId))?.reservations ?? {};
}

/** Dispatches the attempt's start and has the relay report it started (or failed). */
async function started(
  attempt: VmAttempt,
  outcome: 'succeeded' | 'failed' = 'succeeded',
): Promise<StartResult | null> {
  const token = `tok-start-${attempt.vm.vmId}-${attempt.attempt}`;
  await step(world, { step: 'dispatch-start', attempt, taskToken: token });
  const commands = await world.stores.commands.listForIncident(SITE, incident.incidentId);
  const record = commands.find((c) => c.taskToken === token);
  if (record === undefined) throw new Error('no start command');
  const result = {
    commandId: record.command.commandId,
    incidentId: incident.incidentId,
    outcome,
    finishedAt: world.clock.now(),
  };
  await relayOf(site, record.relayId).report(h1Silent(site), [result]);
  const completion = world.workflow.completionOf(token);
  return completion?.kind === 'success' ? (completion.output as StartResult) : null;
}

async function kinds(): Promise<string[]> {
  return (await world.stores.incidents.listEvents(incident.incidentId)).map((e) => e.kind);
}

describe('plan-placement', () => {
  it("plans h1's HA VMs onto the other up hosts, high wave first, the non-HA VM left out", async () => {
    expect(await plan()).toEqual({
      waves: [
        {
          priority: 'high',
          vms: [expect.objectContaining({ vmId: 'db-1', hostId: 'h3', cpus: 4, memoryMiB: 8 * GiB })],
        },
        { priority: 'medium', vms: [expect.objectContaining({ vmId: 'web-1', hostId: 'h2' })] },
        { priority: 'low', vms: [expect.objectContaining({ vmId: 'batch-1', hostId: 'h3' })] },
      ],
      unplaced: [],
      running: [],
      // A small host keeps the policy's attempts (app/failover/start-budget.ts).
      startAttempts: 3,
    });
    expect(await kinds()).toContain('placement-planned');
  });

  it('given the plan was made, when the step runs again after loads changed, then the same plan', async () => {
    const first = await plan();
    await site.r1.report(
      h1Silent(site).map((h) => (h.hostId === 'h3' ? { ...h, vms: [vm('big', 20 * GiB, 8)] } : h)),
    );
    expect(await plan()).toEqual(first);
  });

  it('given a host in maintenance, then it takes nothing (safety rule 7)', async () => {
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h3', enabled: true, caller: 'alice' });
    const hosts = (await plan()).waves.flatMap((w) => w.vms.map((v) => v.hostId));
    expect(new Set(hosts)).toEqual(new Set(['h2']));
  });

  it('given no room anywhere, then every VM is reported unplaced with its reason', async () => {
    const full = site.hosts({
      h1: { lastHeardMsAgo: SILENT_MS },
      h2: { vms: [vm('app-2', 31 * GiB, 8)] },
      h3: { vms: [vm('app-3', 31 * GiB, 4)] },
    });
    await site.r1.report(full);

    const out = await plan();

    expect(out.waves).toEqual([]);
    expect(out.unplaced.map((u) => [u.vmId, u.reason])).toEqual([
      ['db-1', 'memory'],
      ['web-1', 'memory'],
      ['batch-1', 'memory'],
    ]);
    expect(world.metrics.total('VmsUnplaced')).toBe(3);
  });
});

describe('reserve-capacity (safety rule 5)', () => {
  it('reserves the VM on its planned host, once however often the step runs', async () => {
    const attempt = await attemptFor('db-1');
    const first = await reserved(attempt);
    const again = await reserved(attempt);

    expect(first).toEqual({ ...attempt, reservationId: `${incident.incidentId}.db-1.1` });
    expect(again).toEqual(first);
    expect(await reservationsOn('h3')).toEqual({
      [`${incident.incidentId}.db-1.1`]: { vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB },
    });
  });

  it('given the planned host filled up meanwhile, then the next best host is reserved', async () => {
    const attempt = await attemptFor('db-1');
    await fillPlannedHost();

    expect((await reserved(attempt)).targetHostId).toBe('h2');
    expect(await reservationsOn('h3')).toEqual({});
  });

  it('given the planned host went into maintenance, then another host is reserved', async () => {
    const attempt = await attemptFor('db-1');
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h3', enabled: true, caller: 'alice' });
    expect((await reserved(attempt)).targetHostId).toBe('h2');
  });

  it('given no host fits any more, then NoCapacityError', async () => {
    const attempt = await attemptFor('db-1');
    await fillEverySurvivor();
    await expect(runStep(world.ctx, { step: 'reserve-capacity', attempt })).rejects.toBeInstanceOf(
      NoCapacityError,
    );
  });
});

describe('dispatch-start', () => {
  it('orders a relay that hears the target to start the VM there', async () => {
    const attempt = await reserved(await attemptFor('db-1'));
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-s' });

    const [record] = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.kind === 'start-vm',
    );
    expect(record).toMatchObject({
      taskToken: 'tok-s',
      command: {
        kind: 'start-vm',
        commandId: `${incident.incidentId}:start:db-1:1`,
        hostId: 'h3',
        vm: { id: 'db-1', cpus: 4, memoryMiB: 8 * GiB },
      },
    });
    expect(await kinds()).toContain('start-ordered');
  });

  it('given the task ran again with a new token, then one command, answered on the new token', async () => {
    const attempt = await reserved(await attemptFor('db-1'));
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-old' });
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-new' });
    const starts = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.kind === 'start-vm',
    );
    expect(starts.map((c) => c.taskToken)).toEqual(['tok-new']);

    // A result that arrived before a third run is delivered to that run's token at once.
    const commandId = `${incident.incidentId}:start:db-1:1`;
    const [sent] = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.commandId === commandId,
    );
    await world.stores.commands.complete(
      SITE,
      commandId,
      { commandId, incidentId: incident.incidentId, outcome: 'succeeded', finishedAt: world.clock.now() },
      sent?.relayId ?? '',
    );
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-third' });
    expect(world.workflow.completionOf('tok-third')).toMatchObject({
      kind: 'success',
      output: { commandId, vmId: 'db-1', hostId: 'h3' },
    });
  });

  it('given an attempt that says it holds a reservation its target does not have, then NoCapacityError and no command', async () => {
    const attempt = await attemptFor('db-1');
    await expect(
      runStep(world.ctx, {
        step: 'dispatch-start',
        attempt: { ...attempt, reservationId: 'made-up' },
        taskToken: 't',
      }),
    ).rejects.toBeInstanceOf(NoCapacityError);
  });

  it('given every live relay calls the target silent, then NoRelayAvailableError', async () => {
    const attempt = await reserved(await attemptFor('db-1'));
    const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS }, h3: { lastHeardMsAgo: SILENT_MS } });
    await site.r1.report(silent);
    await site.r2.report(silent);
    await expect(
      runStep(world.ctx, { step: 'dispatch-start', attempt, taskToken: 't' }),
    ).rejects.toBeInstanceOf(NoRelayAvailableError);
  });

  it('given the failed host is not confirmed off, then FenceNotConfirmedError (safety rule 1)', async () => {
    const other = createWorld();
    const otherSite = await standardSite(other);
    const open = await openH1Incident(other, otherSite);
    await other.stores.hosts.reserve(
      SITE,
      'h3',
      { id: 'r', vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB },
      { memoryMiB: 32 * GiB, cpus: 16 },
    );
    const attempt: VmAttempt = {
      incidentId: open.incidentId,
      siteId: SITE,
      hostId: 'h1',
      vm: { vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB, priority: 'high', hostId: 'h3', reason: 'forged' },
      targetHostId: 'h3',
      attempt: 1,
      triedHosts: [],
      reservationId: 'r',
    };

    await expect(
      runStep(other.ctx, { step: 'dispatch-start', attempt, taskToken: 't' }),
    ).rejects.toBeInstanceOf(FenceNotConfirmedError);
    expect(await other.stores.commands.listForIncident(SITE, open.incidentId)).toEqual([]);
  });
});

describe('vm-started', () => {
  it('records each start once; the first and the last give the restart metrics', async () => {
    for (const vmId of ['db-1', 'web-1', 'batch-1']) {
      const attempt = await reserved(await attemptFor(vmId));
      const result = await started(attempt);
      if (result === null) throw new Error('start failed');
      await step(world, { step: 'vm-started', attempt, result });
      await step(world, { step: 'vm-started', attempt, result });
    }

    expect((await kinds()).filter((k) => k === 'vm-started')).toHaveLength(3);
    expect(world.metrics.of('SecondsToFirstRestart')).toHaveLength(1);
    expect(world.metrics.of('SecondsToLastRestart')).toHaveLength(1);
  });
});

describe('dispatch-start reserving for itself (the StartVm of the current definition)', () => {
  const startCommands = async () =>
    (await world.stores.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.kind === 'start-vm',
    );

  it('reserves the VM on its planned host and only then orders the start there, once however often it runs', async () => {
    const attempt = await attemptFor('db-1');
    world.calls.length = 0;
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-1' });
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-2' });

    const at = (call: string) => world.calls.indexOf(call);
    expect(at('hosts.reserve')).toBeGreaterThan(-1);
    expect(at('commands.create')).toBeGreaterThan(at('hosts.reserve'));
    expect(await reservationsOn('h3')).toEqual({
      [`${incident.incidentId}.db-1.1`]: { vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB },
    });
    const commands = await startCommands();
    expect(commands.map((c) => [c.command.hostId, c.taskToken])).toEqual([['h3', 'tok-2']]);
    const lines = (await kinds()).filter((k) => k === 'capacity-reserved' || k === 'start-ordered');
    expect(lines.sort()).toEqual(['capacity-reserved', 'start-ordered']);
  });

  it('given the planned host filled up meanwhile, then the next best host is reserved and the start goes there', async () => {
    const attempt = await attemptFor('db-1');
    await fillPlannedHost();
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-1' });

    expect(await reservationsOn('h3')).toEqual({});
    expect(Object.keys(await reservationsOn('h2'))).toEqual([`${incident.incidentId}.db-1.1`]);
    expect((await startCommands()).map((c) => c.command.hostId)).toEqual(['h2']);

    // The start fails there: ReleaseCapacity frees h2 (where it was held) and hands on the host it tried.
    const out = (await step(world, {
      step: 'release-capacity',
      attempt,
      error: { Error: 'VmStartFailedError' },
    })) as VmAttempt;
    expect(await reservationsOn('h2')).toEqual({});
    expect(out).toMatchObject({ targetHostId: 'h2' });
    expect(out.reservationId).toBeUndefined();
  });

  it('given no host fits any more, then NoCapacityError: nothing reserved, no command', async () => {
    const attempt = await attemptFor('db-1');
    await fillEverySurvivor();
    await expect(
      runStep(world.ctx, { step: 'dispatch-start', attempt, taskToken: 't' }),
    ).rejects.toBeInstanceOf(NoCapacityError);
    expect(await startCommands()).toEqual([]);
    expect({ ...(await reservationsOn('h2')), ...(await reservationsOn('h3')) }).toEqual({});
  });

  it('given the failed host is not confirmed off, then FenceNotConfirmedError before anything is reserved (rule 1)', async () => {
    const other = createWorld();
    const otherSite = await standardSite(other);
    const open = await openH1Incident(other, otherSite);
    const attempt: VmAttempt = {
      incidentId: open.incidentId,
      siteId: SITE,
      hostId: 'h1',
      vm: { vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB, priority: 'high', hostId: 'h3', reason: 'test' },
      targetHostId: 'h3',
      attempt: 1,
      triedHosts: [],
    };
    await expect(
      runStep(other.ctx, { step: 'dispatch-start', attempt, taskToken: 't' }),
    ).rejects.toBeInstanceOf(FenceNotConfirmedError);
    expect((await other.stores.hosts.getHost(SITE, 'h3'))?.reservations).toEqual({});
  });

  it('given a start that never confirmed, then StartUnconfirmed names the host that holds its reservation', async () => {
    const attempt = await attemptFor('db-1');
    await fillPlannedHost();
    await step(world, { step: 'dispatch-start', attempt, taskToken: 'tok-1' });
    await step(world, { step: 'start-unconfirmed', attempt, error: { Error: 'States.Timeout' } });

    const events = await world.stores.incidents.listEvents(incident.incidentId);
    expect(events.find((e) => e.kind === 'start-unconfirmed')?.data).toMatchObject({ hostId: 'h2' });
    expect(Object.keys(await reservationsOn('h2'))).toEqual([`${incident.incidentId}.db-1.1`]);
  });
});

describe('release-capacity', () => {
  it('releases the reservation of a failed start and drops it from the attempt', async () => {
    const attempt = await reserved(await attemptFor('db-1'));
    expect(await started(attempt, 'failed')).toBeNull();
    expect(world.workflow.completions.at(-1)).toMatchObject({ kind: 'failure', error: 'VmStartFailedError' });

    const out = (await step(world, {
      step: 'release-capacity',
      attempt,
      error: { Error: 'VmStartFailedError' },
    })) as VmAttempt;

    expect(out.reservationId).toBeUndefined();
    expect(await reservationsOn('h3')).toEqual({});
    expect(await kinds()).toContain('start-failed');
  });
});

describe('pick-next-host', () => {
  it('moves the attempt to the best untried host', async () => {
    const attempt = await reserved(await attemptFor('db-1'));
    const next = (await step(world, { step: 'pick-next-host', attempt })) as VmAttempt;

    expect(next).toEqual({
      incidentId: incident.incidentId,
      siteId: SITE,
      hostId: 'h1',
      vm: attempt.vm,
      targetHostId: 'h2',
      attempt: 2,
      triedHosts: ['h3'],
    });
  });

  it('given every other host was tried, then NoCapacityError', async () => {
    const attempt = { ...(await attemptFor('db-1')), triedHosts: ['h2'] };
    await expect(runStep(world.ctx, { step: 'pick-next-host', attempt })).rejects.toBeInstanceOf(
      NoCapacityError,
    );
  });

  it('given the attempts are used up, then StartAttemptsExhaustedError', async () => {
    const attempt = { ...(await attemptFor('db-1')), attempt: 3 };
    await expect(runStep(world.ctx, { step: 'pick-next-host', attempt })).rejects.toBeInstanceOf(
      StartAttemptsExhaustedError,
    );
  });
});

describe('vm-unplaced and start-unconfirmed', () => {
  it.each(['vm-unplaced', 'start-unconfirmed'] as const)(
    '%s records the VM left down once and counts it once',
    async (name) => {
      const attempt = await attemptFor('web-1');
      await step(world, { step: name, attempt, error: { Error: 'NoCapacityError', Cause: 'full' } });
      await step(world, { step: name, attempt, error: { Error: 'NoCapacityError', Cause: 'full' } });

      expect((await kinds()).filter((k) => k === name)).toHaveLength(1);
      expect(world.metrics.total('VmsUnplaced')).toBe(1);
    },
  );
});

describe('close', () => {
  it('given every planned VM started, then recovered, once', async () => {
    for (const vmId of ['db-1', 'web-1', 'batch-1']) await started(await reserved(await attemptFor(vmId)));

    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'recovered' });
    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'recovered' });

    expect(await world.stores.incidents.get(incident.incidentId)).toMatchObject({
      outcome: 'recovered',
      closedAt: expect.any(Number),
    });
    expect((await world.stores.sites.loadControl(SITE))?.openIncidents).toEqual([]);
    expect(world.metrics.of('IncidentClosed')).toEqual([
      { unit: 'count', name: 'IncidentClosed', value: 1, dimensions: { outcome: 'recovered' } },
    ]);
  });

  it('given a planned VM did not start, then partially-recovered, naming it', async () => {
    await started(await reserved(await attemptFor('db-1')));
    await plan();

    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'partially-recovered' });
    const closed = (await world.stores.incidents.listEvents(incident.incidentId)).find(
      (e) => e.kind === 'closed',
    );
    expect(closed?.detail).toMatch(/1 of 3 HA VM\(s\) run again; down: web-1, batch-1/);
    // and nothing is left recorded as running on the fenced host
    const left = await world.stores.vms.listVms(SITE, { hostId: 'h1' });
    expect(left.filter((v) => v.state !== 'down').map((v) => v.vmId)).toEqual([]);
    expect(left.map((v) => v.vmId).sort()).toEqual(expect.arrayContaining(['batch-1', 'web-1']));
  });
});

describe('close of an incident that never fenced', () => {
  it('given the host came back, then false-alarm', async () => {
    const other = createWorld();
    const otherSite = await standardSite(other);
    const open = await openH1Incident(other, otherSite);
    await otherSite.r1.report(otherSite.hosts());

    expect(await runStep(other.ctx, { step: 'close', incident: open })).toEqual({ outcome: 'false-alarm' });
  });
});

describe('close beside the report that shows a restarted VM running', () => {
  it('leaves the VM recorded where it runs: the down mark of the fenced host never outranks that report', async () => {
    // db-1's start on its target succeeded; then one report shows it running there. Its inventory write
    // is still on the way when Close runs (the result that ended the wave came in that very report, and
    // the steps run apart from ingest): Close marks down what it still finds recorded on h1, db-1 included.
    const attempt = await reserved(await attemptFor('db-1'));
    await started(attempt);
    const target = attempt.targetHostId;
    const saveObserved = world.stores.vms.saveObserved.bind(world.stores.vms);
    let closed = false;
    world.stores.vms.saveObserved = async (siteId, hostId, observed, at, options) => {
      if (!closed && observed.id === 'db-1' && observed.state === 'running') {
        closed = true;
        world.clock.advance(50);
        await step(world, { step: 'close', incident });
      }
      return saveObserved(siteId, hostId, observed, at, options);
    };
    const onTarget = site.hosts()[['h1', 'h2', 'h3'].indexOf(target)]?.vms ?? [];
    await site.r1.report(
      site.hosts({
        h1: { lastHeardMsAgo: SILENT_MS },
        [target]: { vms: [...onTarget, vm('db-1', attempt.vm.memoryMiB, attempt.vm.cpus)] },
      }),
    );

    expect(closed).toBe(true);
    expect(await world.stores.vms.getVm(SITE, 'db-1')).toMatchObject({ hostId: target, state: 'running' });
    // What no wave brought back is down, on the fenced host.
    expect((await world.stores.vms.getVm(SITE, 'web-1'))?.state).toBe('down');
  });
});
