import type { ConfirmSilenceOutput, IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { appendEvent } from '../shared/events';
import { hostSilence, isLiveRelay } from '../shared/relays';
import { rejectIfRebooted } from './host-rebooted';
import { loadScope, rejectIfSuperseded, requireHost } from './scope';

/**
 * ConfirmSilence: after the wait, is the host still silent? Yes when every live relay still calls it silent,
 * and also when no relay is live: then the fencing policy suppresses the fence as a partition (rule 2).
 */
export async function confirmSilence(
  ctx: AppContext,
  incident: IncidentInput,
): Promise<ConfirmSilenceOutput> {
  const now = ctx.ports.clock.now();
  const [{ control, policy }, host] = await Promise.all([
    loadScope(ctx, incident.siteId, incident.cluster),
    requireHost(ctx, incident.siteId, incident.hostId),
  ]);
  // A new boot is not a false alarm: the failed boot's VMs are down (HostRebooted restarts them).
  rejectIfRebooted(host, incident);
  rejectIfSuperseded(host, incident.incidentId);
  const silence = hostSilence(control.relays, incident.hostId, now, policy);
  const relays = control.relays
    .filter((r) => !r.revoked)
    .map((r) => {
      const age = r.silentHosts[incident.hostId];
      return {
        relayId: r.relayId,
        live: isLiveRelay(r, now, policy, control.relays),
        // Aged to now: the relay measured it when it last reported.
        lastHeardMsAgo: age === undefined || r.lastSeenAt === null ? null : age + (now - r.lastSeenAt),
      };
    });
  const back = host.lifecycle.status === 'up';
  const stillSilent = !back && (silence.live.length === 0 || silence.silent);
  const hearing = silence.views.filter((v) => v.lastHeardMsAgo === null && !v.overdue).map((v) => v.relayId);
  const detail = back
    ? `${incident.hostId} came back (up, boot ${host.lifecycle.bootId})`
    : silence.live.length === 0
      ? 'no relay of the site is live: the site may be partitioned, which the fencing policy decides on'
      : silence.silent
        ? `every live relay (${silence.live.length}) still calls ${incident.hostId} silent` +
          overdueNote(silence.views.filter((v) => v.overdue).map((v) => v.relayId))
        : `${hearing.join(', ')} hear${hearing.length === 1 ? 's' : ''} ${incident.hostId} again`;
  if (stillSilent) await appendEvent(ctx, incident.incidentId, 'silence-confirmed', detail, { relays });
  return { stillSilent, detail, relays };
}

/** The relays whose "heard" vote was ignored, for the timeline; empty when none. */
function overdueNote(relayIds: readonly string[]): string {
  return relayIds.length === 0
    ? ''
    : ` or is overdue for its report (${relayIds.join(', ')}: last heard it, vote ignored)`;
}
