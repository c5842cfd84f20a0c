import type { FencingPolicyOutput, IncidentInput, IncidentOutcome } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { listAdoptedLeftOf } from '../recovery/left-down';
import { appendEvent } from '../shared/events';
import { closeIncident, requireIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';

/**
 * FencingSuppressed: the policy said no (partition, mass silence, maintenance, switch off). The incident
 * closes with that outcome; the host stays suspect, and the detector reopens it once the guard clears.
 */
export async function fencingSuppressed(
  ctx: AppContext,
  incident: IncidentInput,
  policy: FencingPolicyOutput,
): Promise<{ outcome: IncidentOutcome }> {
  const record = await requireIncident(ctx, incident.incidentId);
  if (record.closedAt === null) {
    await appendEvent(
      ctx,
      incident.incidentId,
      'fencing-suppressed',
      `fence suppressed (${policy.reason}): ${policy.detail}`,
      {
        reason: policy.reason,
        evidence: policy.evidence,
      },
    );
  }
  // Before the close (a repeat lists what a crash cut short): the VMs it took over as it opened.
  await listAdoptedLeftOf(ctx, incident.incidentId);
  const { changed } = await closeIncident(ctx, incident, 'fencing-suppressed', policy.detail, {
    reason: policy.reason,
  });
  if (changed) ctx.ports.metrics.count(METRIC.FencingSuppressed);
  return { outcome: 'fencing-suppressed' };
}
