import { describe, expect, it } from 'vitest';
import type { Scenario } from '../../../contracts/scenario';
import {
  programClock,
  realClock,
  SimBmc,
  SimHypervisor,
  SimNetwork,
  TCP_RTO_MIN_MS,
} from '../../../local/sim/adapters';
import { seededRandom } from '../../../local/sim/runner';
import { onVirtualTime } from '../../../local/sim/virtual-time';
import { World } from '../../../local/sim/world';
import type { LanMessage } from '../../../site/lan-protocol';

/**
 * The simulated site ports under the widened conditions: a LAN with delay, jitter and loss (datagrams
 * lost, HTTP messages late), relays with skewed clocks (refused past the LAN's 10 s window), slow BMCs and
 * slow VM boots. Each runs on virtual time, so every duration below is exact.
 */

type Site = Pick<Scenario, 'sites' | 'hosts' | 'vms'>;

const plainSite = (over: Partial<Scenario['sites'][number]> = {}): Site => ({
  sites: [{ id: 'dc1', relays: ['relay-a'], ...over }],
  hosts: [
    { id: 'node01', site: 'dc1', cluster: 'c1', cpus: 8, memoryMiB: 8192, maintenance: false },
    {
      id: 'node02',
      site: 'dc1',
      cluster: 'c1',
      cpus: 8,
      memoryMiB: 8192,
      maintenance: false,
      bmcLatencyMs: 300,
    },
  ],
  vms: [
    { id: 'vm-1', host: 'node01', cpus: 1, memoryMiB: 1024, ha: true, priority: 'high', bootMs: 700 },
    { id: 'vm-2', host: 'node01', cpus: 1, memoryMiB: 1024, ha: true, priority: 'high' },
  ],
});

const DIGEST = 'a'.repeat(64);

function heartbeat(n: number): LanMessage {
  return {
    kind: 'heartbeat',
    hostId: 'node01',
    cluster: 'c1',
    bootId: 'node01-boot-1',
    cpus: 8,
    memoryMiB: 8192,
    vmCount: n,
    digest: DIGEST,
    sentAt: 0,
  };
}

function inventory(n: number): LanMessage {
  return {
    kind: 'inventory',
    hostId: 'node01',
    cluster: 'c1',
    bootId: 'node01-boot-1',
    cpus: 8,
    memoryMiB: 8192,
    vms: [],
    digest: DIGEST,
    sentAt: n,
  };
}

function startRequest(): LanMessage {
  return {
    kind: 'start-vm',
    commandId: 'cmd-1',
    relayId: 'relay-a',
    hostId: 'node01',
    vm: { id: 'vm-1', cpus: 1, memoryMiB: 1024 },
    notAfter: Date.now() + 60_000,
  };
}

/** What a peer received: each message with the ms since the run began when it arrived. */
interface Arrival {
  readonly message: LanMessage;
  readonly atMs: number;
}

/** A site on virtual time: its world, its LAN, and what relay-a and node01 received. */
async function onSite<T>(
  site: Site,
  fn: (s: {
    world: World;
    network: SimNetwork;
    atRelay: Arrival[];
    atAgent: Arrival[];
    elapsed: () => number;
    sleep: (ms: number) => Promise<void>;
  }) => Promise<T>,
  random: () => number = seededRandom(42),
): Promise<T> {
  return onVirtualTime(
    async () => {
      const t0 = Date.now();
      const elapsed = () => Date.now() - t0;
      const world = new World(site, elapsed);
      const network = new SimNetwork(
        world,
        (error) => {
          throw error;
        },
        random,
      );
      const atRelay: Arrival[] = [];
      const atAgent: Arrival[] = [];
      network.attach('relay-a', { receive: (message) => atRelay.push({ message, atMs: elapsed() }) });
      network.attach('node01', { receive: (message) => atAgent.push({ message, atMs: elapsed() }) });
      return fn({ world, network, atRelay, atAgent, elapsed, sleep: realClock.sleep });
    },
    { random: seededRandom(7) },
  );
}

