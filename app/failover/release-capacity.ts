import type { VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { describeError } from '../shared/errors';
import { appendEvent } from '../shared/events';
import { heldReservation } from './reserve-capacity';

/**
 * ReleaseCapacity: the start failed, so its reservation goes back (safety rule 5) and the attempt, without
 * it and naming the host it was held on (the host this attempt tried), moves on to PickNextHost.
 */
export async function releaseCapacity(
  ctx: AppContext,
  attempt: VmAttempt,
  error: unknown,
): Promise<VmAttempt> {
  const { reservationId: _carried, ...rest } = attempt;
  const { reservationId, hostId } = await heldReservation(ctx, attempt);
  const released = await ctx.ports.hosts.release(attempt.siteId, hostId, reservationId);
  await appendEvent(
    ctx,
    attempt.incidentId,
    'start-failed',
    `${attempt.vm.vmId} did not start on ${hostId} (attempt ${attempt.attempt}): ${describeError(error)}; ` +
      (released === 'released' ? 'its reservation is released' : 'no reservation was held'),
    {
      vmId: attempt.vm.vmId,
      hostId,
      attempt: attempt.attempt,
      reservationId: released === 'released' ? reservationId : null,
    },
  );
  return { ...rest, targetHostId: hostId };
}
