import type { HaPolicy } from '../../core/policy';
import type { RelayRecord } from '../ports';

/** A relay counts when it is enrolled, not revoked, and reported within the policy's relay silence. */
export function isLiveRelay(relay: RelayRecord, now: number, policy: HaPolicy): boolean {
  return !relay.revoked && relay.lastSeenAt !== null && now - relay.lastSeenAt <= policy.relaySilentAfterMs;
}

/** The live relays of a site, in the order given. */
export function liveRelays(relays: readonly RelayRecord[], now: number, policy: HaPolicy): RelayRecord[] {
  return relays.filter((r) => isLiveRelay(r, now, policy));
}

/** What the site's relays say about one host. */
export interface HostSilence {
  readonly live: readonly RelayRecord[];
  /** True when at least one relay is live and every live relay calls the host silent. */
  readonly silent: boolean;
  /** Each live relay's last-heard age for the host, as it reported it; null where it hears the host. */
  readonly views: readonly { readonly relayId: string; readonly lastHeardMsAgo: number | null }[];
}

/**
 * Whether every live relay calls the host silent. With no live relay nothing is silent: the cloud cannot
 * tell a dead host from a cut link (safety rule 2), so that is a partition, judged elsewhere.
 */
export function hostSilence(
  relays: readonly RelayRecord[],
  hostId: string,
  now: number,
  policy: HaPolicy,
): HostSilence {
  const live = liveRelays(relays, now, policy);
  const views = live.map((r) => ({ relayId: r.relayId, lastHeardMsAgo: r.silentHosts[hostId] ?? null }));
  const silent = live.length > 0 && views.every((v) => v.lastHeardMsAgo !== null);
  return { live, silent, views };
}
