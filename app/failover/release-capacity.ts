import type { VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { describeError } from '../shared/errors';
import { appendEvent } from '../shared/events';

/**
 * ReleaseCapacity: the start failed, so its reservation goes back (safety rule 5) and the attempt, without
 * it, moves on to PickNextHost.
 */
export async function releaseCapacity(
  ctx: AppContext,
  attempt: VmAttempt,
  error: unknown,
): Promise<VmAttempt> {
  const { reservationId, ...rest } = attempt;
  const released =
    reservationId === undefined
      ? 'absent'
      : await ctx.ports.hosts.release(attempt.siteId, attempt.targetHostId, reservationId);
  await appendEvent(
    ctx,
    attempt.incidentId,
    'start-failed',
    `${attempt.vm.vmId} did not start on ${attempt.targetHostId} (attempt ${attempt.attempt}): ${describeError(error)}; ` +
      (released === 'released' ? 'its reservation is released' : 'no reservation was held'),
    {
      vmId: attempt.vm.vmId,
      hostId: attempt.targetHostId,
      attempt: attempt.attempt,
      reservationId: reservationId ?? null,
    },
  );
  return rest;
}
