import type * as z from 'zod';
import { EventFeedSchema, type FeedEventSchema, STACK_OUTPUTS } from '../../contracts/operator-api';
import {
  capacityReport,
  getIncident,
  type Host,
  type Incident,
  listHosts,
  listIncidents,
  listVms,
  parseAnswer,
  type SiteCapacity,
  type Vm,
} from '../api';
import type { OperatorClient } from '../client';
import { type CommandContext, writeJson, writeLines } from '../context';
import { ApiError } from '../errors';
import { EXIT, type ExitCode, listOf, plural, renderTable } from '../format';
import { clusterIndex, siteIds } from '../lookup';
import { latestEvent, outcomeText, subjectOf } from '../render-incident';
import { formatAge, formatInstant } from '../time';
import { countByState, fenceCell, haVmDown, hostSince, hostState, vmNote } from './inventory';
import { type Relay, redundancyLine, relaysIfServed } from './relays';

/** Everything `halo status` shows of one site. */
interface SiteStatus {
  readonly siteId: string;
  readonly hosts: readonly Host[];
  readonly vms: readonly Vm[];
  /** Null when the control plane has no relay route (older than the CLI). */
  readonly relays: readonly Relay[] | null;
  readonly capacity: SiteCapacity;
  readonly incidents: readonly (Incident & {
    readonly step: string | null;
    readonly stepAt: number | null;
  })[];
  /** Split-brain reports of the last day (a VM heard running on two hosts); empty on an older control plane. */
  readonly splitBrain: readonly z.infer<typeof FeedEventSchema>[];
}

/** How far back status looks for split-brain reports. */
const SPLIT_BRAIN_LOOKBACK_MS = 24 * 60 * 60 * 1000;

/** The site's split-brain events of the last day, from the event feed (one page is plenty for a day's). */
async function splitBrainReports(
  client: OperatorClient,
  siteId: string,
  now: number,
): Promise<z.infer<typeof FeedEventSchema>[]> {
  try {
    const body = await client.call('listEvents', {
      query: { siteId, since: String(now - SPLIT_BRAIN_LOOKBACK_MS), limit: '1000' },
    });
    return parseAnswer(EventFeedSchema, body, 'listEvents').events.filter((e) => e.kind === 'split-brain');
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 501)) return [];
    throw error;
  }
}

async function siteStatus(ctx: CommandContext, siteId: string): Promise<SiteStatus> {
  const client = await ctx.client();
  const [hosts, vms, relays, capacity, open, splitBrain] = await Promise.all([
    listHosts(client, siteId),
    listVms(client, siteId),
    relaysIfServed(client, siteId),
    capacityReport(client, siteId),
    listIncidents(client, { siteId, open: true }),
    splitBrainReports(client, siteId, ctx.time.now),
  ]);
  // An open incident's latest event is the step it is at.
  const incidents = await Promise.all(
    open.map(async (incident) => {
      const latest = latestEvent((await getIncident(client, incident.incidentId)).events);
      return { ...incident, step: latest?.kind ?? null, stepAt: latest?.at ?? null };
    }),
  );
  return { siteId, hosts, vms, relays, capacity, incidents, splitBrain };
}

/** What makes the status bad news (exit 1), one phrase each. */
function problems(site: SiteStatus): string[] {
  const found: string[] = [];
  const waiting = site.hosts.filter((h) => h.lifecycle.status === 'awaiting-operator');
  if (waiting.length > 0) found.push(`${listOf(waiting.map((h) => h.hostId))} awaiting an operator`);
  const down = site.vms.filter(haVmDown);
  if (down.length > 0) found.push(`${plural(down.length, 'HA VM')} down`);
  for (const { clusterId, report } of site.capacity.clusters) {
    if (!report.survivesAnyOneHostFailure) found.push(`cluster ${clusterId} fails N+1`);
    if (!report.automaticFailover) found.push(`cluster ${clusterId} has hosts that cannot be fenced`);
  }
  if (site.relays !== null && !site.relays.some((r) => r.status === 'enrolled' && r.live))
    found.push('no live relay (partitioned)');
  return found;
}

