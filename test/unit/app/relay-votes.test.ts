import { describe, expect, it } from 'vitest';
import { detectOnce } from '../../../app/detector/detect';
import { runStep } from '../../../app/failover/steps';
import { DEFAULT_TIMING } from '../../../core/policy';
import { createWorld, enrolledRelay, host, T0, type TestRelay, type World } from './world';

/**
 * Relay votes at production timing (2 s heartbeats, silent after 3 missed, a report every 10 s, the
 * detector every 10 s), in virtual time: relays that report as the real relay does (at the latest the pace
 * their last response asked, and at once when a host crosses the silence threshold either way), driven in
 * the relay loop's 100 ms steps.
 */

const STEP_MS = 100;
const HEARTBEAT_MS = DEFAULT_TIMING.hostHeartbeatMs;
const SILENT_AFTER_MS = DEFAULT_TIMING.hostHeartbeatMs * DEFAULT_TIMING.missedHeartbeats;
const DETECTOR_TICK_MS = 10_000;
const HOSTS = ['h1', 'h2', 'h3'] as const;

interface SimRelay {
  readonly relay: TestRelay;
  /** When it stops reporting (dies); Infinity for never. */
  diesAt: number;
  /** Hosts it cannot hear from this instant on (a LAN fault between it and them). */
  readonly deafTo: Map<string, number>;
  nextReportAt: number;
  /** Hosts its last report called silent. */
  reportedSilent: Set<string>;
}

/** A site of three hosts and two relays at production timing, each relay's first report at `firstAt`. */
async function site(firstAt: { r1: number; r2: number }) {
  const world: World = createWorld();
  const relays = {
    r1: newRelay(await enrolledRelay(world, 'r1'), T0 + firstAt.r1),
    r2: newRelay(await enrolledRelay(world, 'r2'), T0 + firstAt.r2),
  };
  /** When each host crashes; Infinity for never. */
  const crashAt = new Map<string, number>(HOSTS.map((h) => [h, Number.POSITIVE_INFINITY]));
  // Hosts heartbeat every 2 s from T0; a crashed one last did at or before its crash.
  const lastHeartbeat = (hostId: string, now: number): number => {
    const until = Math.min(now, crashAt.get(hostId) ?? now);
    return T0 + Math.floor((until - T0) / HEARTBEAT_MS) * HEARTBEAT_MS;
  };
  const heardBy = (r: SimRelay, hostId: string, now: number): number =>
    now - Math.min(lastHeartbeat(hostId, now), Math.max(T0, r.deafTo.get(hostId) ?? now));
  let nextDetectorAt = T0 + DETECTOR_TICK_MS;

  /** Runs the site until `until` or until `stop` holds; returns the instant it held, or null. */
  async function run(until: number, stop: () => boolean): Promise<number | null> {
    while (world.clock.now() < until) {
      const now = world.clock.now();
      for (const r of Object.values(relays)) {
        if (now >= r.diesAt) continue;
        const silentNow = new Set(HOSTS.filter((h) => heardBy(r, h, now) > SILENT_AFTER_MS));
        const crossed = [...HOSTS].some((h) => silentNow.has(h) !== r.reportedSilent.has(h));
        if (now < r.nextReportAt && !crossed) continue;
        const response = await r.relay.report(
          HOSTS.map((h) => host(h, { lastHeardMsAgo: heardBy(r, h, now) })),
        );
        r.reportedSilent = silentNow;
        r.nextReportAt = now + Math.min(response.nextReportInMs, DEFAULT_TIMING.relayReportMs);
      }
      if (now >= nextDetectorAt) {
        await detectOnce(world.ctx, { evaluateCapacity: false });
        nextDetectorAt += DETECTOR_TICK_MS;
      }
      if (stop()) return now;
      world.clock.advance(STEP_MS);
    }
    return null;
  }

  const opened = () => [...world.workflow.executions.values()].some((i) => i.hostId === 'h1');
  return { world, relays, crashAt, run, opened };
}

function newRelay(relay: TestRelay, firstAt: number): SimRelay {
  return {
    relay,
    diesAt: Number.POSITIVE_INFINITY,
    deafTo: new Map(),
    nextReportAt: firstAt,
    reportedSilent: new Set(),
  };
}

describe('relay votes at production timing', () => {
  it.each([
    [0, 12_100],
    [3_000, 10_000],
    [6_000, 6_100],
    [9_900, 6_100],
  ])(
    'a relay dying with the host it last heard %i ms after its last report: the incident opens %i ms after the crash',
    async (sinceReport, expected) => {
      // given the relays report every 10 s, r1's last report `sinceReport` before the crash
      const crash = T0 + 60_000;
      const firstR1 = (crash - sinceReport - T0) % 10_000;
      const s = await site({ r1: firstR1, r2: (firstR1 + 4_300) % 10_000 });
      await s.run(crash, () => false);
      expect(s.opened()).toBe(false);

      // when h1 and r1 die together, r1 just after its report of that instant, if it had one
      s.crashAt.set('h1', crash);
      s.relays.r1.diesAt = crash + STEP_MS;
      const openedAt = await s.run(crash + 60_000, s.opened);

      // then the incident opens once r2 calls h1 silent (6 s after its last heartbeat) and r1 is overdue:
      // its last response asked for a report within 10 s, one incident-pace interval (2 s) more is allowed;
      // r2 reports every 2 s from its silence on, and the detector ticks every 10 s (at +10 s here)
      expect(openedAt).not.toBeNull();
      expect((openedAt ?? 0) - crash).toBe(expected);
      const [input] = [...s.world.workflow.executions.values()];
      expect(input?.evidence.relays.map((r) => r.relayId)).toEqual(['r2']);
      expect(input?.evidence.overdueRelays?.map((r) => r.relayId)).toEqual(['r1']);

      // and its fence goes through r2, on time, not through r1, which is still live but overdue
      if (input === undefined) throw new Error('no incident');
      await runStep(s.world.ctx, { step: 'dispatch-fence', incident: input, taskToken: 'tok-fence' });
      const [fence] = await s.world.stores.commands.listForIncident(input.siteId, input.incidentId);
      expect(fence?.relayId).toBe('r2');
    },
  );

  it('a live relay that still hears the host keeps its vote, however long another calls it silent', async () => {
    // given r2 loses sight of h1 (a LAN fault) while r1, alive, keeps hearing it
    const s = await site({ r1: 0, r2: 4_300 });
    await s.run(T0 + 30_000, () => false);
    s.relays.r2.deafTo.set('h1', T0 + 30_000);

    // when r2 calls h1 silent for two minutes
    const openedAt = await s.run(T0 + 150_000, s.opened);

    // then no incident opens: r1 reports within its pace, 10 s until it is told the incident pace, then 2 s
    expect(openedAt).toBeNull();
    expect(s.world.workflow.executions.size).toBe(0);
  });

  it('a relay that neither reports nor hears the host any more is not waited for past its pace', async () => {
    // given r1 stops reporting (not the host: h1 keeps running for r1's LAN, but r1 is gone)
    const s = await site({ r1: 0, r2: 4_300 });
    await s.run(T0 + 30_000, () => false);
    s.relays.r1.diesAt = T0 + 30_000;
    await s.run(T0 + 44_000, () => false);

    // when h1 crashes 14 s later, just after a heartbeat
    s.crashAt.set('h1', T0 + 44_000);
    const openedAt = await s.run(T0 + 120_000, s.opened);

    // then the incident opens as soon as r2 calls it silent: r1 was overdue long before
    expect((openedAt ?? 0) - (T0 + 44_000)).toBe(6_100);
  });
});
