import type { AppContext } from '../context';
import type { SiteControl } from '../ports';
import { compareIds } from '../shared/order';
import { clusterPolicy, defaultPolicy } from '../shared/policy';
import { hostSilence, isLiveRelay } from '../shared/relays';
import { type RunningTwice, vmsRunningTwice } from '../shared/split-brain';

/**
 * What one site has that an operator must act on, as the detector finds it every tick from the control
 * items it reads anyway (no other read). CloudWatch alarms carry no dynamic text: the gauges say how many,
 * and this, in the detector's tick report (its log), says which site, host, cluster and VMs.
 */
export interface SiteAlerts {
  readonly siteId: string;
  /** Hosts whose failover waits for an operator to confirm them off, with the incident to confirm. */
  readonly awaitingOperator: readonly { readonly hostId: string; readonly incidentId: string | null }[];
  /** VMs reported running on two hosts at once and still so (safety rule 6), with those hosts. */
  readonly runningTwice: readonly RunningTwice[];
  /** HA VMs down that must run again: the site's retry list (VM-level HA). */
  readonly haVmsDown: readonly string[];
  /** Clusters with more than their mass-silence share of hosts silent: nothing there is fenced (rule 3). */
  readonly massSilence: readonly {
    readonly clusterId: string;
    readonly silentHosts: readonly string[];
    readonly hosts: number;
  }[];
  /**
   * The site's only live relay when it has more than one enrolled and the others are silent: one more
   * failure partitions it, and a failover has no second relay to fence through. Null otherwise.
   */
  readonly oneLiveRelay: { readonly relayId: string; readonly silentRelays: readonly string[] } | null;
}

/** The site's alerts now; every list empty (and oneLiveRelay null) when there is nothing to act on. */
export function siteAlerts(ctx: AppContext, control: SiteControl, now: number): SiteAlerts {
  const awaitingOperator = Object.entries(control.hosts)
    .filter(([, summary]) => summary.status === 'awaiting-operator')
    .map(([hostId, summary]) => ({ hostId, incidentId: summary.incidentId }))
    .sort((a, b) => compareIds(a.hostId, b.hostId));
  return {
    siteId: control.site.siteId,
    awaitingOperator,
    runningTwice: vmsRunningTwice(control),
    haVmsDown: [...control.recovering].sort(compareIds),
    massSilence: massSilence(ctx, control, now),
    oneLiveRelay: oneLiveRelay(ctx, control, now),
  };
}

/** True when the site has anything in its alerts. */
export function hasAlerts(alerts: SiteAlerts): boolean {
  return (
    alerts.awaitingOperator.length > 0 ||
    alerts.runningTwice.length > 0 ||
    alerts.haVmsDown.length > 0 ||
    alerts.massSilence.length > 0 ||
    alerts.oneLiveRelay !== null
  );
}

/**
 * Clusters whose silent share is above their policy's mass-silence share, judged as CheckFencingPolicy
 * judges it (app/shared/fencing-guard.ts): every host of the cluster counts, a silent one when the site's
 * live relays call it silent. A partitioned site has no silent host (it has no live relay): its own alarm.
 */
function massSilence(ctx: AppContext, control: SiteControl, now: number): SiteAlerts['massSilence'] {
  const byCluster = new Map<string, string[]>();
  for (const [hostId, summary] of Object.entries(control.hosts)) {
    byCluster.set(summary.cluster, [...(byCluster.get(summary.cluster) ?? []), hostId]);
  }
  const found: { clusterId: string; silentHosts: string[]; hosts: number }[] = [];
  for (const [clusterId, members] of byCluster) {
    const policy = clusterPolicy(ctx, control.clusters, clusterId);
    const silentHosts = members
      .filter((hostId) => hostSilence(control.relays, hostId, now, policy).silent)
      .sort(compareIds);
    // Division, as the fencing policy does it: an exact share stays exact.
    if (silentHosts.length / members.length > policy.massSilenceShare) {
      found.push({ clusterId, silentHosts, hosts: members.length });
    }
  }
  return found.sort((a, b) => compareIds(a.clusterId, b.clusterId));
}

function oneLiveRelay(ctx: AppContext, control: SiteControl, now: number): SiteAlerts['oneLiveRelay'] {
  const policy = defaultPolicy(ctx);
  // A relay that never reported is not yet in service: it neither counts nor is missed.
  const enrolled = control.relays.filter((r) => !r.revoked && r.lastSeenAt !== null);
  const live = enrolled.filter((r) => isLiveRelay(r, now, policy, enrolled));
  const [only] = live;
  if (enrolled.length < 2 || live.length !== 1 || only === undefined) return null;
  return {
    relayId: only.relayId,
    silentRelays: enrolled
      .filter((r) => r !== only)
      .map((r) => r.relayId)
      .sort(compareIds),
  };
}
