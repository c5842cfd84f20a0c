import type { AnyRelayReport, ReportResponse } from '../../contracts/relay-protocol';
import { type HaPolicy, hostSilentAfterMs } from '../../core/policy';
import type { AppContext } from '../context';
import { ClockSkewError, UnknownRelayError } from '../errors';
import type { RelayRecord, SiteControl } from '../ports';
import { recoverAfterReport } from '../recovery/triggers';
import { allSettledOrThrow } from '../shared/concurrently';
import { METRIC } from '../shared/metrics';
import { clusterPolicy, defaultPolicy, reportIntervalMs } from '../shared/policy';
import { hostSilence } from '../shared/relays';
import { recordHostsAlive } from './came-back';
import { relaySecret } from './credential';
import { commandsFor } from './deliver';
import { recordInventory } from './inventory';
import { openIncident } from './open-incident';
import { steadyPaceMs, untilPeerSilenceCountsMs } from './pace';
import { recordFenceReadiness } from './readiness';
import { type ReportedHost, reportedHosts } from './reported-hosts';
import { recordResults } from './results';

/**
 * Ingests one relay's site report (POST /v1/reports).
 *
 * Cost is the point (data flow 4): an unchanged report is one read of the site's control items and one
 * conditional liveness write, which is also the replay guard and the credential check; every other write
 * happens only when something changed. Refusals (credential, site, clock skew, replay) change nothing.
 *
 * Both protocol versions are answered, each in its own (reported-hosts.ts): v2 reports carry inventories
 * only where they changed, and the response to one asks for those the control plane lacks.
 */
export async function recordReport(
  ctx: AppContext,
  args: { readonly authorization: string | undefined; readonly report: AnyRelayReport },
): Promise<ReportResponse> {
  const { report } = args;
  const { clock, sites, relays, metrics } = ctx.ports;
  const secret = relaySecret(args.authorization, report);
  const now = clock.now();
  const skew = report.sentAt - now;
  const { maxClockSkewMs } = defaultPolicy(ctx);
  if (Math.abs(skew) > maxClockSkewMs) {
    throw new ClockSkewError(
      `report sent at ${report.sentAt} is ${skew} ms off the cloud's clock (limit ${maxClockSkewMs} ms)`,
    );
  }
  const control = await sites.loadControl(report.siteId);
  if (control === null) throw new UnknownRelayError('unknown relay');

  const silentAfter = (cluster: string | null) =>
    hostSilentAfterMs(cluster === null ? defaultPolicy(ctx) : clusterPolicy(ctx, control.clusters, cluster));
  const { hosts, wanted } = reportedHosts(control, report, silentAfter);
  const silentHosts = silentSet(hosts, silentAfter);
  // The relays it hears on the LAN (v2): whether it takes turns with them, and their liveness.
  const peers =
    report.protocol === 2 && report.relays !== undefined
      ? Object.fromEntries(report.relays.map((p) => [p.relayId, p.lastHeardMsAgo]))
      : undefined;
  // The pace is decided before the liveness write, which records it: the relay's votes age by the pace it
  // was asked to keep (app/shared/relays.ts). A report that opens an incident calls an up host silent, so
  // the pace it gets is already the incident pace. Relays that hear each other take turns only while the
  // site is quiet: an open incident (one left to an operator too) or a VM down may send a command at any
  // moment, which a relay takes with its next report, and a start must be taken well within its timeout.
  const unresolved = silenceUnresolved(control, report.relayId, silentHosts, now, (cluster) =>
    clusterPolicy(ctx, control.clusters, cluster),
  );
  const fast = incidentUnderWay(control) || unresolved !== null;
  const quiet = control.openIncidents.length === 0 && control.recovering.length === 0;
  const pace = fast
    ? incidentUnderWay(control) || unresolved === 'fresh'
      ? commandPaceMs(reportIntervalMs(ctx, control.clusters, true), defaultPolicy(ctx))
      : reportIntervalMs(ctx, control.clusters, true)
    : !quiet
      ? reportIntervalMs(ctx, control.clusters, false)
      : steadyPaceMs({
          relayId: report.relayId,
          peers,
          relays: control.relays,
          policy: relayPolicy(ctx, control),
          reportMs: reportIntervalMs(ctx, control.clusters, false),
          now,
        });
  // A peer this relay no longer hears is taken for silent a moment after the threshold: report again then.
  const nextReportInMs = Math.min(pace, untilPeerSilenceCountsMs(peers, relayPolicy(ctx, control)) ?? pace);
  const relay = await relays.acceptReport(report.siteId, report.relayId, {
    seq: report.seq,
    at: now,
    credentialHash: ctx.hasher.hash(secret),
    silentHosts,
    nextReportInMs,
    // Hosts of the site this relay does not list at all: it has not heard them since it started.
    unheardHosts: unlisted(control, report),
    ...(peers === undefined ? {} : { peers }),
  });
  metrics.count(METRIC.ReportsIngested);
  const view = withRelay(control, relay);
  // Hosts heard whose inventory the report carries: a host it carries no inventory of (a v2 digest, a v1
  // stale observation) counts for liveness through the relay's vote only, its boot and VMs as recorded.
  const heardHosts = hosts.filter((h) => !(h.hostId in silentHosts) && h.obs !== null);
  const heard = heardHosts.flatMap((h) => (h.obs === null ? [] : [h.obs]));
  const digests = new Map(heardHosts.flatMap((h) => (h.digest === null ? [] : [[h.hostId, h.digest]])));

  const silentIds = Object.keys(silentHosts);
  // Opening an incident for the hosts it calls silent is what the report is most urgently for, and it
  // touches only those hosts: it goes out beside the work on the hosts it heard and on command results.
  // Command results (each its own command's, completing a waiting task) go beside both as well.
  const [opened, restartsAfterResults, restartsAfterInventory] = await allSettledOrThrow<
    [number, number, number]
  >([
    openSilent(ctx, { siteId: report.siteId, view, relay, silentIds, now }),
    recordResults(ctx, {
      siteId: report.siteId,
      relayId: report.relayId,
      results: report.results,
      control: view,
    }).then((done) => done.ordered),
    (async () => {
      const { rebooted, recovery } = await recordInventory(ctx, { control: view, heard, digests, now });
      await recordHostsAlive(ctx, { control: view, relayId: report.relayId, heard, rebooted, now });
      // VM-level HA once the hosts' lifecycles are written (a host back from a fence takes VMs again).
      const restarts = await recoverAfterReport(ctx, {
        control: view,
        relayId: report.relayId,
        found: recovery,
      });
      // After the inventory, so that readiness of a host first seen in this very report finds its record;
      // after the lifecycle writes, since it is the least urgent and would only make them retry.
      await recordFenceReadiness(ctx, {
        control: view,
        relayId: report.relayId,
        readiness: report.fenceReadiness ?? [],
        now,
      });
      return restarts.ordered;
    })(),
  ]);

  // Commands exist only during incidents and while HA VMs are down (VM-level HA's starts), so the lookup
  // is skipped (and paid for) only then.
  const incidentsOpen =
    control.openIncidents.length > 0 ||
    opened > 0 ||
    control.recovering.length > 0 ||
    restartsAfterResults + restartsAfterInventory > 0;
  const commands = incidentsOpen
    ? await commandsFor(ctx, { siteId: report.siteId, relayId: report.relayId, now })
    : [];
  return {
    protocol: report.protocol,
    acceptedSeq: relay.lastSeq,
    commands,
    nextReportInMs,
    ...(wanted.length === 0 ? {} : { inventoryWanted: [...wanted] }),
  };
}

