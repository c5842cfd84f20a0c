import { beforeEach, describe, expect, it } from 'vitest';
import { recordReport } from '../../../app/ingest/record-report';
import type {
  HostObservation,
  HostReport,
  RelayReportV2,
  ReportResponse,
} from '../../../contracts/relay-protocol';
import {
  createWorld,
  enrolledRelay,
  GiB,
  host,
  SILENT_MS,
  SITE,
  type TestRelay,
  vm,
  type World,
} from './world';

/**
 * Protocol v2 at ingest: a report carries each host's digest, the inventory only where it changed or was
 * asked for. A digest the control plane holds costs nothing; another digest without its inventory counts
 * for liveness only and is asked for; an inventory is taken with the digest it came with.
 */

let world: World;
let r1: TestRelay;
let r2: TestRelay;
let seq: Record<string, number>;

beforeEach(async () => {
  world = createWorld();
  r1 = await enrolledRelay(world, 'r1');
  r2 = await enrolledRelay(world, 'r2');
  seq = {};
});

/** A digest as relays report it (the agent's announcement, first 128 bits); any 32 hex digits will do. */
function digest(n: number): string {
  return n.toString(16).padStart(32, '0');
}

/** A v2 host entry: liveness and digest, with the inventory when given. */
function entry(obs: HostObservation, d: string, withInventory: boolean): HostReport {
  const { hostId, lastHeardMsAgo, ...inventory } = obs;
  return { hostId, lastHeardMsAgo, digest: d, ...(withInventory ? { inventory } : {}) };
}

function report(relay: TestRelay, hosts: readonly HostReport[]): Promise<ReportResponse> {
  seq[relay.relayId] = (seq[relay.relayId] ?? 0) + 1;
  const body: RelayReportV2 = {
    protocol: 2,
    siteId: SITE,
    relayId: relay.relayId,
    seq: seq[relay.relayId] ?? 1,
    sentAt: world.clock.now(),
    hosts: [...hosts],
    results: [],
  };
  return recordReport(world.ctx, { authorization: `Bearer ${relay.credential}`, report: body });
}

const h1 = (vms = [vm('db-1', 8 * GiB, 4)], lastHeardMsAgo = 500) => host('h1', { vms, lastHeardMsAgo });
const h2 = () => host('h2', { vms: [vm('app-2', 4 * GiB, 2)] });

describe('ingest of v2 reports', () => {
  it('takes an inventory with its digest; the same digest again costs a read and the liveness write', async () => {
    const first = await report(r1, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    expect(first.protocol).toBe(2);
    expect(first).not.toHaveProperty('inventoryWanted');
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.digest).toBe(digest(1));
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.hostId).toBe('h1');

    // The other relay, steady: digests only.
    world.calls.length = 0;
    const steady = await report(r2, [entry(h1(), digest(1), false), entry(h2(), digest(2), false)]);
    expect(steady).not.toHaveProperty('inventoryWanted');
    expect(world.calls).toEqual(['sites.loadControl', 'relays.acceptReport']);
  });

  it('a changed VM reaches the table with the inventory that carries it', async () => {
    await report(r1, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    world.clock.advance(1000);
    await report(r1, [
      entry(h1([vm('db-1', 8 * GiB, 4, 'crashed')]), digest(3), true),
      entry(h2(), digest(2), false),
    ]);
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.state).toBe('crashed');
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.digest).toBe(digest(3));
  });

  it('asks again for an inventory whose report was lost, and counts the host heard meanwhile', async () => {
    await report(r1, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    // h1 changed (digest 3): the report with its inventory never arrived; the other relay has the digest
    // alone (it holds no inventory of it yet, or took it for sent).
    world.clock.advance(1000);
    const answer = await report(r2, [entry(h1(), digest(3), false), entry(h2(), digest(2), false)]);
    expect(answer.inventoryWanted).toEqual(['h1']);
    // Nothing about h1 changed in the table: its record waits for the inventory.
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.digest).toBe(digest(1));
    // Heard all the same: no relay calls it silent, no incident.
    expect(world.workflow.executions.size).toBe(0);

    // The inventory comes: taken, and nothing more is asked.
    const again = await report(r2, [
      entry(h1([vm('db-1', 8 * GiB, 4), vm('web-1', 2 * GiB, 1)]), digest(3), true),
      entry(h2(), digest(2), false),
    ]);
    expect(again).not.toHaveProperty('inventoryWanted');
    expect((await world.stores.vms.getVm(SITE, 'web-1'))?.hostId).toBe('h1');
  });

  it('asks a relay new to it (or after losing its records) for every host it does not hold', async () => {
    const answer = await report(r1, [entry(h1(), digest(1), false), entry(h2(), digest(2), false)]);
    expect(answer.inventoryWanted).toEqual(['h1', 'h2']);
    expect(await world.stores.hosts.listHosts(SITE)).toEqual([]);
  });

  it('judges silence by the recorded cluster for a host reported by digest alone', async () => {
    await report(r1, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    await report(r2, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    world.clock.advance(1000);
    const silent = h1(undefined, SILENT_MS);
    await report(r1, [entry(silent, digest(1), false), entry(h2(), digest(2), false)]);
    await report(r2, [entry(silent, digest(1), false), entry(h2(), digest(2), false)]);
    expect([...world.workflow.executions.values()].map((i) => i.hostId)).toEqual(['h1']);
  });

  it('asks for the inventory of a host heard again during its incident (came back: boot and VMs)', async () => {
    await report(r1, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    await report(r2, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    world.clock.advance(1000);
    const silent = h1(undefined, SILENT_MS);
    await report(r1, [entry(silent, digest(1), false), entry(h2(), digest(2), false)]);
    await report(r2, [entry(silent, digest(1), false), entry(h2(), digest(2), false)]);
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle.status).toBe('suspect');

    // r1 hears h1 again, same digest: the control plane needs its boot to tell a return from a reboot.
    world.clock.advance(1000);
    const answer = await report(r1, [entry(h1(), digest(1), false), entry(h2(), digest(2), false)]);
    expect(answer.inventoryWanted).toEqual(['h1']);
    await report(r1, [entry(h1(), digest(1), true), entry(h2(), digest(2), false)]);
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle.status).toBe('up');
  });
});

describe('an upgrade: v1 and v2 relays on one site', () => {
  it('answers each in its own version, and both keep the site heard', async () => {
    const v1 = await r1.report([h1(), h2()]);
    expect(v1.protocol).toBe(1);
    expect(v1).not.toHaveProperty('inventoryWanted');
    // The v2 relay's digests are not the ones ingest computes for v1's inventories: it is asked once, and
    // its inventories are taken with its digests.
    const first = await report(r2, [entry(h1(), digest(1), false), entry(h2(), digest(2), false)]);
    expect(first.protocol).toBe(2);
    expect(first.inventoryWanted).toEqual(['h1', 'h2']);
    await report(r2, [entry(h1(), digest(1), true), entry(h2(), digest(2), true)]);
    expect((await world.stores.hosts.getHost(SITE, 'h1'))?.digest).toBe(digest(1));
    // The v1 relay goes on reporting whole inventories: taken as before (same VMs, nothing moves).
    const again = await r1.report([h1(), h2()]);
    expect(again.protocol).toBe(1);
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.hostId).toBe('h1');
    expect(world.workflow.executions.size).toBe(0);
  });
});
