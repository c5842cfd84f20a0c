import { beforeEach, describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import { ConflictError, NotFoundError, ValidationError } from '../../../app/errors';
import { setVmDownOnPurpose } from '../../../app/operator/down-on-purpose';
import { siteDowntime, vmDowntime } from '../../../app/operator/downtime';
import { setMaintenance } from '../../../app/operator/maintenance';
import type { IncidentRecord, VmRecord } from '../../../app/ports';
import { listForRestart } from '../../../app/recovery/enqueue';
import { closeIncident } from '../../../app/shared/incidents';
import type {
  CommandResult,
  ObservedVm,
  ReportResponse,
  StartVmCommand,
} from '../../../contracts/relay-protocol';
import type { IncidentInput, PlanOutput } from '../../../contracts/workflow';
import {
  createWorld,
  fencedH1,
  GiB,
  H1_VMS,
  SITE,
  type StandardSite,
  standardSite,
  step,
  type TestRelay,
  vm,
  type World,
} from './world';

/**
 * VM-level HA on in-memory stores, driven through relay reports and the detector as in production: an HA
 * VM that stops unexpectedly on a healthy host is restarted (in place first, then elsewhere), within its
 * restart budget; one shut down on purpose stays down; HA VMs down for other reasons stay on the retry
 * list until they run.
 */

let world: World;
let site: StandardSite;
/** What each host runs now, as the tests change it: every report says this (until changed again). */
let now: Record<'h1' | 'h2' | 'h3', ObservedVm[]>;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  now = Object.fromEntries(site.hosts().map((h) => [h.hostId, h.vms])) as typeof now;
  // Every reading of the clock is a millisecond later: each timeline line gets its own instant, in order.
  world.clock.now = () => world.clock.advance(1);
  world.clock.advance(1000);
});

const DB1 = { id: 'db-1', cpus: 4, memoryMiB: 8 * GiB } as const;
const crashed = (reason: string | undefined = 'crashed'): ObservedVm => ({
  ...DB1,
  state: 'shut-off',
  ...(reason === undefined ? {} : { reason }),
});
const running = (): ObservedVm => ({ ...DB1, state: 'running' });

/** h1's VMs with db-1 in the given state. */
function h1With(db1: ObservedVm): ObservedVm[] {
  return [db1, ...H1_VMS.filter((v) => v.id !== 'db-1')];
}

/**
 * A report of the standard site through `relay`: the hosts' VMs as `now` says, after applying `vms`
 * (which stay so for later reports), with per-host extras (boot, silence) for this report only.
 */
async function report(
  relay: TestRelay,
  vms: Partial<Record<'h1' | 'h2' | 'h3', ObservedVm[]>> = {},
  results: CommandResult[] = [],
  extra: Partial<Record<'h1' | 'h2' | 'h3', { bootId?: string; lastHeardMsAgo?: number }>> = {},
): Promise<ReportResponse> {
  world.clock.advance(100);
  now = { ...now, ...vms };
  const overrides = Object.fromEntries(
    (['h1', 'h2', 'h3'] as const).map((h) => [h, { vms: now[h], ...extra[h] }]),
  );
  return relay.report(site.hosts(overrides), results);
}

/** Both relays report (they stay live across long clock jumps). */
async function bothReport(): Promise<void> {
  await report(site.r1);
  await report(site.r2);
}

function startsIn(response: ReportResponse): StartVmCommand[] {
  return response.commands.filter((c): c is StartVmCommand => c.kind === 'start-vm');
}

function resultOf(command: StartVmCommand, outcome: 'succeeded' | 'failed', detail?: string): CommandResult {
  return {
    commandId: command.commandId,
    incidentId: command.incidentId,
    outcome,
    ...(detail === undefined ? {} : { detail }),
    finishedAt: world.clock.now(),
  };
}

async function vmRecord(vmId = 'db-1'): Promise<VmRecord> {
  const record = await world.stores.vms.getVm(SITE, vmId);
  if (record === null) throw new Error(`no record of ${vmId}`);
  return record;
}

async function vmIncidents(): Promise<IncidentRecord[]> {
  return (await world.stores.incidents.list({ siteId: SITE })).filter((i) => i.kind === 'vm');
}

async function kinds(incidentId: string): Promise<string[]> {
  return (await world.stores.incidents.listEvents(incidentId)).map((e) => e.kind);
}

async function recovering(): Promise<readonly string[]> {
  return (await world.stores.sites.loadControl(SITE))?.recovering ?? [];
}

