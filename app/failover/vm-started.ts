import type { StartResult, VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { appendEvent } from '../shared/events';
import { requireIncident } from '../shared/incidents';
import { METRIC, secondsBetween } from '../shared/metrics';
import { plannedVmIds, storedPlan } from './plan-record';

/**
 * VmStarted: the relay reported the VM started on the target. Recorded once per VM; the incident's first
 * start gives SecondsToFirstRestart, and the start that completes the plan gives SecondsToLastRestart.
 */
export async function vmStarted(
  ctx: AppContext,
  attempt: VmAttempt,
  result: StartResult,
): Promise<{ vmId: string; hostId: string; startedAt: number }> {
  const now = ctx.ports.clock.now();
  const [record, events] = await Promise.all([
    requireIncident(ctx, attempt.incidentId),
    ctx.ports.incidents.listEvents(attempt.incidentId),
  ]);
  const started = new Set(events.filter((e) => e.kind === 'vm-started').map((e) => e.data?.vmId));
  const out = { vmId: result.vmId, hostId: result.hostId, startedAt: result.finishedAt };
  if (started.has(result.vmId)) return out;
  await appendEvent(
    ctx,
    attempt.incidentId,
    'vm-started',
    `${result.vmId} runs on ${result.hostId} (attempt ${attempt.attempt}${attempt.triedHosts.length === 0 ? '' : `, after ${attempt.triedHosts.join(', ')}`})`,
    { vmId: result.vmId, hostId: result.hostId, attempt: attempt.attempt, commandId: result.commandId },
  );
  const seconds = secondsBetween(record.openedAt, now);
  if (started.size === 0) ctx.ports.metrics.seconds(METRIC.SecondsToFirstRestart, seconds);
  started.add(result.vmId);
  const plan = storedPlan(events);
  if (plan !== null && plannedVmIds(plan).every((id) => started.has(id))) {
    ctx.ports.metrics.seconds(METRIC.SecondsToLastRestart, seconds);
  }
  return out;
}
