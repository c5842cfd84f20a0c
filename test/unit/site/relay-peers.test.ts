import { describe, expect, it } from 'vitest';
import { SILENT_MS, TestSite, TIMING } from './site-harness';

/**
 * The relay and the site's other relays (LAN protocol `relay-heartbeat`): it heartbeats each configured
 * peer, reports how long ago it heard each, reports at once when one falls silent or comes back, and keeps
 * the pace the control plane asks for, longer than its report interval while relays take turns.
 */

/** A site whose relay r1 is configured with peer r2; r2's heartbeats are delivered by `beat`. */
async function withPeer() {
  const site = await TestSite.open({ config: { peers: ['r2'] } });
  const beat = () => site.relay.receive({ kind: 'relay-heartbeat', relayId: 'r2' });
  /** Runs `ms`, r2 heartbeating every 2 s while `alive`. */
  const run = async (ms: number, alive = true) => {
    for (let t = 0; t < ms; t += 100) {
      if (alive && site.clock.now() % TIMING.hostHeartbeatMs === 0) beat();
      await site.run(100);
    }
  };
  return { site, beat, run };
}

describe('relay heartbeats between the site’s relays', () => {
  it('heartbeats each peer every hostHeartbeatMs, over the LAN', async () => {
    const { site, run } = await withPeer();
    await run(10_000);
    const beats = site.lan.sentTo('r2', 'relay-heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(5);
    expect(beats.length).toBeLessThanOrEqual(6);
    expect(beats[0]).toEqual({ kind: 'relay-heartbeat', relayId: 'r1' });
  });

  it('reports how long ago it heard each peer; a relay with no peer configured reports none', async () => {
    const { site, run } = await withPeer();
    await run(SILENT_MS + 500);
    expect(site.uplink.last?.relays).toEqual([{ relayId: 'r2', lastHeardMsAgo: expect.any(Number) }]);
    expect(site.uplink.last?.relays?.[0]?.lastHeardMsAgo).toBeLessThanOrEqual(TIMING.hostHeartbeatMs);

    const alone = await TestSite.open();
    await alone.run(SILENT_MS + 500);
    expect(alone.uplink.last).not.toHaveProperty('relays');
  });

  it('ignores a relay heartbeat from a relay it is not configured with', async () => {
    const { site, run } = await withPeer();
    site.relay.receive({ kind: 'relay-heartbeat', relayId: 'r9' });
    await run(SILENT_MS + 500);
    expect(site.uplink.last?.relays?.map((r) => r.relayId)).toEqual(['r2']);
  });

  it('reports at once when a peer falls silent, and again when it is heard again', async () => {
    const { site, run, beat } = await withPeer();
    await run(SILENT_MS + 10_500);
    const before = site.uplink.reports.length;
    // r2 stops: the report goes out as the threshold passes, not at the next interval.
    await run(SILENT_MS + 2500, false);
    const silentReport = site.uplink.reports.at(before);
    expect(silentReport?.relays?.[0]?.lastHeardMsAgo).toBeGreaterThan(SILENT_MS);
    expect((silentReport?.sentAt ?? 0) - (site.uplink.reports.at(before - 1)?.sentAt ?? 0)).toBeLessThan(
      TIMING.relayReportMs,
    );
    // Back: at once again.
    const count = site.uplink.reports.length;
    beat();
    await site.run(100);
    expect(site.uplink.reports.length).toBe(count + 1);
    expect(site.uplink.last?.relays?.[0]?.lastHeardMsAgo).toBeLessThanOrEqual(100);
  });

  it('keeps the pace asked for, 30 s while relays take turns, never past the relay silence', async () => {
    const { site, run } = await withPeer();
    site.uplink.nextReportInMs = 30_000;
    await run(SILENT_MS + 100_000);
    const times = site.uplink.reports.map((r) => r.sentAt).slice(1);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    for (const gap of gaps) expect(gap).toBe(30_000);
    // A pace past the relay silence (3 × relayReportMs) is held to it.
    site.uplink.nextReportInMs = 120_000;
    const n = site.uplink.reports.length;
    await run(70_000);
    const later = site.uplink.reports.slice(n - 1).map((r) => r.sentAt);
    for (const gap of later.slice(1).map((t, i) => t - (later[i] ?? 0))) {
      expect(gap).toBeLessThanOrEqual(3 * TIMING.relayReportMs);
    }
  });
});