/** db-1 crashes on h1 (r1 reports it); the response carries the in-place start. */
async function crashDb1(reason?: string): Promise<StartVmCommand | undefined> {
  const response = await report(site.r1, { h1: h1With(crashed(reason)) });
  return startsIn(response)[0];
}

/** The start succeeds and the next report shows db-1 running where it went. */
async function startSucceeds(command: StartVmCommand): Promise<void> {
  await report(site.r1, {}, [resultOf(command, 'succeeded')]);
  const where = command.hostId as 'h1' | 'h2' | 'h3';
  const others = now[where].filter((v) => v.id !== 'db-1');
  await report(site.r1, {
    ...(where === 'h1' ? {} : { h1: now.h1.filter((v) => v.id !== 'db-1') }),
    [where]: [...others, running()],
  });
}

describe('an HA VM that crashes on a healthy host', () => {
  it('is restarted in place: a VM incident opens, the start goes out in the same response, capacity held', async () => {
    const start = await crashDb1();

    expect(start).toMatchObject({ hostId: 'h1', vm: DB1 });
    const [incident] = await vmIncidents();
    expect(incident).toMatchObject({
      kind: 'vm',
      vmId: 'db-1',
      hostId: 'h1',
      outcome: 'in-progress',
      input: null,
    });
    expect(start?.incidentId).toBe(incident?.incidentId);
    expect(await kinds(incident?.incidentId ?? '')).toEqual(['vm-stopped', 'start-ordered']);
    const command = (await world.stores.commands.listForIncident(SITE, incident?.incidentId ?? ''))[0];
    expect(command?.taskToken).toBeNull();
    // Safety rule 5: the start went out with its capacity held on h1.
    const h1 = await world.stores.hosts.getHost(SITE, 'h1');
    expect(Object.values(h1?.reservations ?? {})).toEqual([{ vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB }]);
    expect((await vmRecord()).recovery).toMatchObject({
      status: 'starting',
      cause: 'vm-crashed',
      attempt: 1,
    });
    expect(await recovering()).toEqual(['db-1']);
    expect(world.metrics.total('VmRestarts')).toBe(1);
  });

  it('is recovered once seen running: the incident closes recovered and it leaves the retry list', async () => {
    const start = await crashDb1();
    if (start === undefined) throw new Error('no start');
    await report(site.r1, {}, [resultOf(start, 'succeeded')]);
    // Started, but not seen running yet: still listed.
    expect(await recovering()).toEqual(['db-1']);

    await report(site.r1, { h1: h1With(running()) });

    const [incident] = await vmIncidents();
    expect(incident).toMatchObject({ outcome: 'recovered', closedAt: expect.any(Number) });
    expect(await kinds(incident?.incidentId ?? '')).toEqual([
      'vm-stopped',
      'start-ordered',
      'vm-started',
      'closed',
    ]);
    expect(await recovering()).toEqual([]);
    expect((await vmRecord()).recovery).toMatchObject({ status: 'idle', restarts: [expect.any(Number)] });
    // The host's inventory now counts db-1: its reservation ended in the same write.
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.reservations).toEqual({});
    expect((await world.stores.sites.loadControl(SITE))?.openIncidents).toEqual([]);
  });

  it('is restarted elsewhere by placement when the start in place fails, its reservation released', async () => {
    const inPlace = await crashDb1();
    if (inPlace === undefined) throw new Error('no start');

    const response = await report(site.r1, {}, [resultOf(inPlace, 'failed', 'libvirt: disk locked')]);

    const [elsewhere] = startsIn(response);
    // h3 (8 GiB used) keeps the cluster most even; h2 carries 16 GiB.
    expect(elsewhere).toMatchObject({ hostId: 'h3', vm: DB1 });
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.reservations).toEqual({});
    expect(Object.values((await world.stores.hosts.getHost(SITE, 'h3'))?.reservations ?? {})).toHaveLength(1);
    const [incident] = await vmIncidents();
    expect(await kinds(incident?.incidentId ?? '')).toEqual([
      'vm-stopped',
      'start-ordered',
      'start-failed',
      'start-ordered',
    ]);
    // One restart, two attempts.
    expect(world.metrics.total('VmRestarts')).toBe(1);
    expect((await vmRecord()).recovery).toMatchObject({ attempt: 2, triedHosts: ['h1'] });
  });

  it('is restarted for a reason that is a failure, or none at all', async () => {
    for (const reason of ['failed', 'unknown', undefined]) {
      world = createWorld();
      site = await standardSite(world);
      expect(await crashDb1(reason)).toMatchObject({ hostId: 'h1' });
    }
  });

  it('is restarted when libvirt shows it crashed (kept for a dump)', async () => {
    const response = await report(site.r1, { h1: h1With({ ...DB1, state: 'crashed' }) });
    expect(startsIn(response)).toHaveLength(1);
  });
});

