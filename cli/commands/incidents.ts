import { RelayListSchema } from '../../contracts/operator-api';
import { ConfirmedSchema, getIncident, type Incident, listIncidents, parseAnswer } from '../api';
import type { OperatorClient } from '../client';
import { type CommandContext, writeJson, writeLines } from '../context';
import { ApiError, UsageError } from '../errors';
import { EXIT, type ExitCode, listOf, plural, renderTable } from '../format';
import { findHost } from '../lookup';
import { consoleUrl, incidentIsBadNews, outcomeText, renderIncident, subjectOf } from '../render-incident';
import { formatAge, formatDuration, formatInstant, formatWhen, parseSpan } from '../time';

// ---------------------------------------------------------------- incidents

/** `halo incidents [--since 30d] [--site S] [--open]`: exit 1 when one of them waits for an operator. */
export async function incidentsCommand(
  ctx: CommandContext,
  options: {
    readonly since: string;
    readonly site?: string | undefined;
    readonly open?: boolean | undefined;
  },
): Promise<ExitCode> {
  const span = parseSpan(options.since);
  if (span === null)
    throw new UsageError(`--since: expected a span such as 45m, 12h, 30d or 2w; got ${options.since}`);
  const from = ctx.time.now - span;
  const client = await ctx.client();
  // The route filters by `since` itself; an older control plane does not, so the CLI filters too.
  const incidents = (
    await listIncidents(client, { siteId: options.site, open: options.open, since: from })
  ).filter((i) => i.openedAt >= from);
  const waiting = incidents.filter((i) => i.outcome === 'awaiting-operator' && i.closedAt === null);
  const code = waiting.length > 0 ? EXIT.checkFailed : EXIT.ok;
  if (ctx.json) {
    writeJson(ctx, incidents);
    return code;
  }
  const within = `in the last ${formatDuration(span)}`;
  if (incidents.length === 0) {
    writeLines(ctx, [`no incidents ${within}`]);
    return code;
  }
  const { style, time } = ctx;
  const manySites = new Set(incidents.map((i) => i.siteId)).size > 1;
  const rows = incidents.map((i) => [
    formatInstant(i.openedAt, time.timeZone),
    formatAge(i.openedAt, time.now),
    ...(manySites ? [i.siteId] : []),
    i.incidentId,
    subjectOf(i),
    outcomeText(i.outcome, style),
    i.closedAt === null
      ? style.warn(`open ${formatDuration(time.now - i.openedAt)}`)
      : formatDuration(i.closedAt - i.openedAt),
  ]);
  const open = incidents.filter((i) => i.closedAt === null).length;
  writeLines(ctx, [
    ...renderTable(
      [
        { header: 'opened' },
        { header: '' },
        ...(manySites ? [{ header: 'site' }] : []),
        { header: 'incident' },
        { header: 'about' },
        { header: 'outcome' },
        { header: 'took', align: 'right' },
      ],
      rows,
    ),
    '',
    `${plural(incidents.length, 'incident')} ${within}, ${open} open` +
      (waiting.length === 0
        ? ''
        : `; ${style.bad(`${waiting.length} waiting for an operator`)}: halo incident <id>`),
  ]);
  return code;
}

// ---------------------------------------------------------------- incident

/** `halo incident <id>`: exit 1 when it waits for an operator or left HA VMs down. */
export async function incidentCommand(ctx: CommandContext, incidentId: string): Promise<ExitCode> {
  const target = await ctx.target();
  const detail = await getIncident(target.client, incidentId);
  const code = incidentIsBadNews(detail) ? EXIT.checkFailed : EXIT.ok;
  const local = target.client.transport.mode === 'local';
  if (ctx.json) {
    const arn = detail.executionArn;
    writeJson(ctx, { ...detail, consoleUrl: arn === null || local ? null : consoleUrl(arn) });
    return code;
  }
  writeLines(ctx, renderIncident(detail, { time: ctx.time, style: ctx.style, local }));
  return code;
}

// ---------------------------------------------------------------- confirm-off

/** Which relays hear the host now (their last report listed it as heard); empty when the route is missing. */
async function relaysHearing(client: OperatorClient, siteId: string, hostId: string): Promise<string[]> {
  try {
    const relays = parseAnswer(
      RelayListSchema,
      await client.call('listRelays', { params: { siteId } }),
      'listRelays',
    );
    return relays
      .filter((r) => r.status === 'enrolled' && r.live && r.hostsHeard.includes(hostId))
      .map(
        (r) =>
          `${r.relayId} (report ${r.lastReportAgeMs === null ? 'never' : `${formatDuration(r.lastReportAgeMs)} ago`})`,
      );
  } catch (error) {
    // An older control plane without the route (404) or its use case (501): the host's state still decides.
    if (error instanceof ApiError && (error.status === 404 || error.status === 501)) return [];
    throw error;
  }
}

