import type { AppContext } from '../context';
import type { DownPeriod, IncidentEvent, IncidentKind, IncidentRecord } from '../ports';
import { requireIncident } from '../shared/incidents';

/**
 * An incident as the operator API shows it (contracts IncidentViewSchema): the record without the Step
 * Functions task token of its operator wait, which completes the failover's AwaitOperator task and belongs
 * to the workflow alone (whoever holds it could answer the wait without the confirm-power-off checks).
 */
export type IncidentView = Omit<IncidentRecord, 'operatorTaskToken' | 'kind' | 'vmId' | 'downtime'> & {
  readonly kind: IncidentKind;
  readonly vmId: string | null;
  /** Whether the failover waits on an operator's answer right now (it holds a task token). */
  readonly awaitingOperatorTask: boolean;
  readonly downtime: Readonly<Record<string, DownPeriod>>;
};

/** One incident for review: its record, its timeline and its execution. */
export interface IncidentDetail {
  readonly incident: IncidentView;
  readonly events: readonly IncidentEvent[];
  readonly executionArn: string | null;
}

/** The operator's view of an incident record: never its task token. */
export function incidentView(record: IncidentRecord): IncidentView {
  const { operatorTaskToken, kind, vmId, downtime, ...rest } = record;
  return {
    ...rest,
    kind: kind ?? 'host',
    vmId: vmId ?? null,
    awaitingOperatorTask: operatorTaskToken !== null,
    downtime: downtime ?? {},
  };
}

/** Incidents newest first, optionally of one site, only open ones, opened since an instant, at most `limit`. */
export async function listIncidents(
  ctx: AppContext,
  args: {
    readonly siteId?: string | undefined;
    readonly open?: boolean | undefined;
    readonly since?: number | undefined;
    readonly limit?: number | undefined;
  },
): Promise<IncidentView[]> {
  const records = await ctx.ports.incidents.list({
    ...(args.siteId === undefined ? {} : { siteId: args.siteId }),
    ...(args.open === undefined ? {} : { openOnly: args.open }),
    ...(args.since === undefined ? {} : { since: args.since }),
    ...(args.limit === undefined ? {} : { limit: args.limit }),
  });
  return records.map(incidentView);
}

/** One incident with its timeline and execution ARN; NotFoundError for an unknown id. */
export async function getIncident(
  ctx: AppContext,
  args: { readonly incidentId: string },
): Promise<IncidentDetail> {
  const incident = await requireIncident(ctx, args.incidentId);
  const events = await ctx.ports.incidents.listEvents(args.incidentId);
  return { incident: incidentView(incident), events, executionArn: incident.executionArn };
}