describe('a VM stopped on purpose', () => {
  it.each(['shutdown', 'destroyed'])(
    'stays down when its reason is %s: no incident, not listed',
    async (reason) => {
      const response = await report(site.r1, { h1: h1With(crashed(reason)) });

      expect(startsIn(response)).toEqual([]);
      expect(await vmIncidents()).toEqual([]);
      expect(await recovering()).toEqual([]);
      expect((await vmRecord()).recovery).toBeUndefined();
    },
  );

  it('is left alone when not HA, and when it vanishes from the listing (undefined or migrated)', async () => {
    const scratch = {
      id: 'scratch-1',
      cpus: 1,
      memoryMiB: GiB,
      state: 'shut-off',
      reason: 'crashed',
    } as const;
    await report(site.r1, { h1: [...H1_VMS.filter((v) => v.id !== 'scratch-1'), scratch] });
    await report(site.r1, { h1: H1_VMS.filter((v) => v.id !== 'db-1') });
    expect(await vmIncidents()).toEqual([]);
  });
});

describe('the restart budget', () => {
  /** One crash–restart–running cycle of db-1 in place; returns the start. */
  async function cycle(): Promise<StartVmCommand | undefined> {
    const start = await crashDb1();
    if (start !== undefined) await startSucceeds(start);
    return start;
  }

  it('backs off a VM that crashes again right after its restart, then restarts it on the detector tick', async () => {
    await cycle();
    world.clock.advance(1000);

    const second = await crashDb1();

    expect(second).toBeUndefined();
    const incident = (await vmIncidents()).find((i) => i.closedAt === null);
    expect(await kinds(incident?.incidentId ?? '')).toEqual(['vm-stopped', 'restart-scheduled']);
    const notBefore = (await vmRecord()).recovery?.notBefore ?? 0;
    expect(notBefore).toBeGreaterThan(world.clock.now());
    // Before the backoff ends the tick does nothing; after it, the restart goes out.
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect((await vmRecord()).recovery?.status).toBe('waiting');
    world.clock.advance(notBefore - world.clock.now());
    const pass = await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(pass.vmStartsOrdered).toBe(1);
    expect((await vmRecord()).recovery).toMatchObject({ status: 'starting', attempt: 1 });
  });

  it('leaves a VM down with an incident saying so after 3 restarts within the hour, and tries again after', async () => {
    for (let i = 0; i < 3; i += 1) {
      await cycle();
      // Past each backoff, so that every crash gets its restart at once.
      world.clock.advance(60_000);
    }
    expect(world.metrics.total('VmRestarts')).toBe(3);

    const fourth = await crashDb1();

    expect(fourth).toBeUndefined();
    const last = (await vmIncidents()).find((i) => i.outcome === 'partially-recovered');
    expect(last).toMatchObject({ closedAt: expect.any(Number) });
    const events = await world.stores.incidents.listEvents(last?.incidentId ?? '');
    expect(events.map((e) => e.kind)).toEqual(['vm-stopped', 'restart-budget-exhausted', 'closed']);
    expect(events[1]?.detail).toMatch(/restart budget spent: 3 restart\(s\) within 60 min/);
    // Still on the retry list (HaVmsDown counts it), and retried once the oldest restart leaves the hour.
    expect(await recovering()).toEqual(['db-1']);
    expect((await detectOnce(world.ctx, { evaluateCapacity: false })).haVmsDown).toBe(1);
    world.clock.advance(3_600_000);
    await bothReport();
    const pass = await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(pass.vmStartsOrdered).toBe(1);
    const retry = (await vmIncidents()).find((i) => i.closedAt === null);
    expect(retry?.incidentId).toBe('dc1:vm:db-1:5');
  });
});

