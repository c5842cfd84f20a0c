import { type VmAttempt, WORKFLOW_ERROR } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { describeError } from '../shared/errors';
import { recordVmLeftDown } from './left-down';

/** VmUnplaced: no host could take the VM, or its attempts ran out. Reported, never silently dropped. */
export async function vmUnplaced(
  ctx: AppContext,
  attempt: VmAttempt,
  error: unknown,
): Promise<{ vmId: string; detail: string }> {
  const handedOver = describeError(error).startsWith(WORKFLOW_ERROR.VmHandedOver);
  const detail = handedOver
    ? `${attempt.vm.vmId} (${attempt.vm.priority}) is left to another incident: ${describeError(error)}`
    : `${attempt.vm.vmId} (${attempt.vm.priority}) stays down: ${describeError(error)}`;
  await recordVmLeftDown(ctx, attempt, 'vm-unplaced', detail, { counted: !handedOver });
  return { vmId: attempt.vm.vmId, detail };
}