/**
 * Opens the incidents this report's silent hosts call for. Relays that call a host silent in the same
 * instant each read the control items before the other's vote was written, and neither would open the
 * incident; each wrote its vote before the second, consistent read, so at least one of them sees both.
 */
async function openSilent(
  ctx: AppContext,
  args: {
    readonly siteId: string;
    readonly view: SiteControl;
    readonly relay: RelayRecord;
    readonly silentIds: readonly string[];
    readonly now: number;
  },
): Promise<number> {
  const { view, silentIds, now } = args;
  const opened = await openSilentHosts(ctx, view, silentIds, now);
  if (opened > 0 || !silentIds.some((hostId) => view.hosts[hostId]?.status === 'up')) return opened;
  const fresh = await ctx.ports.sites.loadControl(args.siteId, { consistent: true });
  return fresh === null ? 0 : openSilentHosts(ctx, withRelay(fresh, args.relay), silentIds, now);
}

/**
 * An open incident is working through the relays (suspect, fencing, or fenced with its VMs starting): the
 * relays report at the incident pace, since every command it sends waits for their next report. An
 * incident left to an operator is not: it may wait for hours, and the relays keep the normal pace.
 */
function incidentUnderWay(control: SiteControl): boolean {
  return Object.values(control.hosts).some(
    (h) =>
      h.incidentId !== null &&
      control.openIncidents.includes(h.incidentId) &&
      (h.status === 'suspect' || h.status === 'fencing' || h.status === 'fenced'),
  );
}

/**
 * The pace while a failover works through the relays (incidentUnderWay), or is about to (a fresh silence,
 * silenceUnresolved): its steps follow each other within moments (ConfirmSilence once every live relay has
 * reported since the opening, the fence once the silence is confirmed, the starts once the power-off is,
 * each wave once the one before runs), and each waits for the relays' next report, which brings the
 * evidence or takes the command: at the incident pace each would wait up to its 2 s (production timing).
 * A sixteenth of a heartbeat (125 ms at the production 2 s), never under 100 ms nor over the incident
 * pace; a few dozen reports more per incident and relay, next to a month of steady reports.
 */
