import { describe, expect, it } from 'vitest';
import { MAX_REPORT_BYTES, REPORT_BUDGET_BYTES } from '../../../contracts/relay-protocol';
import { inventoryDigest } from '../../../site/lan-protocol';
import { FakeHypervisor, networkDown } from './fakes';
import { SILENT_MS, TestSite, vm } from './site-harness';

/**
 * Protocol v2 at the relay: every report carries every host's liveness and digest, and an inventory only
 * when the control plane has not taken it from this relay, or asked for it. A report that was not accepted
 * carries nothing away: its inventories go again. A restarted relay sends every inventory once more. A site
 * whose inventories outgrow one report sends them over the reports that follow, each still complete in
 * liveness.
 */

/** The hosts of a report that carry an inventory. */
function withInventory(site: TestSite, at = -1): string[] {
  const report = site.uplink.reports.at(at);
  return (report?.hosts ?? []).filter((h) => h.inventory !== undefined).map((h) => h.hostId);
}

describe('relay reports v2: inventories only when changed', () => {
  it('sends every inventory once, then digests alone while nothing changes', async () => {
    const site = await TestSite.open();
    await site.run(SILENT_MS);
    expect(withInventory(site)).toEqual(['h1', 'h2']);

    await site.run(10_000);
    const steady = site.uplink.last;
    expect(steady?.hosts.map((h) => h.hostId)).toEqual(['h1', 'h2']);
    expect(withInventory(site)).toEqual([]);
    // A steady host entry is a few tens of bytes.
    const bytes = JSON.stringify(steady?.hosts[0]).length;
    expect(bytes).toBeLessThan(100);
  });

  it('sends the inventory of the host whose VM changed, and only that one', async () => {
    const site = await TestSite.open();
    await site.run(SILENT_MS + 10_000);
    const vms = site.host('h2').hypervisor.vms;
    vms[0] = { ...(vms[0] ?? vm('h2-vm')), state: 'crashed' };
    await site.run(2000);
    expect(withInventory(site)).toEqual(['h2']);
    expect(site.uplink.inventoryOf('h2')?.vms[0]?.state).toBe('crashed');
  });

  it('sends an inventory again when the report that carried it was lost', async () => {
    const site = await TestSite.open();
    await site.run(SILENT_MS + 10_000);
    // h1 changes while the uplink is down: the report carrying its inventory fails.
    site.uplink.failure = networkDown();
    site.host('h1').hypervisor.vms.push(vm('h1-vm2'));
    await site.run(2000);
    expect(site.uplink.attempts.at(-1)).toMatchObject({ accepted: false });
    expect(withInventory(site)).toEqual(['h1']);
    // Back: the next report carries it again, and once accepted, no more.
    site.uplink.failure = null;
    await site.run(3000);
    expect(site.uplink.vmIdsOf('h1')).toEqual(['h1-vm', 'h1-vm2']);
    await site.run(10_000);
    expect(withInventory(site)).toEqual([]);
  });

  it('sends the inventories the control plane asks for, with the next report', async () => {
    const site = await TestSite.open();
    await site.run(SILENT_MS + 10_000);
    // The control plane holds another digest for h2 (the other relay wrote an older one, or it lost it).
    site.uplink.inventoryWanted = ['h2'];
    await site.run(10_000);
    site.uplink.inventoryWanted = [];
    const asked = site.uplink.reports.length;
    // The report after the asking one carries it, without waiting for the next interval.
    await site.run(1000);
    expect(site.uplink.reports.length).toBe(asked + 1);
    expect(withInventory(site)).toEqual(['h2']);
  });

  it('a restarted relay sends every inventory once more, then digests alone', async () => {
    const site = await TestSite.open();
    await site.run(SILENT_MS + 10_000);
    expect(withInventory(site)).toEqual([]);
    await site.restartRelay();
    await site.run(SILENT_MS);
    expect(withInventory(site)).toEqual(['h1', 'h2']);
    await site.run(10_000);
    expect(withInventory(site)).toEqual([]);
  });
});

describe('a site whose inventories outgrow one report', () => {
  it('spreads them over the reports that follow, each carrying every host', async () => {
    // Six hosts of 900 VMs each: about 60 KB of inventory a host, 360 KB in all.
    const site = await TestSite.open({ hostIds: [] });
    const ids = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
    for (const hostId of ids) {
      const vms = Array.from({ length: 900 }, (_, i) => vm(`${hostId}-vm-${String(i).padStart(4, '0')}`));
      site.addHost(hostId, new FakeHypervisor(`${hostId}-boot-1`, { cpus: 256, memoryMiB: 4_194_304 }, vms));
    }
    await site.settle();
    await site.run(SILENT_MS + 2000);

    const reports = site.uplink.reports;
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (const report of reports) {
      // Every report is complete in liveness and within the budget.
      expect(report.hosts.map((h) => h.hostId)).toEqual(ids);
      expect(JSON.stringify(report).length).toBeLessThanOrEqual(REPORT_BUDGET_BYTES);
      expect(Buffer.byteLength(JSON.stringify(report))).toBeLessThan(MAX_REPORT_BYTES);
    }
    // Each inventory went once, and the reports followed each other at the least gap, not the interval.
    const sent = reports.flatMap((r) =>
      r.hosts.filter((h) => h.inventory !== undefined).map((h) => h.hostId),
    );
    expect(sent.sort()).toEqual(ids);
    const gaps = reports.slice(1).map((r, i) => r.sentAt - (reports[i]?.sentAt ?? 0));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1000);
    // What the control plane holds is what the agents announce.
    for (const hostId of ids) {
      const inventory = site.uplink.inventoryOf(hostId);
      const digest = inventory === undefined ? '' : inventoryDigest(inventory).slice(0, 32);
      expect(site.uplink.last?.hosts.find((h) => h.hostId === hostId)?.digest).toBe(digest);
    }
  });
});
