import { beforeEach, describe, expect, it } from 'vitest';
import { createWorld, GiB, H1_VMS, SITE, type StandardSite, standardSite, vm, type World } from './world';

/**
 * Two relays of a site may hold inventories of a host of different ages (one missed a push, or got two out
 * of order). The control plane keeps the newest of a boot (by the agent's `takenAt`), so the two relays'
 * reports do not flip the host's VMs and usage back and forth; and it takes only liveness from a relay that
 * says its inventory is stale (it hears the host in a boot or digest it holds no inventory of).
 */

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
});

const T = 1_000_000;
const NEW_VM = vm('new-1', 8 * GiB, 4);

async function h1Usage(): Promise<number> {
  return (await world.stores.hosts.getHost(SITE, 'h1'))?.usedMiB ?? Number.NaN;
}

describe('inventories of one host from two relays', () => {
  it('keeps the newer one: an older inventory of the same boot does not undo a newer one', async () => {
    const before = await h1Usage();
    // r1 has h1's newer inventory (a VM started), r2 still the older one.
    await site.r1.report(site.hosts({ h1: { vms: [...H1_VMS, NEW_VM], takenAt: T + 500 } }));
    expect(await h1Usage()).toBe(before + 8 * GiB);
    await site.r2.report(site.hosts({ h1: { vms: [...H1_VMS], takenAt: T } }));
    expect(await h1Usage()).toBe(before + 8 * GiB);
    expect((await world.stores.vms.getVm(SITE, 'new-1'))?.hostId).toBe('h1');
    // A later inventory (the VM stopped) is taken.
    await site.r2.report(site.hosts({ h1: { vms: [...H1_VMS], takenAt: T + 900 } }));
    expect(await h1Usage()).toBe(before);
  });

  it('takes an older one of another boot, and one from an agent whose clock stepped back a lot', async () => {
    await site.r1.report(site.hosts({ h1: { vms: [...H1_VMS, NEW_VM], takenAt: T + 500 } }));
    const withNew = await h1Usage();
    // Same boot, clock stepped back by more than the reorder window: believed.
    await site.r2.report(site.hosts({ h1: { vms: [...H1_VMS], takenAt: T + 500 - 120_000 } }));
    expect(await h1Usage()).toBe(withNew - 8 * GiB);
  });

  it('takes only liveness from a stale observation: neither its (empty) VM list nor its boot', async () => {
    const before = await h1Usage();
    await site.r1.report(site.hosts({ h1: { bootId: 'h1-boot-9', vms: [], stale: true } }));
    const h1 = await world.stores.hosts.getHost(SITE, 'h1');
    expect(h1?.usedMiB).toBe(before);
    expect(h1?.lifecycle.status).toBe('up');
    expect(h1?.bootId).not.toBe('h1-boot-9');
    expect((await world.stores.vms.getVm(SITE, 'db-1'))?.state).toBe('running');
  });
});
