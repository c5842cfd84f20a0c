import type { AppContext } from '../context';
import { NotFoundError, ValidationError } from '../errors';
import type { IncidentKind, IncidentRecord } from '../ports';
import { compareIds } from '../shared/order';
import { requireControl } from '../shared/site';

/** Default window of a down-time query: the last 30 days. */
export const DEFAULT_DOWNTIME_WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

/** One down period of a VM within a window (contracts VmDowntimePeriodSchema). */
export interface VmDowntimePeriod {
  readonly vmId: string;
  readonly incidentId: string;
  readonly cause: IncidentKind;
  readonly hostId: string;
  readonly from: number;
  readonly to: number | null;
  /** The part inside the window (an open period counts to the window's end or now, whichever is first). */
  readonly downMs: number;
}

/** A VM's down time within a window (contracts VmDowntimeSchema). */
export interface VmDowntime {
  readonly siteId: string;
  readonly vmId: string;
  readonly since: number;
  readonly until: number;
  readonly downMs: number;
  readonly periods: readonly VmDowntimePeriod[];
}

/** Every VM of a site with down time within a window (contracts SiteDowntimeSchema). */
export interface SiteDowntime {
  readonly siteId: string;
  readonly since: number;
  readonly until: number;
  readonly vms: readonly VmDowntime[];
}

interface Window {
  readonly since: number;
  readonly until: number;
}

/**
 * The down periods the site's incidents recorded (app/shared/downtime.ts), per VM, that overlap the window
 * (default: the last 30 days up to now), with each VM's total inside it, overlapping periods counted once.
 * Reads every incident of the site (an operator's occasional query). NotFoundError for an unknown site.
 */
export async function siteDowntime(
  ctx: AppContext,
  args: { readonly siteId: string; readonly since?: number | undefined; readonly until?: number | undefined },
): Promise<SiteDowntime> {
  await requireControl(ctx, args.siteId);
  const window = windowOf(ctx, args);
  const incidents = await ctx.ports.incidents.list({ siteId: args.siteId });
  const byVm = new Map<string, VmDowntimePeriod[]>();
  for (const period of periodsIn(incidents, window, ctx.ports.clock.now())) {
    byVm.set(period.vmId, [...(byVm.get(period.vmId) ?? []), period]);
  }
  const vms = [...byVm.entries()]
    .sort(([a], [b]) => compareIds(a, b))
    .map(([vmId, periods]) => vmTotals(args.siteId, vmId, window, periods, ctx.ports.clock.now()));
  return { siteId: args.siteId, ...window, vms };
}

/** One VM's down periods and total within the window; NotFoundError for an unknown site or VM. */
export async function vmDowntime(
  ctx: AppContext,
  args: {
    readonly siteId: string;
    readonly vmId: string;
    readonly since?: number | undefined;
    readonly until?: number | undefined;
  },
): Promise<VmDowntime> {
  await requireControl(ctx, args.siteId);
  const window = windowOf(ctx, args);
  const [vm, incidents] = await Promise.all([
    ctx.ports.vms.getVm(args.siteId, args.vmId),
    ctx.ports.incidents.list({ siteId: args.siteId }),
  ]);
  if (vm === null) throw new NotFoundError(`VM ${args.siteId}/${args.vmId} not found`);
  const now = ctx.ports.clock.now();
  const periods = periodsIn(incidents, window, now).filter((p) => p.vmId === args.vmId);
  return vmTotals(args.siteId, args.vmId, window, periods, now);
}

function windowOf(
  ctx: AppContext,
  args: { readonly since?: number | undefined; readonly until?: number | undefined },
): Window {
  const until = args.until ?? ctx.ports.clock.now();
  const since = args.since ?? Math.max(0, until - DEFAULT_DOWNTIME_WINDOW_MS);
  if (since >= until) {
    const message = `since (${since}) must be before until (${until})`;
    throw new ValidationError(`invalid query: since: ${message}`, [{ path: 'since', message }]);
  }
  return { since, until };
}

/** Every recorded period that overlaps the window, with its part inside it. */
function periodsIn(incidents: readonly IncidentRecord[], window: Window, now: number): VmDowntimePeriod[] {
  const end = Math.min(window.until, now);
  return incidents.flatMap((incident) =>
    Object.entries(incident.downtime ?? {}).flatMap(([vmId, period]): VmDowntimePeriod[] => {
      const to = period.to ?? end;
      const downMs = Math.max(0, Math.min(to, window.until) - Math.max(period.from, window.since));
      if (period.from >= window.until || to <= window.since) return [];
      return [
        {
          vmId,
          incidentId: incident.incidentId,
          cause: incident.kind ?? 'host',
          hostId: incident.hostId,
          from: period.from,
          to: period.to,
          downMs,
        },
      ];
    }),
  );
}

function vmTotals(
  siteId: string,
  vmId: string,
  window: Window,
  periods: readonly VmDowntimePeriod[],
  now: number,
): VmDowntime {
  const sorted = [...periods].sort((a, b) => a.from - b.from || compareIds(a.incidentId, b.incidentId));
  // The union of the periods inside the window: a VM down for two reasons at once is down once.
  const end = Math.min(window.until, now);
  let downMs = 0;
  let reach = window.since;
  for (const p of sorted) {
    const from = Math.max(p.from, reach);
    const to = Math.min(p.to ?? end, window.until);
    if (to > from) downMs += to - from;
    reach = Math.max(reach, to);
  }
  return { siteId, vmId, ...window, downMs, periods: sorted };
}
