import { type HaPolicy, hostSilentAfterMs } from '../../core/policy';
import type { RelayRecord } from '../ports';

/**
 * The steady pace of a relay (the `nextReportInMs` of a response when no incident calls for the fast
 * one). Relays of a site that hear each other on the LAN take turns: each reports only every
 * `relaySilentAfterMs` (30 s with the production timing), their reports spread evenly over it, so the
 * site is heard as often as before from two relays (every 15 s) at a third of the reports of each. That is
 * what liveness costs (docs/cost.md), and nothing is detected later for it:
 * - a host that goes silent is reported at once by every relay that notices (a report is due at every
 *   silence crossing, whatever the pace);
 * - a relay that dies is reported at once by the peers that stop hearing it, and from then on its word
 *   counts for nothing (app/shared/relays.ts isLiveRelay), where it used to count until its report was
 *   overdue: the case of a relay that dies with the host it heard is faster than before;
 * - a site whose relays all fall silent is partitioned when the last one's report is `relaySilentAfterMs`
 *   old, as before; a relay's peer vouches for it on the LAN while its turn comes due.
 * A relay that hears no peer, or that its peers do not hear, reports at `relayReportMs` as before.
 */
export function steadyPaceMs(args: {
  readonly relayId: string;
  /** The relay's peers as this report lists them (relay id → ms since heard); absent: none. */
  readonly peers: Readonly<Record<string, number>> | undefined;
  /** The site's relays as recorded, the reporting one's record from before this report. */
  readonly relays: readonly RelayRecord[];
  /** The site's policy for relays (the fastest of its clusters'). */
  readonly policy: HaPolicy;
  /** relayReportMs as the site applies it. */
  readonly reportMs: number;
  readonly now: number;
}): number {
  const { relayId, peers, relays, policy, reportMs, now } = args;
  const hears = (ago: number | undefined) => ago !== undefined && ago <= hostSilentAfterMs(policy);
  const turn = policy.relaySilentAfterMs;
  // The relays this one takes turns with: each hears the other, and reports itself within the silence.
  const partners = relays.filter(
    (r) =>
      r.relayId !== relayId &&
      !r.revoked &&
      r.lastSeenAt !== null &&
      now - r.lastSeenAt <= policy.relaySilentAfterMs &&
      hears(peers?.[r.relayId]) &&
      hears(r.peers?.[relayId]),
  );
  if (partners.length === 0 || turn <= reportMs) return reportMs;
  // The partners' next reports, as they were asked for them: this relay's goes where it is farthest from
  // every one of them on the turn's circle, within the second half of the turn (never sooner than half a
  // turn, so the spreading costs no extra reports; never later than a turn).
  const due = partners.map((r) => (r.lastSeenAt ?? now) + (r.nextReportInMs ?? reportMs));
  const distance = (at: number) =>
    Math.min(
      ...due.map((d) => {
        const x = (((at - d) % turn) + turn) % turn;
        return Math.min(x, turn - x);
      }),
    );
  const steps = 20;
  let best = turn;
  let bestDistance = distance(now + turn);
  for (let i = steps - 1; i >= steps / 2; i--) {
    const candidate = Math.round((turn * i) / steps);
    const d = distance(now + candidate);
    if (d > bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * When a peer this report calls silent on the LAN will be taken for silent (app/shared/relays.ts: the
 * silence threshold and one incident pace after it was last heard), the time until then, so that the relay
 * reports again at that moment and a relay that died is known without waiting for the next interval;
 * undefined when no peer is on its way there.
 */
export function untilPeerSilenceCountsMs(
  peers: Readonly<Record<string, number>> | undefined,
  policy: HaPolicy,
): number | undefined {
  const counts = hostSilentAfterMs(policy) + policy.incidentReportMs;
  const waits = Object.values(peers ?? {})
    .filter((ago) => ago > hostSilentAfterMs(policy) && ago < counts)
    .map((ago) => counts - ago);
  return waits.length === 0 ? undefined : Math.max(1, Math.min(...waits));
}
