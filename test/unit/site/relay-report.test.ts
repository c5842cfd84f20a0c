import { describe, expect, it } from 'vitest';
import type { RelayCommand } from '../../../contracts/relay-protocol';
import { inventoryDigest } from '../../../site/lan-protocol';
import { UplinkError } from '../../../site/ports';
import { Relay } from '../../../site/relay/relay';
import {
  FakeLan,
  FakeUplink,
  flush,
  inventoryMessage,
  ManualClock,
  MemoryStateStore,
  networkDown,
  T0,
} from './fakes';
import { CREDENTIAL, SILENT_MS, TestSite, TIMING, vm } from './site-harness';

/** The site's first report: a relay listens one silence threshold before it speaks. */
async function firstReport(site: TestSite): Promise<void> {
  await site.run(SILENT_MS);
  expect(site.uplink.reports).toHaveLength(1);
}

describe('relay report', () => {
  it('listens one silence threshold after starting, then reports every host heard', async () => {
    // given a relay that just started and hears h1 and h2 every 2 s
    const site = await TestSite.open();

    // when less than the threshold has passed, then it has sent nothing
    await site.run(SILENT_MS - 100);
    expect(site.uplink.reports).toEqual([]);

    // when the threshold is reached, then the report carries each host as heard, with how long ago, its
    // digest and (the control plane has none from this relay yet) its inventory
    await site.run(100);
    expect(site.uplink.last).toEqual({
      protocol: 2,
      siteId: 'dc1',
      relayId: 'r1',
      seq: T0,
      sentAt: T0 + SILENT_MS,
      hosts: ['h1', 'h2'].map((hostId) => {
        const content = {
          cluster: 'c1',
          bootId: `${hostId}-boot-1`,
          cpus: 16,
          memoryMiB: 32_768,
          vms: [{ id: `${hostId}-vm`, cpus: 2, memoryMiB: 4096, state: 'running' as const }],
        };
        return {
          hostId,
          lastHeardMsAgo: 0,
          // The first 128 bits of the digest the agent announces on the LAN.
          digest: inventoryDigest(content).slice(0, 32),
          // When the agent took the inventory: its first tick, at start.
          inventory: { ...content, takenAt: T0 },
        };
      }),
      results: [],
    });
    expect(site.uplink.attempts[0]?.credential).toBe(site.config.credential);
  });

  it('reports every relayReportMs while nothing changes, sooner when the response asks', async () => {
    const site = await TestSite.open();
    await firstReport(site);

    await site.run(10_000);
    expect(site.uplink.reports.map((r) => r.sentAt - T0)).toEqual([6000, 16_000]);

    // An open incident: the control plane asks for a report every 2 s.
    site.uplink.nextReportInMs = 2000;
    await site.run(14_000);
    expect(site.uplink.reports.map((r) => r.sentAt - T0)).toEqual([6000, 16_000, 26_000, 28_000, 30_000]);
  });

  it('reports at once when a host crosses the silence threshold, not before', async () => {
    // given h2 last heard at T0+6000, with the first report just sent
    const site = await TestSite.open();
    await firstReport(site);
    site.kill('h2');

    // when exactly the threshold has passed, then no report: silence is strictly above it
    await site.run(SILENT_MS);
    expect(site.uplink.reports).toHaveLength(1);

    // when the next tick comes, then the report goes out at once, well before the 10 s interval
    await site.run(100);
    const report = site.uplink.last;
    expect(report?.sentAt).toBe(T0 + 2 * SILENT_MS + 100);
    expect(report?.hosts.map((h) => [h.hostId, h.lastHeardMsAgo])).toEqual([
      ['h1', 100],
      ['h2', SILENT_MS + 100],
    ]);
  });

  it('reports at once when the silent host comes back', async () => {
    const site = await TestSite.open();
    await firstReport(site);
    site.kill('h2');
    await site.run(SILENT_MS + 100);
    const before = site.uplink.reports.length;

    // when h2's agent is heard again (at the next step: its heartbeat is overdue)
    site.revive('h2');
    await site.run(2000);

    // then the report goes out in that same step, the least gap after the last one (250 ms)
    // notwithstanding: a host coming back may end a failover as a false alarm
    expect(site.uplink.reports).toHaveLength(before + 1);
    expect(site.uplink.last?.sentAt).toBe(T0 + 2 * SILENT_MS + 100 + 100);
    expect(site.uplink.last?.hosts.find((h) => h.hostId === 'h2')?.lastHeardMsAgo).toBe(0);
  });

  it('reports at once when a VM changes state', async () => {
    // given the first report sent at T0+6000
    const site = await TestSite.open();
    await firstReport(site);

    // when h1's VM crashes, seen in its next heartbeat at T0+8000
    const vms = site.host('h1').hypervisor.vms;
    vms[0] = { ...(vms[0] ?? { id: 'h1-vm', cpus: 2, memoryMiB: 4096 }), state: 'crashed' };
    await site.run(2000);

    // then that heartbeat's content goes out at once
    expect(site.uplink.reports).toHaveLength(2);
    expect(site.uplink.last?.sentAt).toBe(T0 + 8000);
    expect(site.uplink.last?.hosts.find((h) => h.hostId === 'h1')?.inventory?.vms[0]?.state).toBe('crashed');
  });

  it('drops a malformed heartbeat rather than send a report the control plane would refuse', async () => {
    const site = await TestSite.open({ hostIds: ['h1'] });
    site.relay.receive({
      ...inventoryMessage({ hostId: 'h9', cluster: 'c1', bootId: 'b', cpus: 1, memoryMiB: 1, vms: [] }, T0),
      hostId: 'bad host id!',
    });
    await firstReport(site);
    expect(site.uplink.last?.hosts.map((h) => h.hostId)).toEqual(['h1']);
  });
});

