import type { OperatorDecision } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { settleTask } from './callbacks';
import { requireIncident, updateIncident } from './incidents';

/** Completes the AwaitOperator task with the decision, once: the token is cleared so nobody reuses it. */
export async function resolveOperatorWait(
  ctx: AppContext,
  incidentId: string,
  decision: OperatorDecision,
): Promise<void> {
  const incident = await requireIncident(ctx, incidentId);
  const token = incident.operatorTaskToken;
  if (token === null) return;
  await settleTask(ctx, token, { output: decision });
  await updateIncident(ctx, incidentId, (current) =>
    current.operatorTaskToken === token ? { operatorTaskToken: null } : null,
  );
}
