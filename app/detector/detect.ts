import type { AppContext } from '../context';
import { openIncident } from '../ingest/open-incident';
import type { SiteControl } from '../ports';
import { listMissedStops } from '../recovery/sweep';
import { recoverOnTick } from '../recovery/triggers';
import { assessSiteCapacity } from '../shared/capacity';
import { summaryFenceable } from '../shared/fence-readiness';
import { METRIC } from '../shared/metrics';
import { compareIds } from '../shared/order';
import { clusterPolicy, defaultPolicy } from '../shared/policy';
import { hostSilence, isLiveRelay } from '../shared/relays';
import { hasAlerts, type SiteAlerts, siteAlerts } from './alerts';

/** What one detector pass found. */
export interface DetectorReport {
  readonly sitesChecked: number;
  /** Sites whose relays are all silent: alerted on, never fenced (safety rule 2). */
  readonly partitionedSites: readonly string[];
  readonly silentRelays: number;
  readonly silentHosts: number;
  /** Incidents this pass created (new or reopened). */
  readonly incidentsOpened: readonly string[];
  /** Only filled on passes that evaluate capacity. */
  readonly clustersFailingNPlusOne: readonly { readonly siteId: string; readonly clusterId: string }[];
  /** Hosts no relay can fence (maintenance aside): their failover would wait for an operator. */
  readonly hostsNotFenceable: readonly { readonly siteId: string; readonly hostId: string }[];
  /**
   * Running HA VMs with libvirt autostart on, a misconfiguration (a fenced host that boots again would
   * start a second copy), across all sites; null on passes that do not evaluate capacity, since only
   * those read the VMs. A count, not a list: every tick's report goes to the log, and after a move from
   * standalone hosts nearly every VM may have autostart on (the operator API's VM list names them).
   */
  readonly haVmsWithAutostart: number | null;
  /** HA VMs on the sites' retry lists (down, and to run again; VM-level HA), the HaVmsDown gauge. */
  readonly haVmsDown: number;
  /** Starts VM-level HA sent in this pass (a backoff or budget that ended, a retry, a timeout). */
  readonly vmStartsOrdered: number;
  /**
   * Per site with something to act on, what the lasting alarms count: hosts awaiting an operator, VMs
   * running twice, HA VMs down, clusters under mass silence, a site down to one live relay, each named.
   * The alarms' notifications cannot carry them; this report (the tick's log line) does.
   */
  readonly alerts: readonly SiteAlerts[];
}

interface SiteFindings {
  readonly partitioned: boolean;
  readonly silentRelays: number;
  readonly silentHosts: number;
  readonly opened: readonly string[];
  readonly failing: readonly string[];
  readonly notFenceable: readonly string[];
  /** Running HA VMs with libvirt autostart on (0 unless capacity is evaluated). */
  readonly autostart: number;
  /** VM-level HA's starts sent for the site's retry list. */
  readonly vmStarts: number;
}

/**
 * One detector pass over every site: silent relays and partitioned sites are counted and alerted on; a host
 * every live relay calls silent gets its incident even when no report opened it (the relay that disagreed
 * died); a suspect host whose incident closed without a fence is reopened once the guard clears; the hosts
 * no relay can fence are counted; with `evaluateCapacity`, each cluster's N+1 verdict is published.
 */
export async function detectOnce(
  ctx: AppContext,
  args: { readonly evaluateCapacity: boolean },
): Promise<DetectorReport> {
  const { sites, metrics } = ctx.ports;
  const partitionedSites: string[] = [];
  const incidentsOpened: string[] = [];
  const clustersFailingNPlusOne: { siteId: string; clusterId: string }[] = [];
  const hostsNotFenceable: { siteId: string; hostId: string }[] = [];
  let haVmsWithAutostart = 0;
  let haVmsDown = 0;
  let vmStartsOrdered = 0;
  const alerts: SiteAlerts[] = [];
  let sitesChecked = 0;
  let silentRelays = 0;
  let silentHosts = 0;
  for (const site of await sites.listSites()) {
    const control = await sites.loadControl(site.siteId);
    if (control === null) continue;
    sitesChecked += 1;
    const found = await checkSite(ctx, control, args.evaluateCapacity);
    const siteFound = siteAlerts(ctx, control, ctx.ports.clock.now());
    if (hasAlerts(siteFound)) alerts.push(siteFound);
    if (found.partitioned) partitionedSites.push(site.siteId);
    silentRelays += found.silentRelays;
    silentHosts += found.silentHosts;
    incidentsOpened.push(...found.opened);
    clustersFailingNPlusOne.push(...found.failing.map((clusterId) => ({ siteId: site.siteId, clusterId })));
    hostsNotFenceable.push(...found.notFenceable.map((hostId) => ({ siteId: site.siteId, hostId })));
    haVmsWithAutostart += found.autostart;
    haVmsDown += control.recovering.length;
    vmStartsOrdered += found.vmStarts;
  }
  // Gauges, one datapoint per pass: the alarms read their Maximum.
  metrics.count(METRIC.RelaysSilent, silentRelays);
  const total = (count: (site: SiteAlerts) => number) => alerts.reduce((sum, a) => sum + count(a), 0);
  metrics.count(
    METRIC.HostsAwaitingOperator,
    total((a) => a.awaitingOperator.length),
  );
  metrics.count(
    METRIC.VmsRunningTwice,
    total((a) => a.runningTwice.length),
  );
  metrics.count(
    METRIC.ClustersMassSilent,
    total((a) => a.massSilence.length),
  );
  metrics.count(
    METRIC.SitesOnOneRelay,
    total((a) => (a.oneLiveRelay === null ? 0 : 1)),
  );
  metrics.count(METRIC.HostsSilent, silentHosts);
  metrics.count(METRIC.HostsNotFenceable, hostsNotFenceable.length);
  // Known only on capacity passes, which read every VM: the others publish nothing rather than a zero.
  if (args.evaluateCapacity) metrics.count(METRIC.HaVmsWithAutostart, haVmsWithAutostart);
  // From the control items read anyway: the sites' retry lists, as they stood when the pass read them.
  metrics.count(METRIC.HaVmsDown, haVmsDown);
  return {
    sitesChecked,
    partitionedSites,
    silentRelays,
    silentHosts,
    incidentsOpened,
    clustersFailingNPlusOne,
    hostsNotFenceable,
    haVmsWithAutostart: args.evaluateCapacity ? haVmsWithAutostart : null,
    haVmsDown,
    vmStartsOrdered,
    alerts,
  };
}