describe('relay sequence numbers', () => {
  it('strictly increase, and a restarted relay never reuses one, even on a clock set back', async () => {
    // given a relay that has sent a few reports
    const state = new MemoryStateStore();
    const site = await TestSite.open({ state });
    site.uplink.nextReportInMs = 1000;
    await site.run(SILENT_MS + 3000);
    const before = site.uplink.reports.map((r) => r.seq);
    expect(before.length).toBeGreaterThan(2);

    // when it restarts on a clock that went back a minute
    site.clock.set(T0 - 60_000);
    await site.restartRelay();
    await site.run(SILENT_MS + 3000);

    // then every seq ever sent is above the one before it
    const seqs = site.uplink.reports.map((r) => r.seq);
    expect(seqs.length).toBeGreaterThan(before.length);
    for (let i = 1; i < seqs.length; i++)
      expect(seqs[i]).toBeGreaterThan(seqs[i - 1] ?? Number.POSITIVE_INFINITY);
    expect(state.saved?.seq).toBe(seqs.at(-1));
  });

  it('increase on every attempt while the uplink is down', async () => {
    const site = await TestSite.open();
    await firstReport(site);
    site.uplink.failure = networkDown();
    await site.run(20_000);
    site.uplink.failure = null;
    await site.run(10_000);
    const seqs = site.uplink.reports.map((r) => r.seq);
    expect(site.uplink.attempts.filter((a) => !a.accepted).length).toBeGreaterThan(2);
    expect(seqs).toEqual(seqs.map((_, i) => T0 + i));
  });

  it('retries with a growing backoff, capped at relayReportMs', async () => {
    const site = await TestSite.open();
    await firstReport(site);
    site.uplink.failure = networkDown();
    await site.run(40_000);
    const sentAt = site.uplink.reports.map((r) => r.sentAt - T0);
    // 16 s: the regular report fails; then 1, 2, 4, 8 s, then every 10 s.
    expect(sentAt).toEqual([6000, 16_000, 17_000, 19_000, 23_000, 31_000, 41_000]);
  });

  it('spreads its retries with full jitter: each wait is a random share of the backoff ceiling', async () => {
    // given a relay whose random source draws a quarter every time
    const site = await TestSite.open({ random: () => 0.25 });
    await firstReport(site);
    site.uplink.failure = networkDown();
    await site.run(20_000);
    const sentAt = site.uplink.reports.map((r) => r.sentAt - T0);
    // 16 s: the regular report fails; then a quarter of 1, 2, 4, 8, 10, 10… s (at the 100 ms tick)
    expect(sentAt.slice(0, 8)).toEqual([6000, 16_000, 16_300, 16_800, 17_800, 19_800, 22_300, 24_800]);
  });

  it('leaps ahead when the control plane calls its seq a replay (its state file was lost)', async () => {
    const site = await TestSite.open();
    await firstReport(site);
    site.uplink.failure = new UplinkError(409, 'stale-sequence', 'seq not above the last accepted one');
    await site.run(14_000);
    const seqs = site.uplink.reports.map((r) => r.seq);
    expect(seqs.length).toBe(4);
    const steps = seqs.slice(1).map((s, i) => s - (seqs[i] ?? 0));
    expect(steps.slice(1).every((step) => step > 1000)).toBe(true);
  });

  it('reports a host that died while the relay was down as silent after the restart', async () => {
    // given h2 dies while the relay is down for 20 s
    const state = new MemoryStateStore();
    const site = await TestSite.open({ state });
    await firstReport(site);
    site.kill('h2');
    site.clock.advance(20_000);

    // when the relay restarts
    await site.restartRelay();
    await site.run(SILENT_MS);

    // then its first report (after listening one threshold) has h1 heard (last at T0+30100) and h2 silent
    // since before the restart
    const report = site.uplink.last;
    expect(report?.sentAt).toBe(T0 + 32_000);
    expect(report?.hosts.map((h) => [h.hostId, h.lastHeardMsAgo])).toEqual([
      ['h1', 1900],
      ['h2', 26_000],
    ]);
  });
});

