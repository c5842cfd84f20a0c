import type { AppContext } from '../context';
import { NotFoundError } from '../errors';
import type { ClusterRecord } from '../ports';
import { retryOnConflict } from '../shared/retry';
import { requireControl } from '../shared/site';

/** A cluster's fencing switch after the change, and who changed it. */
export interface FencingResult {
  readonly cluster: ClusterRecord;
  readonly by: string;
}

/** Turns a cluster's fencing on or off (safety rule 7); NotFoundError for an unknown site or cluster. */
export async function setFencing(
  ctx: AppContext,
  args: {
    readonly siteId: string;
    readonly clusterId: string;
    readonly enabled: boolean;
    readonly caller: string;
  },
): Promise<FencingResult> {
  return retryOnConflict(async () => {
    const control = await requireControl(ctx, args.siteId);
    const cluster = control.clusters.find((c) => c.clusterId === args.clusterId);
    if (cluster === undefined) throw new NotFoundError(`cluster ${args.siteId}/${args.clusterId} not found`);
    if (cluster.fencingEnabled === args.enabled) return { cluster, by: args.caller };
    const updated = await ctx.ports.sites.updateCluster(args.siteId, args.clusterId, cluster.version, {
      fencingEnabled: args.enabled,
    });
    return { cluster: updated, by: args.caller };
  });
}
