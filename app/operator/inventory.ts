import type { AppContext } from '../context';
import type { HostRecord, SiteRecord, VmRecord } from '../ports';
import { requireControl } from '../shared/site';

/** Every site, in id order. */
export async function listSites(ctx: AppContext): Promise<SiteRecord[]> {
  return ctx.ports.sites.listSites();
}

/** The hosts of a site with their lifecycle, capacity and reservations; NotFoundError for an unknown site. */
export async function listHosts(ctx: AppContext, args: { readonly siteId: string }): Promise<HostRecord[]> {
  await requireControl(ctx, args.siteId);
  return ctx.ports.hosts.listHosts(args.siteId);
}

/** The VMs of a site, where they run and their HA metadata; NotFoundError for an unknown site. */
export async function listVms(ctx: AppContext, args: { readonly siteId: string }): Promise<VmRecord[]> {
  await requireControl(ctx, args.siteId);
  return ctx.ports.vms.listVms(args.siteId);
}
