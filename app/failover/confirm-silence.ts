import type { ConfirmSilenceOutput, IncidentInput } from '../../contracts/workflow';
import type { HaPolicy } from '../../core/policy';
import type { AppContext } from '../context';
import type { RelayRecord } from '../ports';
import { appendEvent } from '../shared/events';
import { bootEnded } from '../shared/ha-set';
import { CONFIRM_STEP_MAX_WAIT_MS } from '../shared/policy';
import { hostSilence, isLiveRelay, liveRelays } from '../shared/relays';
import { rejectIfRebooted } from './host-rebooted';
import { loadScope, rejectIfSuperseded, requireHost } from './scope';

/**
 * How often the step re-reads the relays while it waits for their word: a fifth of the command pace at
 * which they report (25 ms at the production 2 s heartbeat), 10–100 ms; two reads of the site a poll.
 */
export function confirmPollMs(policy: HaPolicy): number {
  return Math.min(100, Math.max(10, Math.round(policy.hostHeartbeatMs / 80)));
}

/**
 * Every live relay has reported since the incident opened: each one's word on the host is fresh. The
 * report that opened the incident does not count for its relay (it is the evidence being confirmed).
 */
export function freshEvidence(
  relays: readonly RelayRecord[],
  openedAt: number,
  now: number,
  policy: HaPolicy,
): boolean {
  return liveRelays(relays, now, policy).every((r) => r.lastSeenAt !== null && r.lastSeenAt > openedAt);
}

/**
 * ConfirmSilence: is the host still silent, by every live relay's word given after the incident opened?
 *
 * The host gets `confirmSilenceMs` after the opening to be heard again (WaitBeforeConfirm waits its whole
 * seconds, this step the rest: Step Functions waits in seconds), and the step then waits for the evidence
 * rather than for a fixed time: a report from every live relay since the opening. While a failover is under
 * way the relays report at the command pace (a sixteenth of a heartbeat), so that word is in moments after
 * the opening. A relay that has not reported one incident pace after the grace is judged on its last
 * report, as before (one that still hears the host keeps it from being fenced while it is on time; an
 * overdue one is ignored). A host heard again, a new boot or no live relay ends the wait at once.
 *
 * Still silent when every live relay still calls it silent, and also when no relay is live: then the
 * fencing policy suppresses the fence as a partition (rule 2).
 */
export async function confirmSilence(
  ctx: AppContext,
  incident: IncidentInput,
): Promise<ConfirmSilenceOutput> {
  const { clock } = ctx.ports;
  const read = () =>
    Promise.all([
      loadScope(ctx, incident.siteId, incident.cluster),
      requireHost(ctx, incident.siteId, incident.hostId),
    ]);
  let [{ control, policy }, host] = await read();
  let now = clock.now();
  const waitedFrom = now;
  const grace = incident.openedAt + policy.confirmSilenceMs;
  const deadline = Math.min(grace + policy.incidentReportMs, waitedFrom + CONFIRM_STEP_MAX_WAIT_MS);
  const settled = () =>
    host.lifecycle.status === 'up' ||
    bootEnded(host, incident) ||
    liveRelays(control.relays, now, policy).length === 0 ||
    (now >= grace && freshEvidence(control.relays, incident.openedAt, now, policy));
  while (clock.sleep !== undefined && now < deadline && !settled()) {
    await clock.sleep(now < grace ? grace - now : Math.min(confirmPollMs(policy), deadline - now));
    [{ control, policy }, host] = await read();
    now = clock.now();
  }
  // A new boot is not a false alarm: the failed boot's VMs are down (HostRebooted restarts them).
  rejectIfRebooted(host, incident);
  rejectIfSuperseded(host, incident.incidentId);
  const silence = hostSilence(control.relays, incident.hostId, now, policy);
  const fresh = freshEvidence(control.relays, incident.openedAt, now, policy);
  const waitedMs = now - incident.openedAt;
  // When the last live relay's word came in (its latest report, the first since the opening but for a
  // poll's time): what the confirmation waited for the relays, the rest was the grace or the step's own.
  const lastWordMs = fresh
    ? Math.max(0, ...silence.live.map((r) => (r.lastSeenAt ?? incident.openedAt) - incident.openedAt))
    : null;
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
          freshNote(waitedMs, lastWordMs) +
          overdueNote(silence.views.filter((v) => v.overdue).map((v) => v.relayId))
        : `${hearing.join(', ')} hear${hearing.length === 1 ? 's' : ''} ${incident.hostId} again`;
  if (stillSilent) {
    await appendEvent(ctx, incident.incidentId, 'silence-confirmed', detail, {
      relays,
      fresh,
      waitedMs,
      lastWordMs,
    });
  }
  return { stillSilent, detail, relays };
}

/** How fresh the confirming evidence is, for the timeline (the measured part first: timelines shorten). */
function freshNote(waitedMs: number, lastWordMs: number | null): string {
  return lastWordMs !== null
    ? `; the last reported again ${lastWordMs} ms after the opening (confirmed at ${waitedMs} ms)`
    : `; not every live relay reported again within ${waitedMs} ms of the opening: judged on their last reports`;
}

/** The relays whose "heard" vote was ignored, for the timeline; empty when none. */
function overdueNote(relayIds: readonly string[]): string {
  return relayIds.length === 0
    ? ''
    : ` or is overdue for its report (${relayIds.join(', ')}: last heard it, vote ignored)`;
}