function commandPaceMs(incidentPaceMs: number, policy: HaPolicy): number {
  return Math.min(incidentPaceMs, Math.max(100, Math.round(policy.hostHeartbeatMs / 16)));
}

/**
 * Some relay (this report's silent set in place of the reporting relay's last one) calls an up host silent,
 * but no incident has it yet (the other relays have not called it silent, or this report is about to open
 * it): the incident is near, so the relays report faster instead of one full interval later. `fresh` while
 * that silence is younger than the threshold and one incident pace (the relays that lost the host too call
 * it silent within it, and the incident opens): the command pace, so that every relay's word is in moments
 * after the opening, as ConfirmSilence waits for it. `lasting` past that (relays disagree: one lost the
 * host, another hears it): the incident pace, which a disagreement that lasts hours can afford. Hosts
 * already suspect, fenced or in maintenance do not count, so a host that stays off does not keep the site
 * on a fast pace.
 */
function silenceUnresolved(
  control: SiteControl,
  relayId: string,
  silentHosts: Readonly<Record<string, number>>,
  now: number,
  policyOf: (cluster: string) => HaPolicy,
): 'fresh' | 'lasting' | null {
  // Each relay's silences, aged to now: a relay measured them when it last reported.
  const sets = [
    ...control.relays
      .filter((r) => r.relayId !== relayId)
      .map((r) => ({ set: r.silentHosts, age: r.lastSeenAt === null ? 0 : now - r.lastSeenAt })),
    { set: silentHosts, age: 0 },
  ];
  let found: 'fresh' | 'lasting' | null = null;
  for (const { set, age } of sets) {
    for (const [hostId, ago] of Object.entries(set)) {
      const host = control.hosts[hostId];
      if (host?.status !== 'up') continue;
      const policy = policyOf(host.cluster);
      if (ago + age < hostSilentAfterMs(policy) + policy.incidentReportMs) return 'fresh';
      found = 'lasting';
    }
  }
  return found;
}

/**
 * The policy relays are held to at this site: the deployment's, with the shortest relay silence of any of
 * its clusters (a relay serves them all), which bounds how long a relay taking turns may stay quiet.
 */
function relayPolicy(ctx: AppContext, control: SiteControl): HaPolicy {
  const policies = [
    defaultPolicy(ctx),
    ...control.clusters.map((c) => clusterPolicy(ctx, control.clusters, c.clusterId)),
  ];
  return {
    ...defaultPolicy(ctx),
    relaySilentAfterMs: Math.min(...policies.map((p) => p.relaySilentAfterMs)),
  };
}

/** Hosts this relay calls silent under their cluster's policy, with how long ago it last heard each. */
function silentSet(
  hosts: readonly ReportedHost[],
  silentAfterMs: (cluster: string | null) => number,
): Record<string, number> {
  const silent: Record<string, number> = {};
  for (const host of hosts) {
    if (host.lastHeardMsAgo > silentAfterMs(host.cluster)) silent[host.hostId] = host.lastHeardMsAgo;
  }
  return silent;
}

/** The control items as they stand after this report: the reporting relay with its new silent set. */
function withRelay(control: SiteControl, relay: RelayRecord): SiteControl {
  const others = control.relays.filter((r) => r.relayId !== relay.relayId);
  return { ...control, relays: [...others, relay] };
}

/**
 * Opens an incident for each host this relay calls silent that every live relay now calls silent. Hosts
 * whose opening may have been left half done (suspect with an open incident) are looked at again; hosts in
 * maintenance, being fenced or already fenced are not.
 */
async function openSilentHosts(
  ctx: AppContext,
  control: SiteControl,
  candidates: readonly string[],
  now: number,
): Promise<number> {
  let open = 0;
  for (const hostId of candidates) {
    const summary = control.hosts[hostId];
    if (summary === undefined) continue;
    const unfinished =
      summary.status === 'suspect' &&
      summary.incidentId !== null &&
      control.openIncidents.includes(summary.incidentId);
    if (summary.status !== 'up' && !unfinished) continue;
    const policy = clusterPolicy(ctx, control.clusters, summary.cluster);
    if (!hostSilence(control.relays, hostId, now, policy).silent) continue;
    if ((await openIncident(ctx, { control, hostId, now })) !== null) open += 1;
  }
  return open;
}

/** Hosts of the site that `report` does not list at all (RelayRecord.unheardHosts). */
function unlisted(control: SiteControl, report: { readonly hosts: readonly { hostId: string }[] }): string[] {
  const listed = new Set(report.hosts.map((h) => h.hostId));
  return Object.keys(control.hosts).filter((hostId) => !listed.has(hostId));
}