/** A relay program with the given loop on a manual clock, which heard h1 once, at T0. */
async function relayThatHeardH1(loopMs: number) {
  const clock = new ManualClock();
  const uplink = new FakeUplink();
  const relay = await Relay.open(
    { siteId: 'dc1', relayId: 'r1', credential: CREDENTIAL, timing: TIMING, fence: {}, loopMs },
    { clock, lan: new FakeLan(), uplink, state: new MemoryStateStore() },
  );
  relay.receive(
    inventoryMessage({ hostId: 'h1', cluster: 'c1', bootId: 'b1', cpus: 4, memoryMiB: 8192, vms: [] }, T0),
  );
  return { clock, uplink, relay };
}

describe('relay run loop', () => {
  it('ticks on its clock every loopMs until aborted', async () => {
    // given a relay program that heard one host
    const { clock, uplink, relay } = await relayThatHeardH1(100);

    // when it runs for the silence threshold and a bit, then stops
    const abort = new AbortController();
    const running = relay.run(abort.signal);
    for (let t = 0; t <= SILENT_MS + 200; t += 100) {
      clock.advance(100);
      await flush();
    }
    abort.abort();
    clock.advance(100);
    await running;

    // then it reported on its own at the end of the threshold, and again at the first tick after h1 went
    // silent (a silence skips the least gap between two reports)
    expect(uplink.reports.map((r) => r.sentAt - T0)).toEqual([SILENT_MS, SILENT_MS + 100]);
    expect(uplink.last?.hosts[0]?.lastHeardMsAgo).toBe(SILENT_MS + 100);
  });
});

describe('relay run loop wake-up', () => {
  it('reports an agent’s start answer at once, without waiting out loopMs', async () => {
    // given a running relay with a 5 s loop, whose last response handed it a start command for h1
    const clock = new ManualClock();
    const uplink = new FakeUplink();
    const lan = new FakeLan();
    const relay = await Relay.open(
      { siteId: 'dc1', relayId: 'r1', credential: CREDENTIAL, timing: TIMING, fence: {}, loopMs: 5000 },
      { clock, lan, uplink, state: new MemoryStateStore() },
    );
    lan.attach('r1', relay);
    const command: RelayCommand = {
      kind: 'start-vm',
      commandId: 'dc1:h9:1:start:vm-1:1',
      incidentId: 'dc1:h9:1',
      hostId: 'h1',
      vm: { id: 'vm-1', cpus: 2, memoryMiB: 2048 },
      issuedAt: T0,
      notAfter: T0 + 60_000,
    };
    uplink.commands = [command];
    const abort = new AbortController();
    const running = relay.run(abort.signal);
    // The first report goes out after the silence threshold and brings the command; the next tick sends it.
    for (let t = 0; t < SILENT_MS + 5000; t += 5000) {
      clock.advance(5000);
      await flush();
    }
    uplink.commands = [];
    const reports = uplink.reports.length;
    expect(reports).toBeGreaterThanOrEqual(1);

    // when h1's agent answers between two ticks
    relay.receive({
      kind: 'start-result',
      commandId: command.commandId,
      hostId: 'h1',
      outcome: 'succeeded',
      finishedAt: clock.now(),
    });
    await flush();

    // then the result went out with no clock time passing
    expect(uplink.reports.length).toBe(reports + 1);
    expect(uplink.last?.results.map((r) => r.commandId)).toEqual([command.commandId]);
    expect(uplink.last?.sentAt).toBe(clock.now());
    abort.abort();
    clock.advance(5000);
    await running;
  });
});

