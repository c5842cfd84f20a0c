import type { ObservedVm, RelayCommand } from '../../../contracts/relay-protocol';
import { HostAgent } from '../../../site/agent/host-agent';
import type { FenceConfig, FenceLevel, RelayConfig } from '../../../site/relay/config';
import { Relay } from '../../../site/relay/relay';
import {
  FakeBmc,
  type FakeEndpoint,
  FakeHypervisor,
  FakeLan,
  FakeUplink,
  ManualClock,
  MemoryDefinitionStore,
  MemoryStateStore,
} from './fakes';

/** Production timing: 2 s heartbeat, silent after 3 missed (6 s), a report every 10 s. */
export const TIMING = { hostHeartbeatMs: 2000, missedHeartbeats: 3, relayReportMs: 10_000 } as const;
export const SILENT_MS = 6000;
export const CREDENTIAL = 'hrc1.dc1.r1.bXktcmVsYXktc2VjcmV0LW5ldmVyLXRvLWJlLXNlZW4';

/** BMC endpoints; every value is distinct from anything else a report could contain. */
export const BMC: Readonly<Record<string, FakeEndpoint>> = {
  h1: { address: '10.77.0.11', user: 'ipmi-operator', password: 'Pw-h1-7f3a9c' },
  h2: { address: 'bmc-h2.oob.example', user: 'fence-bot', password: 'Pw-h2-e41b05' },
};

/** Every value of the BMC fixture, as the relay's config hands them to its redactor. */
export const BMC_SECRETS: readonly string[] = Object.values(BMC).flatMap((e) => [
  e.address,
  e.user,
  e.password,
]);

/** One level per host of the BMC fixture, each a fake device keyed by the host id. */
export function fenceFor(bmc: FakeBmc): FenceConfig {
  const fence: Record<string, FenceLevel[]> = {};
  for (const [hostId, endpoint] of Object.entries(BMC))
    fence[hostId] = [{ device: bmc.device(hostId, endpoint) }];
  return fence;
}

/** A VM as the fake hypervisors hold it. */
export function vm(id: string, state: ObservedVm['state'] = 'running'): ObservedVm {
  return { id, cpus: 2, memoryMiB: 4096, state };
}

/** One simulated host: a real HostAgent on a fake hypervisor. */
export interface SimHost {
  readonly agent: HostAgent;
  readonly hypervisor: FakeHypervisor;
}

/**
 * A site as the relay tests drive it: a real Relay and real HostAgents on a manual clock, a fake LAN, fake
 * BMCs and a fake control plane. Each step ticks the live agents, delivers the LAN, ticks the relay and
 * delivers again, so everything happens in a fixed order.
 */
export class TestSite {
  readonly hosts = new Map<string, SimHost>();
  private readonly alive = new Set<string>();
  relay: Relay;

  private constructor(
    readonly clock: ManualClock,
    readonly lan: FakeLan,
    readonly bmc: FakeBmc,
    readonly uplink: FakeUplink,
    readonly state: MemoryStateStore,
    readonly config: RelayConfig,
    relay: Relay,
    private readonly random: () => number,
    readonly definitions: MemoryDefinitionStore,
  ) {
    this.relay = relay;
  }

  /** A site with relay r1 and the given hosts, each running one VM `<host>-vm`, all heartbeating from now. */
  static async open(
    opts: {
      hostIds?: readonly string[];
      config?: Partial<RelayConfig>;
      clock?: ManualClock;
      state?: MemoryStateStore;
      /** The relay's random source; default 1, so every backoff is its full ceiling. */
      random?: () => number;
      /** The relay's fence levels, built on the site's fake devices; default one level per BMC fixture. */
      fence?: (bmc: FakeBmc) => FenceConfig;
      /** Where the relay keeps VM definitions (across restartRelay). */
      definitions?: MemoryDefinitionStore;
    } = {},
  ): Promise<TestSite> {
    const clock = opts.clock ?? new ManualClock();
    const lan = new FakeLan();
    const bmc = new FakeBmc();
    const uplink = new FakeUplink();
    const state = opts.state ?? new MemoryStateStore();
    const config: RelayConfig = {
      siteId: 'dc1',
      relayId: 'r1',
      credential: CREDENTIAL,
      timing: TIMING,
      fence: (opts.fence ?? fenceFor)(bmc),
      secrets: BMC_SECRETS,
      fenceCheckMs: 0,
      ...opts.config,
    };
    const random = opts.random ?? (() => 1);
    const definitions = opts.definitions ?? new MemoryDefinitionStore();
    const relay = await Relay.open(config, { clock, lan, uplink, state, random, definitions });
    lan.attach('r1', relay);
    const site = new TestSite(clock, lan, bmc, uplink, state, config, relay, random, definitions);
    for (const hostId of opts.hostIds ?? ['h1', 'h2']) site.addHost(hostId);
    await site.settle();
    return site;
  }

