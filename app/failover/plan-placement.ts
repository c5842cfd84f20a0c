import { type IncidentInput, type PlanOutput, workflowPlan } from '../../contracts/workflow';
import { planPlacement, wavesOf } from '../../core/placement';
import type { AppContext } from '../context';
import type { VmRecord } from '../ports';
import { isRunning, placementLoads } from '../shared/capacity';
import { appendEvent } from '../shared/events';
import { fencedHostIds, runningNow, storedHaSet } from '../shared/ha-set';
import { METRIC } from '../shared/metrics';
import { plannedVmIds, storedPlan } from './plan-record';
import { loadScope, survivors } from './scope';
import { startAttemptsFor } from './start-budget';

/** A VM of the failed host to restart: HA, and running there (or marked down by its fence) until then. */
function toRestart(vm: VmRecord, hostId: string): boolean {
  return vm.hostId === hostId && vm.ha && (vm.state === 'down' || isRunning(vm));
}

/**
 * PlanPlacement: core planPlacement of the incident's HA set (recorded when it opened, from the failed
 * boot's last inventory) onto the cluster's up hosts, loaded with what they run and what is reserved. The
 * failed host is one of them once it runs a new boot. A VM of the set that runs somewhere now (started by
 * hand, or by the new boot) is not started again: it is listed as running. The plan is stored on the
 * timeline and a repeated step returns the stored plan, so a retry cannot change where VMs go. The
 * execution gets the plan without its explanations (workflowPlan): the timeline keeps them.
 */
export async function planPlacementStep(ctx: AppContext, incident: IncidentInput): Promise<PlanOutput> {
  // Every read at once (a repeated step wastes all but the first): one read of the site's VMs serves
  // what runs where and how loaded the candidates are.
  const [events, { policy }, siteVms, hosts, failedHost] = await Promise.all([
    ctx.ports.incidents.listEvents(incident.incidentId),
    loadScope(ctx, incident.siteId, incident.cluster),
    ctx.ports.vms.listVms(incident.siteId),
    survivors(ctx, { siteId: incident.siteId, cluster: incident.cluster, failedHostId: incident.hostId }),
    ctx.ports.hosts.getHost(incident.siteId, incident.hostId),
  ]);
  const attemptsOf = (plan: PlanOutput) =>
    startAttemptsFor(plannedVmIds(plan).length, policy.maxStartAttempts);
  const stored = storedPlan(events);
  if (stored !== null) return workflowPlan(stored, attemptsOf(stored));
  const records = new Map(siteVms.map((vm) => [vm.vmId, vm]));
  const failed = { hostId: incident.hostId, host: failedHost, bootId: incident.bootId };
  // Incidents opened before the set was recorded fall back to what the records say now.
  const set =
    storedHaSet(events) ??
    siteVms
      .filter((vm) => toRestart(vm, incident.hostId))
      .map((vm) => ({
        vmId: vm.vmId,
        cpus: vm.cpus,
        memoryMiB: vm.memoryMiB,
        priority: vm.priority,
        antiAffinity: vm.antiAffinity,
      }));
  const fenced = fencedHostIds(hosts);
  const running = set.flatMap((vm) => {
    const hostId = runningNow(records.get(vm.vmId), failed, fenced);
    return hostId === null ? [] : [{ vmId: vm.vmId, hostId }];
  });
  const toStart = set.filter((vm) => !running.some((r) => r.vmId === vm.vmId));
  const loads = placementLoads(hosts, siteVms);
  const plan = planPlacement(
    toStart.map((vm) => ({
      id: vm.vmId,
      cpus: vm.cpus,
      memoryMiB: vm.memoryMiB,
      ha: true,
      priority: vm.priority,
      antiAffinity: vm.antiAffinity ?? undefined,
    })),
    loads,
    policy,
  );
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
    running,
  };
  const waves = output.waves.map((w) => `${w.priority}: ${w.vms.length}`).join(', ');
  await appendEvent(
    ctx,
    incident.incidentId,
    'placement-planned',
    `${plan.placements.length} HA VM(s) of ${incident.hostId} planned onto ${loads.length} host(s)` +
      (waves === '' ? '' : ` (${waves})`) +
      (output.unplaced.length === 0 ? '' : `; ${output.unplaced.length} cannot be placed`) +
      (running.length === 0
        ? ''
        : `; ${running.length} already run${running.length === 1 ? 's' : ''} (${running.map((r) => `${r.vmId} on ${r.hostId}`).join(', ')})`),
    { plan: output, candidates: loads.map((l) => l.id) },
  );
  if (output.unplaced.length > 0) ctx.ports.metrics.count(METRIC.VmsUnplaced, output.unplaced.length);
  return workflowPlan(output, attemptsOf(output));
}
