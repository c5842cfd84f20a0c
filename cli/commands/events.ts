import type * as z from 'zod';
import { EventFeedSchema, type FeedEventSchema } from '../../contracts/operator-api';
import { parseAnswer } from '../api';
import { type CommandContext, writeJson, writeLines } from '../context';
import { UsageError } from '../errors';
import { EXIT, type ExitCode, plural, renderTable } from '../format';
import { formatDuration, formatInstant, parseSpan } from '../time';

type FeedEvent = z.infer<typeof FeedEventSchema>;

/** Pages the feed holds at most, so that a long span cannot loop for ever. */
const MAX_PAGES = 50;

/** `halo events [--since 1h] [--site S]`: every incident's events in the span, oldest first. */
export async function eventsCommand(
  ctx: CommandContext,
  options: { readonly since: string; readonly site?: string | undefined },
): Promise<ExitCode> {
  const span = parseSpan(options.since);
  if (span === null)
    throw new UsageError(`--since: expected a span such as 45m, 12h or 30d; got ${options.since}`);
  const client = await ctx.client();
  const events: FeedEvent[] = [];
  let after: string | null = null;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const query: Record<string, string | undefined> =
      after === null
        ? { since: String(ctx.time.now - span), limit: '1000', siteId: options.site }
        : { after, limit: '1000', siteId: options.site };
    const answer = parseAnswer(EventFeedSchema, await client.call('listEvents', { query }), 'listEvents');
    events.push(...answer.events);
    after = answer.next;
    if (after === null) break;
  }
  if (ctx.json) {
    writeJson(ctx, events);
    return EXIT.ok;
  }
  if (events.length === 0) {
    writeLines(ctx, [`no events in the last ${formatDuration(span)}`]);
    return EXIT.ok;
  }
  const manySites = new Set(events.map((e) => e.siteId)).size > 1;
  writeLines(ctx, [
    ...renderTable(
      [
        { header: 'time' },
        ...(manySites ? [{ header: 'site' }] : []),
        { header: 'incident' },
        { header: 'event' },
        { header: 'detail' },
      ],
      events.map((e) => [
        formatInstant(e.at, ctx.time.timeZone),
        ...(manySites ? [e.siteId] : []),
        e.incidentId,
        e.kind,
        e.detail,
      ]),
    ),
    '',
    `${plural(events.length, 'event')} in the last ${formatDuration(span)}${after === null ? '' : ' (more: narrow --since)'}`,
  ]);
  return EXIT.ok;
}
