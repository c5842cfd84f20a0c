import type { Fenceability } from '../../core/fenceability';
import type { AppContext } from '../context';
import type { HostRecord, SiteRecord, VmRecord } from '../ports';
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

/** The VMs of a site, where they run and their HA metadata; NotFoundError for an unknown site. */
export async function listVms(ctx: AppContext, args: { readonly siteId: string }): Promise<VmRecord[]> {
  await requireControl(ctx, args.siteId);
  return ctx.ports.vms.listVms(args.siteId);
}
