import { type OperatorDecision, WORKFLOW_ERROR } from '../../contracts/workflow';
import type { AppContext } from '../context';
import type { IncidentRecord, OperatorAnswer } from '../ports';
import { listAdoptedLeftOf } from '../recovery/left-down';
import { settleTask } from './callbacks';
import { appendEvent } from './events';
import { closeIncident, updateIncident } from './incidents';

/**
 * What answering an incident's wait for an operator did: completed the waiting task, resumed the failover
 * in an execution of its own (the wait had ended), closed the incident (its host came back after the wait
 * ended), left it for AwaitOperator to find when it stores its token, or nothing (answered before).
 */
export type AnswerEffect = 'completed-wait' | 'resumed' | 'closed' | 'left-for-wait' | 'already-answered';

/**
 * Answers an incident's wait for an operator, whenever it comes: the operator confirmed the host off, or
 * the host was heard again (same boot, or a new one). The answer is written on the incident with one
 * conditional write, and the first one stands: AwaitOperator storing its token and OperatorTimedOut ending
 * the wait write the same item, so exactly one of them, or this call, acts on it.
 *
 * - The wait is on (a token): the task completes with the answer (a new boot as HostRebootedError, which
 *   its Catch routes to HostRebooted). Should the task have just timed out, OperatorTimedOut finds the
 *   answer and leads on with it.
 * - The wait has ended (OperatorTimedOut wrote so): a confirmation or a new boot starts an execution that
 *   resumes the failover; the same boot closes the incident as a false alarm, nothing having moved.
 * - The wait is not on yet: AwaitOperator finds the answer when it stores its token.
 */
export async function answerOperatorWait(
  ctx: AppContext,
  incidentId: string,
  answer: OperatorAnswer,
): Promise<{ readonly effect: AnswerEffect; readonly incident: IncidentRecord }> {
  const { incident, changed } = await updateIncident(ctx, incidentId, (i) =>
    i.closedAt !== null || (i.operatorAnswer ?? null) !== null ? null : { operatorAnswer: answer },
  );
  if (!changed) return { effect: 'already-answered', incident };
  const token = incident.operatorTaskToken;
  if (token !== null) {
    await settleTask(ctx, token, taskOutcomeOf(answer));
    const { incident: cleared } = await updateIncident(ctx, incidentId, (current) =>
      current.operatorTaskToken === token ? { operatorTaskToken: null } : null,
    );
    return { effect: 'completed-wait', incident: cleared };
  }
  if ((incident.operatorWaitEndedAt ?? null) === null) return { effect: 'left-for-wait', incident };
  return resumeAfterWait(ctx, incident, answer);
}

/** What the AwaitOperator task completes with for an answer: a decision, or the error a new boot is. */
export function taskOutcomeOf(
  answer: OperatorAnswer,
): { readonly output: OperatorDecision } | { readonly error: string; readonly cause: string } {
  if (answer.decision === 'host-rebooted') {
    return { error: WORKFLOW_ERROR.HostRebooted, cause: `${answer.by} hears the host in a new boot` };
  }
  return { output: { decision: answer.decision, by: answer.by, at: answer.at } };
}

async function resumeAfterWait(
  ctx: AppContext,
  incident: IncidentRecord,
  answer: OperatorAnswer,
): Promise<{ readonly effect: AnswerEffect; readonly incident: IncidentRecord }> {
  const input = incident.input;
  if (answer.decision === 'host-came-back' || input === null) {
    await listAdoptedLeftOf(ctx, incident.incidentId);
    const { incident: closed } = await closeIncident(
      ctx,
      incident,
      'false-alarm',
      `${incident.hostId} was heard again in its failed boot (${answer.by}) after the wait for an operator ` +
        'had ended; nothing was restarted',
    );
    return { effect: 'closed', incident: closed };
  }
  const { executionArn } = await ctx.ports.workflow.resumeIncident(
    input,
    answer.decision === 'confirmed-off'
      ? {
          resume: 'operator-confirmed',
          operator: { decision: 'confirmed-off', by: answer.by, at: answer.at },
        }
      : { resume: 'host-rebooted' },
  );
  await appendEvent(
    ctx,
    incident.incidentId,
    'resumed',
    `${answer.decision === 'confirmed-off' ? `${answer.by} confirmed ${incident.hostId} off` : `${incident.hostId} is heard in a new boot`} ` +
      `after the wait for an operator had ended: the failover resumes in execution ${executionArn}`,
    { executionArn, decision: answer.decision, by: answer.by },
  );
  return { effect: 'resumed', incident };
}
