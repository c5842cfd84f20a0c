import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type IpmiSim, type IpmiSimMode, startIpmiSim } from '../../support/ipmi-sim';
import { LanAgent } from './lan-agent';
import {
  type ControlPlane,
  enrolRelay,
  freePort,
  newLanKey,
  type Program,
  type RelayFolder,
  relayFolder,
  startControlPlane,
  startRelay,
  stopAll,
} from './processes';

/**
 * A site for the relay's end-to-end tests: the local control plane (`npm start -- --serve`, production
 * timing), one ipmi_sim BMC per host, one `halo-relay` process reaching the control plane through a cable
 * the test can cut, and a LanAgent per host. node01 runs the HA VM `web01`.
 */

export const SITE = 'dc1';
export const CLUSTER = 'prod';
export const HOSTS = ['node01', 'node02', 'node03'] as const;

/** A cable between the relay and the control plane that the test can cut and mend. */
export class UplinkProxy {
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
      try {
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
      } catch {
        req.socket.destroy();
      }
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

export interface RelaySite {
  readonly cp: ControlPlane;
  readonly lanKey: string;
  readonly lanPort: number;
  readonly bmcs: Map<string, IpmiSim>;
  readonly folder: RelayFolder;
  readonly agents: Map<string, LanAgent>;
  readonly proxy: UplinkProxy;
  /** The relay process now running (replaced by restartRelay). */
  relay: Program;
  /** Every relay process started, in order. */
  readonly runs: Program[];
  restartRelay(): Program;
  close(): Promise<void>;
}

/** An ipmitool level against an ipmi_sim BMC (the password inline: the config file is mode 600). */
export function ipmitoolLevel(bmc: IpmiSim, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    driver: 'ipmitool',
    address: bmc.address,
    port: bmc.port,
    username: bmc.username,
    password: bmc.password,
    cipherSuite: 3,
    ...extra,
  };
}

/**
 * Starts the whole site; `modes` sets a BMC's behaviour, `level` adds options to every ipmitool level. A
 * start that fails midway stops what it started (a test's afterAll has no site to close then).
 */
export async function openRelaySite(
  opts: { modes?: Partial<Record<string, IpmiSimMode>>; level?: Record<string, unknown> } = {},
): Promise<RelaySite> {
  const bmcs = new Map<string, IpmiSim>();
  try {
    return await startRelaySite(opts, bmcs);
  } catch (error) {
    for (const bmc of bmcs.values()) await bmc.stop();
    await stopAll();
    throw error;
  }
}

async function startRelaySite(
  opts: { modes?: Partial<Record<string, IpmiSimMode>>; level?: Record<string, unknown> },
  bmcs: Map<string, IpmiSim>,
): Promise<RelaySite> {
  const cp = await startControlPlane();
  const lanKey = newLanKey();
  const lanPort = await freePort();
  for (const host of HOSTS) {
    bmcs.set(host, await startIpmiSim({ power: 'on', mode: opts.modes?.[host] ?? 'normal' }));
  }
  const credential = await enrolRelay(cp, SITE, 'relay-a');
  const proxy = await UplinkProxy.start(cp.url);
  const folder = relayFolder({
    siteId: SITE,
    relayId: 'relay-a',
    url: proxy.url,
    credential,
    lanKey,
    lanPort,
    hosts: Object.fromEntries(
      HOSTS.map((h) => [h, { fence: [ipmitoolLevel(bmcs.get(h) as IpmiSim, opts.level)] }]),
    ),
    extra: { fenceCheckMs: 60_000 },
  });
  const runs: Program[] = [];
  const agents = new Map<string, LanAgent>();
  const site: RelaySite = {
    cp,
    lanKey,
    lanPort,
    bmcs,
    folder,
    agents,
    proxy,
    runs,
    relay: startRelay(['--config', folder.configPath], 'relay run 1'),
    restartRelay() {
      site.relay = startRelay(['--config', folder.configPath], `relay run ${runs.length + 1}`);
      runs.push(site.relay);
      return site.relay;
    },
    async close() {
      for (const agent of agents.values()) await agent.stop();
      await proxy.close();
      for (const bmc of bmcs.values()) await bmc.stop();
      await stopAll();
    },
  };
  runs.push(site.relay);
  for (const host of HOSTS) {
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
        vms,
      }),
    );
  }
  return site;
}

/** The site's hosts as the operator API lists them ([] until the site exists). */
export async function hostRecords(cp: ControlPlane): Promise<Record<string, unknown>[]> {
  const { status, body } = await cp.call('GET', `/v1/sites/${SITE}/hosts`);
  return status === 200 && Array.isArray(body) ? (body as Record<string, unknown>[]) : [];
}

/** The site's VMs as the operator API lists them. */
export async function vmRecords(cp: ControlPlane): Promise<Record<string, unknown>[]> {
  const { status, body } = await cp.call('GET', `/v1/sites/${SITE}/vms`);
  return status === 200 && Array.isArray(body) ? (body as Record<string, unknown>[]) : [];
}

/** Every incident. */
export async function incidents(cp: ControlPlane): Promise<Record<string, unknown>[]> {
  const { status, body } = await cp.call('GET', '/v1/incidents');
  return status === 200 && Array.isArray(body) ? (body as Record<string, unknown>[]) : [];
}

/** One incident's timeline. */
export async function incidentEvents(
  cp: ControlPlane,
  incidentId: string,
): Promise<Record<string, unknown>[]> {
  const { body } = await cp.call('GET', `/v1/incidents/${encodeURIComponent(incidentId)}`);
  const events = (body as { events?: unknown }).events;
  return Array.isArray(events) ? (events as Record<string, unknown>[]) : [];
}

/** Makes web01 an HA VM of high priority once the control plane has seen it. */
export async function makeWebHa(cp: ControlPlane): Promise<void> {
  const { status, body } = await cp.call('PUT', `/v1/sites/${SITE}/vms/web01`, {
    ha: true,
    priority: 'high',
  });
  if (status !== 200) throw new Error(`set VM metadata: ${status} ${JSON.stringify(body)}`);
}
