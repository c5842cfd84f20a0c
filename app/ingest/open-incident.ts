import type { IncidentInput } from '../../contracts/workflow';
import { decideFencing } from '../../core/fencing-policy';
import type { HostStateOf } from '../../core/lifecycle';
import { hostSilentAfterMs } from '../../core/policy';
import type { AppContext } from '../context';
import type { HostRecord, IncidentRecord, SiteControl } from '../ports';
import { adoptStartsUnderWay } from '../recovery/adopt';
import { appendEvent } from '../shared/events';
import { fencingInputFor } from '../shared/fencing-guard';
import { type HaSetIncident, recordHaSet } from '../shared/ha-set';
import { incidentOf, summaryOf, transitionHostSummaryAfter } from '../shared/host-lifecycle';
import { updateIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';
import { clusterPolicy, workflowTiming } from '../shared/policy';
import { hostSilence } from '../shared/relays';

/** An incident that is open for the host after the call, and whether this call created it. */
export interface OpenedIncident {
  readonly incidentId: string;
  readonly created: boolean;
  readonly executionArn: string;
}

/** The id of a host's n-th incident: deterministic, so a repeated report names the same incident; ":" cannot occur in ids, so no two hosts share one. */
export function incidentIdFor(siteId: string, hostId: string, seq: number): string {
  return `${siteId}:${hostId}:${seq}`;
}

/**
 * Opens an incident for a host every live relay of `control` calls silent, or finishes opening one a
 * previous call left half done (a Lambda that died between its writes), and starts its execution.
 *
 * The host's conditional lifecycle write decides the one winner of concurrent reports (safety rule 4);
 * every later write is repeat-safe, and the execution is started with the input stored on the incident, so
 * a repeated start has the same name and input. A maintenance host only records SilenceIgnored (rule 7).
 * With `reopen` (the detector), a suspect host whose incident closed without a fence gets a new incident
 * once the fencing guard no longer holds.
 */
export async function openIncident(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly hostId: string;
    readonly now: number;
    readonly reopen?: boolean;
  },
): Promise<OpenedIncident | null> {
  const { control, hostId, now } = args;
  const siteId = control.site.siteId;
  const change = await transitionHostSummaryAfter(ctx, siteId, hostId, async (host) => {
    const incidentSeq = host.incidentSeq + 1;
    const incidentId = incidentIdFor(siteId, hostId, incidentSeq);
    const { status } = host.lifecycle;
    const policy = clusterPolicy(ctx, control.clusters, host.cluster);
    if (!hostSilence(control.relays, hostId, now, policy).silent) return null;
    if (status === 'up' || status === 'maintenance') {
      return { command: { type: 'ReportSilent', at: now, incidentId }, incidentSeq };
    }
    if (status === 'suspect' && args.reopen === true && (await guardCleared(ctx, control, host, now))) {
      return { command: { type: 'ReopenSuspicion', at: now, incidentId }, incidentSeq };
    }
    return null;
  });
  const state = change.host.lifecycle;
  // This call moved the host into the incident (it wrote the lifecycle, and the summary goes with it).
  const fresh = state.status === 'suspect' && incidentOf(change.before) !== state.incidentId;
  if (state.status !== 'suspect') {
    await change.summarized;
    return null;
  }
  for (const event of change.events) {
    if (event.type !== 'SuspicionReopened') continue;
    await appendEvent(
      ctx,
      event.previousIncidentId,
      'reopened',
      `${hostId} is still silent and the fencing guard no longer holds: incident ${event.incidentId} takes over`,
      { newIncidentId: event.incidentId },
    );
  }
  const summarized =
    fresh ||
    (control.hosts[hostId]?.status === 'suspect' && control.hosts[hostId]?.incidentId === state.incidentId)
      ? change.summarized
      : // Repairs a summary a crashed opening never wrote (only a lifecycle write writes it).
        ctx.ports.sites.putHostSummary(siteId, hostId, summaryOf(change.host));
  return startIncident(ctx, { control, host: change.host, state, now, fresh, summarized });
}

/** True when a suspect host's incident is closed and the fencing policy would now fence it. */
async function guardCleared(
  ctx: AppContext,
  control: SiteControl,
  host: HostRecord,
  now: number,
): Promise<boolean> {
  const state = host.lifecycle;
  if (state.status !== 'suspect') return false;
  const incident = await ctx.ports.incidents.get(state.incidentId);
  if (incident === null || incident.closedAt === null) return false;
  const policy = clusterPolicy(ctx, control.clusters, host.cluster);
  const input = fencingInputFor({
    control,
    hostId: host.hostId,
    cluster: host.cluster,
    status: state.status,
    policy,
    now,
  });
  return decideFencing(input).action === 'fence';
}

