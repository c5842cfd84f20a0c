import type { ObservedVm } from '../../../contracts/relay-protocol';
import { LanTransport, readLanKey } from '../../../site/adapters/lan-transport';
import { HostAgent } from '../../../site/agent/host-agent';
import type { Clock } from '../../../site/ports';
import { FakeHypervisor } from '../../unit/site/fakes';

const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

/**
 * A host for the relay's end-to-end tests: the real HostAgent logic on the real LAN transport, over a
 * hypervisor held in memory (the relay is the program under test here; the agent program on virsh has
 * its own tests). `stop()` is the host dying: no more heartbeats, nothing answers.
 */
export class LanAgent {
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;

  private constructor(
    readonly hostId: string,
    readonly hypervisor: FakeHypervisor,
    readonly transport: LanTransport,
    readonly agent: HostAgent,
  ) {}

  static async start(opts: {
    siteId: string;
    hostId: string;
    cluster: string;
    lanKey: string;
    relays: Readonly<Record<string, number>>;
    vms: ObservedVm[];
    hostHeartbeatMs?: number;
  }): Promise<LanAgent> {
    const hypervisor = new FakeHypervisor(`${opts.hostId}-boot-1`, { cpus: 32, memoryMiB: 65_536 }, opts.vms);
    let agent: HostAgent | null = null;
    const transport = await LanTransport.open({
      siteId: opts.siteId,
      selfId: opts.hostId,
      key: readLanKey(opts.lanKey),
      listen: { host: '127.0.0.1', port: 0 },
      peers: Object.fromEntries(
        Object.entries(opts.relays).map(([relayId, port]) => [relayId, { host: '127.0.0.1', port }]),
      ),
      receive: (message) => agent?.receive(message),
    });
    agent = new HostAgent(
      {
        hostId: opts.hostId,
        cluster: opts.cluster,
        relays: Object.keys(opts.relays),
        hostHeartbeatMs: opts.hostHeartbeatMs ?? 2000,
      },
      { clock: systemClock, hypervisor, lan: transport },
    );
    const host = new LanAgent(opts.hostId, hypervisor, transport, agent);
    host.loop = agent.run(host.abort.signal);
    return host;
  }

  /** The host dies: its agent stops and its LAN port closes. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.transport.close();
    await this.loop;
  }
}
