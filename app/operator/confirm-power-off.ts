import type { OperatorDecision } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { ConflictError } from '../errors';
import { appendEvent } from '../shared/events';
import { incidentOf } from '../shared/host-lifecycle';
import { requireIncident, updateIncident } from '../shared/incidents';

/**
 * An operator's explicit confirmation that the host is powered off (safety rule 1's second way): accepted
 * only while the incident waits for it, for the host it names. The confirmation goes on the timeline
 * first, as the evidence MarkFenced requires, and then completes the AwaitOperator task.
 */
export async function confirmPowerOff(
  ctx: AppContext,
  args: { readonly incidentId: string; readonly hostId: string; readonly operator: string },
): Promise<OperatorDecision & { readonly incidentId: string; readonly hostId: string }> {
  const at = ctx.ports.clock.now();
  const incident = await requireIncident(ctx, args.incidentId);
  const token = incident.operatorTaskToken;
  if (incident.hostId !== args.hostId) {
    throw new ConflictError(
      `incident ${args.incidentId} is about host ${incident.hostId}, not ${args.hostId}`,
    );
  }
  if (incident.outcome !== 'awaiting-operator' || token === null || incident.closedAt !== null) {
    throw new ConflictError(
      `incident ${args.incidentId} is not waiting for an operator (${incident.outcome})`,
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
  const decision: OperatorDecision = { decision: 'confirmed-off', by: args.operator, at };
  await ctx.ports.workflow.sendTaskSuccess(token, decision);
  await updateIncident(ctx, args.incidentId, (current) =>
    current.operatorTaskToken === token ? { operatorTaskToken: null } : null,
  );
  return { ...decision, incidentId: args.incidentId, hostId: args.hostId };
}
