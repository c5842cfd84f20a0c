import type { Fenceability } from '../../core/fenceability';
import type { AppContext } from '../context';
import type { HostRecord, SiteRecord, VmRecord } from '../ports';
import { hasAutostart } from '../shared/capacity';
import { hostFenceability } from '../shared/fence-readiness';
import { requireControl } from '../shared/site';

/** Every site, in id order. */
export async function listSites(ctx: AppContext): Promise<SiteRecord[]> {
  return ctx.ports.sites.listSites();
}

/** A host as the operator API shows it: its record, with the fence verdict its readiness gives. */
export type HostView = HostRecord & {
  /** Whether a relay can fence it now (null: no relay has checked), and why not. */
  readonly fencing: Fenceability;
};

/**
 * The hosts of a site with their lifecycle, capacity, reservations and each relay's fence readiness,
 * plus the verdict drawn from it; NotFoundError for an unknown site.
 */
export async function listHosts(ctx: AppContext, args: { readonly siteId: string }): Promise<HostView[]> {
  const control = await requireControl(ctx, args.siteId);
  const hosts = await ctx.ports.hosts.listHosts(args.siteId);
  return hosts.map((host) => ({ ...host, fencing: hostFenceability(host, control.relays) }));
}

/** A VM as the operator API shows it: its record, with what defeats its HA. */
export type VmView = VmRecord & {
  /** Settings that work against the VM's HA, each a sentence saying why; empty when none. */
  readonly misconfigurations: readonly string[];
};

/**
 * What is misconfigured about a VM. An HA VM with libvirt autostart on: after a fence its failover starts
 * it elsewhere, and the fenced host, once it boots again, would start a second copy by itself (the same
 * holds for any other host it is defined on with autostart on).
 */
export function vmMisconfigurations(vm: VmRecord): string[] {
  if (!vm.ha || !hasAutostart(vm)) return [];
  const hosts = vm.autostartOn.length > 0 ? vm.autostartOn : vm.hostId === null ? [] : [vm.hostId];
  const where = hosts.length === 0 ? '' : ` (${hosts.join(', ')})`;
  return [`libvirt autostart is on${where}: a fenced host that boots again would start a second copy`];
}

/**
 * The VMs of a site: where each runs (`hostId` while `state` is running or paused) and where it is defined
 * (`definedOn`), libvirt's reason and autostart, its HA metadata and misconfigurations; NotFoundError for
 * an unknown site.
 */
export async function listVms(ctx: AppContext, args: { readonly siteId: string }): Promise<VmView[]> {
  await requireControl(ctx, args.siteId);
  const vms = await ctx.ports.vms.listVms(args.siteId);
  return vms.map((vm) => ({ ...vm, misconfigurations: vmMisconfigurations(vm) }));
}
