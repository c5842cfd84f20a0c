import type { VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { aboutVm, appendEvent, eventsOf, type IncidentEventKind } from '../shared/events';
import { METRIC } from '../shared/metrics';

/** Records a VM the waves leave down: one event and one VmsUnplaced count per VM, however often it runs. */
export async function recordVmLeftDown(
  ctx: AppContext,
  attempt: VmAttempt,
  kind: Extract<IncidentEventKind, 'vm-unplaced' | 'start-unconfirmed'>,
  detail: string,
  /** Whether it counts as a VM left unplaced (VmsUnplaced): not one another incident took over. */
  options: { readonly counted?: boolean } = {},
): Promise<void> {
  if ((await eventsOf(ctx, attempt.incidentId, kind, aboutVm(attempt.vm.vmId))).length > 0) return;
  await appendEvent(ctx, attempt.incidentId, kind, detail, {
    vmId: attempt.vm.vmId,
    hostId: attempt.targetHostId,
    attempt: attempt.attempt,
  });
  if (options.counted !== false) ctx.ports.metrics.count(METRIC.VmsUnplaced);
}
