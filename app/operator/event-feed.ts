import type { AppContext } from '../context';
import { ValidationError } from '../errors';
import type { FeedPosition, IncidentEvent, IncidentKind, IncidentRecord } from '../ports';

/** Default window of the feed when no `since` is given. */
export const DEFAULT_FEED_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Default page size. */
export const DEFAULT_FEED_LIMIT = 100;

/** One event of the fleet-wide feed (contracts FeedEventSchema). */
export type FeedEvent = IncidentEvent & {
  readonly siteId: string;
  readonly incidentKind: IncidentKind;
  readonly hostId: string;
  readonly vmId: string | null;
};

/** One page of the feed and the cursor of the next (null: this page reached the newest event). */
export interface EventFeedPage {
  readonly events: readonly FeedEvent[];
  readonly next: string | null;
}

/**
 * The incident events of the whole fleet, oldest first (newest last), from `since` (default: a day ago)
 * or after the cursor of a previous page, `limit` at a time (default 100), each with the site, host and VM
 * of its incident; only one site's with `siteId` (a page then may hold fewer events and still have a next).
 */
export async function listEventFeed(
  ctx: AppContext,
  args: {
    readonly since?: number | undefined;
    readonly after?: string | undefined;
    readonly limit?: number | undefined;
    readonly siteId?: string | undefined;
  },
): Promise<EventFeedPage> {
  const limit = args.limit ?? DEFAULT_FEED_LIMIT;
  const after = args.after === undefined ? undefined : decodeCursor(args.after);
  const fromAt = args.since ?? ctx.ports.clock.now() - DEFAULT_FEED_WINDOW_MS;
  // One more than the page: whether it exists says whether there is a next page.
  const read = await ctx.ports.incidents.listFeed({
    ...(after === undefined ? { fromAt } : { after }),
    limit: limit + 1,
  });
  const page = read.slice(0, limit);
  const last = page.at(-1);
  const next = read.length > limit && last !== undefined ? encodeCursor(last) : null;
  const ids = [...new Set(page.map((e) => e.incidentId))];
  const records = new Map<string, IncidentRecord>();
  await Promise.all(
    ids.map(async (incidentId) => {
      const record = await ctx.ports.incidents.get(incidentId);
      if (record !== null) records.set(incidentId, record);
    }),
  );
  const events = page.flatMap((event): FeedEvent[] => {
    const incident = records.get(event.incidentId);
    if (incident === undefined) return [];
    if (args.siteId !== undefined && incident.siteId !== args.siteId) return [];
    return [
      {
        ...event,
        siteId: incident.siteId,
        incidentKind: incident.kind ?? 'host',
        hostId: incident.hostId,
        vmId: incident.vmId ?? null,
      },
    ];
  });
  return { events, next };
}

/** The cursor after an event: its feed position, as base64url JSON (opaque to clients). */
export function encodeCursor(event: IncidentEvent): string {
  const position: FeedPosition = {
    at: event.at,
    incidentId: event.incidentId,
    kind: event.kind,
    key: event.key ?? '',
  };
  return Buffer.from(
    JSON.stringify([position.at, position.incidentId, position.kind, position.key]),
  ).toString('base64url');
}

function decodeCursor(cursor: string): FeedPosition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = null;
  }
  if (
    Array.isArray(parsed) &&
    parsed.length === 4 &&
    Number.isSafeInteger(parsed[0]) &&
    parsed.slice(1).every((part) => typeof part === 'string')
  ) {
    const [at, incidentId, kind, key] = parsed as [number, string, string, string];
    return { at, incidentId, kind, key };
  }
  const message = 'not a cursor this API handed out (pass the `next` of the previous page)';
  throw new ValidationError(`invalid query: after: ${message}`, [{ path: 'after', message }]);
}
