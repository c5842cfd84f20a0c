import type { VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { describeError } from '../shared/errors';
import { recordVmLeftDown } from './left-down';
import { heldReservation } from './reserve-capacity';

/**
 * StartUnconfirmed: the start's result did not arrive in time. The VM may still come up; its reservation is
 * kept so nothing else takes its room, and ingest releases it once the host reports the VM running.
 */
export async function startUnconfirmed(
  ctx: AppContext,
  attempt: VmAttempt,
  error: unknown,
): Promise<{ vmId: string; detail: string }> {
  const target = { ...attempt, targetHostId: (await heldReservation(ctx, attempt)).hostId };
  const detail =
    `${attempt.vm.vmId} was ordered to start on ${target.targetHostId} but no result came in time ` +
    `(${describeError(error)}); its reservation is kept until the host reports it`;
  await recordVmLeftDown(ctx, target, 'start-unconfirmed', detail);
  return { vmId: attempt.vm.vmId, detail };
}