function renderSite(site: SiteStatus, ctx: CommandContext): string[] {
  const { style, time } = ctx;
  const byState = countByState(site.hosts);
  const ha = site.vms.filter((v) => v.ha).length;
  const lines = [
    style.bold(`Site ${site.siteId}`) +
      `: ${plural(site.hosts.length, 'host')}${byState === '' ? '' : ` (${byState})`}, ${plural(site.vms.length, 'VM')} (${ha} HA), ` +
      `${plural(site.incidents.length, 'open incident')}`,
  ];

  if (site.relays !== null) {
    const shown = site.relays.filter((r) => r.status === 'enrolled');
    const each = shown.map(
      (r) =>
        `${r.relayId} ${r.lastReportAt === null ? 'never reported' : `reported ${formatAge(r.lastReportAt, time.now)}`}`,
    );
    lines.push(
      `  relays: ${redundancyLine(site.relays, style)}${each.length === 0 ? '' : ` — ${each.join(', ')}`}`,
    );
  }

  const notable = site.hosts.filter((h) => h.lifecycle.status !== 'up' || h.fencing.fenceable === false);
  if (notable.length > 0) {
    lines.push(
      '',
      '  Hosts needing a look',
      ...renderTable(
        [
          { header: 'host' },
          { header: 'cluster' },
          { header: 'state' },
          { header: 'since' },
          { header: 'fenceable' },
        ],
        notable.map((h) => [
          h.hostId,
          h.cluster,
          hostState(h, style),
          hostSince(h, time.now),
          fenceCell(h, style),
        ]),
        '    ',
      ),
    );
  }

  if (site.incidents.length > 0) {
    lines.push(
      '',
      '  Open incidents',
      ...renderTable(
        [
          { header: 'incident' },
          { header: 'about' },
          { header: 'outcome' },
          { header: 'step' },
          { header: 'opened' },
        ],
        site.incidents.map((i) => [
          i.incidentId,
          subjectOf(i),
          outcomeText(i.outcome, style),
          i.step === null ? '' : `${i.step}${i.stepAt === null ? '' : ` (${formatAge(i.stepAt, time.now)})`}`,
          formatAge(i.openedAt, time.now),
        ]),
        '    ',
      ),
    );
    for (const i of site.incidents)
      if (i.outcome === 'awaiting-operator')
        lines.push(
          `    → ${i.hostId} waits for you: make sure it is off, then  halo confirm-off ${i.hostId} --site ${site.siteId}`,
        );
  }

  const down = site.vms.filter(haVmDown);
  if (down.length > 0) {
    const clusterOf = clusterIndex(site.hosts);
    lines.push(
      '',
      `  ${style.bad(`HA VMs down (${down.length})`)}`,
      ...renderTable(
        [
          { header: 'VM' },
          { header: 'priority' },
          { header: 'last host' },
          { header: 'cluster' },
          { header: 'down' },
          { header: 'why' },
        ],
        down.map((v) => [
          v.vmId,
          v.priority,
          v.hostId ?? '',
          clusterOf(v.siteId, v.hostId) ?? '',
          v.recovery === undefined ? '' : formatAge(v.recovery.since, time.now).replace(/ ago$/, ''),
          vmNote(v),
        ]),
        '    ',
      ),
    );
  }

  if (site.splitBrain.length > 0) {
    lines.push(
      '',
      `  ${style.bad(`Split brain reported in the last 24 h (${site.splitBrain.length})`)} — a VM heard running on two hosts: stop one copy (docs/runbook.md)`,
      ...renderTable(
        [{ header: 'when' }, { header: 'incident' }, { header: 'detail' }],
        site.splitBrain.map((e) => [formatAge(e.at, time.now), e.incidentId, e.detail]),
        '    ',
      ),
    );
  }

  lines.push('', '  N+1');
  if (site.capacity.clusters.length === 0) lines.push('    no clusters reported yet');
  for (const { clusterId, report } of site.capacity.clusters) {
    const size = site.hosts.filter((h) => h.cluster === clusterId).length;
    const room = report.survivesAnyOneHostFailure
      ? style.good(`OK — survives the loss of any one of ${plural(size, 'host')}`)
      : style.bad(
          `FAILS — losing ${listOf(report.staysDown.map((s) => s.failedHostId))} leaves HA VMs down (halo plan ${clusterId})`,
        );
    const fence = report.automaticFailover
      ? ''
      : `; ${style.bad(`no automatic failover for ${listOf(report.notFenceable.map((h) => h.hostId))} (cannot be fenced)`)}`;
    lines.push(`    ${clusterId}: ${room}${fence}`);
  }
  return lines;
}

/**
 * `halo status [--site S]`: one screen per site — relays and their redundancy, hosts not up (with fence
 * readiness), open incidents and their step, HA VMs down, the N+1 verdict per cluster. Exit 1 when a host
 * waits for an operator, an HA VM is down, a cluster fails N+1 or has a host that cannot be fenced, or a
 * site has no live relay.
 */
export async function statusCommand(
  ctx: CommandContext,
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const target = await ctx.target();
  const sites = await siteIds(target.client, options.site);
  const statuses = await Promise.all(sites.map((s) => siteStatus(ctx, s)));
  const found = statuses.map((s) => ({ siteId: s.siteId, problems: problems(s) }));
  const bad = found.some((f) => f.problems.length > 0);
  const code = bad ? EXIT.checkFailed : EXIT.ok;
  if (ctx.json) {
    writeJson(ctx, {
      target: target.description,
      at: ctx.time.now,
      ok: !bad,
      sites: statuses.map((s, i) => ({ ...s, problems: found[i]?.problems ?? [] })),
    });
    return code;
  }
  const { style, time } = ctx;
  const lines = [`Halo — ${target.description} — ${formatInstant(time.now, time.timeZone)}`];
  if (statuses.length === 0)
    lines.push('', 'No sites yet: enrol a relay (halo relay enroll <relay> --site <site>).');
  for (const s of statuses) lines.push('', ...renderSite(s, ctx));
  lines.push(
    '',
    bad
      ? style.bad(
          `Needs attention: ${found.flatMap((f) => f.problems.map((p) => `${f.siteId}: ${p}`)).join('; ')}`,
        )
      : style.good('All well.'),
  );
  const dashboard = target.outputs[STACK_OUTPUTS.dashboardUrl];
  if (dashboard !== undefined) lines.push(`Dashboard: ${dashboard}`);
  writeLines(ctx, lines);
  return code;
}