describe('SimNetwork', () => {
  it('on a perfect LAN delivers on the next turn, in order, drawing no randomness', async () => {
    const never = () => {
      throw new Error('a perfect LAN drew a random number');
    };
    await onSite(
      plainSite(),
      async ({ network, atRelay, sleep }) => {
        const lan = network.lanFor('node01');
        for (let i = 0; i < 5; i++) lan.send('relay-a', heartbeat(i));
        lan.send('relay-a', inventory(9));
        await sleep(1);
        expect(atRelay.map((a) => a.atMs)).toEqual([0, 0, 0, 0, 0, 0]);
        expect(atRelay.map((a) => (a.message.kind === 'heartbeat' ? a.message.vmCount : -1))).toEqual([
          0, 1, 2, 3, 4, -1,
        ]);
      },
      never,
    );
  });

  it('delays every message by delayMs plus up to jitterMs, which reorders them', async () => {
    await onSite(plainSite({ lan: { delayMs: 20, jitterMs: 50, lossPct: 0 } }), async (s) => {
      const lan = s.network.lanFor('node01');
      for (let i = 0; i < 200; i++) lan.send('relay-a', heartbeat(i));
      await s.sleep(100);
      expect(s.atRelay).toHaveLength(200);
      const times = s.atRelay.map((a) => a.atMs);
      expect(Math.min(...times)).toBeGreaterThanOrEqual(20);
      expect(Math.max(...times)).toBeLessThanOrEqual(70);
      expect(new Set(times).size).toBeGreaterThan(30);
      const order = s.atRelay.map((a) => (a.message.kind === 'heartbeat' ? a.message.vmCount : -1));
      expect(order).not.toEqual([...order].sort((a, b) => a - b));
    });
  });

  it('loses datagrams at lossPct, and delivers HTTP messages late by TCP retransmissions instead', async () => {
    await onSite(plainSite({ lan: { delayMs: 0, jitterMs: 0, lossPct: 20 } }), async (s) => {
      const lan = s.network.lanFor('node01');
      for (let i = 0; i < 1000; i++) lan.send('relay-a', heartbeat(i));
      for (let i = 0; i < 1000; i++) lan.send('relay-a', inventory(i));
      await s.sleep(5000);
      const beats = s.atRelay.filter((a) => a.message.kind === 'heartbeat');
      const inventories = s.atRelay.filter((a) => a.message.kind === 'inventory');
      // About 800 of 1000 heartbeats, all at once (no delay configured).
      expect(beats.length).toBeGreaterThan(740);
      expect(beats.length).toBeLessThan(860);
      expect(beats.every((a) => a.atMs === 0)).toBe(true);
      // Inventories: lost only past the HTTP timeout (four losses in a row: 0.2⁴ of them, a few at most);
      // each loss costs 200, 400, 800 ms… so they arrive at 0, 200, 600 or 1400 ms.
      expect(inventories.length).toBeGreaterThan(990);
      const late = new Set(inventories.map((a) => a.atMs));
      expect([...late].sort((a, b) => a - b)).toEqual([
        0,
        TCP_RTO_MIN_MS,
        3 * TCP_RTO_MIN_MS,
        7 * TCP_RTO_MIN_MS,
      ]);
      expect(s.network.lost).toBe(2000 - s.atRelay.length);
    });
  });

  it('loses an HTTP message that cannot get through within the HTTP timeout (3 s)', async () => {
    await onSite(plainSite({ lan: { delayMs: 0, jitterMs: 0, lossPct: 100 } }), async (s) => {
      s.network.lanFor('relay-a').send('node01', startRequest());
      await s.sleep(5000);
      expect(s.atAgent).toEqual([]);
      expect(s.network.lost).toBe(1);
    });
  });

  it('loses a message in flight when its receiver leaves the LAN before it arrives', async () => {
    await onSite(plainSite({ lan: { delayMs: 50, jitterMs: 0, lossPct: 0 } }), async (s) => {
      s.network.lanFor('relay-a').send('node01', startRequest());
      await s.sleep(10);
      s.world.inject({ atMs: 10, type: 'host-crash', host: 'node01' });
      await s.sleep(100);
      expect(s.atAgent).toEqual([]);
    });
  });

  it('follows lan-degrade, and lan-heal gives the site its own conditions back', async () => {
    await onSite(plainSite({ lan: { delayMs: 5, jitterMs: 0, lossPct: 0 } }), async (s) => {
      const lan = s.network.lanFor('node01');
      const sendAndWait = async () => {
        const from = s.elapsed();
        lan.send('relay-a', heartbeat(0));
        await s.sleep(500);
        return (s.atRelay.at(-1)?.atMs ?? Number.NaN) - from;
      };
      expect(await sendAndWait()).toBe(5);
      s.world.inject({
        atMs: 0,
        type: 'lan-degrade',
        site: 'dc1',
        delayMs: 120,
        jitterMs: 0,
        lossPct: 0,
      });
      expect(s.world.lanOf('dc1')).toEqual({ delayMs: 120, jitterMs: 0, lossPct: 0 });
      expect(await sendAndWait()).toBe(120);
      s.world.inject({ atMs: 0, type: 'lan-heal', site: 'dc1' });
      expect(await sendAndWait()).toBe(5);
    });
  });

  it("refuses messages to and from a relay whose clock is past the LAN's 10 s window, as stale", async () => {
    for (const [skew, delivered] of [
      [9_999, true],
      [-9_999, true],
      [10_001, false],
      [-15_000, false],
    ] as const) {
      await onSite(plainSite({ relayClockSkewMs: { 'relay-a': skew } }), async (s) => {
        s.network.lanFor('node01').send('relay-a', heartbeat(0));
        s.network.lanFor('relay-a').send('node01', startRequest());
        await s.sleep(10);
        expect([s.atRelay.length, s.atAgent.length], `skew ${skew}`).toEqual(delivered ? [1, 1] : [0, 0]);
        expect(s.network.stale).toBe(delivered ? 0 : 2);
      });
    }
  });
});

