import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { stringify } from 'yaml';
import { type IpmiSim, startIpmiSim } from '../support/ipmi-sim';
import {
  type ControlPlane,
  enrolRelay,
  eventually,
  freePort,
  newLanKey,
  type Program,
  relayFolder,
  startControlPlane,
  startRelay,
  startSiteProgram,
  stopAll,
  tempFolder,
  writePrivate,
} from './site/processes';
import { hostRecords, incidents, SITE, vmRecords } from './site/relay-site';

/**
 * A site of real programs, end to end: the local control plane (`npm start -- --serve`), one `halo-relay`
 * fencing through ipmitool against ipmi_sim, three `halo-agent` processes each on its own libvirt test
 * driver (virsh). node01 runs the HA VM web01, defined nowhere else. node01's agent is killed: node01 is
 * fenced through ipmi_sim, and web01 is defined (from the definition the relay kept) and started through
 * virsh on another host; the control plane shows it running there.
 */

const HOSTS = ['node01', 'node02', 'node03'] as const;

/** A libvirt test-driver node: 16 CPUs, 32 GiB, and its domains. */
function nodeXml(
  domains: readonly { name: string; memoryMiB: number; vcpus: number; running: boolean }[],
): string {
  const domain = (d: (typeof domains)[number]) => `
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>${d.name}</name>
    <uuid>${randomUUID()}</uuid>
    <memory unit='KiB'>${d.memoryMiB * 1024}</memory>
    <currentMemory unit='KiB'>${d.memoryMiB * 1024}</currentMemory>
    <vcpu>${d.vcpus}</vcpu>
    <os><type>hvm</type></os>
    ${d.running ? '' : '<test:runstate>5</test:runstate>'}
  </domain>`;
  return `<node>
  <cpu><mhz>2000</mhz><model>test</model><active>16</active><nodes>1</nodes><sockets>1</sockets><cores>16</cores><threads>1</threads></cpu>
  <memory>${32 * 1024 * 1024}</memory>${domains.map(domain).join('')}
</node>
`;
}

describe('a site of real programs: halo-relay, three halo-agents on libvirt, the local control plane', () => {
  let cp: ControlPlane;
  let bmcs: Map<string, IpmiSim>;
  const agents = new Map<string, Program>();
  let relay: Program;

  beforeAll(async () => {
    cp = await startControlPlane();
    const lanKey = newLanKey();
    const lanPort = await freePort();
    bmcs = new Map();
    for (const host of HOSTS) bmcs.set(host, await startIpmiSim({ power: 'on' }));
    const credential = await enrolRelay(cp, SITE, 'relay-a');
    const folder = relayFolder({
      siteId: SITE,
      relayId: 'relay-a',
      url: cp.url,
      credential,
      lanKey,
      lanPort,
      hosts: Object.fromEntries(
        HOSTS.map((h) => {
          const bmc = bmcs.get(h) as IpmiSim;
          return [
            h,
            {
              fence: [
                {
                  driver: 'ipmitool',
                  address: bmc.address,
                  port: bmc.port,
                  username: bmc.username,
                  password: bmc.password,
                  cipherSuite: 3,
                },
              ],
            },
          ];
        }),
      ),
    });
    relay = startRelay(['--config', folder.configPath], 'relay');
    for (const host of HOSTS) {
      const dir = tempFolder(`halo-agent-${host}-`);
      mkdirSync(dir, { recursive: true });
      const domains =
        host === 'node01'
          ? [
              { name: 'web01', memoryMiB: 2048, vcpus: 2, running: true },
              { name: 'batch01', memoryMiB: 1024, vcpus: 1, running: false },
            ]
          : [{ name: `util-${host}`, memoryMiB: 1024, vcpus: 1, running: true }];
      writeFileSync(join(dir, 'node.xml'), nodeXml(domains));
      writeFileSync(join(dir, 'boot_id'), `${randomUUID()}\n`);
      writePrivate(join(dir, 'lan.key'), `${lanKey}\n`);
      const config = {
        site: SITE,
        host,
        cluster: 'prod',
        relays: { 'relay-a': `127.0.0.1:${lanPort}` },
        lan: { listen: '127.0.0.1:0', keyFile: './lan.key' },
        hypervisor: { uri: `test://${join(dir, 'node.xml')}`, bootIdFile: './boot_id' },
      };
      writeFileSync(join(dir, 'agent.yaml'), stringify(config));
      agents.set(
        host,
        startSiteProgram('halo-agent', ['--config', join(dir, 'agent.yaml')], `agent ${host}`),
      );
    }
  }, 180_000);

  afterAll(async () => {
    for (const bmc of bmcs?.values() ?? []) await bmc.stop();
    await stopAll();
  });

  // A failure shows what the programs said: the control plane's requests, the relay's and agents' logs.
  beforeEach(() => {
    onTestFailed(() => {
      const programs = [cp?.program, relay, ...agents.values()].filter((p) => p !== undefined);
      for (const program of programs) {
        console.error(`--- ${program.name}, last lines:\n${program.lines.slice(-60).join('\n')}`);
      }
    });
  });

  it('the control plane sees every host and VM the agents read from libvirt, each VM where it runs', async () => {
    const vms = await eventually('VMs reported', async () => {
      const records = await vmRecords(cp);
      return records.length >= 4 && (await hostRecords(cp)).length === 3 ? records : undefined;
    });
    const web01 = vms.find((vm) => vm.vmId === 'web01');
    expect(web01).toMatchObject({ hostId: 'node01', state: 'running', cpus: 2, memoryMiB: 2048 });
    expect(vms.find((vm) => vm.vmId === 'batch01')).toMatchObject({ hostId: 'node01', state: 'shut-off' });
    const put = await cp.call('PUT', `/v1/sites/${SITE}/vms/web01`, { ha: true, priority: 'high' });
    expect(put.status).toBe(200);
    // the relay holds web01's definition before anything fails
    await relay.waitFor((line) => line.includes('VM definitions stored') && line.includes('node01'));
  }, 120_000);

  it('node01’s agent dies: node01 is fenced through ipmi_sim and web01 is defined and started on another host', async () => {
    await agents.get('node01')?.kill('SIGKILL');
    const bmc = bmcs.get('node01') as IpmiSim;
    await eventually('node01 powered off', () => (bmc.power() === 'off' ? true : undefined), 120_000);
    const web01 = await eventually('web01 running elsewhere', async () =>
      (await vmRecords(cp)).find(
        (vm) => vm.vmId === 'web01' && vm.state === 'running' && vm.hostId !== 'node01',
      ),
    );
    const target = String(web01.hostId);
    expect(['node02', 'node03']).toContain(target);
    const incident = await eventually('incident closed', async () =>
      (await incidents(cp)).find((i) => i.hostId === 'node01' && i.closedAt !== null),
    );
    expect(incident.outcome).toBe('recovered');
    // the target's agent defined web01 from the site's copy, then started it through virsh
    const started = agents
      .get(target)
      ?.entries()
      .find((e) => e.msg === 'VM started' && e.vmId === 'web01');
    expect(started).toMatchObject({ withDefinition: true });
  }, 180_000);
});
