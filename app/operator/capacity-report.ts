import type { AppContext } from '../context';
import { assessSiteCapacity, type ClusterCapacity } from '../shared/capacity';
import { requireControl } from '../shared/site';

/**
 * A site's N+1 report: per cluster, whether it survives losing any one host, each host's plan, and
 * whether every failover runs without an operator (`automaticFailover`, false when a host cannot be fenced).
 */
export interface SiteCapacityReport {
  readonly siteId: string;
  readonly clusters: readonly ClusterCapacity[];
}

/**
 * N+1 per cluster (core assessCapacity) from the host and VM records, with HA metadata and each host's
 * fence verdict.
 */
export async function capacityReport(
  ctx: AppContext,
  args: { readonly siteId: string },
): Promise<SiteCapacityReport> {
  const control = await requireControl(ctx, args.siteId);
  return { siteId: args.siteId, clusters: await assessSiteCapacity(ctx, control) };
}