describe('HA VMs down for lack of room', () => {
  /** h1 is full of other VMs after db-1 crashed, and so are h2 and h3. */
  async function crashWithNoRoom(): Promise<void> {
    await report(site.r1, {
      h1: [...h1With(crashed()), vm('big-1', 20 * GiB, 4)],
      h2: [vm('app-2', 16 * GiB, 8), vm('big-2', 12 * GiB, 4)],
      h3: [vm('app-3', 8 * GiB, 4), vm('big-3', 20 * GiB, 4)],
    });
  }

  it('close their incident partially recovered and stay on the retry list', async () => {
    await crashWithNoRoom();

    const [incident] = await vmIncidents();
    expect(incident?.outcome).toBe('partially-recovered');
    expect(await kinds(incident?.incidentId ?? '')).toEqual(['vm-stopped', 'vm-unplaced', 'closed']);
    expect(await recovering()).toEqual(['db-1']);
    expect(world.metrics.total('VmsUnplaced')).toBe(1);
  });

  it('start as soon as a report shows room again, under a new incident', async () => {
    await crashWithNoRoom();
    // big-2 stops on h2 (on purpose): 12 GiB free there.
    const response = await report(site.r1, {
      h1: [...h1With(crashed()), vm('big-1', 20 * GiB, 4)],
      h2: [vm('app-2', 16 * GiB, 8), { ...vm('big-2', 12 * GiB, 4, 'shut-off'), reason: 'shutdown' }],
      h3: [vm('app-3', 8 * GiB, 4), vm('big-3', 20 * GiB, 4)],
    });

    expect(startsIn(response)).toMatchObject([{ hostId: 'h2', vm: DB1 }]);
    const open = (await vmIncidents()).filter((i) => i.closedAt === null);
    expect(open.map((i) => i.incidentId)).toEqual(['dc1:vm:db-1:2']);
  });

  it('are retried by the detector at the slow pace, not on every tick', async () => {
    await crashWithNoRoom();
    const reads = () => world.calls.filter((c) => c === 'hosts.listHosts').length;
    const before = reads();
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(reads()).toBe(before);
    world.clock.advance(60_000);
    await bothReport();
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(reads()).toBe(before + 1);
  });

  it('start when a host leaves maintenance', async () => {
    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h3', enabled: true, caller: 'alice' });
    await report(site.r1, {
      h1: [...h1With(crashed()), vm('big-1', 20 * GiB, 4)],
      h2: [vm('app-2', 16 * GiB, 8), vm('big-2', 12 * GiB, 4)],
    });
    expect(await recovering()).toEqual(['db-1']);

    await setMaintenance(world.ctx, { siteId: SITE, hostId: 'h3', enabled: false, caller: 'alice' });

    expect((await vmRecord()).recovery).toMatchObject({ status: 'starting', start: { hostId: 'h3' } });
  });
});

describe('a host heard again in a new boot before it was called silent', () => {
  it('restarts the HA VMs of its old boot, whatever libvirt now says of them', async () => {
    // h1 rebooted: libvirt-guests shut its guests down cleanly, and the new boot runs none of them.
    const cleanlyDown = H1_VMS.map((v) => ({ ...v, state: 'shut-off' as const, reason: 'shutdown' }));
    const response = await report(site.r1, { h1: cleanlyDown }, [], { h1: { bootId: 'h1-boot-2' } });

    const incidents = await vmIncidents();
    expect(incidents.map((i) => i.vmId).sort()).toEqual(['batch-1', 'db-1', 'web-1']);
    expect(await recovering()).toEqual(['batch-1', 'db-1', 'web-1']);
    // In place first, highest priority first; scratch-1 is not HA.
    expect(startsIn(response).map((c) => [c.vm.id, c.hostId])).toEqual([
      ['db-1', 'h1'],
      ['web-1', 'h1'],
      ['batch-1', 'h1'],
    ]);
    const events = await world.stores.incidents.listEvents(
      incidents.find((i) => i.vmId === 'db-1')?.incidentId ?? '',
    );
    expect(events[0]?.detail).toMatch(/new boot \(h1-boot-2\).*ran in boot h1-boot-1/);
  });
});