async function checkSite(
  ctx: AppContext,
  control: SiteControl,
  evaluateCapacity: boolean,
): Promise<SiteFindings> {
  const now = ctx.ports.clock.now();
  const policy = defaultPolicy(ctx);
  // A relay that never reported says nothing yet; a site with only such relays is new, not partitioned.
  const relays = control.relays.filter((r) => !r.revoked);
  const silent = relays.filter((r) => !isLiveRelay(r, now, policy, relays));
  const partitioned = relays.some((r) => r.lastSeenAt !== null) && silent.length === relays.length;
  const { failing, autostart } = evaluateCapacity
    ? await capacityFindings(ctx, control)
    : { failing: [], autostart: 0 };
  // From the summaries already read: fence readiness changes rarely and its gauge costs no extra read.
  // A partitioned site's hosts count on their last readiness: the partition does not mend a BMC.
  const notFenceable = notFenceableHosts(control);
  if (partitioned) {
    ctx.ports.metrics.count(METRIC.SitePartitioned);
    return {
      partitioned,
      silentRelays: silent.length,
      silentHosts: 0,
      opened: [],
      failing,
      notFenceable,
      autostart,
      vmStarts: 0,
    };
  }
  const opened: string[] = [];
  let silentHosts = 0;
  for (const [hostId, summary] of Object.entries(control.hosts)) {
    const hostPolicy = clusterPolicy(ctx, control.clusters, summary.cluster);
    if (!hostSilence(control.relays, hostId, now, hostPolicy).silent) continue;
    silentHosts += 1;
    if (summary.status !== 'up' && summary.status !== 'suspect') continue;
    const result = await openIncident(ctx, { control, hostId, now, reopen: summary.status === 'suspect' });
    if (result?.created === true) opened.push(result.incidentId);
  }
  // VM-level HA's tick: overdue starts, ended backoffs and budgets, the slow retry (a read per listed VM).
  const ticked = control.recovering.length === 0 ? 0 : (await recoverOnTick(ctx, control)).ordered;
  // With the capacity pass, which reads every VM anyway: an HA VM found crashed that nothing restarts.
  const swept = evaluateCapacity ? (await listMissedStops(ctx, control)).ordered : 0;
  const vmStarts = ticked + swept;
  return {
    partitioned,
    silentRelays: silent.length,
    silentHosts,
    opened,
    failing,
    notFenceable,
    autostart,
    vmStarts,
  };
}

/**
 * Hosts every (unrevoked) relay that checked says it cannot fence. Hosts in maintenance are left out:
 * they are never fenced (safety rule 7), and a BMC under service there is expected; the gauge counts
 * them again once maintenance ends. Hosts no relay checked are unknown, not counted.
 */
function notFenceableHosts(control: SiteControl): string[] {
  return Object.entries(control.hosts)
    .filter(
      ([, summary]) =>
        summary.status !== 'maintenance' && summaryFenceable(summary, control.relays) === false,
    )
    .map(([hostId]) => hostId)
    .sort(compareIds);
}

/**
 * Publishes NPlusOneBroken (1 or 0) for each cluster and returns the ones that fail, with how many running
 * HA VMs have libvirt autostart on.
 */
async function capacityFindings(
  ctx: AppContext,
  control: SiteControl,
): Promise<Pick<SiteFindings, 'failing' | 'autostart'>> {
  const failing: string[] = [];
  let autostart = 0;
  for (const { clusterId, report } of await assessSiteCapacity(ctx, control)) {
    const broken = !report.survivesAnyOneHostFailure;
    ctx.ports.metrics.count(METRIC.NPlusOneBroken, broken ? 1 : 0);
    if (broken) failing.push(clusterId);
    autostart += report.haVmsWithAutostart.length;
  }
  return { failing, autostart };
}