/** The open incident of the host that waits for an operator, or a UsageError saying why there is none. */
function waitingIncident(incidents: readonly Incident[], hostId: string, status: string): Incident {
  const open = incidents.filter(
    (i) => i.hostId === hostId && i.closedAt === null && (i.kind ?? 'host') === 'host',
  );
  const waiting = open.find((i) => i.outcome === 'awaiting-operator');
  if (waiting !== undefined) return waiting;
  if (open[0] !== undefined)
    throw new UsageError(
      `incident ${open[0].incidentId} of ${hostId} is not waiting for an operator (${open[0].outcome}, host ${status}): ` +
        'the control plane asks for a confirmation only once fencing has failed',
    );
  throw new UsageError(`${hostId} has no open incident (host ${status}): there is nothing to confirm`);
}

/**
 * `halo confirm-off <host> [--site S] [--yes] [--operator NAME]`: tells the control plane an operator has
 * made sure the host is powered off, so its HA VMs restart elsewhere. Refuses when the host is heard alive.
 */
export async function confirmOffCommand(
  ctx: CommandContext,
  hostId: string,
  options: {
    readonly site?: string | undefined;
    readonly yes?: boolean | undefined;
    readonly operator?: string | undefined;
  },
): Promise<ExitCode> {
  const client = await ctx.client();
  const host = await findHost(client, hostId, options.site);
  const status = host.lifecycle.status;
  if (status === 'up')
    throw new UsageError(
      `refused: ${hostId} is heard alive (state up, boot ${host.bootId}): it is not powered off, and its VMs run there. Nothing was confirmed.`,
    );
  const hearing = await relaysHearing(client, host.siteId, hostId);
  if (hearing.length > 0)
    throw new UsageError(
      `refused: relay ${listOf(hearing)} hears ${hostId} alive: it is not powered off. Nothing was confirmed.`,
    );
  const incidents = await listIncidents(client, { siteId: host.siteId, open: true });
  const incident = waitingIncident(incidents, hostId, status);
  const detail = await getIncident(client, incident.incidentId);
  const haVms = detail.events
    .filter((e) => e.kind === 'ha-vms')
    .flatMap((e) => (Array.isArray(e.data?.vms) ? e.data.vms : []))
    .flatMap((v: unknown) => (typeof v === 'object' && v !== null && 'vmId' in v ? [String(v.vmId)] : []));
  const waitingSince = detail.events.find((e) => e.kind === 'awaiting-operator');
  const why = waitingSince?.detail ?? detail.events.find((e) => e.kind === 'fence-failed')?.detail;

  const local = client.transport.mode === 'local';
  // Deployed, the API records the caller's IAM identity unless a name is given; locally every caller is
  // the same fixed identity, so the operating-system user is the better witness.
  const operator = options.operator ?? (local ? ctx.host.user : undefined);
  if (options.yes !== true && !ctx.host.canPrompt)
    throw new UsageError(
      `incident ${incident.incidentId} waits for an operator, but there is no terminal to ask on: ` +
        'pass --yes to confirm from a script. Nothing was confirmed.',
    );
  if (options.yes !== true) {
    const { style } = ctx;
    ctx.io.stderr(
      [
        `${style.bold(`Incident ${incident.incidentId}`)}: ${hostId} (site ${host.siteId}, cluster ${host.cluster}) ` +
          `waits for an operator since ${formatWhen(waitingSince?.at ?? incident.openedAt, ctx.time)}.`,
        ...(why === undefined ? [] : [`  ${why}`]),
        `Confirming says ${hostId} is powered off: its ${plural(haVms.length, 'HA VM')}${haVms.length === 0 ? '' : ` (${listOf(haVms, 8)})`} ` +
          'will be started on other hosts.',
        style.bad(`If ${hostId} is in fact still running, those VMs will run twice.`),
        `Recorded as confirmed by ${operator ?? 'your IAM identity'}.`,
        '',
      ].join('\n'),
    );
    const answer = await ctx.host.prompt(`Is ${hostId} powered off? [y/N] `);
    if (answer === null)
      throw new UsageError(
        'no terminal to ask on: pass --yes to confirm from a script. Nothing was confirmed.',
      );
    if (!/^y(es)?$/i.test(answer.trim())) {
      ctx.io.stderr('Not confirmed: nothing was done.\n');
      return EXIT.usage;
    }
  }
  const body = { hostId, ...(operator === undefined ? {} : { operator }) };
  const answer = parseAnswer(
    ConfirmedSchema,
    await client.call('confirmPowerOff', { params: { incidentId: incident.incidentId }, body }),
    'confirmPowerOff',
  );
  if (ctx.json) {
    writeJson(ctx, answer);
    return EXIT.ok;
  }
  writeLines(ctx, [
    `Confirmed: ${hostId} is powered off (incident ${answer.incidentId}), by ${answer.by} at ${formatInstant(answer.at, ctx.time.timeZone)}.`,
    `The failover resumes: follow it with  halo incident ${answer.incidentId}`,
  ]);
  return EXIT.ok;
}
