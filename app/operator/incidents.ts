import type { AppContext } from '../context';
import type { IncidentEvent, IncidentRecord } from '../ports';
import { requireIncident } from '../shared/incidents';

/** One incident for review: its record, its timeline and its execution. */
export interface IncidentView {
  readonly incident: IncidentRecord;
  readonly events: readonly IncidentEvent[];
  readonly executionArn: string | null;
}

/** Incidents newest first, optionally of one site, only open ones, at most `limit`. */
export async function listIncidents(
  ctx: AppContext,
  args: {
    readonly siteId?: string | undefined;
    readonly open?: boolean | undefined;
    readonly limit?: number | undefined;
  },
): Promise<IncidentRecord[]> {
  return ctx.ports.incidents.list({
    ...(args.siteId === undefined ? {} : { siteId: args.siteId }),
    ...(args.open === undefined ? {} : { openOnly: args.open }),
    ...(args.limit === undefined ? {} : { limit: args.limit }),
  });
}

/** One incident with its timeline and execution ARN; NotFoundError for an unknown id. */
export async function getIncident(
  ctx: AppContext,
  args: { readonly incidentId: string },
): Promise<IncidentView> {
  const incident = await requireIncident(ctx, args.incidentId);
  const events = await ctx.ports.incidents.listEvents(args.incidentId);
  return { incident, events, executionArn: incident.executionArn };
}
