import type * as z from 'zod';
import { RelayListSchema, type RelayViewSchema } from '../../contracts/operator-api';
import { parseAnswer } from '../api';
import type { OperatorClient } from '../client';
import { type CommandContext, writeJson, writeLines } from '../context';
import { ApiError } from '../errors';
import { EXIT, type ExitCode, listOf, plural, renderTable } from '../format';
import { hostsOf, siteIds } from '../lookup';
import type { Style } from '../style';
import { formatAge, formatDuration } from '../time';
import { stateFilter } from './inventory';

/** A relay as the API lists it. */
export type Relay = z.infer<typeof RelayViewSchema>;

/** The relay states `--state` takes: reporting on time, late (reporting, but its votes no longer count), silent, revoked. */
export const RELAY_STATES = ['live', 'late', 'silent', 'revoked'] as const;

/** A relay's state in one word. */
export function relayState(relay: Relay): (typeof RELAY_STATES)[number] {
  if (relay.status === 'revoked') return 'revoked';
  if (!relay.live) return 'silent';
  return relay.onTime ? 'live' : 'late';
}

function stateCell(relay: Relay, style: Style): string {
  const state = relayState(relay);
  if (state === 'live') return style.good(state);
  if (state === 'revoked') return style.dim(state);
  return style.bad(state);
}

/** The relays of a site. */
export async function listRelays(client: OperatorClient, siteId: string): Promise<Relay[]> {
  return parseAnswer(RelayListSchema, await client.call('listRelays', { params: { siteId } }), 'listRelays');
}

/** The relays of a site, or null when the control plane has no relay route yet (older than this CLI). */
export async function relaysIfServed(client: OperatorClient, siteId: string): Promise<Relay[] | null> {
  try {
    return await listRelays(client, siteId);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 501)) return null;
    throw error;
  }
}

/** One line per site on its relays' redundancy: how many are live, and whether one more loss partitions it. */
export function redundancyLine(relays: readonly Relay[], style: Style): string {
  const enrolled = relays.filter((r) => r.status === 'enrolled');
  const live = enrolled.filter((r) => r.live);
  if (live.length === 0)
    return style.bad(`no live relay of ${enrolled.length}: the site is cut off (partitioned)`);
  if (live.length === 1)
    return style.warn(
      `1 live relay of ${enrolled.length}: no redundancy (losing ${live[0]?.relayId} partitions the site)`,
    );
  return style.good(`${live.length} live relays of ${enrolled.length}: redundant`);
}

/** The relay table of `halo relays`. */
export function relayTable(relays: readonly Relay[], ctx: CommandContext, indent = ''): string[] {
  const manySites = new Set(relays.map((r) => r.siteId)).size > 1;
  return renderTable(
    [
      ...(manySites ? [{ header: 'site' }] : []),
      { header: 'relay' },
      { header: 'state' },
      { header: 'last report' },
      { header: 'seq', align: 'right' as const },
      { header: 'pace', align: 'right' as const },
      { header: 'hears', align: 'right' as const },
      { header: 'silent hosts' },
    ],
    relays.map((r) => [
      ...(manySites ? [r.siteId] : []),
      r.relayId,
      stateCell(r, ctx.style),
      r.lastReportAt === null ? 'never' : formatAge(r.lastReportAt, ctx.time.now),
      r.seq === null ? '' : String(r.seq),
      r.nextReportInMs === null ? '' : formatDuration(r.nextReportInMs),
      String(r.hostsHeard.length),
      listOf(
        r.hostsSilent.map((h) => `${h.hostId} (${formatDuration(h.lastHeardMsAgo)})`),
        6,
      ),
    ]),
    indent,
  );
}

/**
 * `halo relays [--site S] [--cluster C] [--state live,late,silent,revoked]`: each relay's last report, its
 * sequence number, pace, and the hosts it hears and calls silent. `--cluster` keeps the relays that hear
 * or miss a host of that cluster. Exit 1 when a listed enrolled relay is not live.
 */
export async function relaysCommand(
  ctx: CommandContext,
  filters: {
    readonly site?: string | undefined;
    readonly cluster?: string | undefined;
    readonly state?: string | undefined;
  },
): Promise<ExitCode> {
  const states = stateFilter(filters.state, RELAY_STATES, 'relay');
  const client = await ctx.client();
  const sites = await siteIds(client, filters.site);
  let relays = (await Promise.all(sites.map((s) => listRelays(client, s)))).flat();
  if (filters.cluster !== undefined) {
    const members = new Set(
      (await hostsOf(client, filters.site))
        .filter((h) => h.cluster === filters.cluster)
        .map((h) => `${h.siteId}/${h.hostId}`),
    );
    relays = relays.filter((r) =>
      [...r.hostsHeard, ...r.hostsSilent.map((h) => h.hostId)].some((h) => members.has(`${r.siteId}/${h}`)),
    );
  }
  if (states !== null) relays = relays.filter((r) => states.has(relayState(r)));
  const code = relays.some((r) => r.status === 'enrolled' && !r.live) ? EXIT.checkFailed : EXIT.ok;
  if (ctx.json) {
    writeJson(ctx, relays);
    return code;
  }
  if (relays.length === 0) {
    writeLines(ctx, ['no relays match']);
    return code;
  }
  const lines = relayTable(relays, ctx);
  lines.push('');
  for (const siteId of sites) {
    const ofSite = relays.filter((r) => r.siteId === siteId);
    if (ofSite.length > 0)
      lines.push(`site ${siteId}: ${plural(ofSite.length, 'relay')}; ${redundancyLine(ofSite, ctx.style)}`);
  }
  writeLines(ctx, lines);
  return code;
}
