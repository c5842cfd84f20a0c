import { beforeEach, describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import type { VmRecord } from '../../../app/ports';
import { listForRestart } from '../../../app/recovery/enqueue';
import { unlist } from '../../../app/recovery/episode';
import { recoverVms } from '../../../app/recovery/recover';
import type {
  CommandResult,
  ObservedVm,
  ReportResponse,
  StartVmCommand,
} from '../../../contracts/relay-protocol';
import {
  createWorld,
  GiB,
  H1_VMS,
  SITE,
  type StandardSite,
  standardSite,
  type TestRelay,
  vm,
  type World,
} from './world';

/**
 * VM-level HA when passes overlap: ingest (one pass per report, several reports at once) and the detector
 * work on the same VM concurrently, through conditional writes of its recovery and a marker on the site's
 * control item. Each case forces one interleaving by holding a store call, in virtual time; the local
 * control plane (test/local/vm-recovery.test.ts) met each of them on a loaded machine.
 */

let world: World;
let site: StandardSite;
let now: Record<'h1' | 'h2' | 'h3', ObservedVm[]>;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  now = Object.fromEntries(site.hosts().map((h) => [h.hostId, h.vms])) as typeof now;
  world.clock.now = () => world.clock.advance(1);
  world.clock.advance(1000);
});

const DB1 = { id: 'db-1', cpus: 4, memoryMiB: 8 * GiB } as const;
const crashed: ObservedVm = { ...DB1, state: 'shut-off', reason: 'crashed' };
const running: ObservedVm = { ...DB1, state: 'running' };
const h1With = (db1: ObservedVm): ObservedVm[] => [db1, ...H1_VMS.filter((v) => v.id !== 'db-1')];

/** A report of the standard site through `relay`, with `vms` applied to what each host runs from now on. */
function report(
  relay: TestRelay,
  vms: Partial<Record<'h1' | 'h2' | 'h3', ObservedVm[]>> = {},
  results: CommandResult[] = [],
): Promise<ReportResponse> {
  world.clock.advance(100);
  now = { ...now, ...vms };
  return relay.report(site.hosts({ h1: { vms: now.h1 }, h2: { vms: now.h2 }, h3: { vms: now.h3 } }), results);
}

function succeeded(command: StartVmCommand): CommandResult {
  return {
    commandId: command.commandId,
    incidentId: command.incidentId,
    outcome: 'succeeded',
    finishedAt: world.clock.now(),
  };
}

async function vmRecord(): Promise<VmRecord> {
  const record = await world.stores.vms.getVm(SITE, 'db-1');
  if (record === null) throw new Error('no record of db-1');
  return record;
}

async function recovering(): Promise<readonly string[]> {
  return (await world.stores.sites.loadControl(SITE))?.recovering ?? [];
}

async function kinds(incidentId: string): Promise<string[]> {
  return (await world.stores.incidents.listEvents(incidentId)).map((e) => e.kind);
}

