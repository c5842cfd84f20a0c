import type { FencingPolicyOutput, IncidentInput } from '../../contracts/workflow';
import { decideFencing } from '../../core/fencing-policy';
import type { AppContext } from '../context';
import { fencingInputFor } from '../shared/fencing-guard';
import { rejectIfRebooted } from './host-rebooted';
import { loadScope, rejectIfSuperseded, requireHost } from './scope';

/**
 * CheckFencingPolicy: core decideFencing on fresh evidence (live relays, silent share of the cluster,
 * maintenance, the cluster's switch). Every "suppress" carries its reason and evidence for the alert.
 */
export async function checkFencingPolicy(
  ctx: AppContext,
  incident: IncidentInput,
): Promise<FencingPolicyOutput> {
  const now = ctx.ports.clock.now();
  const [{ control, policy }, host] = await Promise.all([
    loadScope(ctx, incident.siteId, incident.cluster),
    requireHost(ctx, incident.siteId, incident.hostId),
  ]);
  rejectIfRebooted(host, incident);
  rejectIfSuperseded(host, incident.incidentId);
  const decision = decideFencing(
    fencingInputFor({
      control,
      hostId: incident.hostId,
      cluster: incident.cluster,
      status: host.lifecycle.status,
      policy,
      now,
    }),
  );
  return {
    action: decision.action,
    reason: decision.reason,
    detail: decision.detail,
    evidence: { ...decision.evidence },
  };
}
