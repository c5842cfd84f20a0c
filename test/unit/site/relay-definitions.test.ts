import { describe, expect, it } from 'vitest';
import { definitionDigest } from '../../../site/lan-protocol';
import { DefiningHypervisor } from './fakes';
import { SILENT_MS, startCommand, TestSite, vm } from './site-harness';

const WEB01_XML =
  "<domain type='kvm'><name>web01</name><uuid>7b1c…</uuid><memory unit='KiB'>2097152</memory></domain>";

/** A site where h1 runs web01 (defined there, with its XML) and h2, h3 have no definition of it. */
async function definingSite(opts: Parameters<typeof TestSite.open>[0] = {}) {
  const site = await TestSite.open({ hostIds: [], ...opts });
  const hypervisors = new Map<string, DefiningHypervisor>();
  for (const hostId of ['h1', 'h2', 'h3']) {
    const hypervisor = new DefiningHypervisor(`${hostId}-boot-1`, { cpus: 16, memoryMiB: 32_768 }, []);
    hypervisors.set(hostId, hypervisor);
    site.addHost(hostId, hypervisor);
  }
  const h1 = hypervisors.get('h1') as DefiningHypervisor;
  h1.vms.push(vm('web01'));
  h1.xml.set('web01', WEB01_XML);
  return { site, hypervisors };
}

describe('VM definitions kept by the site', () => {
  it('the relay takes each VM’s definition from its host and hands it to the host that must start it', async () => {
    // given a relay that heard the three hosts
    const { site, hypervisors } = await definingSite();
    site.uplink.nextReportInMs = 1000;
    await site.run(SILENT_MS + 2000);
    expect(site.relay.definitions.xmlOf('web01')).toBe(WEB01_XML);

    // when the control plane orders web01 started on h2, where it was never defined
    const command = startCommand(site, 'h2', 'web01');
    site.uplink.commands = [command];
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then the start request carried the XML, h2 defined web01 from it and started it
    expect(site.lan.sentTo('h2', 'start-vm')[0]?.definition).toBe(WEB01_XML);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded' });
    const h2 = hypervisors.get('h2') as DefiningHypervisor;
    expect(h2.definedFrom.get('web01')).toBe(WEB01_XML);
    expect(h2.vms.find((v) => v.id === 'web01')?.state).toBe('running');
    // and no report ever carried a definition to the cloud
    for (const report of site.uplink.reports) expect(JSON.stringify(report)).not.toContain('<domain');
  });

  it('keeps the copy of the host where the VM runs, not a stale one from a host where it is shut off', async () => {
    // given web01 runs on h1 and h3 holds an older definition with web01 shut off
    const { site, hypervisors } = await definingSite();
    const h3 = hypervisors.get('h3') as DefiningHypervisor;
    h3.vms.push(vm('web01', 'shut-off'));
    h3.xml.set('web01', "<domain type='kvm'><name>web01</name><!-- stale --></domain>");
    await site.run(SILENT_MS + 3000);

    // then the relay holds h1's copy, whatever the order the hosts were heard in
    expect(site.relay.definitions.xmlOf('web01')).toBe(WEB01_XML);
    expect(site.definitions.saved.get('web01')).toMatchObject({
      fromHost: 'h1',
      digest: definitionDigest(WEB01_XML),
    });

    // when web01 moves to h3 (now running there, on h3's copy), h3's copy becomes the one kept
    (hypervisors.get('h1') as DefiningHypervisor).vms.splice(0);
    const running = h3.vms.find((v) => v.id === 'web01');
    if (running !== undefined) running.state = 'running';
    await site.run(4000);
    expect(site.definitions.saved.get('web01')?.fromHost).toBe('h3');
  });

  it('refuses a definition a host did not announce, or of a VM it does not have', async () => {
    const { site } = await definingSite();
    await site.run(SILENT_MS + 2000);
    site.relay.receive({
      kind: 'definitions',
      hostId: 'h2',
      items: [{ vmId: 'web01', xml: '<domain>evil</domain>' }],
    });
    await site.run(500);
    expect(site.relay.definitions.xmlOf('web01')).toBe(WEB01_XML);
  });

  it('a restarted relay still holds the definitions it was given', async () => {
    const { site } = await definingSite();
    await site.run(SILENT_MS + 2000);
    await site.restartRelay();
    expect(site.relay.definitions.xmlOf('web01')).toBe(WEB01_XML);
  });

  it('an agent re-reads a definition edited without a state change, and the relay takes the new one', async () => {
    const { site, hypervisors } = await definingSite();
    await site.run(SILENT_MS + 2000);
    const edited = WEB01_XML.replace('2097152', '4194304');
    (hypervisors.get('h1') as DefiningHypervisor).xml.set('web01', edited);
    // every definition is read again once a minute
    await site.run(62_000, 500);
    expect(site.relay.definitions.xmlOf('web01')).toBe(edited);
  });
});