describe('HA VMs a host incident leaves down', () => {
  it('go on the retry list and start when room returns; the host incident says so', async () => {
    // h2 and h3 are full (1 GiB free each): the failover of h1 places nothing.
    await report(site.r1, {
      h2: [vm('app-2', 16 * GiB, 8), vm('a', 15 * GiB, 4)],
      h3: [vm('app-3', 8 * GiB, 4), vm('b', 23 * GiB, 4)],
    });
    await report(site.r2);
    const asNow: StandardSite = {
      ...site,
      hosts: (overrides = {}) => site.hosts({ h2: { vms: now.h2 }, h3: { vms: now.h3 }, ...overrides }),
    };
    const incident = await fencedH1(world, asNow);
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    expect(plan.unplaced.map((u) => u.vmId)).toEqual(['db-1', 'web-1', 'batch-1']);
    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'partially-recovered' });

    expect(await recovering()).toEqual(['batch-1', 'db-1', 'web-1']);
    expect(await kinds(incident.incidentId)).toContain('retry-listed');
    expect((await vmRecord()).recovery).toMatchObject({
      status: 'waiting',
      cause: 'host-failover',
      incidentId: null,
    });
    // Nothing fits yet: the detector's retry opens no incident.
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(await vmIncidents()).toEqual([]);

    // b stops on h3: room for all three there, highest priority first, each under an incident of its own.
    const silent = { h1: { lastHeardMsAgo: 60_000 } };
    const response = await report(site.r1, { h3: [vm('app-3', 8 * GiB, 4)] }, [], silent);
    expect(startsIn(response).map((c) => [c.vm.id, c.hostId])).toEqual([
      ['db-1', 'h3'],
      ['web-1', 'h3'],
      ['batch-1', 'h3'],
    ]);
    expect((await vmIncidents()).map((i) => i.incidentId).sort()).toEqual([
      'dc1:vm:batch-1:1',
      'dc1:vm:db-1:1',
      'dc1:vm:web-1:1',
    ]);
  });
});

describe('a start without a result', () => {
  it('pins the VM to that host once overdue: the next attempt goes there only', async () => {
    const inPlace = await crashDb1();
    if (inPlace === undefined) throw new Error('no start');
    // No result ever comes; past notAfter and one more start timeout, the detector steps in.
    world.clock.advance(41_000);
    // Keep the relays live meanwhile.
    await report(site.r1, { h1: h1With(crashed()) });
    await report(site.r2, { h1: h1With(crashed()) });

    const pass = await detectOnce(world.ctx, { evaluateCapacity: false });

    expect(pass.vmStartsOrdered).toBe(1);
    const recovery = (await vmRecord()).recovery;
    expect(recovery).toMatchObject({
      pinned: { hostId: 'h1', bootId: 'h1-boot-1' },
      start: { hostId: 'h1' },
    });
    const [incident] = await vmIncidents();
    expect(await kinds(incident?.incidentId ?? '')).toContain('start-unconfirmed');
    // The earlier start's hold gave way to the new one: one reservation of db-1 on h1.
    const held = Object.values((await world.stores.hosts.getHost(SITE, 'h1'))?.reservations ?? {});
    expect(held).toEqual([{ vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB }]);
  });

  it('settles through the overdue path when the report that carried its result died midway', async () => {
    const inPlace = await crashDb1();
    if (inPlace === undefined) throw new Error('no start');
    // The result is recorded on the command, but the recovery never heard of it.
    await world.stores.commands.complete(SITE, inPlace.commandId, resultOf(inPlace, 'failed'), 'r1');
    world.clock.advance(41_000);
    await report(site.r1, { h1: h1With(crashed()) });
    await report(site.r2, { h1: h1With(crashed()) });

    await detectOnce(world.ctx, { evaluateCapacity: false });

    expect((await vmRecord()).recovery).toMatchObject({ triedHosts: ['h1'], start: { hostId: 'h3' } });
  });
});

describe('safety: a VM on the retry list starts only where it cannot run twice', () => {
  it('waits while its host is silent: the host incident decides', async () => {
    await listForRestart(
      world.ctx,
      {
        vm: await vmRecord(),
        cause: 'vm-crashed',
        place: { hostId: 'h1', cluster: 'c1', bootId: 'h1-boot-1' },
        detail: 'test',
      },
      world.clock.now(),
    );
    // h1 goes silent for both relays before the record shows db-1 stopped.
    const response = await report(site.r1, {}, [], { h1: { lastHeardMsAgo: 60_000 } });
    expect(startsIn(response)).toEqual([]);
    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect((await vmRecord()).recovery?.status).toBe('waiting');
  });

  it('lists a VM once however often the crash is reported (a report redone after a crash)', async () => {
    await crashDb1();
    await listForRestart(
      world.ctx,
      {
        vm: await vmRecord(),
        cause: 'vm-crashed',
        place: { hostId: 'h1', cluster: 'c1', bootId: 'h1-boot-1' },
        detail: 'again',
      },
      world.clock.now(),
    );
    expect(await vmIncidents()).toHaveLength(1);
    expect(world.metrics.total('VmRestarts')).toBe(1);
  });

  it('frees the capacity of a start that never went out (the pass died after claiming it)', async () => {
    const create = world.stores.commands.create.bind(world.stores.commands);
    let failOnce = true;
    world.stores.commands.create = async (command) => {
      if (failOnce && command.taskToken === null) {
        failOnce = false;
        throw new Error('Lambda died');
      }
      return create(command);
    };
    await expect(crashDb1()).rejects.toThrow('Lambda died');
    expect(Object.values((await world.stores.hosts.getHost(SITE, 'h1'))?.reservations ?? {})).toHaveLength(1);

    world.clock.advance(41_000);
    await report(site.r2, { h1: h1With(crashed()) });
    await detectOnce(world.ctx, { evaluateCapacity: false });

    // The claim without a command counted for nothing: the same host is tried again, one hold only.
    const recovery = (await vmRecord()).recovery;
    expect(recovery).toMatchObject({ status: 'starting', attempt: 1, start: { hostId: 'h1' } });
    expect(Object.values((await world.stores.hosts.getHost(SITE, 'h1'))?.reservations ?? {})).toHaveLength(1);
  });
});

