import type { IncidentInput, OperatorDecision } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { HostRebootedError } from '../errors';
import { appendEvent } from '../shared/events';
import { updateIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';

/**
 * OperatorTimedOut: AwaitOperator's wait (the policy's operatorTimeoutMs) passed. Ends the wait, unless an
 * answer came meanwhile (its task completion found the task timed out): then it leads on with that answer.
 * Ending the wait and answering it are conditional writes of the same incident item, so exactly one of the
 * two happens first (app/shared/operator-wait.ts). The incident stays open after the wait ends: a
 * confirmation later resumes the failover in an execution of its own, so it works whenever it comes.
 */
export async function operatorTimedOut(ctx: AppContext, incident: IncidentInput): Promise<OperatorDecision> {
  const now = ctx.ports.clock.now();
  const { incident: record, changed } = await updateIncident(ctx, incident.incidentId, (i) =>
    (i.operatorAnswer ?? null) !== null || i.closedAt !== null || (i.operatorWaitEndedAt ?? null) !== null
      ? null
      : { operatorTaskToken: null, operatorWaitEndedAt: now },
  );
  const answer = record.operatorAnswer ?? null;
  if (answer !== null) {
    if (answer.decision === 'host-rebooted') {
      throw new HostRebootedError(`${answer.by} hears ${incident.hostId} in a new boot`);
    }
    return { decision: answer.decision, by: answer.by, at: answer.at };
  }
  // Only the answer counts, not the host's state: a return that answers after this write finds the wait
  // ended and acts itself (a new boot resumes the failover); acting here too would restart twice.
  if (changed) {
    ctx.ports.metrics.count(METRIC.OperatorTimedOut);
    await appendEvent(
      ctx,
      incident.incidentId,
      'operator-timed-out',
      `no operator confirmed ${incident.hostId} off within ${incident.timing.operatorTimeoutSeconds} s: this ` +
        'execution stops waiting, the incident stays open and its VMs down; POST ' +
        `/v1/incidents/${incident.incidentId}/confirm-power-off later still restarts them`,
      { operatorTimeoutSeconds: incident.timing.operatorTimeoutSeconds },
    );
  }
  return { decision: 'no-answer', by: 'halo:operator-timed-out', at: now };
}
