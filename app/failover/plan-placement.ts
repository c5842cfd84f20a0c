import type { IncidentInput, PlanOutput } from '../../contracts/workflow';
import { planPlacement, wavesOf } from '../../core/placement';
import type { AppContext } from '../context';
import type { VmRecord } from '../ports';
import { coreVm, isRunning, placementLoads } from '../shared/capacity';
import { appendEvent, eventsOf } from '../shared/events';
import { METRIC } from '../shared/metrics';
import { storedPlan } from './plan-record';
import { loadScope, survivors } from './scope';

/** A VM of the failed host to restart: HA, and running there (or marked down by its fence) until then. */
function toRestart(vm: VmRecord, hostId: string): boolean {
  return vm.hostId === hostId && vm.ha && (vm.state === 'down' || isRunning(vm));
}

/**
 * PlanPlacement: core planPlacement of the failed host's HA VMs onto the cluster's other up hosts, loaded
 * with what they run and what is reserved. The plan is stored on the timeline and a repeated step returns
 * the stored plan, so a retry cannot change where VMs go.
 */
export async function planPlacementStep(ctx: AppContext, incident: IncidentInput): Promise<PlanOutput> {
  // Every read at once (a repeated step wastes all but the first): one read of the site's VMs serves
  // both what to restart and how loaded the survivors are.
  const [planned, { policy }, siteVms, hosts] = await Promise.all([
    eventsOf(ctx, incident.incidentId, 'placement-planned'),
    loadScope(ctx, incident.siteId, incident.cluster),
    ctx.ports.vms.listVms(incident.siteId),
    survivors(ctx, { siteId: incident.siteId, cluster: incident.cluster, failedHostId: incident.hostId }),
  ]);
  const stored = storedPlan(planned);
  if (stored !== null) return stored;
  const vms = siteVms.filter((vm) => toRestart(vm, incident.hostId));
  const loads = placementLoads(hosts, siteVms);
  const plan = planPlacement(vms.map(coreVm), loads, policy);
  const output: PlanOutput = {
    waves: wavesOf(plan).map((wave) => ({
      priority: wave.priority,
      vms: wave.placements.map((p) => ({
        vmId: p.vmId,
        cpus: p.cpus,
        memoryMiB: p.memoryMiB,
        priority: p.priority,
        hostId: p.hostId,
        reason: p.reason,
      })),
    })),
    unplaced: plan.unplaced.map((u) => ({
      vmId: u.vmId,
      priority: u.priority,
      reason: u.reason,
      detail: u.detail,
    })),
  };
  const waves = output.waves.map((w) => `${w.priority}: ${w.vms.length}`).join(', ');
  await appendEvent(
    ctx,
    incident.incidentId,
    'placement-planned',
    `${plan.placements.length} HA VM(s) of ${incident.hostId} planned onto ${loads.length} host(s)` +
      (waves === '' ? '' : ` (${waves})`) +
      (output.unplaced.length === 0 ? '' : `; ${output.unplaced.length} cannot be placed`),
    { plan: output, candidates: loads.map((l) => l.id) },
  );
  if (output.unplaced.length > 0) ctx.ports.metrics.count(METRIC.VmsUnplaced, output.unplaced.length);
  return output;
}