async function startIncident(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly host: HostRecord;
    readonly state: HostStateOf<'suspect'>;
    readonly now: number;
    /** This call moved the host into this incident: nobody can have created the incident yet. */
    readonly fresh: boolean;
    /** The site's summary of the host, being written: awaited beside the incident's own first writes. */
    readonly summarized: Promise<void>;
  },
): Promise<OpenedIncident | null> {
  const { control, state, fresh, summarized } = args;
  const siteId = control.site.siteId;
  const { incidents, sites, workflow, metrics } = ctx.ports;
  let incident = fresh ? null : await incidents.get(state.incidentId);
  let created = false;
  if (incident === null) {
    // The incident marked open and the incident itself go out side by side; the execution starts only
    // once both are written, so an opening cut short is found again (suspect, open) and finished.
    // The HA set goes out beside them (it reads only the host's VMs): it must be on the timeline before
    // the execution starts, since every step that places or judges VMs reads it.
    const [result] = await Promise.all([
      incidents.create(newIncident(ctx, args)),
      fresh ? sites.setIncidentOpen(siteId, state.incidentId, true) : Promise.resolve(),
      summarized,
      recordHaSetOf(ctx, control, haSetRef(siteId, args.host.hostId, state)),
    ]);
    incident = result.incident;
    created = result.created;
    if (created) metrics.count(METRIC.IncidentOpened);
  }
  await summarized;
  if (incident.closedAt !== null) return null;
  if (incident.executionArn !== null) {
    return { incidentId: incident.incidentId, created, executionArn: incident.executionArn };
  }
  if (!fresh) {
    // An opening a crashed call left half done may lack its HA set: recorded now (the first one stands).
    await Promise.all([
      sites.setIncidentOpen(siteId, incident.incidentId, true),
      recordHaSetOf(
        ctx,
        control,
        haSetRef(siteId, incident.hostId, {
          incidentId: incident.incidentId,
          bootId: incident.bootId,
          since: incident.openedAt,
        }),
      ),
    ]);
  }
  // A VM incident (VM-level HA) runs no execution; a host's incident id never names one.
  if (incident.input === null) return null;
  // The stored input, not a fresh one: a repeated start must match the first (same name, same input).
  const { executionArn } = await workflow.startIncident(incident.input);
  await updateIncident(ctx, incident.incidentId, (current) =>
    current.executionArn === null ? { executionArn } : null,
  );
  return { incidentId: incident.incidentId, created, executionArn };
}

/** The incident's HA set: what the host ran, and the starts under way there it takes over. */
function recordHaSetOf(ctx: AppContext, control: SiteControl, incident: HaSetIncident): Promise<unknown> {
  return recordHaSet(ctx, incident, (ran) => adoptStartsUnderWay(ctx, incident, control, ran));
}

/** What recordHaSet needs of the incident being opened. */
function haSetRef(
  siteId: string,
  hostId: string,
  state: { readonly incidentId: string; readonly bootId: string; readonly since: number },
): HaSetIncident {
  return { incidentId: state.incidentId, siteId, hostId, bootId: state.bootId, openedAt: state.since };
}

function newIncident(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly host: HostRecord;
    readonly state: HostStateOf<'suspect'>;
    readonly now: number;
  },
): Omit<IncidentRecord, 'version'> {
  const { control, host, state, now } = args;
  const policy = clusterPolicy(ctx, control.clusters, host.cluster);
  const silence = hostSilence(control.relays, host.hostId, now, policy);
  const overdue = silence.views.filter((v) => v.overdue);
  const unheard = silence.views.filter((v) => v.unheard).map((v) => v.relayId);
  const input: IncidentInput = {
    incidentId: state.incidentId,
    siteId: control.site.siteId,
    hostId: host.hostId,
    cluster: host.cluster,
    bootId: state.bootId,
    openedAt: state.since,
    timing: workflowTiming(policy),
    evidence: {
      relays: silence.views.flatMap((v) =>
        v.lastHeardMsAgo === null ? [] : [{ relayId: v.relayId, lastHeardMsAgo: v.lastHeardMsAgo }],
      ),
      silentAfterMs: hostSilentAfterMs(policy),
      ...(overdue.length === 0
        ? {}
        : {
            overdueRelays: overdue.map((v) => ({
              relayId: v.relayId,
              reportAgeMs: Math.max(0, Math.round(v.reportAgeMs)),
            })),
          }),
      ...(unheard.length === 0 ? {} : { unheardRelays: unheard }),
    },
  };
  return {
    incidentId: state.incidentId,
    siteId: input.siteId,
    hostId: input.hostId,
    cluster: input.cluster,
    bootId: input.bootId,
    openedAt: input.openedAt,
    outcome: 'in-progress',
    input,
    executionArn: null,
    fencedAt: null,
    closedAt: null,
    operatorTaskToken: null,
  };
}