describe('a crash the reports could not act on', () => {
  it('is found by the capacity pass of the detector and restarted', async () => {
    // h1 falls silent (its incident opens), then is heard again with db-1 crashed meanwhile: in that
    // report h1 was still its incident's, so ingest left db-1 alone.
    const silent = { h1: { lastHeardMsAgo: 60_000 } };
    await report(site.r1, {}, [], silent);
    await report(site.r2, {}, [], silent);
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle.status).toBe('suspect');
    await report(site.r1, { h1: h1With(crashed()) });
    await report(site.r2);
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle.status).toBe('up');
    expect(await recovering()).toEqual([]);

    // While h1's incident is open its VMs are the incident's: the sweep leaves db-1 alone...
    expect((await detectOnce(world.ctx, { evaluateCapacity: true })).vmStartsOrdered).toBe(0);
    // ...until the incident ends (its execution's FalseAlarm, which this world does not run).
    const open = (await world.stores.incidents.list({ siteId: SITE, openOnly: true })).filter(
      (i) => i.hostId === 'h1',
    );
    expect(open).toHaveLength(1);
    for (const incident of open) await closeIncident(world.ctx, incident, 'false-alarm', 'h1 came back');

    await detectOnce(world.ctx, { evaluateCapacity: false });
    expect(await recovering()).toEqual([]);
    const pass = await detectOnce(world.ctx, { evaluateCapacity: true });

    expect(pass.vmStartsOrdered).toBe(1);
    expect((await vmRecord()).recovery).toMatchObject({ status: 'starting', start: { hostId: 'h1' } });
    const [incident] = await vmIncidents();
    expect((await world.stores.incidents.listEvents(incident?.incidentId ?? ''))[0]?.detail).toMatch(
      /found stopped on h1.*not being restarted/,
    );
  });

  it('is not taken for one when it was shut down on purpose, or marked down on purpose', async () => {
    await report(site.r1, { h1: h1With(crashed('shutdown')) });
    expect((await detectOnce(world.ctx, { evaluateCapacity: true })).vmStartsOrdered).toBe(0);
  });
});

