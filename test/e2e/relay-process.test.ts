import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLanKey, sealEnvelope } from '../../site/adapters/lan-transport';
import { LAN_PROTOCOL_VERSION } from '../../site/lan-protocol';
import { type IpmiSim, startIpmiSim } from '../support/ipmi-sim';
import { LanAgent } from './site/lan-agent';
import {
  type ControlPlane,
  enrolRelay,
  eventually,
  freePort,
  newLanKey,
  type Program,
  type RelayFolder,
  relayFolder,
  startControlPlane,
  startRelay,
  stopAll,
} from './site/processes';

/**
 * The relay program for real: `halo-relay` as a process, configured from a YAML file, against the local
 * control plane (`npm start -- --serve`, production timing: 2 s heartbeats, silent after 3 missed),
 * fencing through ipmitool against OpenIPMI's ipmi_sim, hearing agents over the authenticated LAN.
 * Durations are not asserted: every wait polls for an outcome, with a generous limit.
 */

const SITE = 'dc1';
const CLUSTER = 'prod';
const HOSTS = ['node01', 'node02', 'node03'] as const;

interface Site {
  cp: ControlPlane;
  lanKey: string;
  lanPort: number;
  bmcs: Map<string, IpmiSim>;
  folder: RelayFolder;
  agents: Map<string, LanAgent>;
  relay: Program;
  proxy: UplinkProxy;
}

/** A cable between the relay and the control plane that the test can cut and mend. */
class UplinkProxy {
  cut = false;
  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<UplinkProxy> {
    let proxy: UplinkProxy | null = null;
    const server = createServer(async (req, res) => {
      if (proxy?.cut === true) {
        req.socket.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const upstream = await fetch(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(
            (e): e is [string, string] => typeof e[1] === 'string' && e[0] !== 'host',
          ),
        ),
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      });
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'text/plain',
      });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;
    proxy = new UplinkProxy(server, `http://127.0.0.1:${port}/`);
    return proxy;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((done) => this.server.close(done));
  }
}

function ipmitoolLevel(bmc: IpmiSim): Record<string, unknown> {
  return {
    driver: 'ipmitool',
    address: bmc.address,
    port: bmc.port,
    username: bmc.username,
    password: bmc.password,
    cipherSuite: 3,
  };
}

async function openSite(): Promise<Site> {
  const cp = await startControlPlane();
  const lanKey = newLanKey();
  const lanPort = await freePort();
  const bmcs = new Map<string, IpmiSim>();
  for (const host of HOSTS) bmcs.set(host, await startIpmiSim({ power: 'on' }));
  const credential = await enrolRelay(cp, SITE, 'relay-a');
  const proxy = await UplinkProxy.start(cp.url);
  const folder = relayFolder({
    siteId: SITE,
    relayId: 'relay-a',
    url: proxy.url,
    credential,
    lanKey,
    lanPort,
    hosts: Object.fromEntries(HOSTS.map((h) => [h, { fence: [ipmitoolLevel(bmcs.get(h) as IpmiSim)] }])),
    extra: { fenceCheckMs: 60_000 },
  });
  const relay = startRelay(['--config', folder.configPath]);
  const agents = new Map<string, LanAgent>();
  for (const [i, host] of HOSTS.entries()) {
    const vms =
      host === 'node01' ? [{ id: 'web01', cpus: 2, memoryMiB: 2048, state: 'running' as const }] : [];
    agents.set(
      host,
      await LanAgent.start({
        siteId: SITE,
        hostId: host,
        cluster: CLUSTER,
        lanKey,
        relays: { 'relay-a': lanPort },
        vms: i === 0 ? vms : [],
      }),
    );
  }
  return { cp, lanKey, lanPort, bmcs, folder, agents, relay, proxy };
}

async function hostRecords(cp: ControlPlane): Promise<Record<string, unknown>[]> {
  const { status, body } = await cp.call('GET', `/v1/sites/${SITE}/hosts`);
  return status === 200 && Array.isArray(body) ? (body as Record<string, unknown>[]) : [];
}

async function incidents(cp: ControlPlane): Promise<Record<string, unknown>[]> {
  const { status, body } = await cp.call('GET', '/v1/incidents');
  return status === 200 && Array.isArray(body) ? (body as Record<string, unknown>[]) : [];
}

