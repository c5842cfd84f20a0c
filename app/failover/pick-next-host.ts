import type { VmAttempt } from '../../contracts/workflow';
import { rankHosts } from '../../core/placement';
import type { AppContext } from '../context';
import { NoCapacityError, StartAttemptsExhaustedError } from '../errors';
import { requireIncident } from '../shared/incidents';
import { attemptVm, loadScope, survivorLoads } from './scope';

/**
 * PickNextHost: the next attempt goes to the best host not tried yet (core rankHosts), within the bound on
 * attempts: the policy's, or the plan's where a host has so many HA VMs that retrying every one would take
 * the execution past Step Functions' history limit (start-budget.ts). Pure read: StartVm reserves next.
 */
export async function pickNextHost(ctx: AppContext, attempt: VmAttempt): Promise<VmAttempt> {
  const record = await requireIncident(ctx, attempt.incidentId);
  const { policy } = await loadScope(ctx, attempt.siteId, record.cluster);
  const most = Math.min(policy.maxStartAttempts, attempt.maxAttempts ?? policy.maxStartAttempts);
  if (attempt.attempt + 1 > most) {
    const why =
      most < policy.maxStartAttempts
        ? `at most ${most} in a failover of this many VMs; VM-level HA retries it after the incident`
        : `at most ${most}`;
    throw new StartAttemptsExhaustedError(
      `${attempt.vm.vmId} failed to start ${attempt.attempt} time(s) (${why})`,
    );
  }
  const tried = [...new Set([...attempt.triedHosts, attempt.targetHostId])];
  const { loads } = await survivorLoads(ctx, {
    siteId: attempt.siteId,
    cluster: record.cluster,
    failedHostId: attempt.hostId,
  });
  const [next] = rankHosts(await attemptVm(ctx, attempt), loads, policy, tried);
  if (next === undefined) {
    throw new NoCapacityError(
      `no untried up host of cluster ${record.cluster} can take ${attempt.vm.vmId} (tried ${tried.join(', ')})`,
    );
  }
  const { reservationId: _released, ...rest } = attempt;
  return { ...rest, targetHostId: next.hostId, attempt: attempt.attempt + 1, triedHosts: tried };
}