describe('an operator marks an HA VM down on purpose', () => {
  async function unplacedDb1(): Promise<void> {
    await report(site.r1, {
      h1: [...h1With(crashed()), vm('big-1', 20 * GiB, 4)],
      h2: [vm('app-2', 16 * GiB, 8), vm('big-2', 12 * GiB, 4)],
      h3: [vm('app-3', 8 * GiB, 4), vm('big-3', 20 * GiB, 4)],
    });
  }

  it('takes it off the retry list until it runs again; taking the mark back lists it again', async () => {
    await unplacedDb1();
    const marked = await setVmDownOnPurpose(world.ctx, {
      siteId: SITE,
      vmId: 'db-1',
      enabled: true,
      caller: 'alice',
    });
    expect(marked.recovery).toMatchObject({ status: 'down-on-purpose', by: 'alice' });
    expect(await recovering()).toEqual([]);
    expect((await detectOnce(world.ctx, { evaluateCapacity: false })).haVmsDown).toBe(0);

    const back = await setVmDownOnPurpose(world.ctx, {
      siteId: SITE,
      vmId: 'db-1',
      enabled: false,
      caller: 'alice',
    });
    expect(back.recovery).toMatchObject({ status: 'waiting', cause: 'operator' });
    expect(await recovering()).toEqual(['db-1']);
  });

  it('closes the open VM incident saying who marked it', async () => {
    // Restarted once, then crashed again at once: its next restart waits for the backoff.
    const first = await crashDb1();
    if (first === undefined) throw new Error('no start');
    await startSucceeds(first);
    await crashDb1();
    const open = (await vmIncidents()).find((i) => i.closedAt === null);
    if (open === undefined) throw new Error('no open incident');

    await setVmDownOnPurpose(world.ctx, { siteId: SITE, vmId: 'db-1', enabled: true, caller: 'alice' });

    const closed = await world.stores.incidents.get(open.incidentId);
    expect(closed).toMatchObject({ outcome: 'partially-recovered', closedAt: expect.any(Number) });
    expect(await kinds(open.incidentId)).toEqual([
      'vm-stopped',
      'restart-scheduled',
      'down-on-purpose',
      'closed',
    ]);
    // Its backoff ends: nothing starts it.
    world.clock.advance(60_000);
    await bothReport();
    expect((await detectOnce(world.ctx, { evaluateCapacity: false })).vmStartsOrdered).toBe(0);
  });

  it('refuses while a start of it is under way: its capacity is held until that start settles', async () => {
    await crashDb1();
    await expect(
      setVmDownOnPurpose(world.ctx, { siteId: SITE, vmId: 'db-1', enabled: true, caller: 'alice' }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it('refuses a VM that runs', async () => {
    await expect(
      setVmDownOnPurpose(world.ctx, { siteId: SITE, vmId: 'web-1', enabled: true, caller: 'alice' }),
    ).rejects.toBeInstanceOf(ConflictError);
  });
});

describe('an HA VM started on a host and crashed there before any report showed it running', () => {
  it('is restarted where it crashed, though its record still placed it, down, on another host', async () => {
    // h1 stops listing db-1 (its record: shut off on h1, as a closed incident leaves its failed host's VMs).
    await report(site.r1, { h1: now.h1.filter((v) => v.id !== 'db-1') });
    expect(await vmRecord()).toMatchObject({ hostId: 'h1', state: 'shut-off' });
    expect(await recovering()).toEqual([]);
    // h2 lists it crashed: it ran there (libvirt says crashed only of a domain that ran).
    const response = await report(site.r1, { h2: [...now.h2, crashed()] });
    expect(startsIn(response)).toEqual([expect.objectContaining({ hostId: 'h2', vm: DB1 })]);
    expect(await recovering()).toEqual(['db-1']);
    const [incident] = await vmIncidents();
    expect(incident).toMatchObject({ vmId: 'db-1', hostId: 'h2' });
  });

  it('is not taken for a crash when it was shut down by its guest there', async () => {
    await report(site.r1, { h1: now.h1.filter((v) => v.id !== 'db-1') });
    const response = await report(site.r1, { h2: [...now.h2, crashed('shutdown')] });
    expect(startsIn(response)).toEqual([]);
    expect(await recovering()).toEqual([]);
  });
});

describe('down time, kept in the incident records', () => {
  it('a crash: from the stop to the first observation running, on the VM incident; the routes read it', async () => {
    const start = await crashDb1();
    if (start === undefined) throw new Error('no start');
    const [opened] = await vmIncidents();
    const from = opened?.downtime?.['db-1']?.from;
    expect(opened?.downtime).toEqual({ 'db-1': { from: expect.any(Number), to: null } });
    await report(site.r1, {}, [resultOf(start, 'succeeded')]);
    await report(site.r1, { h1: h1With(running()) });

    const [closed] = await vmIncidents();
    const seenRunning = (await vmRecord()).observedAt;
    expect(closed?.downtime).toEqual({ 'db-1': { from, to: seenRunning } });
    expect((await vmRecord()).recovery?.downIncidentId).toBeNull();

    const read = await vmDowntime(world.ctx, { siteId: SITE, vmId: 'db-1', since: 0 });
    expect(read.periods).toEqual([
      {
        vmId: 'db-1',
        incidentId: closed?.incidentId,
        cause: 'vm',
        hostId: 'h1',
        from,
        to: seenRunning,
        downMs: seenRunning - (from ?? 0),
      },
    ]);
    expect(read.downMs).toBe(seenRunning - (from ?? 0));
    // A window that ends halfway counts half.
    const half = (from ?? 0) + Math.floor((seenRunning - (from ?? 0)) / 2);
    expect((await vmDowntime(world.ctx, { siteId: SITE, vmId: 'db-1', since: 0, until: half })).downMs).toBe(
      half - (from ?? 0),
    );
    expect((await siteDowntime(world.ctx, { siteId: SITE, since: 0 })).vms.map((v) => v.vmId)).toEqual([
      'db-1',
    ]);
  });

  /** h1 fails while h2 and h3 are full: its incident closes with every HA VM left down. */
  async function failedOverIntoFullCluster(): Promise<IncidentInput> {
    await report(site.r1, {
      h2: [vm('app-2', 16 * GiB, 8), vm('a', 15 * GiB, 4)],
      h3: [vm('app-3', 8 * GiB, 4), vm('b', 23 * GiB, 4)],
    });
    await report(site.r2);
    const asNow: StandardSite = {
      ...site,
      hosts: (overrides = {}) => site.hosts({ h2: { vms: now.h2 }, h3: { vms: now.h3 }, ...overrides }),
    };
    const incident = await fencedH1(world, asNow);
    await step(world, { step: 'plan-placement', incident });
    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'partially-recovered' });
    return incident;
  }

  it("a host failure: from the host's silence; those left down stay open until VM-level HA sees them run", async () => {
    const incident = await failedOverIntoFullCluster();

    // The relays last heard h1 SILENT_MS (9 s) before the incident opened.
    const silence = incident.openedAt - Math.min(...incident.evidence.relays.map((r) => r.lastHeardMsAgo));
    const host = await world.stores.incidents.get(incident.incidentId);
    expect(host?.downtime).toEqual({
      'db-1': { from: silence, to: null },
      'web-1': { from: silence, to: null },
      'batch-1': { from: silence, to: null },
    });
    expect((await vmRecord()).recovery?.downIncidentId).toBe(incident.incidentId);
    // Still down: the open period counts up to now.
    const open = await vmDowntime(world.ctx, { siteId: SITE, vmId: 'db-1', since: 0 });
    expect(open.periods[0]).toMatchObject({ cause: 'host', hostId: 'h1', to: null });
    expect(open.downMs).toBeGreaterThan(0);

    // Room on h3; each start succeeds and the next report shows them running there.
    const silent = { h1: { lastHeardMsAgo: 60_000 } };
    const response = await report(site.r1, { h3: [vm('app-3', 8 * GiB, 4)] }, [], silent);
    const starts = startsIn(response);
    await report(
      site.r1,
      {},
      starts.map((c) => resultOf(c, 'succeeded')),
      silent,
    );
    const moved = H1_VMS.filter((v) => v.id !== 'scratch-1').map((v) => ({
      ...v,
      state: 'running' as const,
    }));
    await report(site.r1, { h1: [], h3: [vm('app-3', 8 * GiB, 4), ...moved] }, [], silent);

    const after = await world.stores.incidents.get(incident.incidentId);
    for (const vmId of ['db-1', 'web-1', 'batch-1']) {
      const seen = (await vmRecord(vmId)).observedAt;
      expect(after?.downtime?.[vmId]).toEqual({ from: silence, to: seen });
    }
    // Only the host incident holds their periods: the VM incidents of the restarts add none.
    expect((await vmIncidents()).every((i) => i.downtime === undefined)).toBe(true);
    const site1 = await siteDowntime(world.ctx, { siteId: SITE, since: 0 });
    expect(site1.vms.map((v) => [v.vmId, v.periods.length])).toEqual([
      ['batch-1', 1],
      ['db-1', 1],
      ['web-1', 1],
    ]);
  });

  it('a VM marked down on purpose: its period ends with the mark, and no longer counts', async () => {
    const incident = await failedOverIntoFullCluster();
    world.clock.advance(5_000);
    const marked = await setVmDownOnPurpose(world.ctx, {
      siteId: SITE,
      vmId: 'db-1',
      enabled: true,
      caller: 'alice',
    });
    expect(marked.recovery?.downIncidentId).toBeUndefined();
    const periods = (await world.stores.incidents.get(incident.incidentId))?.downtime;
    expect(periods?.['db-1']?.to).toEqual(expect.any(Number));
    expect(periods?.['web-1']?.to).toBeNull();
    const total = (await vmDowntime(world.ctx, { siteId: SITE, vmId: 'db-1', since: 0 })).downMs;
    world.clock.advance(60_000);
    expect((await vmDowntime(world.ctx, { siteId: SITE, vmId: 'db-1', since: 0 })).downMs).toBe(total);
  });

  it('refuses a window that ends before it starts, an unknown VM or site', async () => {
    await expect(siteDowntime(world.ctx, { siteId: SITE, since: 10, until: 5 })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(vmDowntime(world.ctx, { siteId: SITE, vmId: 'nope' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(siteDowntime(world.ctx, { siteId: 'nowhere' })).rejects.toBeInstanceOf(NotFoundError);
  });
});
