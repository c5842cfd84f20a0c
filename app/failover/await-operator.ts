import type { IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { settleTask } from '../shared/callbacks';
import { appendEvent } from '../shared/events';
import { incidentOf } from '../shared/host-lifecycle';
import { updateIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';
import { answerOperatorWait, taskOutcomeOf } from '../shared/operator-wait';
import { rejectIfRebooted } from './host-rebooted';
import { requireHost } from './scope';

/**
 * AwaitOperator (callback task): stores the token an operator's confirmation (or the host's return)
 * completes. An answer that came before the token was stored is acted on at once: one recorded on the
 * incident (app/shared/operator-wait.ts), or a host that is no longer in the incident. A host already heard
 * in a new boot goes to HostRebooted without waiting.
 */
export async function awaitOperator(
  ctx: AppContext,
  incident: IncidentInput,
  taskToken: string,
): Promise<{ detail: string }> {
  const now = ctx.ports.clock.now();
  const host = await requireHost(ctx, incident.siteId, incident.hostId);
  rejectIfRebooted(host, incident);
  const { incident: record, changed } = await updateIncident(ctx, incident.incidentId, (i) =>
    i.operatorTaskToken === taskToken ? null : { operatorTaskToken: taskToken, outcome: 'awaiting-operator' },
  );
  const detail =
    `waiting for an operator to confirm ${incident.hostId} is powered off ` +
    `(POST /v1/incidents/${incident.incidentId}/confirm-power-off), or for the host to come back`;
  if (changed) {
    ctx.ports.metrics.count(METRIC.AwaitingOperator);
    await appendEvent(ctx, incident.incidentId, 'awaiting-operator', detail);
  }
  const answer = record.operatorAnswer ?? null;
  if (answer !== null) {
    // Answered before the wait was on: the answer's writer left it to this step.
    await settleTask(ctx, taskToken, taskOutcomeOf(answer));
    await updateIncident(ctx, incident.incidentId, (current) =>
      current.operatorTaskToken === taskToken ? { operatorTaskToken: null } : null,
    );
  } else if (incidentOf(host.lifecycle) !== incident.incidentId) {
    // The host came back before the token was stored, and its return found nothing to answer.
    await answerOperatorWait(ctx, incident.incidentId, {
      decision: 'host-came-back',
      by: 'halo:await-operator',
      at: now,
    });
  }
  return { detail };
}