describe('programClock', () => {
  it("reads the relay's skewed time and sleeps as long as any clock", async () => {
    await onSite(plainSite({ relayClockSkewMs: { 'relay-a': -1500 } }), async (s) => {
      const clock = programClock(s.world, 'relay-a');
      const agent = programClock(s.world, 'node01');
      expect(clock.now() - Date.now()).toBe(-1500);
      expect(agent.now()).toBe(Date.now());
      const before = s.elapsed();
      await clock.sleep(250);
      expect(s.elapsed() - before).toBe(250);
    });
  });
});

describe('SimBmc', () => {
  it('answers each call after the host’s BMC latency, acting when it answers', async () => {
    await onSite(plainSite(), async (s) => {
      const bmc = new SimBmc(s.world, 'relay-a', 'node02');
      expect(await bmc.powerStatus()).toBe('on');
      expect(s.elapsed()).toBe(300);
      const off = bmc.powerOff();
      await s.sleep(299);
      expect(s.world.host('node02').power).toBe(true);
      await off;
      expect(s.elapsed()).toBe(600);
      expect(s.world.host('node02').power).toBe(false);
      expect(await bmc.powerStatus()).toBe('off');
      expect(s.elapsed()).toBe(900);
    });
  });

  it('fails a call to an unreachable BMC only after its latency, like a session timing out', async () => {
    await onSite(plainSite(), async (s) => {
      s.world.inject({ atMs: 0, type: 'bmc-unreachable', host: 'node02' });
      const bmc = new SimBmc(s.world, 'relay-a', 'node02');
      await expect(bmc.powerOff()).rejects.toThrow(/unable to establish/);
      expect(s.elapsed()).toBe(300);
      expect(s.world.host('node02').power).toBe(true);
    });
  });

  it('answers at once when the host has no BMC latency', async () => {
    await onSite(plainSite(), async (s) => {
      await new SimBmc(s.world, 'relay-a', 'node01').powerOff();
      expect(s.elapsed()).toBe(0);
      expect(s.world.host('node01').power).toBe(false);
    });
  });
});

describe('SimHypervisor', () => {
  it("boots a VM in its own bootMs, else in the scenario's vmBootMs", async () => {
    await onSite(plainSite(), async (s) => {
      s.world.stopVm('vm-1', 'node01', 'test');
      s.world.stopVm('vm-2', 'node01', 'test');
      const hypervisor = new SimHypervisor(s.world, 'node01', realClock, 100);
      await hypervisor.startVm({ id: 'vm-1', cpus: 1, memoryMiB: 1024 });
      expect(s.elapsed()).toBe(700);
      await hypervisor.startVm({ id: 'vm-2', cpus: 1, memoryMiB: 1024 });
      expect(s.elapsed()).toBe(800);
      expect(s.world.vmsOn('node01').map((v) => v.id)).toEqual(['vm-1', 'vm-2']);
    });
  });
});
