import { beforeEach, describe, expect, it } from 'vitest';
import { transitionHost } from '../../../app/shared/host-lifecycle';
import { updateIncident } from '../../../app/shared/incidents';
import { readDecideWrite } from '../../../app/shared/retry';
import {
  createWorld,
  GiB,
  openH1Incident,
  SITE,
  type StandardSite,
  standardSite,
  vm,
  type World,
} from './world';

/**
 * Steps hand the records they already read to transitionHost and updateIncident (`seen`), saving a read
 * when the record leads to a write. The write stays conditional on the version read, and a decision to
 * write nothing is never taken on a record that may be stale.
 */

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  world.clock.advance(2_000);
});

const count = (call: string) => world.calls.filter((c) => c === call).length;

describe('transitionHost with the record the caller read', () => {
  it('given the record is current, then it writes without reading it again', async () => {
    const seen = await world.stores.hosts.getHost(SITE, 'h1');
    world.calls.length = 0;

    const change = await transitionHost(
      world.ctx,
      SITE,
      'h1',
      () => ({
        command: { type: 'ReportSilent', at: world.clock.now(), incidentId: 'dc1:h1:1' },
        incidentSeq: 1,
      }),
      seen ?? undefined,
    );

    expect(change.host.lifecycle.status).toBe('suspect');
    expect(count('hosts.getHost')).toBe(0);
    expect(count('hosts.setLifecycle')).toBe(1);
  });

  it('given the record changed since it was read, then the conditional write fails and it decides again on a fresh read', async () => {
    const seen = await world.stores.hosts.getHost(SITE, 'h1');
    // h1's inventory changes after the caller read it: the record's version moves on.
    await site.r1.report(site.hosts({ h1: { vms: [vm('db-1', 8 * GiB, 4)] } }));
    world.calls.length = 0;
    const decidedOn: number[] = [];

    const change = await transitionHost(
      world.ctx,
      SITE,
      'h1',
      (host) => {
        decidedOn.push(host.version);
        return {
          command: { type: 'ReportSilent', at: world.clock.now(), incidentId: 'dc1:h1:1' },
          incidentSeq: 1,
        };
      },
      seen ?? undefined,
    );

    expect(change.host.lifecycle.status).toBe('suspect');
    expect(decidedOn).toEqual([seen?.version, (seen?.version ?? 0) + 1]);
    expect(count('hosts.getHost')).toBe(1);
  });

  it('given the record says there is nothing to do, then that is only decided on a fresh read', async () => {
    const seen = await world.stores.hosts.getHost(SITE, 'h1');
    await openH1Incident(world, site);
    world.calls.length = 0;

    // Nothing to do for an up host; the stale record says up, the fresh one says suspect.
    const change = await transitionHost(
      world.ctx,
      SITE,
      'h1',
      (host) =>
        host.lifecycle.status === 'up'
          ? null
          : { command: { type: 'ReportSilent', at: world.clock.now(), incidentId: 'dc1:h1:1' } },
      seen ?? undefined,
    );

    expect(count('hosts.getHost')).toBe(1);
    expect(change.host.lifecycle.status).toBe('suspect');
    expect(change.host.version).toBeGreaterThan(seen?.version ?? Number.POSITIVE_INFINITY);
  });
});

describe('updateIncident with the record the caller read', () => {
  it('given a stale record, then the write is decided again on a fresh one; a no-op is never decided on the stale one', async () => {
    const incident = await openH1Incident(world, site);
    const seen = await world.stores.incidents.get(incident.incidentId);
    if (seen === null) throw new Error('no incident');
    await updateIncident(world.ctx, incident.incidentId, () => ({ fencedAt: 1 }));
    world.calls.length = 0;

    // The stale record has no fencedAt: the patch would write; the fresh one has it: nothing to write.
    const result = await updateIncident(
      world.ctx,
      incident.incidentId,
      (i) => (i.fencedAt === null ? { fencedAt: 2 } : null),
      seen,
    );

    expect(result).toMatchObject({ changed: false, incident: { fencedAt: 1 } });
    expect(count('incidents.get')).toBe(1);

    // A current record: written at once, no read.
    const current = await world.stores.incidents.get(incident.incidentId);
    world.calls.length = 0;
    const written = await updateIncident(
      world.ctx,
      incident.incidentId,
      () => ({ outcome: 'awaiting-operator' }),
      current ?? undefined,
    );
    expect(written.changed).toBe(true);
    expect(count('incidents.get')).toBe(0);
  });
});

describe('readDecideWrite', () => {
  it('given a refusal on the record the caller read, then it decides again on a fresh read', async () => {
    const reads: number[] = [];
    const decided: number[] = [];
    const out = await readDecideWrite(
      async () => {
        reads.push(2);
        return 2;
      },
      (version) => {
        decided.push(version);
        if (version < 2) throw new Error('refused on version 1');
        return { done: `nothing to write at ${version}` };
      },
      1,
    );
    expect(out).toBe('nothing to write at 2');
    expect(decided).toEqual([1, 2]);
    expect(reads).toEqual([2]);
  });
});
