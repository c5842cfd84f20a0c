import { DEPLOYMENT_WIDE_POLICY_KEYS, POLICY_KEYS } from '../../contracts/policy';
import { InvalidInputError } from '../../core/model';
import { type HaPolicy, type HaPolicyInput, resolvePolicy } from '../../core/policy';
import type { AppContext } from '../context';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { ClusterRecord } from '../ports';
import { retryOnConflict } from '../shared/retry';
import { requireControl } from '../shared/site';

/** A cluster's policy as the operator API shows it (contracts ClusterPolicyViewSchema). */
export interface ClusterPolicyView {
  readonly siteId: string;
  readonly clusterId: string;
  readonly effective: HaPolicy;
  readonly defaults: HaPolicyInput;
  readonly override: HaPolicyInput;
  readonly overridden: readonly (keyof HaPolicy)[];
  readonly version: number;
  readonly fencingEnabled: boolean;
}

/**
 * The policy the control plane acts on for a cluster (the deployment's defaults with the cluster's run-time
 * override spread over them, as app/shared/policy.ts clusterPolicy resolves it for ingest, the detector,
 * the failover and VM-level HA alike), with the override and which keys it sets. NotFoundError for an
 * unknown site or cluster.
 */
export async function getClusterPolicy(
  ctx: AppContext,
  args: { readonly siteId: string; readonly clusterId: string },
): Promise<ClusterPolicyView> {
  return policyView(ctx, await requireCluster(ctx, args.siteId, args.clusterId));
}

/**
 * Replaces a cluster's run-time override (`{}` removes it). Refused with a ValidationError naming the field
 * when it sets a deployment-wide key or when the effective policy does not resolve (core/policy.ts: a
 * duration not positive, a fence deadline shorter than one attempt…). The write is conditional on the
 * cluster's version: `expectedVersion` (what the caller read) when given, a ConflictError if it moved;
 * otherwise the version read here, retried on a lost race. Takes effect at once: every path reads the
 * cluster's record when it resolves its policy; an incident already open keeps the timings it opened with.
 */
export async function setClusterPolicy(
  ctx: AppContext,
  args: {
    readonly siteId: string;
    readonly clusterId: string;
    readonly override: HaPolicyInput;
    readonly expectedVersion?: number | undefined;
    readonly caller: string;
  },
): Promise<ClusterPolicyView> {
  const override = written(args.override);
  checkOverride(ctx, override);
  const attempt = async (): Promise<ClusterPolicyView> => {
    const cluster = await requireCluster(ctx, args.siteId, args.clusterId);
    if (args.expectedVersion !== undefined && cluster.version !== args.expectedVersion) {
      throw new ConflictError(
        `cluster ${args.siteId}/${args.clusterId} is at version ${cluster.version}, not ${args.expectedVersion}: read its policy again`,
      );
    }
    if (sameOverride(cluster.policy, override)) return policyView(ctx, cluster);
    const updated = await ctx.ports.sites.updateCluster(args.siteId, args.clusterId, cluster.version, {
      policy: override,
    });
    return policyView(ctx, updated);
  };
  // A caller who named the version it read wants to know it moved, not to overwrite what moved it.
  return args.expectedVersion === undefined ? retryOnConflict(attempt) : attempt();
}

async function requireCluster(ctx: AppContext, siteId: string, clusterId: string): Promise<ClusterRecord> {
  const control = await requireControl(ctx, siteId);
  const cluster = control.clusters.find((c) => c.clusterId === clusterId);
  if (cluster === undefined) throw new NotFoundError(`cluster ${siteId}/${clusterId} not found`);
  return cluster;
}

function policyView(ctx: AppContext, cluster: ClusterRecord): ClusterPolicyView {
  const override = written(cluster.policy);
  return {
    siteId: cluster.siteId,
    clusterId: cluster.clusterId,
    effective: resolvePolicy({ ...ctx.defaults, ...override }),
    defaults: { ...ctx.defaults },
    override,
    overridden: POLICY_KEYS.filter((key) => key in override),
    version: cluster.version,
    fencingEnabled: cluster.fencingEnabled,
  };
}

/** The keys actually set (zod may materialise optional keys as undefined). */
function written(input: HaPolicyInput): HaPolicyInput {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}

function sameOverride(a: HaPolicyInput, b: HaPolicyInput): boolean {
  const left = written(a);
  const right = written(b);
  const keys = Object.keys(left) as (keyof HaPolicy)[];
  return keys.length === Object.keys(right).length && keys.every((key) => left[key] === right[key]);
}

function checkOverride(ctx: AppContext, override: HaPolicyInput): void {
  for (const key of DEPLOYMENT_WIDE_POLICY_KEYS) {
    if (key in override) {
      const message = `${key} applies to the whole deployment: set it in cdk.json's halo:policy`;
      throw new ValidationError(`invalid body: override.${key}: ${message}`, [
        { path: `override.${key}`, message },
      ]);
    }
  }
  try {
    resolvePolicy({ ...ctx.defaults, ...override });
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    // core names the field as `policy.<key>`: the API names it where the caller wrote it.
    const key = /policy\.(\w+)/.exec(error.message)?.[1];
    const path = key === undefined ? 'override' : `override.${key}`;
    const message = error.message.replace(/^policy\./, '');
    throw new ValidationError(`invalid body: ${path}: ${message} (with the deployment's defaults)`, [
      { path, message },
    ]);
  }
}
