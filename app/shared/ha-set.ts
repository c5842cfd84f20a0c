import { HaSetRecordSchema, type IncidentVm } from '../../contracts/workflow';
import type { AppContext } from '../context';
import type { HostRecord, IncidentEvent, VmRecord } from '../ports';
import { isRunning } from './capacity';
import { compareIds } from './order';

/** Timeline kind of the incident's HA set, recorded once when the incident opens. */
export const HA_SET_KIND = 'ha-vms';

/** The HA VMs a host's record says it runs: the failed boot's last inventory while the host is silent. */
export function haVmsOn(vms: readonly VmRecord[], hostId: string): IncidentVm[] {
  return vms
    .filter((vm) => vm.hostId === hostId && vm.ha && isRunning(vm))
    .map((vm) => ({
      vmId: vm.vmId,
      cpus: vm.cpus,
      memoryMiB: vm.memoryMiB,
      priority: vm.priority,
      antiAffinity: vm.antiAffinity,
    }))
    .sort((a, b) => compareIds(a.vmId, b.vmId));
}

/**
 * Records the incident's HA set on its timeline: the HA VMs the failed boot ran, from its last inventory,
 * which the relays keep reporting for a silent host. Placement and Close read this set, never a later
 * inventory: a host that boots again reports an empty one while the old boot's VMs are down. The event's
 * identity is the opening instant, so a repeated opening keeps the first set. In the table, not the
 * execution's input: a thousand VMs would not fit in a Step Functions payload.
 */
export async function recordHaSet(
  ctx: AppContext,
  incident: {
    readonly incidentId: string;
    readonly siteId: string;
    readonly hostId: string;
    readonly bootId: string;
    readonly openedAt: number;
  },
): Promise<IncidentVm[]> {
  const vms = haVmsOn(
    await ctx.ports.vms.listVms(incident.siteId, { hostId: incident.hostId }),
    incident.hostId,
  );
  const shown = vms.slice(0, 20).map((vm) => vm.vmId);
  const more = vms.length > shown.length ? `, and ${vms.length - shown.length} more` : '';
  await ctx.ports.incidents.appendEvent({
    incidentId: incident.incidentId,
    at: incident.openedAt,
    kind: HA_SET_KIND,
    detail:
      `${incident.hostId} (boot ${incident.bootId}) ran ${vms.length} HA VM(s) when the incident opened` +
      (vms.length === 0 ? '' : `: ${shown.join(', ')}${more}`) +
      '; the incident restarts these and is recovered only when all of them run',
    data: { bootId: incident.bootId, vms },
  });
  return vms;
}

/** The HA set recorded when the incident opened; null for incidents opened before it was recorded. */
export function storedHaSet(events: readonly IncidentEvent[]): IncidentVm[] | null {
  const recorded = events.find((e) => e.kind === HA_SET_KIND);
  const parsed = HaSetRecordSchema.safeParse(recorded?.data);
  return parsed.success ? parsed.data.vms : null;
}

/**
 * True when the host's stored inventory comes from another boot than the incident's: a relay heard the
 * host boot again, so the boot the incident is about has ended, and every VM process with it. A boot id
 * is the kernel's, changed only by a boot.
 */
export function bootEnded(host: HostRecord, incident: { readonly bootId: string }): boolean {
  return host.bootId !== incident.bootId;
}

/**
 * Where an HA VM of the incident runs now, by its record, or null. A record naming the failed host while
 * that host's inventory is still the failed boot's says what the dead boot ran, not what runs: null.
 */
export function runningNow(
  vm: VmRecord | undefined,
  failed: { readonly hostId: string; readonly host: HostRecord | null; readonly bootId: string },
): string | null {
  if (vm === undefined || vm.hostId === null || !isRunning(vm)) return null;
  const stale = vm.hostId === failed.hostId && (failed.host === null || !bootEnded(failed.host, failed));
  return stale ? null : vm.hostId;
}
