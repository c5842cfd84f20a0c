import type { InventoryCluster } from '../../contracts/inventory';
import type { CapacityReport } from '../../core/capacity';
import type { PlacementPolicy } from '../../core/model';
import { resolvePolicy } from '../../core/policy';
import { capacityReport, type Host, listHosts, listVms, type Vm } from '../api';
import type { OperatorClient } from '../client';
import { type CommandContext, writeJson, writeLines } from '../context';
import { ApiError, UsageError } from '../errors';
import { EXIT, type ExitCode, formatNumber } from '../format';
import { siteIds } from '../lookup';
import { renderClusterReport } from '../plan';
import { getClusterPolicy } from './policy';

const RUNNING = new Set(['running', 'paused']);

/**
 * A cluster of the live site as the inventory file would describe it: each host with the VMs it runs now,
 * a host that is not up counted as in maintenance (it takes nothing), its fence verdict copied. The same
 * renderer then prints the same table as `halo plan <file>`.
 */
export function liveCluster(clusterId: string, hosts: readonly Host[], vms: readonly Vm[]): InventoryCluster {
  return {
    id: clusterId,
    hosts: hosts
      .filter((h) => h.cluster === clusterId)
      .map((h) => ({
        id: h.hostId,
        cpus: h.cpus,
        memoryMiB: h.memoryMiB,
        maintenance: h.lifecycle.status !== 'up',
        fencing: { fenceable: h.fencing.fenceable, reason: h.fencing.reason },
        vms: vms
          .filter((v) => v.hostId === h.hostId && RUNNING.has(v.state))
          .map((v) => ({
            id: v.vmId,
            cpus: v.cpus,
            memoryMiB: v.memoryMiB,
            ha: v.ha,
            priority: v.priority,
            ...(v.antiAffinity === null ? {} : { antiAffinity: v.antiAffinity }),
          })),
      })),
  };
}

/** The cluster's placement policy, from its effective policy; the production defaults on an older control plane. */
async function placementPolicy(
  client: OperatorClient,
  siteId: string,
  clusterId: string,
): Promise<PlacementPolicy> {
  try {
    const { effective } = await getClusterPolicy(client, siteId, clusterId);
    return {
      cpuOvercommit: effective.cpuOvercommit,
      reserveMiB: effective.reserveMiB,
      reserveCpus: effective.reserveCpus,
    };
  } catch (error) {
    if (!(error instanceof ApiError && (error.status === 404 || error.status === 501))) throw error;
    const { cpuOvercommit, reserveMiB, reserveCpus } = resolvePolicy({});
    return { cpuOvercommit, reserveMiB, reserveCpus };
  }
}

/**
 * `halo plan [cluster] [--site S]` against the live control plane: the control plane's N+1 verdict per
 * cluster (its own placement, under each cluster's policy), shown as `halo plan <file>` shows a file.
 * Exit 1 when a cluster does not survive the loss of a host, or some host cannot be fenced.
 */
export async function livePlanCommand(
  ctx: CommandContext,
  clusterId: string | undefined,
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const client = await ctx.client();
  const sites = await siteIds(client, options.site);
  const results: {
    siteId: string;
    cluster: InventoryCluster;
    policy: PlacementPolicy;
    report: CapacityReport;
    labels: Map<string, string>;
  }[] = [];
  for (const siteId of sites) {
    const [capacity, hosts, vms] = await Promise.all([
      capacityReport(client, siteId),
      listHosts(client, siteId),
      listVms(client, siteId),
    ]);
    for (const { clusterId: id, report } of capacity.clusters) {
      if (clusterId !== undefined && id !== clusterId) continue;
      const policy = await placementPolicy(client, siteId, id);
      // A host that is not up takes nothing, as one in maintenance would: the table says which state it is in.
      const labels = new Map(
        hosts
          .filter((h) => h.cluster === id && h.lifecycle.status !== 'up')
          .map((h) => [h.hostId, `${h.hostId} (${h.lifecycle.status})`]),
      );
      results.push({ siteId, cluster: liveCluster(id, hosts, vms), policy, report, labels });
    }
  }
  if (clusterId !== undefined && results.length === 0)
    throw new UsageError(
      `no cluster ${clusterId} ${options.site === undefined ? 'in any site' : `in site ${options.site}`}`,
    );
  const allSurvive = results.every((r) => r.report.survivesAnyOneHostFailure && r.report.automaticFailover);
  const code = allSurvive ? EXIT.ok : EXIT.checkFailed;
  if (ctx.json) {
    writeJson(ctx, {
      clusters: results.map((r) => ({
        siteId: r.siteId,
        id: r.cluster.id,
        policy: r.policy,
        report: r.report,
      })),
    });
    return code;
  }
  if (results.length === 0) {
    writeLines(ctx, ['no clusters (a cluster is known once a relay reports one of its hosts)']);
    return code;
  }
  const lines: string[] = [];
  for (const { siteId, cluster, policy, report, labels } of results) {
    if (lines.length > 0) lines.push('');
    lines.push(
      `site ${siteId}, cluster ${cluster.id} — policy: CPU overcommit ${formatNumber(policy.cpuOvercommit)}×, ` +
        `reserve per host ${policy.reserveMiB} MiB and ${formatNumber(policy.reserveCpus)} CPU`,
      ...renderClusterReport(cluster, policy, report, labels),
    );
  }
  writeLines(ctx, lines);
  return code;
}
