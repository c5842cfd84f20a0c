import type { FencingPolicyInput } from '../../core/fencing-policy';
import type { HostStatus } from '../../core/lifecycle';
import type { HaPolicy } from '../../core/policy';
import type { SiteControl } from '../ports';
import { hostSilence, liveRelays } from './relays';

/**
 * The fencing policy's input for one host, gathered from the site's control item: live relays, the
 * cluster's size and how many of its hosts every live relay calls silent, maintenance and the switch.
 * Shared by the CheckFencingPolicy step and the detector's reopening, so both judge alike.
 */
export function fencingInputFor(args: {
  readonly control: SiteControl;
  readonly hostId: string;
  readonly cluster: string;
  readonly status: HostStatus;
  readonly policy: HaPolicy;
  readonly now: number;
}): FencingPolicyInput {
  const { control, hostId, cluster, status, policy, now } = args;
  const members = new Set(
    Object.entries(control.hosts)
      .filter(([, summary]) => summary.cluster === cluster)
      .map(([id]) => id),
  );
  members.add(hostId);
  let silentHosts = 0;
  for (const id of members) {
    if (hostSilence(control.relays, id, now, policy).silent) silentHosts += 1;
  }
  const live = liveRelays(control.relays, now, policy).length;
  const recovered = status === 'up' || (live > 0 && !hostSilence(control.relays, hostId, now, policy).silent);
  return {
    liveRelays: live,
    clusterHosts: members.size,
    // A host that is not recovered counts itself even if a relay's view lags behind (core requires it).
    silentHostsInCluster: recovered ? silentHosts : Math.max(1, silentHosts),
    massSilenceShare: policy.massSilenceShare,
    hostInMaintenance: status === 'maintenance',
    fencingEnabled: control.clusters.find((c) => c.clusterId === cluster)?.fencingEnabled ?? true,
    hostRecovered: recovered,
  };
}
