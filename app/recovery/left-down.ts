import type { AppContext } from '../context';
import type { IncidentRecord } from '../ports';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { appendEvent } from '../shared/events';
import { listForRestart } from './enqueue';
import { orderedClock } from './episode';

/**
 * A host incident closes with HA VMs of its set still down (no room, every start failed, a start without a
 * result): VM-level HA takes them over, on the site's retry list, until they run or an operator marks them
 * down on purpose. Called before the incident's close, so a repeated Close lists what a crash cut short
 * (listing is repeat-safe). A VM whose start of this incident got no result is pinned to that host: the
 * start may still bring it up there, so no other host may start it until that host's boot ends.
 */
export async function listLeftDown(
  given: AppContext,
  incident: IncidentRecord,
  vmIds: readonly string[],
): Promise<void> {
  if (vmIds.length === 0) return;
  const ctx = orderedClock(given);
  const { siteId } = incident;
  const now = ctx.ports.clock.now();
  const [vms, commands, hosts] = await Promise.all([
    ctx.ports.vms.listVms(siteId),
    ctx.ports.commands.listForIncident(siteId, incident.incidentId),
    ctx.ports.hosts.listHosts(siteId),
  ]);
  const down = vms.filter((vm) => vm.ha && vmIds.includes(vm.vmId));
  await forEachConcurrently(down, STEP_WRITE_CONCURRENCY, async (vm) => {
    const starts = commands.filter((c) => c.command.kind === 'start-vm' && c.command.vm.id === vm.vmId);
    const unanswered = starts.filter((c) => c.status === 'pending' || c.status === 'delivered').at(-1);
    // A start that worked on a host since fallen silent: the VM may run there until that host is fenced.
    const worked = starts.filter((c) => c.status === 'succeeded').at(-1);
    const workedOn = hosts.find((h) => h.hostId === worked?.command.hostId && h.hostId !== incident.hostId);
    const host =
      hosts.find((h) => h.hostId === unanswered?.command.hostId) ??
      (workedOn !== undefined && workedOn.lifecycle.status !== 'up' ? workedOn : undefined);
    await listForRestart(
      ctx,
      {
        vm,
        cause: 'host-failover',
        place: { hostId: incident.hostId, cluster: incident.cluster, bootId: incident.bootId },
        pinned: host === undefined ? null : { hostId: host.hostId, bootId: host.bootId },
        downIncidentId: incident.incidentId,
        detail: `${vm.vmId} was left down by incident ${incident.incidentId}`,
      },
      now,
    );
  });
  if (down.length === 0) return;
  await appendEvent(
    ctx,
    incident.incidentId,
    'retry-listed',
    `${down.map((vm) => vm.vmId).join(', ')} stay${down.length === 1 ? 's' : ''} on the retry list: ` +
      'restarted when a host can take them (capacity changes, and the detector retries at a slow pace), ' +
      'until they run or an operator marks them down on purpose',
    { vmIds: down.map((vm) => vm.vmId) },
  );
}
