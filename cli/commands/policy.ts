import type * as z from 'zod';
import { ClusterPolicyViewSchema } from '../../contracts/operator-api';
import { DEPLOYMENT_WIDE_POLICY_KEYS, HaPolicyInputSchema, POLICY_KEYS } from '../../contracts/policy';
import { type HaPolicy, type HaPolicyInput, resolvePolicy } from '../../core/policy';
import { parseAnswer } from '../api';
import type { OperatorClient } from '../client';
import { type CommandContext, writeJson, writeLines } from '../context';
import { UsageError } from '../errors';
import { EXIT, type ExitCode, formatNumber, listOf, renderTable } from '../format';
import { findCluster, hostsOf } from '../lookup';
import { formatDuration } from '../time';

/** A cluster's policy as the API returns it. */
export type ClusterPolicy = z.infer<typeof ClusterPolicyViewSchema>;

/** `GET /v1/sites/{siteId}/clusters/{clusterId}/policy`. */
export async function getClusterPolicy(
  client: OperatorClient,
  siteId: string,
  clusterId: string,
): Promise<ClusterPolicy> {
  const body = await client.call('getClusterPolicy', { params: { siteId, clusterId } });
  return parseAnswer(ClusterPolicyViewSchema, body, 'getClusterPolicy');
}

/** A policy value for people: durations (`…Ms`) also in seconds or minutes. */
export function policyValue(key: string, value: number | undefined): string {
  if (value === undefined) return '';
  if (key.endsWith('Ms')) return `${formatNumber(value)} (${formatDuration(value)})`;
  return formatNumber(value);
}

function policyTable(view: ClusterPolicy, ctx: CommandContext, changed: readonly string[] = []): string[] {
  const defaults = view.defaults as Readonly<Record<string, number | undefined>>;
  // What the cluster would have without its override: the deployment's defaults, derived keys included.
  let deployment: Readonly<Record<string, number | undefined>> = defaults;
  try {
    deployment = resolvePolicy(view.defaults) as unknown as Readonly<Record<string, number>>;
  } catch {
    // Defaults the CLI's core cannot resolve (a newer control plane): show them as written.
  }
  const override = view.override as Readonly<Record<string, number | undefined>>;
  const effective = view.effective as Readonly<Record<string, number>>;
  return renderTable(
    [
      { header: 'key' },
      { header: 'effective', align: 'right' },
      { header: 'source' },
      { header: 'without override' },
    ],
    POLICY_KEYS.map((key) => {
      const overridden = override[key] !== undefined;
      const source = overridden
        ? changed.includes(key)
          ? ctx.style.warn('cluster (changed now)')
          : ctx.style.warn('cluster')
        : defaults[key] !== undefined
          ? 'deployment'
          : ctx.style.dim('derived');
      return [
        key,
        policyValue(key, effective[key]),
        source,
        overridden ? policyValue(key, deployment[key]) : '',
      ];
    }),
    '  ',
  );
}

function header(view: ClusterPolicy): string {
  const overridden =
    view.overridden.length === 0 ? 'no override' : `override: ${listOf(view.overridden, 20)}`;
  return `Cluster ${view.clusterId} (site ${view.siteId}): fencing ${view.fencingEnabled ? 'on' : 'OFF'}; ${overridden}`;
}

/**
 * `halo policy [cluster] [--site S]`: the effective policy of one cluster (every key, where each value
 * comes from), or of every cluster, with what each overrides.
 */
export async function policyShowCommand(
  ctx: CommandContext,
  clusterId: string | undefined,
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const client = await ctx.client();
  let clusters: { siteId: string; clusterId: string }[];
  if (clusterId !== undefined) clusters = [await findCluster(client, clusterId, options.site)];
  else {
    const seen = new Map<string, { siteId: string; clusterId: string }>();
    for (const h of await hostsOf(client, options.site))
      seen.set(`${h.siteId}/${h.cluster}`, { siteId: h.siteId, clusterId: h.cluster });
    clusters = [...seen.values()];
  }
  const views = await Promise.all(clusters.map((c) => getClusterPolicy(client, c.siteId, c.clusterId)));
  if (ctx.json) {
    writeJson(ctx, clusterId === undefined ? views : views[0]);
    return EXIT.ok;
  }
  if (views.length === 0) {
    writeLines(ctx, ['no clusters (a cluster is known once a relay reports one of its hosts)']);
    return EXIT.ok;
  }
  const lines: string[] = [];
  for (const view of views) {
    if (lines.length > 0) lines.push('');
    lines.push(header(view), ...policyTable(view, ctx));
  }
  writeLines(ctx, lines);
  return EXIT.ok;
}

/**
 * `key=value` pairs as an override change: a number sets the key, an empty value (`key=`) removes the
 * cluster's override of it. Keys are checked against the policy schema (the one of `cdk.json`'s
 * `halo:policy`).
 */
export function parseAssignments(pairs: readonly string[]): {
  set: HaPolicyInput;
  unset: (keyof HaPolicy)[];
} {
  if (pairs.length === 0)
    throw new UsageError('policy set: give at least one key=value (key= removes an override)');
  const set: Record<string, number> = {};
  const unset: (keyof HaPolicy)[] = [];
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`policy set: expected key=value, got ${pair}`);
    const key = pair.slice(0, at);
    const text = pair.slice(at + 1).trim();
    if (!(POLICY_KEYS as readonly string[]).includes(key))
      throw new UsageError(`policy set: unknown key ${key}; the keys are ${POLICY_KEYS.join(', ')}`);
    if ((DEPLOYMENT_WIDE_POLICY_KEYS as readonly string[]).includes(key))
      throw new UsageError(
        `policy set: ${key} applies to the whole deployment (cdk.json halo:policy), not per cluster`,
      );
    if (text === '') {
      unset.push(key as keyof HaPolicy);
      continue;
    }
    const value = Number(text);
    if (!Number.isFinite(value)) throw new UsageError(`policy set: ${key} must be a number, got ${text}`);
    set[key] = value;
  }
  const checked = HaPolicyInputSchema.safeParse(set);
  if (!checked.success)
    throw new UsageError(
      `policy set: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return { set: checked.data, unset };
}

/**
 * `halo policy set <cluster> key=value… [--site S]`: changes the cluster's run-time override, conditional on
 * the version read (a concurrent change is refused, not overwritten). The control plane checks that the
 * resulting policy resolves, and refuses it naming the field otherwise.
 */
export async function policySetCommand(
  ctx: CommandContext,
  clusterId: string,
  pairs: readonly string[],
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const { set, unset } = parseAssignments(pairs);
  const client = await ctx.client();
  const { siteId } = await findCluster(client, clusterId, options.site);
  const before = await getClusterPolicy(client, siteId, clusterId);
  const override: Record<string, number | undefined> = { ...before.override, ...set };
  for (const key of unset) delete override[key];
  const body = { override, expectedVersion: before.version };
  const after = parseAnswer(
    ClusterPolicyViewSchema,
    await client.call('setClusterPolicy', { params: { siteId, clusterId }, body }),
    'setClusterPolicy',
  );
  if (ctx.json) {
    writeJson(ctx, after);
    return EXIT.ok;
  }
  const changed = [...Object.keys(set), ...unset];
  writeLines(ctx, [
    `Cluster ${clusterId} (site ${siteId}): ${listOf(changed, 20)} ${changed.length === 1 ? 'is' : 'are'} changed.`,
    header(after),
    ...policyTable(after, ctx, changed),
  ]);
  return EXIT.ok;
}
