import type { OperatorDecision } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { ConflictError } from '../errors';
import { appendEvent } from '../shared/events';
import { incidentOf } from '../shared/host-lifecycle';
import { requireIncident } from '../shared/incidents';
import { answerOperatorWait } from '../shared/operator-wait';

/**
 * An operator's explicit confirmation that the host is powered off (safety rule 1's second way): accepted
 * whenever it comes while the incident waits for it (open, its host awaiting the operator in it), for the
 * host it names, also after the failover stopped waiting (the policy's operatorTimeoutMs). The
 * confirmation goes on the timeline first, as the evidence MarkFenced requires; then it answers the wait
 * (app/shared/operator-wait.ts): it completes the AwaitOperator task, or, once the wait has ended, starts
 * an execution that resumes the failover at MarkFenced. A repeated confirmation changes nothing.
 */
export async function confirmPowerOff(
  ctx: AppContext,
  args: { readonly incidentId: string; readonly hostId: string; readonly operator: string },
): Promise<OperatorDecision & { readonly incidentId: string; readonly hostId: string }> {
  const at = ctx.ports.clock.now();
  const incident = await requireIncident(ctx, args.incidentId);
  if (incident.hostId !== args.hostId) {
    throw new ConflictError(
      `incident ${args.incidentId} is about host ${incident.hostId}, not ${args.hostId}`,
    );
  }
  const answered = incident.operatorAnswer ?? null;
  if (answered?.decision === 'confirmed-off') {
    return { ...answered, decision: 'confirmed-off', incidentId: args.incidentId, hostId: args.hostId };
  }
  if (incident.outcome !== 'awaiting-operator' || incident.closedAt !== null || answered !== null) {
    throw new ConflictError(
      `incident ${args.incidentId} is not waiting for an operator (${incident.outcome}${answered === null ? '' : `, answered: ${answered.decision}`})`,
    );
  }
  const host = await ctx.ports.hosts.getHost(incident.siteId, incident.hostId);
  if (
    host === null ||
    host.lifecycle.status !== 'awaiting-operator' ||
    incidentOf(host.lifecycle) !== args.incidentId
  ) {
    throw new ConflictError(
      `host ${args.hostId} is ${host?.lifecycle.status ?? 'unknown'}, not awaiting the operator in incident ${args.incidentId}`,
    );
  }
  await appendEvent(
    ctx,
    args.incidentId,
    'power-off-confirmed',
    `${args.operator} confirmed ${args.hostId} is powered off`,
    {
      by: 'operator',
      operator: args.operator,
    },
  );
  const { effect, incident: after } = await answerOperatorWait(ctx, args.incidentId, {
    decision: 'confirmed-off',
    by: args.operator,
    at,
  });
  const standing = after.operatorAnswer ?? null;
  if (effect === 'already-answered' && standing?.decision !== 'confirmed-off') {
    // The host was heard again first: its answer stands and this confirmation is moot.
    throw new ConflictError(
      `incident ${args.incidentId} was answered first: ${standing?.decision ?? 'closed'}`,
    );
  }
  const decision: OperatorDecision =
    standing?.decision === 'confirmed-off'
      ? { decision: 'confirmed-off', by: standing.by, at: standing.at }
      : { decision: 'confirmed-off', by: args.operator, at };
  return { ...decision, incidentId: args.incidentId, hostId: args.hostId };
}
