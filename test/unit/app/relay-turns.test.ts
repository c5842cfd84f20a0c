import { describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import { recordReport } from '../../../app/ingest/record-report';
import { isLiveRelay } from '../../../app/shared/relays';
import type { HostReport, RelayReportV2 } from '../../../contracts/relay-protocol';
import { DEFAULT_TIMING, resolvePolicy } from '../../../core/policy';
import { createWorld, enrolledRelay, host, SITE, T0, type TestRelay, type World } from './world';

/**
 * Relays that hear each other take turns (app/ingest/pace.ts), and what their peers say of them on the LAN
 * counts (app/shared/relays.ts), at production timing (2 s heartbeats, 3 missed, 10 s reports) in virtual
 * time: relays that report as the real relay does (protocol v2, with their peers; at the pace their last
 * response asked, and at once when a host or a peer crosses the silence threshold either way), in the relay
 * loop's 100 ms steps.
 */

const STEP_MS = 100;
const HEARTBEAT_MS = DEFAULT_TIMING.hostHeartbeatMs;
const SILENT_AFTER_MS = DEFAULT_TIMING.hostHeartbeatMs * DEFAULT_TIMING.missedHeartbeats;
const POLICY = resolvePolicy(DEFAULT_TIMING);
const HOSTS = ['h1', 'h2', 'h3'] as const;
const RELAYS = ['r1', 'r2'] as const;
type RelayName = (typeof RELAYS)[number];

interface ModelRelay {
  readonly relay: TestRelay;
  seq: number;
  /** When it dies (stops reporting and heartbeating); Infinity for never. */
  diesAt: number;
  nextReportAt: number;
  reported: Set<string>;
  /** When each host and peer crossed into silence as its last report said: crossings are reported at once. */
  reportedSilent: Set<string>;
  readonly reportsAt: number[];
}

/** A site of three hosts and two relays that hear each other, each relay's first report at `firstAt`. */
async function site(firstAt: Record<RelayName, number>) {
  const world: World = createWorld();
  const relays = {} as Record<RelayName, ModelRelay>;
  for (const name of RELAYS) {
    relays[name] = {
      relay: await enrolledRelay(world, name),
      seq: 0,
      diesAt: Number.POSITIVE_INFINITY,
      nextReportAt: T0 + firstAt[name],
      reported: new Set(),
      reportedSilent: new Set(),
      reportsAt: [],
    };
  }
  const crashAt = new Map<string, number>(HOSTS.map((h) => [h, Number.POSITIVE_INFINITY]));
  /** Pairs that cannot hear each other on the LAN from an instant on (`a>b`: a does not hear b). */
  const deaf = new Map<string, number>();
  const lastBeat = (diesAt: number, now: number) =>
    T0 + Math.floor((Math.min(now, diesAt) - T0) / HEARTBEAT_MS) * HEARTBEAT_MS;
  const heard = (listener: string, speaker: string, speakerDiesAt: number, now: number): number =>
    now - Math.min(lastBeat(speakerDiesAt, now), Math.max(T0, deaf.get(`${listener}>${speaker}`) ?? now));

  const send = async (name: RelayName, r: ModelRelay, now: number) => {
    const hosts: HostReport[] = HOSTS.map((h) => {
      const obs = host(h, { lastHeardMsAgo: heard(name, h, crashAt.get(h) ?? now, now) });
      const { hostId, lastHeardMsAgo, ...inventory } = obs;
      const digest = `${h.replace('h', '')}`.padStart(32, '0');
      return { hostId, lastHeardMsAgo, digest, ...(r.reported.has(h) ? {} : { inventory }) };
    });
    const peers = RELAYS.filter((p) => p !== name).map((p) => ({
      relayId: p,
      lastHeardMsAgo: heard(name, p, relays[p].diesAt, now),
    }));
    r.seq += 1;
    const report: RelayReportV2 = {
      protocol: 2,
      siteId: SITE,
      relayId: name,
      seq: r.seq,
      sentAt: now,
      hosts,
      results: [],
      relays: peers,
    };
    const response = await recordReport(world.ctx, {
      authorization: `Bearer ${r.relay.credential}`,
      report,
    });
    for (const h of HOSTS) r.reported.add(h);
    r.reportedSilent = new Set([
      ...hosts.filter((h) => h.lastHeardMsAgo > SILENT_AFTER_MS).map((h) => h.hostId),
      ...peers.filter((p) => p.lastHeardMsAgo > SILENT_AFTER_MS).map((p) => p.relayId),
    ]);
    r.nextReportAt = now + Math.min(response.nextReportInMs, POLICY.relaySilentAfterMs);
    r.reportsAt.push(now - T0);
  };

  async function run(until: number, stop: () => boolean = () => false): Promise<number | null> {
    while (world.clock.now() < T0 + until) {
      const now = world.clock.now();
      for (const name of RELAYS) {
        const r = relays[name];
        if (now >= r.diesAt) continue;
        const silentNow = new Set<string>([
          ...HOSTS.filter((h) => heard(name, h, crashAt.get(h) ?? now, now) > SILENT_AFTER_MS),
          ...RELAYS.filter((p) => p !== name && heard(name, p, relays[p].diesAt, now) > SILENT_AFTER_MS),
        ]);
        const crossed =
          [...silentNow].some((x) => !r.reportedSilent.has(x)) ||
          [...r.reportedSilent].some((x) => !silentNow.has(x));
        if (now >= r.nextReportAt || crossed) await send(name, r, now);
      }
      if (stop()) return now - T0;
      world.clock.advance(STEP_MS);
    }
    return null;
  }
  const opened = (hostId: string) => [...world.workflow.executions.values()].some((i) => i.hostId === hostId);
  return { world, relays, crashAt, deaf, run, opened };
}

/** The gaps between consecutive entries of `times`. */
const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - (times[i] ?? 0));