describe('halo-relay against the local control plane and ipmi_sim', () => {
  let site: Site;

  beforeAll(async () => {
    site = await openSite();
  }, 180_000);

  afterAll(async () => {
    for (const agent of site?.agents.values() ?? []) await agent.stop();
    await site?.proxy.close();
    for (const bmc of site?.bmcs.values() ?? []) await bmc.stop();
    await stopAll();
  });

  it('reports every host heard over the LAN, with each host’s fence readiness', async () => {
    const hosts = await eventually('three hosts up with readiness', async () => {
      const records = await hostRecords(site.cp);
      const ready = records.filter((h) => JSON.stringify(h).includes('"ok":true'));
      return records.length === 3 && ready.length === 3 ? records : undefined;
    });
    expect(hosts.map((h) => h.hostId).sort()).toEqual([...HOSTS]);
    // the VM's metadata makes it HA
    const put = await site.cp.call('PUT', `/v1/sites/${SITE}/vms/web01`, { ha: true, priority: 'high' });
    expect(put.status).toBe(200);
  }, 120_000);

  it('ignores forged, replayed and unauthenticated LAN packets, counting them', async () => {
    const socket = createSocket('udp4');
    const send = (bytes: Buffer) =>
      new Promise<void>((done) => socket.send(bytes, site.lanPort, '127.0.0.1', () => done()));
    const heartbeat = {
      kind: 'heartbeat' as const,
      hostId: 'node09',
      cluster: CLUSTER,
      bootId: 'forged-boot',
      cpus: 64,
      memoryMiB: 131_072,
      vmCount: 0,
      digest: '0'.repeat(64),
      sentAt: Date.now(),
    };
    const envelope = {
      v: LAN_PROTOCOL_VERSION,
      site: SITE,
      from: 'node09',
      port: 9,
      seq: Date.now(),
      sentAt: Date.now(),
      msg: heartbeat,
    };
    // forged: another key
    await send(sealEnvelope(readLanKey(newLanKey()), envelope));
    // unauthenticated: no MAC at all
    await send(Buffer.from(JSON.stringify(envelope)));
    // valid, then replayed
    const valid = sealEnvelope(readLanKey(site.lanKey), envelope);
    await send(valid);
    await send(valid);
    socket.close();
    await eventually('drops logged', () => {
      const text = site.relay.lines.join('\n');
      return text.includes('unauthenticated') && text.includes('replayed') ? true : undefined;
    });
    // the one valid datagram is answered by an inventory request, but no forged host is ever reported
    const hosts = await hostRecords(site.cp);
    expect(hosts.map((h) => h.hostId)).not.toContain('node09');
  }, 60_000);

  it('a dead host is fenced through ipmi_sim: power-off read back, the HA VM restarted elsewhere', async () => {
    // when node01's agent dies (its heartbeats stop; its BMC still answers)
    await site.agents.get('node01')?.stop();

    // then the control plane opens an incident, the relay fences node01 and the BMC reads off
    const bmc = site.bmcs.get('node01') as IpmiSim;
    await eventually('node01 powered off', () => (bmc.power() === 'off' ? true : undefined), 120_000);
    expect(bmc.offCalls()).toBe(1);
    const incident = await eventually('incident closed', async () => {
      const list = await incidents(site.cp);
      return list.find((i) => i.hostId === 'node01' && i.closedAt !== null);
    });
    expect(incident.outcome).toBe('recovered');
    const view = await site.cp.call(
      'GET',
      `/v1/incidents/${encodeURIComponent(String(incident.incidentId))}`,
    );
    // the timeline says which fence level read the power back
    expect(JSON.stringify(view.body)).toContain('level 1 (ipmitool)');
    // and web01 runs on another host, started through its agent over the LAN
    const runningOn = [...site.agents.values()]
      .filter((a) => a.hostId !== 'node01')
      .filter((a) => a.hypervisor.vms.some((vm) => vm.id === 'web01' && vm.state === 'running'));
    expect(runningOn).toHaveLength(1);
    // the relay's logs carry no secret
    const logs = site.relay.lines.join('\n');
    for (const secret of [bmc.password, site.lanKey]) expect(logs).not.toContain(secret);
  }, 180_000);
});
