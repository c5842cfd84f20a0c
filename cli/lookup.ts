import { type Host, listHosts, listSites, listVms, type Vm } from './api';
import type { OperatorClient } from './client';
import { UsageError } from './errors';
import { listOf } from './format';

/**
 * Operators name hosts, clusters and VMs by their ids; the API wants the site too. These find it: in the
 * site `--site` names, else in every site, refusing a name that two sites share until `--site` says which.
 */

/** The site ids to look in: the one given, else every site. */
export async function siteIds(client: OperatorClient, site: string | undefined): Promise<string[]> {
  if (site !== undefined) return [site];
  return (await listSites(client)).map((s) => s.siteId);
}

/** One match, or a UsageError saying there is none or which sites share the name. */
function single<T extends { readonly siteId: string }>(found: readonly T[], what: string, where: string): T {
  const [first, second] = found;
  if (first === undefined) throw new UsageError(`no ${what} ${where}`);
  if (second !== undefined)
    throw new UsageError(`${what} is in sites ${listOf(found.map((f) => f.siteId))}: pass --site`);
  return first;
}

const scope = (site: string | undefined): string => (site === undefined ? 'in any site' : `in site ${site}`);

/** Every host of the sites searched. */
export async function hostsOf(client: OperatorClient, site: string | undefined): Promise<Host[]> {
  const ids = await siteIds(client, site);
  return (await Promise.all(ids.map((s) => listHosts(client, s)))).flat();
}

/** Every VM of the sites searched. */
export async function vmsOf(client: OperatorClient, site: string | undefined): Promise<Vm[]> {
  const ids = await siteIds(client, site);
  return (await Promise.all(ids.map((s) => listVms(client, s)))).flat();
}

/** The host named `hostId`, with its site. */
export async function findHost(
  client: OperatorClient,
  hostId: string,
  site: string | undefined,
): Promise<Host> {
  const hosts = await hostsOf(client, site);
  return single(
    hosts.filter((h) => h.hostId === hostId),
    `host ${hostId}`,
    scope(site),
  );
}

/** The site of cluster `clusterId` (a cluster is known by its hosts). */
export async function findCluster(
  client: OperatorClient,
  clusterId: string,
  site: string | undefined,
): Promise<{ readonly siteId: string; readonly clusterId: string; readonly hosts: readonly Host[] }> {
  const hosts = (await hostsOf(client, site)).filter((h) => h.cluster === clusterId);
  const sites = [...new Set(hosts.map((h) => h.siteId))].map((siteId) => ({ siteId }));
  const { siteId } = single(sites, `cluster ${clusterId}`, scope(site));
  return { siteId, clusterId, hosts: hosts.filter((h) => h.siteId === siteId) };
}

/** The VM named `vmId`, with its site; null when no site knows it (a VM not reported yet). */
export async function findVm(
  client: OperatorClient,
  vmId: string,
  site: string | undefined,
): Promise<Vm | null> {
  const vms = (await vmsOf(client, site)).filter((v) => v.vmId === vmId);
  if (vms.length === 0) return null;
  return single(vms, `VM ${vmId}`, scope(site));
}

/** The cluster of each host, by site and host id (VM records name their host, not their cluster). */
export function clusterIndex(
  hosts: readonly Host[],
): (siteId: string, hostId: string | null) => string | null {
  const index = new Map(hosts.map((h) => [`${h.siteId}/${h.hostId}`, h.cluster]));
  return (siteId, hostId) => (hostId === null ? null : (index.get(`${siteId}/${hostId}`) ?? null));
}