describe('relays that hear each other take turns', () => {
  it('each reports every 30 s, spread so that the site is heard every 15 s: a third of the reports', async () => {
    const s = await site({ r1: 0, r2: 1000 });
    await s.run(300_000);
    // After the first minute, both on their turns.
    for (const name of RELAYS) {
      const steady = s.relays[name].reportsAt.filter((t) => t > 60_000);
      for (const gap of gaps(steady)) expect(gap).toBe(POLICY.relaySilentAfterMs);
    }
    const all = [...s.relays.r1.reportsAt, ...s.relays.r2.reportsAt]
      .filter((t) => t > 60_000)
      .sort((a, b) => a - b);
    for (const gap of gaps(all)) {
      expect(gap).toBeGreaterThanOrEqual(13_500);
      expect(gap).toBeLessThanOrEqual(16_500);
    }
    // 4 minutes: 16 reports where two relays at 10 s sent 48.
    expect(all.length).toBeLessThanOrEqual(17);
  });

  it('a relay the peers do not hear reports every 10 s, as before', async () => {
    const s = await site({ r1: 0, r2: 1000 });
    s.deaf.set('r2>r1', T0);
    s.deaf.set('r1>r2', T0);
    await s.run(120_000);
    const steady = s.relays.r1.reportsAt.filter((t) => t > 30_000);
    for (const gap of gaps(steady)) expect(gap).toBeLessThanOrEqual(DEFAULT_TIMING.relayReportMs);
  });
});

describe('what a relay’s peers say of it', () => {
  it('a relay that dies with the host it heard: the incident opens about 8 s after the crash, not at its turn', async () => {
    // Both on their turns; r1 reports at 120 s (it hears h1), and dies with h1 just after.
    const s = await site({ r1: 0, r2: 1000 });
    await s.run(100_000);
    // Right after r1's next report: its word that it hears h1 is as fresh as it gets.
    const before = s.relays.r1.reportsAt.length;
    await s.run(200_000, () => s.relays.r1.reportsAt.length > before);
    const crash = (s.relays.r1.reportsAt.at(-1) ?? 0) + 50;
    s.relays.r1.diesAt = T0 + crash;
    s.crashAt.set('h1', T0 + crash);
    const opened = await s.run(crash + 60_000, () => s.opened('h1'));
    expect(opened).not.toBeNull();
    // The LAN threshold (4–6 s after the crash), one incident pace for r1 to speak for itself (2 s), and the
    // report r2 was asked for at that moment; r1's turn would have held its vote 32 s.
    expect((opened ?? Number.NaN) - crash).toBeLessThanOrEqual(
      SILENT_AFTER_MS + POLICY.incidentReportMs + 500,
    );
    expect((opened ?? Number.NaN) - crash).toBeGreaterThanOrEqual(SILENT_AFTER_MS - HEARTBEAT_MS);
  });

  it('relays cut off from each other (both alive) keep their votes: no host is taken for silent', async () => {
    const s = await site({ r1: 0, r2: 1000 });
    await s.run(60_000);
    // r2 loses the LAN to r1 and to h1 at once; r1 still hears h1, and r2 as little as r2 hears it.
    const cut = s.world.clock.now();
    s.deaf.set('r2>r1', cut);
    s.deaf.set('r1>r2', cut);
    s.deaf.set('r2>h1', cut);
    await s.run(180_000);
    expect(s.opened('h1')).toBe(false);
  });

  it('a relay on its turn stays live while its peer hears it, and the site is partitioned when both fall silent', async () => {
    const s = await site({ r1: 0, r2: 1000 });
    await s.run(120_000);
    const control = async () => (await s.world.ctx.ports.sites.loadControl(SITE))?.relays ?? [];
    const now = s.world.clock.now();
    const relays = await control();
    // Between their turns, each relay's own report may be up to 30 s old: both live.
    for (const r of relays) expect(isLiveRelay(r, now, POLICY, relays)).toBe(true);
    // Both relays stop reporting (the site's uplink is cut): the last relay to report keeps the site live for
    // the relay silence (its peer with it, by its word), and the site is partitioned right after, as when
    // each relay reported every 10 s.
    const lastReport = Math.max(...relays.map((r) => r.lastSeenAt ?? 0));
    s.world.clock.advance(lastReport + POLICY.relaySilentAfterMs - now);
    expect((await detectOnce(s.world.ctx, { evaluateCapacity: false })).partitionedSites).toEqual([]);
    s.world.clock.advance(1);
    expect((await detectOnce(s.world.ctx, { evaluateCapacity: false })).partitionedSites).toEqual([SITE]);
  });
});