  addHost(
    hostId: string,
    hypervisor = new FakeHypervisor(`${hostId}-boot-1`, { cpus: 16, memoryMiB: 32_768 }, [
      vm(`${hostId}-vm`),
    ]),
  ): SimHost {
    const agent = new HostAgent(
      { hostId, cluster: 'c1', relays: ['r1'], hostHeartbeatMs: TIMING.hostHeartbeatMs },
      { clock: this.clock, hypervisor, lan: this.lan },
    );
    const host = { agent, hypervisor };
    this.hosts.set(hostId, host);
    this.revive(hostId);
    return host;
  }

  host(hostId: string): SimHost {
    const host = this.hosts.get(hostId);
    if (host === undefined) throw new Error(`no host ${hostId}`);
    return host;
  }

  /** The host dies: its agent neither heartbeats nor answers any more. */
  kill(hostId: string): void {
    this.alive.delete(hostId);
    this.lan.detach(hostId);
  }

  revive(hostId: string): void {
    this.alive.add(hostId);
    this.lan.attach(hostId, this.host(hostId).agent);
  }

  /** Replaces the relay by a new process on the same state store (a restart). */
  async restartRelay(): Promise<void> {
    this.relay = await Relay.open(this.config, {
      clock: this.clock,
      lan: this.lan,
      uplink: this.uplink,
      state: this.state,
      random: this.random,
      definitions: this.definitions,
    });
    this.lan.attach('r1', this.relay);
  }

  /** Everything due at the current instant, in a fixed order. */
  async settle(): Promise<void> {
    for (const hostId of this.alive) await this.host(hostId).agent.tick();
    await this.lan.deliver();
    await this.relay.tick();
    await this.lan.deliver();
  }

  /** Lets `ms` pass in steps of `stepMs`, settling after each. */
  async run(ms: number, stepMs = 100): Promise<void> {
    for (let passed = 0; passed < ms; passed += stepMs) {
      this.clock.advance(stepMs);
      await this.settle();
    }
  }

  /** Runs until `done` holds, at most `limitMs`; fails the test otherwise. */
  async runUntil(done: () => boolean, limitMs = 60_000, stepMs = 100): Promise<void> {
    for (let passed = 0; passed < limitMs && !done(); passed += stepMs) {
      this.clock.advance(stepMs);
      await this.settle();
    }
    if (!done()) throw new Error(`condition not met within ${limitMs} ms`);
  }

  /** Every result the control plane received for a command, in order. */
  resultsFor(commandId: string) {
    return this.uplink.accepted.flatMap((r) => r.results.filter((x) => x.commandId === commandId));
  }
}

/** A fence command for a host, valid for `validMs` from now. */
export function fenceCommand(site: TestSite, hostId: string, validMs = 20_000, n = 1): RelayCommand {
  const now = site.clock.now();
  return {
    kind: 'fence',
    commandId: `dc1:${hostId}:1:fence:${n}`,
    incidentId: `dc1:${hostId}:1`,
    hostId,
    issuedAt: now,
    notAfter: now + validMs,
  };
}

/** A start-vm command on a host, valid for `validMs` from now. */
export function startCommand(site: TestSite, hostId: string, vmId: string, validMs = 20_000): RelayCommand {
  const now = site.clock.now();
  return {
    kind: 'start-vm',
    commandId: `dc1:h9:1:start:${vmId}:1`,
    incidentId: 'dc1:h9:1',
    hostId,
    vm: { id: vmId, cpus: 2, memoryMiB: 2048 },
    issuedAt: now,
    notAfter: now + validMs,
  };
}
