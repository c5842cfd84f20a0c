import { beforeEach, describe, expect, it } from 'vitest';
import { VmHandedOverError } from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import { incidentIdFor } from '../../../app/ingest/open-incident';
import { closeIncident } from '../../../app/shared/incidents';
import type { IncidentInput, PlanOutput, VmAttempt } from '../../../contracts/workflow';
import {
  createWorld,
  fencedH1,
  SILENT_MS,
  SITE,
  type StandardSite,
  standardSite,
  step,
  type World,
} from './world';

// A host fails while a failover's start of a VM there has no result yet: that host's incident takes the VM
// over (app/recovery/adopt.ts), and the failover that ordered the start never starts it elsewhere after.

let world: World;
let site: StandardSite;
let incident: IncidentInput;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  incident = await fencedH1(world, site);
});

async function attempt(
  vmId: string,
  targetHostId: string,
  n: number,
  triedHosts: string[] = [],
): Promise<VmAttempt> {
  const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
  const planned = plan.waves.flatMap((w) => w.vms).find((v) => v.vmId === vmId);
  if (planned === undefined) throw new Error(`${vmId} not planned`);
  return {
    incidentId: incident.incidentId,
    siteId: SITE,
    hostId: 'h1',
    vm: { ...planned, hostId: targetHostId },
    targetHostId,
    attempt: n,
    triedHosts,
  };
}

/** Both relays call h1 and `hostId` silent: `hostId`'s incident opens. */
async function silent(hostId: string): Promise<string> {
  world.clock.advance(1_000);
  const hosts = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS }, [hostId]: { lastHeardMsAgo: SILENT_MS } });
  await site.r1.report(hosts);
  await site.r2.report(hosts);
  const opened = (await world.stores.hosts.getHost(SITE, hostId))?.incidentSeq ?? 0;
  expect(opened).toBe(1);
  return incidentIdFor(SITE, hostId, opened);
}

async function haSetOf(incidentId: string) {
  const events = await world.stores.incidents.listEvents(incidentId);
  return events.find((e) => e.kind === 'ha-vms')?.data as { vms: { vmId: string }[]; adopted?: unknown };
}

describe('a failover start to a host that falls silent before its result', () => {
  it("is taken over by that host's incident, and the failover's next start is refused", async () => {
    const first = await attempt('db-1', 'h3', 1);
    await step(world, { step: 'dispatch-start', attempt: first, taskToken: 'tok-1' });
    const taker = await silent('h3');

    const set = await haSetOf(taker);
    expect(set.vms.map((v) => v.vmId)).toContain('db-1');
    expect(set.adopted).toEqual([{ vmId: 'db-1', from: incident.incidentId }]);
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.recovery?.handedTo).toBe(taker);

    // The start to h3 fails after all: the failover's next attempt (h2) finds the VM taken, and starts nothing.
    const second = await attempt('db-1', 'h2', 2, ['h3']);
    await step(world, { step: 'reserve-capacity', attempt: second });
    await expect(
      runStep(world.ctx, { step: 'dispatch-start', attempt: second, taskToken: 'tok-2' }),
    ).rejects.toBeInstanceOf(VmHandedOverError);
    const starts = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.kind === 'start-vm',
    );
    expect(starts.map((c) => c.command.hostId)).toEqual(['h3']);
    const h2 = await world.stores.hosts.getHost(SITE, 'h2');
    expect(Object.values(h2?.reservations ?? {}).map((r) => r.vmId)).not.toContain('db-1');

    // Its close counts it handed over, not down, and lists nothing for VM-level HA.
    const closed = (await step(world, { step: 'close', incident })) as { outcome: string };
    const record = await world.stores.incidents.get(incident.incidentId);
    expect(record?.outcome).toBe(closed.outcome);
    const data = (await world.stores.incidents.listEvents(incident.incidentId)).find(
      (e) => e.kind === 'closed',
    )?.data as { down: string[]; handed?: string[] } | undefined;
    expect(data?.handed).toEqual(['db-1']);
    expect(data?.down).not.toContain('db-1');
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.recovery?.status).toBe('idle');
  });

  it('is left to its failover when that failover moved on to another host before the host fell silent', async () => {
    await step(world, {
      step: 'dispatch-start',
      attempt: await attempt('db-1', 'h3', 1),
      taskToken: 'tok-1',
    });
    const second = await attempt('db-1', 'h2', 2, ['h3']);
    await step(world, { step: 'reserve-capacity', attempt: second });
    await step(world, { step: 'dispatch-start', attempt: second, taskToken: 'tok-2' });
    const taker = await silent('h3');
    const set = await haSetOf(taker);
    expect(set.vms.map((v) => v.vmId)).not.toContain('db-1');
    expect(set.adopted).toBeUndefined();
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.recovery?.handedTo ?? null).toBeNull();
  });

  it('stays refused to the failover it was taken from once the taker closed (it may run where the taker put it)', async () => {
    await step(world, {
      step: 'dispatch-start',
      attempt: await attempt('db-1', 'h3', 1),
      taskToken: 'tok-1',
    });
    const taker = await silent('h3');
    await closeIncident(
      world.ctx,
      { incidentId: taker, siteId: SITE },
      'recovered',
      'the taker restarted it',
    );
    const second = await attempt('db-1', 'h2', 2, ['h3']);
    await step(world, { step: 'reserve-capacity', attempt: second });
    await expect(
      runStep(world.ctx, { step: 'dispatch-start', attempt: second, taskToken: 'tok-2' }),
    ).rejects.toBeInstanceOf(VmHandedOverError);
    await step(world, { step: 'close', incident });
    const events = await world.stores.incidents.listEvents(incident.incidentId);
    const data = events.find((e) => e.kind === 'closed')?.data as { handed?: string[] } | undefined;
    expect(data?.handed).toEqual(['db-1']);
  });
});