/** db-1 crashes on h1 and its in-place start goes out; returns the start. */
async function crashAndStart(): Promise<StartVmCommand> {
  const response = await report(site.r1, { h1: h1With(crashed) });
  const start = response.commands.find((c): c is StartVmCommand => c.kind === 'start-vm');
  if (start === undefined) throw new Error('no start');
  return start;
}

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('the retry list marker', () => {
  it('stays on a VM that crashes again while the pass that saw it run takes it off the list', async () => {
    const start = await crashAndStart();
    await report(site.r1, {}, [succeeded(start)]);
    // r1 reports db-1 running: its pass closes the incident and takes db-1 off the list. Just before the
    // marker goes, r2's report of a new crash is ingested whole: listed again, a backoff scheduled.
    const setRecovering = world.stores.sites.setRecovering.bind(world.stores.sites);
    let crashAgain = true;
    world.stores.sites.setRecovering = async (siteId, vmId, on) => {
      if (crashAgain && vmId === 'db-1' && !on) {
        crashAgain = false;
        await report(site.r2, { h1: h1With(crashed) });
      }
      return setRecovering(siteId, vmId, on);
    };
    await report(site.r1, { h1: h1With(running) });
    now = { ...now, h1: h1With(crashed) };

    expect(crashAgain).toBe(false);
    expect((await vmRecord()).recovery).toMatchObject({ status: 'waiting', notBefore: expect.any(Number) });
    expect(await recovering()).toEqual(['db-1']);
    // The detector's tick still finds it: once its backoff is over, the restart goes out.
    world.clock.advance(60_000);
    await report(site.r1);
    await report(site.r2);
    expect((await detectOnce(world.ctx, { evaluateCapacity: false })).vmStartsOrdered).toBe(1);
  });

  it('stays on a VM listed while a pass that read it idle takes it off', async () => {
    const start = await crashAndStart();
    await report(site.r1, {}, [succeeded(start)]);
    await report(site.r1, { h1: h1With(running) });
    expect(await recovering()).toEqual([]);
    const idle = await vmRecord();
    // A lister has set the marker and is about to write the recovery when a pass that read the VM idle
    // (and the marker set) clears the marker and reads the recovery, still idle.
    const saveRecovery = world.stores.vms.saveRecovery.bind(world.stores.vms);
    const marked = gate();
    const cleared = gate();
    world.stores.vms.saveRecovery = async (...args) => {
      marked.open();
      await cleared.opened;
      return saveRecovery(...args);
    };
    const listing = listForRestart(
      world.ctx,
      {
        vm: idle,
        cause: 'vm-crashed',
        place: { hostId: 'h1', cluster: 'c1', bootId: 'h1-boot-1' },
        detail: 'db-1 crashed again',
      },
      world.clock.now(),
    );
    await marked.opened;
    const control = await world.stores.sites.loadControl(SITE);
    if (control === null) throw new Error('no site');
    expect(control.recovering).toEqual(['db-1']);
    await unlist(world.ctx, control, 'db-1');
    cleared.open();

    expect(await listing).toBe(true);
    expect((await vmRecord()).recovery?.status).toBe('waiting');
    expect(await recovering()).toEqual(['db-1']);
  });
});

describe('two passes deciding the same for one VM', () => {
  it('say it once on the timeline: no room, the second pass reading what the first wrote', async () => {
    // While the pass of the report that lists db-1 writes its vm-unplaced line, a second pass (another
    // report's, which reads the recovery the first one wrote and is not held to the slow pace) decides too.
    const appendEvent = world.stores.incidents.appendEvent.bind(world.stores.incidents);
    let second = true;
    world.stores.incidents.appendEvent = async (event) => {
      if (second && event.kind === 'vm-unplaced') {
        second = false;
        const control = await world.stores.sites.loadControl(SITE);
        if (control === null) throw new Error('no site');
        await recoverVms(world.ctx, { control, vmIds: ['db-1'], trigger: 'change' });
      }
      return appendEvent(event);
    };
    await report(site.r1, {
      h1: [...h1With(crashed), vm('big-1', 20 * GiB, 4)],
      h2: [vm('app-2', 16 * GiB, 8), vm('big-2', 12 * GiB, 4)],
      h3: [vm('app-3', 8 * GiB, 4), vm('big-3', 20 * GiB, 4)],
    });

    expect(second).toBe(false);
    const [incident] = await world.stores.incidents.list({ siteId: SITE });
    expect(incident?.outcome).toBe('partially-recovered');
    expect(await kinds(incident?.incidentId ?? '')).toEqual(['vm-stopped', 'vm-unplaced', 'closed']);
    expect(world.metrics.total('VmsUnplaced')).toBe(1);
    expect((await vmRecord()).recovery).toMatchObject({ status: 'waiting', incidentId: null });
    expect(await recovering()).toEqual(['db-1']);
  });

  it('say once that a start worked: the relay result and the inventory showing it running, side by side', async () => {
    const start = await crashAndStart();
    // A report shows db-1 running while the start's result is being applied (in production both travel in
    // one report, handled side by side; here r1's next report brings the result, at the moment the
    // resolving pass is about to say the VM started).
    const appendEvent = world.stores.incidents.appendEvent.bind(world.stores.incidents);
    let resultFirst = true;
    world.stores.incidents.appendEvent = async (event) => {
      if (resultFirst && event.kind === 'vm-started') {
        resultFirst = false;
        await report(site.r1, {}, [succeeded(start)]);
      }
      return appendEvent(event);
    };
    await report(site.r1, { h1: h1With(running) });

    expect(resultFirst).toBe(false);
    const [incident] = await world.stores.incidents.list({ siteId: SITE });
    expect(incident?.outcome).toBe('recovered');
    expect(await kinds(incident?.incidentId ?? '')).toEqual([
      'vm-stopped',
      'start-ordered',
      'vm-started',
      'closed',
    ]);
    expect((await vmRecord()).recovery?.status).toBe('idle');
    expect(await recovering()).toEqual([]);
  });
});
