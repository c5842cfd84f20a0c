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
  incident: HaSetIncident,
  /**
   * Takes over the VMs the host was being started with (app/recovery/adopt.ts), given the VM ids the host
   * ran: what it returns joins the set.
   */
  adopt: (ran: ReadonlySet<string>) => Promise<readonly AdoptedVm[]> = async () => [],
): Promise<IncidentVm[]> {
  const ran = haVmsOn(
    await ctx.ports.vms.listVms(incident.siteId, { hostId: incident.hostId }),
    incident.hostId,
  );
  const adopted = await adopt(new Set(ran.map((vm) => vm.vmId)));
  const vms = [...ran, ...adopted.map(({ vm }) => incidentVmOf(vm))].sort((a, b) =>
    compareIds(a.vmId, b.vmId),
  );
  const shown = ran.slice(0, 20).map((vm) => vm.vmId);
  const more = ran.length > shown.length ? `, and ${ran.length - shown.length} more` : '';
  const taken = adopted.map(({ vm, from }) => `${vm.vmId} (${from ?? 'a start'})`).join(', ');
  await ctx.ports.incidents.appendEvent({
    incidentId: incident.incidentId,
    at: incident.openedAt,
    kind: HA_SET_KIND,
    detail:
      `${incident.hostId} (boot ${incident.bootId}) ran ${ran.length} HA VM(s) when the incident opened` +
      (ran.length === 0 ? '' : `: ${shown.join(', ')}${more}`) +
      (adopted.length === 0
        ? ''
        : `; and was starting ${adopted.length} more, which it takes over: ${taken}`) +
      '; the incident restarts these and is recovered only when all of them run',
    data: {
      bootId: incident.bootId,
      vms,
      ...(adopted.length === 0 ? {} : { adopted: adopted.map(({ vm, from }) => ({ vmId: vm.vmId, from })) }),
    },
  });
  return vms;
}

/** What recordHaSet needs of the incident being opened. */
export interface HaSetIncident {
  readonly incidentId: string;
  readonly siteId: string;
  readonly hostId: string;
  readonly bootId: string;
  readonly openedAt: number;
}

/** A VM an incident takes over as it opens, and the incident it came from (null: none). */
export interface AdoptedVm {
  readonly vm: VmRecord;
  readonly from: string | null;
}

function incidentVmOf(vm: VmRecord): IncidentVm {
  return {
    vmId: vm.vmId,
    cpus: vm.cpus,
    memoryMiB: vm.memoryMiB,
    priority: vm.priority,
    antiAffinity: vm.antiAffinity,
  };
}

/** The VMs the incident took over as it opened (app/recovery/adopt.ts), from its HA set's line. */
export function storedAdopted(events: readonly IncidentEvent[]): string[] {
  const parsed = HaSetRecordSchema.safeParse(events.find((e) => e.kind === HA_SET_KIND)?.data);
  return parsed.success ? (parsed.data.adopted?.map((a) => a.vmId) ?? []) : [];
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

/** The ids of hosts whose lifecycle is fenced (confirmed powered off). */
export function fencedHostIds(hosts: readonly HostRecord[]): Set<string> {
  return new Set(hosts.filter((h) => h.lifecycle.status === 'fenced').map((h) => h.hostId));
}

/**
 * Where an HA VM of the incident runs now, by its record, or null. A record naming the failed host while
 * that host's inventory is still the failed boot's says what the dead boot ran, not what runs: null.
 */
export function runningNow(
  vm: VmRecord | undefined,
  failed: { readonly hostId: string; readonly host: HostRecord | null; readonly bootId: string },
  /**
   * Hosts confirmed powered off (fenced): a record naming one is what ran there before the fence, as when
   * a VM this incident took over was started by another failover off that host.
   */
  fencedHosts: ReadonlySet<string> = new Set(),
): string | null {
  if (vm === undefined || vm.hostId === null || !isRunning(vm)) return null;
  if (vm.hostId !== failed.hostId && fencedHosts.has(vm.hostId)) return null;
  const stale = vm.hostId === failed.hostId && (failed.host === null || !bootEnded(failed.host, failed));
  return stale ? null : vm.hostId;
}
