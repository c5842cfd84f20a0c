import type { IncidentInput, IncidentOutcome } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { describeError } from '../shared/errors';
import { appendEvent } from '../shared/events';
import { updateIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';
import { rejectIfRebooted } from './host-rebooted';
import { requireHost, transitionIncidentHost } from './scope';

/**
 * FenceFailed: no confirmed power-off within the deadline, or no relay could fence. The host awaits the
 * operator, and nothing of it is restarted until someone confirms it is off or it comes back (rule 1).
 */
export async function fenceFailed(
  ctx: AppContext,
  incident: IncidentInput,
  error: unknown,
): Promise<{ outcome: IncidentOutcome; reason: string }> {
  const now = ctx.ports.clock.now();
  const reason = describeError(error);
  // Fencing failed because the host boots again (a relay refused to fence the new boot): no operator is
  // needed, HostRebooted restarts the failed boot's VMs.
  const host = await requireHost(ctx, incident.siteId, incident.hostId);
  rejectIfRebooted(host, incident);
  const change = await transitionIncidentHost(
    ctx,
    incident,
    () => ({ type: 'GiveUpFencing', at: now, incidentId: incident.incidentId, reason }),
    host,
  );
  await Promise.all([
    updateIncident(ctx, incident.incidentId, (i) =>
      i.outcome === 'in-progress' ? { outcome: 'awaiting-operator' } : null,
    ),
    change.summarized,
  ]);
  if (change.events.length > 0) {
    ctx.ports.metrics.count(METRIC.FenceFailed);
    await appendEvent(
      ctx,
      incident.incidentId,
      'fence-failed',
      `fencing ${incident.hostId} gave up (${reason}); none of its VMs is restarted until an operator confirms it is off or it comes back`,
      { reason },
    );
  }
  return { outcome: 'awaiting-operator', reason };
}
