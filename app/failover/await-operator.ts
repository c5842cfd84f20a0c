import type { IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { appendEvent } from '../shared/events';
import { incidentOf } from '../shared/host-lifecycle';
import { updateIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';
import { resolveOperatorWait } from '../shared/operator-wait';
import { requireHost } from './scope';

/**
 * AwaitOperator (callback task): stores the token an operator's confirmation (or the host's return)
 * completes. A host that came back before the token was stored found nothing to complete, so that case is
 * resolved here at once.
 */
export async function awaitOperator(
  ctx: AppContext,
  incident: IncidentInput,
  taskToken: string,
): Promise<{ detail: string }> {
  const now = ctx.ports.clock.now();
  const { changed } = await updateIncident(ctx, incident.incidentId, (i) =>
    i.operatorTaskToken === taskToken ? null : { operatorTaskToken: taskToken, outcome: 'awaiting-operator' },
  );
  const detail =
    `waiting for an operator to confirm ${incident.hostId} is powered off ` +
    `(POST /v1/incidents/${incident.incidentId}/confirm-power-off), or for the host to come back`;
  if (changed) {
    ctx.ports.metrics.count(METRIC.AwaitingOperator);
    await appendEvent(ctx, incident.incidentId, 'awaiting-operator', detail);
  }
  const host = await requireHost(ctx, incident.siteId, incident.hostId);
  if (incidentOf(host.lifecycle) !== incident.incidentId) {
    await resolveOperatorWait(ctx, incident.incidentId, {
      decision: 'host-came-back',
      by: 'halo:await-operator',
      at: now,
    });
  }
  return { detail };
}
