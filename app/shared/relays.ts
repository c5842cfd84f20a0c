import type { HaPolicy } from '../../core/policy';
import type { RelayRecord } from '../ports';

/** A relay counts when it is enrolled, not revoked, and reported within the policy's relay silence. */
export function isLiveRelay(relay: RelayRecord, now: number, policy: HaPolicy): boolean {
  return !relay.revoked && relay.lastSeenAt !== null && now - relay.lastSeenAt <= policy.relaySilentAfterMs;
}

/**
 * The relay's last report heard the host: listed it, and not as silent. One that calls it silent, or did
 * not list it at all (not heard since it started), cannot carry a start to its agent.
 */
export function hearsHost(relay: RelayRecord, hostId: string): boolean {
  return !(hostId in relay.silentHosts) && !(relay.unheardHosts?.includes(hostId) ?? false);
}

/** The live relays of a site, in the order given. */
export function liveRelays(relays: readonly RelayRecord[], now: number, policy: HaPolicy): RelayRecord[] {
  return relays.filter((r) => isLiveRelay(r, now, policy));
}

/**
 * How long after its last report a relay's "I hear the host" still counts: the pace its last response asked
 * for, plus one incident-pace interval for its loop, the uplink and ingest. A relay that has not reported
 * by then is overdue: it may have died with the host it last heard. Never longer than the relay silence
 * (it is not live after that anyway); that silence alone for records from before the pace was kept.
 *
 * The pace is the one the relay was asked, not the incident pace as soon as another relay calls the host
 * silent: a relay that still hears the host has no reason to report early and keeps the pace of its last
 * response, so holding it to the incident pace would fence a live host one relay lost sight of.
 */
export function heardVoteWindowMs(relay: RelayRecord, policy: HaPolicy): number {
  const asked = relay.nextReportInMs;
  if (asked === undefined) return policy.relaySilentAfterMs;
  return Math.min(policy.relaySilentAfterMs, asked + policy.incidentReportMs);
}

/**
 * A live relay that reported within the pace it was asked to keep (heardVoteWindowMs): one that can be
 * expected to take a command with its next report. An overdue relay may have died; a command sent to it
 * would wait out a whole attempt.
 */
export function isOnTime(relay: RelayRecord, now: number, policy: HaPolicy): boolean {
  return (
    isLiveRelay(relay, now, policy) &&
    relay.lastSeenAt !== null &&
    now - relay.lastSeenAt <= heardVoteWindowMs(relay, policy)
  );
}

/**
 * The order relays are given commands in: on time first, overdue after, each group by `rank` (lower first).
 * Overdue relays stay candidates, since one may only be slow and it may be the only one there is.
 */
export function byCommandPreference(
  now: number,
  policy: HaPolicy,
  rank: (a: RelayRecord, b: RelayRecord) => number,
): (a: RelayRecord, b: RelayRecord) => number {
  const late = (r: RelayRecord): number => (isOnTime(r, now, policy) ? 0 : 1);
  return (a, b) => late(a) - late(b) || rank(a, b);
}

/** One live relay's view of a host. */
export interface RelayView {
  readonly relayId: string;
  /** How long ago it last heard the host, as it reported it; null where it hears the host. */
  readonly lastHeardMsAgo: number | null;
  /** Milliseconds since its last report. */
  readonly reportAgeMs: number;
  /** It hears the host but is overdue for its next report: its vote is ignored. */
  readonly overdue: boolean;
  /**
   * Its last report did not list the host at all (never heard since it started): no evidence of life,
   * so it does not outvote a relay that calls the host silent, nor makes it silent by itself.
   */
  readonly unheard: boolean;
}

/** What the site's relays say about one host. */
export interface HostSilence {
  readonly live: readonly RelayRecord[];
  /**
   * True when at least one live relay calls the host silent and no live relay that is on time hears it.
   * A relay overdue for its report (heardVoteWindowMs) no longer outvotes the relays that call it silent.
   */
  readonly silent: boolean;
  /** Each live relay's view of the host. */
  readonly views: readonly RelayView[];
}

/**
 * Whether the live relays call the host silent. With no live relay nothing is silent: the cloud cannot
 * tell a dead host from a cut link (safety rule 2), so that is a partition, judged elsewhere. A relay that
 * calls the host silent counts while it is live; one that hears it, only while it reports at its pace.
 */
export function hostSilence(
  relays: readonly RelayRecord[],
  hostId: string,
  now: number,
  policy: HaPolicy,
): HostSilence {
  const live = liveRelays(relays, now, policy);
  const views = live.map((r): RelayView => {
    const lastHeardMsAgo = r.silentHosts[hostId] ?? null;
    const reportAgeMs = now - (r.lastSeenAt ?? now);
    const unheard = lastHeardMsAgo === null && (r.unheardHosts?.includes(hostId) ?? false);
    return {
      relayId: r.relayId,
      lastHeardMsAgo,
      reportAgeMs,
      overdue: lastHeardMsAgo === null && !unheard && reportAgeMs > heardVoteWindowMs(r, policy),
      unheard,
    };
  });
  const silent =
    views.some((v) => v.lastHeardMsAgo !== null) &&
    views.every((v) => v.lastHeardMsAgo !== null || v.overdue || v.unheard);
  return { live, silent, views };
}