describe('relay run loop and the silence threshold', () => {
  it('ticks at the instant a host crosses the threshold, not a loop later', async () => {
    // given a relay with a 1 s loop that heard h1 once, at T0
    const { clock, uplink, relay } = await relayThatHeardH1(1000);
    const abort = new AbortController();
    const running = relay.run(abort.signal);

    // when time passes in 1 ms steps up to just past the threshold and its first report
    for (let t = 0; t < SILENT_MS + 5; t += 1) {
      clock.advance(1);
      await flush();
    }
    abort.abort();
    clock.advance(1000);
    await running;

    // then the silence went out 1 ms past the threshold, between two 1 s loop ticks
    const silent = uplink.reports.find((r) => (r.hosts[0]?.lastHeardMsAgo ?? 0) > SILENT_MS);
    expect(silent?.sentAt).toBe(T0 + SILENT_MS + 1);
  });
});

describe('relay report: inventories it knows are out of date', () => {
  it('drops an inventory of the same boot older than the one it holds (two pushes out of order)', async () => {
    const site = await TestSite.open({ hostIds: ['h1'] });
    await firstReport(site);
    // h1 starts a second VM: its agent pushes the new inventory.
    site.host('h1').hypervisor.vms.push(vm('h1-vm2'));
    await site.run(2_500);
    // A push of the content before, taken earlier, arrives late.
    const before = { hostId: 'h1', cluster: 'c1', bootId: 'h1-boot-1', cpus: 16, memoryMiB: 32_768 };
    site.relay.receive(inventoryMessage({ ...before, vms: [vm('h1-vm')] }, site.clock.now() - 2_000));
    site.uplink.nextReportInMs = 100;
    await site.run(1_000);
    // The control plane's copy is the newer one, and the reports go on with its digest, nothing more.
    expect(site.uplink.vmIdsOf('h1')).toEqual(['h1-vm', 'h1-vm2']);
    const newer = site.uplink.inventoryOf('h1');
    await site.run(10_000);
    const last = site.uplink.last?.hosts.find((h) => h.hostId === 'h1');
    expect(site.uplink.reports.length).toBeGreaterThan(2);
    expect(last).not.toHaveProperty('inventory');
    expect(last?.digest).toBe(newer === undefined ? undefined : inventoryDigest(newer).slice(0, 32));
  });

  it('reports a host heard in a new boot whose inventory it lacks as stale: liveness, never the old VMs', async () => {
    const site = await TestSite.open({ hostIds: ['h1'] });
    await firstReport(site);
    // h1 reboots; every inventory it sends is lost, its heartbeats are not.
    site.lan.drop = (_to, message) => message.kind === 'inventory';
    const h1 = site.host('h1').hypervisor;
    h1.boot = 'h1-boot-2';
    h1.vms = [];
    await site.run(12_000);
    // Heard, with the digest the new boot announces, and no inventory: the old one is not what it runs.
    const stale = site.uplink.last?.hosts.find((h) => h.hostId === 'h1');
    const rebooted = { cluster: 'c1', bootId: 'h1-boot-2', cpus: 16, memoryMiB: 32_768, vms: [] };
    expect(stale?.digest).toBe(inventoryDigest(rebooted).slice(0, 32));
    expect(stale).not.toHaveProperty('inventory');
    expect(stale?.lastHeardMsAgo).toBeLessThan(SILENT_MS);
    expect(site.uplink.inventoryOf('h1')?.bootId).toBe('h1-boot-1');
    // The inventory gets through again: it goes out, once.
    site.lan.drop = () => false;
    await site.run(12_000);
    expect(site.uplink.inventoryOf('h1')).toMatchObject({ bootId: 'h1-boot-2', vms: [] });
    expect(site.uplink.last?.hosts.find((h) => h.hostId === 'h1')).not.toHaveProperty('inventory');
  });
});
