import type { StartPin } from '../../core/vm-recovery';
import type { AppContext } from '../context';
import type { IncidentRecord, VmRecord } from '../ports';
import { runsUnfenced } from '../shared/capacity';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { appendEvent } from '../shared/events';
import { fencedHostIds, storedAdopted } from '../shared/ha-set';
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
  await handOver(
    ctx,
    incident,
    down.map((vm) => {
      const starts = commands.filter((c) => c.command.kind === 'start-vm' && c.command.vm.id === vm.vmId);
      const unanswered = starts.filter((c) => c.status === 'pending' || c.status === 'delivered').at(-1);
      // A start that worked on a host since fallen silent: the VM may run there until that host is fenced.
      const worked = starts.filter((c) => c.status === 'succeeded').at(-1);
      const workedOn = hosts.find((h) => h.hostId === worked?.command.hostId && h.hostId !== incident.hostId);
      const host =
        hosts.find((h) => h.hostId === unanswered?.command.hostId) ??
        (workedOn !== undefined && workedOn.lifecycle.status !== 'up' ? workedOn : undefined);
      return {
        vm,
        pinned: host === undefined ? null : { hostId: host.hostId, bootId: host.bootId },
        detail: `${vm.vmId} was left down by incident ${incident.incidentId}`,
      };
    }),
    'restarted when a host can take them (capacity changes, and the detector retries at a slow pace), ' +
      'until they run or an operator marks them down on purpose',
    now,
  );
}

/**
 * An incident that ends without a fence (its host came back, fencing was suppressed) restarts nothing, so
 * the VMs it took over as it opened (app/recovery/adopt.ts) would have no owner: VM-level HA takes those
 * not running, pinned to the host's failed boot (the start that went there may still bring them up there,
 * and only there, until that boot ends or the host is fenced). Repeat-safe, like listLeftDown.
 */
export async function listAdoptedLeft(
  given: AppContext,
  incident: IncidentRecord,
  adopted: readonly string[],
): Promise<void> {
  if (adopted.length === 0) return;
  const ctx = orderedClock(given);
  const now = ctx.ports.clock.now();
  const [vms, hosts] = await Promise.all([
    Promise.all(adopted.map((vmId) => ctx.ports.vms.getVm(incident.siteId, vmId))),
    ctx.ports.hosts.listHosts(incident.siteId),
  ]);
  const fenced = fencedHostIds(hosts);
  const left = vms.filter(
    (vm): vm is VmRecord =>
      vm?.ha === true &&
      !runsUnfenced(vm, (hostId) => fenced.has(hostId)) &&
      vm.recovery?.handedTo === incident.incidentId,
  );
  await handOver(
    ctx,
    incident,
    left.map((vm) => ({
      vm,
      pinned: { hostId: incident.hostId, bootId: incident.bootId },
      detail: `${vm.vmId} was taken over by incident ${incident.incidentId}, which ended without a fence`,
    })),
    `taken over as the incident opened; pinned to ${incident.hostId} until its boot ${incident.bootId} ends`,
    now,
  );
}

/** listAdoptedLeft for an incident closing without a fence, from its record and its HA set's line. */
export async function listAdoptedLeftOf(ctx: AppContext, incidentId: string): Promise<void> {
  const [incident, events] = await Promise.all([
    ctx.ports.incidents.get(incidentId),
    ctx.ports.incidents.listEvents(incidentId),
  ]);
  if (incident === null || incident.fencedAt !== null) return;
  await listAdoptedLeft(ctx, incident, storedAdopted(events));
}

/**
 * Lists the incident's HA VMs for VM-level HA (listForRestart, repeat-safe), each with its pin and its
 * first line, then says so once on the incident's timeline (`retry-listed`), with `why` after the names.
 */
async function handOver(
  ctx: AppContext,
  incident: IncidentRecord,
  entries: readonly { readonly vm: VmRecord; readonly pinned: StartPin | null; readonly detail: string }[],
  why: string,
  now: number,
): Promise<void> {
  await forEachConcurrently(entries, STEP_WRITE_CONCURRENCY, ({ vm, pinned, detail }) =>
    listForRestart(
      ctx,
      {
        vm,
        cause: 'host-failover',
        place: { hostId: incident.hostId, cluster: incident.cluster, bootId: incident.bootId },
        pinned,
        downIncidentId: incident.incidentId,
        detail,
      },
      now,
    ),
  );
  if (entries.length === 0) return;
  const ids = entries.map(({ vm }) => vm.vmId);
  await appendEvent(
    ctx,
    incident.incidentId,
    'retry-listed',
    `${ids.join(', ')} stay${ids.length === 1 ? 's' : ''} on the retry list: ${why}`,
    { vmIds: ids },
  );
}
