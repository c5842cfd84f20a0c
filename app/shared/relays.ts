import { type HaPolicy, hostSilentAfterMs } from '../../core/policy';
import type { RelayRecord } from '../ports';

/**
 * A relay's liveness, with what its peers say of it on the LAN (RelayRecord.peers: each relay reports how
 * long ago it heard the site's other relays). `site` is the site's relays; without it, only the relay's own
 * reports count.
 *
 * - A relay is live while it reported within the relay silence (`relaySilentAfterMs`).
 * - A relay whose peers hear it on the LAN stays live one report interval longer: relays that hear each
 *   other take turns and each reports only every `relaySilentAfterMs` (relayPace), so a peer's word that it
 *   lives bridges its report coming due.
 * - A relay a live peer has not heard on the LAN for the silence threshold and one incident-pace interval
 *   more, and that has not reported since that peer last heard it, is not live, whatever its last report:
 *   it has died (with a host it heard, perhaps), and its word must stop counting at LAN speed rather than
 *   when its report is overdue. It is live again with its next report. The extra interval is the silenced
 *   relay's chance to speak for itself first: relays cut off from each other (but not dead) each report the
 *   other silent at the threshold, at once, and each report lifts the other's silence.
 */
export function isLiveRelay(
  relay: RelayRecord,
  now: number,
  policy: HaPolicy,
  site: readonly RelayRecord[] = [],
): boolean {
  if (relay.revoked || relay.lastSeenAt === null || peerSilenced(relay, site, now, policy)) return false;
  const age = now - relay.lastSeenAt;
  if (age <= policy.relaySilentAfterMs) return true;
  return age <= policy.relaySilentAfterMs + policy.relayReportMs && heardByPeer(relay, site, now, policy);
}

/** A relay that reported within the relay silence itself: whose word about its peers counts. */
function reportsItself(relay: RelayRecord, now: number, policy: HaPolicy): boolean {
  return !relay.revoked && relay.lastSeenAt !== null && now - relay.lastSeenAt <= policy.relaySilentAfterMs;
}

/** Another relay of the site that reports itself heard `relay` on the LAN within the silence threshold. */
function heardByPeer(
  relay: RelayRecord,
  site: readonly RelayRecord[],
  now: number,
  policy: HaPolicy,
): boolean {
  return site.some((peer) => {
    if (peer.relayId === relay.relayId || !reportsItself(peer, now, policy)) return false;
    const ago = peer.peers?.[relay.relayId];
    return ago !== undefined && ago <= hostSilentAfterMs(policy);
  });
}

/**
 * A peer that reports itself has not heard `relay` on the LAN for the silence threshold plus one incident
 * pace, and `relay` has not reported since that peer last heard it (allowing one incident-pace interval for
 * the uplink: a report sent just before it died reaches the control plane a little after its last heartbeat
 * reached the peer).
 */
export function peerSilenced(
  relay: RelayRecord,
  site: readonly RelayRecord[],
  now: number,
  policy: HaPolicy,
): boolean {
  if (relay.lastSeenAt === null) return false;
  const lastSeenAt = relay.lastSeenAt;
  return site.some((peer) => {
    if (peer.relayId === relay.relayId || peer.lastSeenAt === null || !reportsItself(peer, now, policy)) {
      return false;
    }
    const ago = peer.peers?.[relay.relayId];
    if (ago === undefined || ago < hostSilentAfterMs(policy) + policy.incidentReportMs) return false;
    const lastHeardAt = peer.lastSeenAt - ago;
    return lastSeenAt <= lastHeardAt + policy.incidentReportMs;
  });
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
  return relays.filter((r) => isLiveRelay(r, now, policy, relays));
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
  // A relay taking turns is asked for a report only every relaySilentAfterMs (relayPace), and stays live a
  // report interval past it while a peer hears it.
  return Math.min(policy.relaySilentAfterMs + policy.relayReportMs, asked + policy.incidentReportMs);
}

/**
 * A live relay that reported within the pace it was asked to keep (heardVoteWindowMs): one that can be
 * expected to take a command with its next report. An overdue relay may have died; a command sent to it
 * would wait out a whole attempt.
 */
export function isOnTime(
  relay: RelayRecord,
  now: number,
  policy: HaPolicy,
  site: readonly RelayRecord[] = [],
): boolean {
  return (
    isLiveRelay(relay, now, policy, site) &&
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
  site: readonly RelayRecord[] = [],
): (a: RelayRecord, b: RelayRecord) => number {
  const late = (r: RelayRecord): number => (isOnTime(r, now, policy, site) ? 0 : 1);
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
