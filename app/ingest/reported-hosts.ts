import type { AnyRelayReport, HostObservation } from '../../contracts/relay-protocol';
import type { HostStatus } from '../../core/lifecycle';
import type { SiteControl } from '../ports';

/**
 * The hosts of a report of either protocol version, in the one form ingest works on: each host's liveness
 * as the relay sees it, and its inventory when the report carries one.
 *
 * v1 carries every host's whole inventory every time (a `stale` host only its liveness). v2 carries a
 * digest per host and the inventory only where the relay thinks the control plane lacks it: a digest equal
 * to the one the control plane holds needs nothing more; any other digest without its inventory counts for
 * liveness only, and the response asks for the inventory (`inventoryWanted`).
 */
export interface ReportedHost {
  readonly hostId: string;
  readonly lastHeardMsAgo: number;
  /** Whose policy judges its silence: the inventory's cluster, else the one recorded; null when unknown. */
  readonly cluster: string | null;
  /** The host with its whole inventory; null when the report carries none. */
  readonly obs: HostObservation | null;
  /** v2: the digest the relay reported, kept with the inventory it is taken with; v1: null (computed). */
  readonly digest: string | null;
}

/**
 * Statuses a host leaves when a relay hears it again (came-back.ts). `fencing` only in a new boot: the same
 * boot may be a half-dead host, fenced anyway; a new one proves the boot being fenced has ended
 * (core/lifecycle.ts). To record either, ingest needs the boot and VMs the host runs now, so a v2 relay
 * that hears such a host is asked for its inventory.
 */
export const COMES_BACK: ReadonlySet<HostStatus> = new Set([
  'suspect',
  'fencing',
  'awaiting-operator',
  'fenced',
]);

/**
 * The report's hosts, and (v2) the hosts whose inventory to ask for. `silentAfterMs` is a cluster's silence
 * threshold (the default policy's for an unknown cluster).
 */
export function reportedHosts(
  control: SiteControl,
  report: AnyRelayReport,
  silentAfterMs: (cluster: string | null) => number,
): { readonly hosts: readonly ReportedHost[]; readonly wanted: readonly string[] } {
  if (report.protocol === 1) {
    return {
      hosts: report.hosts.map((host) => ({
        hostId: host.hostId,
        lastHeardMsAgo: host.lastHeardMsAgo,
        cluster: host.cluster,
        // A stale observation (the relay hears the host but holds no inventory of what it runs now)
        // counts for liveness only: its boot and VMs wait for a fresh inventory.
        obs: host.stale === true ? null : host,
        digest: null,
      })),
      wanted: [],
    };
  }
  const wanted: string[] = [];
  const hosts = report.hosts.map((host): ReportedHost => {
    const summary = control.hosts[host.hostId];
    if (host.inventory !== undefined) {
      return {
        hostId: host.hostId,
        lastHeardMsAgo: host.lastHeardMsAgo,
        cluster: host.inventory.cluster,
        obs: { hostId: host.hostId, lastHeardMsAgo: host.lastHeardMsAgo, ...host.inventory },
        digest: host.digest,
      };
    }
    // The digest alone: what the control plane holds, or not. A host heard again during an incident needs
    // its boot and VMs read again (came-back.ts), whatever its digest.
    const cluster = summary?.cluster ?? null;
    const heard = host.lastHeardMsAgo <= silentAfterMs(cluster);
    if (summary?.digest !== host.digest || (heard && COMES_BACK.has(summary.status))) {
      wanted.push(host.hostId);
    }
    return {
      hostId: host.hostId,
      lastHeardMsAgo: host.lastHeardMsAgo,
      cluster,
      obs: null,
      digest: host.digest,
    };
  });
  return { hosts, wanted };
}
