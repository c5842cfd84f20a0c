import type { AppContext } from '../context';
import type { RelayRecord, SiteControl } from '../ports';
import { compareIds } from '../shared/order';
import { defaultPolicy } from '../shared/policy';
import { isLiveRelay, isOnTime } from '../shared/relays';
import { requireControl } from '../shared/site';

/** A relay as the operator API shows it (contracts RelayViewSchema): never its credential hash. */
export interface RelayView {
  readonly siteId: string;
  readonly relayId: string;
  readonly status: 'enrolled' | 'revoked';
  readonly enrolledAt: number;
  readonly lastReportAt: number | null;
  readonly lastReportAgeMs: number | null;
  readonly seq: number | null;
  readonly nextReportInMs: number | null;
  readonly live: boolean;
  readonly onTime: boolean;
  readonly hostsHeard: readonly string[];
  readonly hostsSilent: readonly { readonly hostId: string; readonly lastHeardMsAgo: number }[];
  readonly hostsUnheard?: readonly string[];
}

/**
 * The relays of a site in id order, each with its last report (time, age, seq, the pace it was asked to
 * keep), whether it counts as live and on time (the deployment's relay silence, as the detector judges a
 * partition), and which of the site's hosts its last report heard or called silent. A host is heard
 * exactly when its last report listed it and heard
 * it within the silence threshold; a host it did not list at all is unheard (RelayRecord.unheardHosts).
 * NotFoundError for an unknown site.
 */
export async function listRelays(ctx: AppContext, args: { readonly siteId: string }): Promise<RelayView[]> {
  const control = await requireControl(ctx, args.siteId);
  const now = ctx.ports.clock.now();
  return control.relays
    .map((relay) => relayView(ctx, control, relay, now))
    .sort((a, b) => compareIds(a.relayId, b.relayId));
}

function relayView(ctx: AppContext, control: SiteControl, relay: RelayRecord, now: number): RelayView {
  const policy = defaultPolicy(ctx);
  const reported = relay.lastSeenAt !== null;
  const silent = relay.silentHosts;
  return {
    siteId: relay.siteId,
    relayId: relay.relayId,
    status: relay.revoked ? 'revoked' : 'enrolled',
    enrolledAt: relay.enrolledAt,
    lastReportAt: relay.lastSeenAt,
    lastReportAgeMs: relay.lastSeenAt === null ? null : Math.max(0, now - relay.lastSeenAt),
    seq: relay.lastSeq < 0 ? null : relay.lastSeq,
    nextReportInMs: relay.nextReportInMs ?? null,
    live: isLiveRelay(relay, now, policy, control.relays),
    onTime: isOnTime(relay, now, policy, control.relays),
    // Hosts it calls silent or did not list at all (not heard since it started) are not heard.
    hostsHeard: reported
      ? Object.keys(control.hosts)
          .filter((hostId) => !(hostId in silent) && !(relay.unheardHosts ?? []).includes(hostId))
          .sort(compareIds)
      : [],
    ...(relay.unheardHosts === undefined ? {} : { hostsUnheard: [...relay.unheardHosts].sort(compareIds) }),
    hostsSilent: Object.entries(silent)
      .map(([hostId, lastHeardMsAgo]) => ({ hostId, lastHeardMsAgo }))
      .sort((a, b) => compareIds(a.hostId, b.hostId)),
  };
}
