import type { IncidentOutcome } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { NotFoundError } from '../errors';
import type { IncidentRecord, IncidentStore, SiteControl } from '../ports';
import { appendEvent } from './events';
import { METRIC } from './metrics';
import { type Decision, readDecideWrite } from './retry';

type IncidentPatch = Parameters<IncidentStore['update']>[2];

/** The incident record; NotFoundError for an unknown id. */
export async function requireIncident(ctx: AppContext, incidentId: string): Promise<IncidentRecord> {
  const incident = await ctx.ports.incidents.get(incidentId);
  if (incident === null) throw new NotFoundError(`incident ${incidentId} not found`);
  return incident;
}

/**
 * Applies a patch decided on the freshly read record, re-reading on a lost race. The patch function
 * returns null when the record already says what it would write (a repeated step), and nothing is written.
 * `seen` (the record as the caller just read it) saves the first read when the patch writes: the write is
 * conditional on its version, so a stale one only costs a re-read; "nothing to write" is only ever decided
 * on a fresh read.
 */
export async function updateIncident(
  ctx: AppContext,
  incidentId: string,
  patch: (incident: IncidentRecord) => IncidentPatch | null,
  seen?: IncidentRecord,
  /** How many lost races to re-read and retry (retryOnConflict's default when absent). */
  maxAttempts?: number,
): Promise<{ incident: IncidentRecord; changed: boolean }> {
  return readDecideWrite(
    () => requireIncident(ctx, incidentId),
    (incident): Decision<{ incident: IncidentRecord; changed: boolean }> => {
      const change = patch(incident);
      return change === null
        ? { done: { incident, changed: false } }
        : {
            write: async () => ({
              incident: await ctx.ports.incidents.update(incidentId, incident.version, change),
              changed: true,
            }),
          };
    },
    seen,
    maxAttempts,
  );
}

/**
 * Retries for incident writes that many writers make side by side and that commute with one another: the
 * down-time merges of a host incident's VMs (VM-level HA resolving hundreds of them in one report) and the
 * close, whose decision does not depend on them. Each lost race is another writer's win, so all land
 * within as many rounds as there are writers.
 */
export const CONTENDED_WRITE_ATTEMPTS = 64;

/**
 * Closes the incident with its outcome, once: the first call writes outcome and closedAt, counts the
 * metric and appends `closed`; repeats only make sure the site no longer lists it as open.
 */
export async function closeIncident(
  ctx: AppContext,
  ref: { readonly incidentId: string; readonly siteId: string },
  outcome: IncidentOutcome,
  detail: string,
  data?: Readonly<Record<string, unknown>>,
): Promise<{ incident: IncidentRecord; changed: boolean }> {
  const now = ctx.ports.clock.now();
  const result = await updateIncident(
    ctx,
    ref.incidentId,
    (incident) =>
      incident.closedAt !== null
        ? null
        : // A callback token of a closed incident is dead: nobody may complete it any more.
          {
            outcome,
            closedAt: now,
            ...(incident.operatorTaskToken === null ? {} : { operatorTaskToken: null }),
          },
    undefined,
    CONTENDED_WRITE_ATTEMPTS,
  );
  await ctx.ports.sites.setIncidentOpen(ref.siteId, ref.incidentId, false);
  if (result.changed) {
    ctx.ports.metrics.count(METRIC.IncidentClosed, 1, { outcome });
    await appendEvent(ctx, ref.incidentId, 'closed', `closed: ${outcome}. ${detail}`, { outcome, ...data });
  }
  return result;
}

/** Whether the incident exists and is not closed (one read). */
export async function incidentOpen(ctx: AppContext, incidentId: string): Promise<boolean> {
  return (await ctx.ports.incidents.get(incidentId))?.closedAt === null;
}

/**
 * Whether a host has an incident open (ids `site:host:n`, see incidentIdFor): its VMs are then that
 * incident's to place, and VM-level HA leaves them alone so that no VM is started twice.
 */
export function hostIncidentOpen(control: SiteControl, hostId: string): boolean {
  const prefix = `${control.site.siteId}:${hostId}:`;
  return control.openIncidents.some((id) => id.startsWith(prefix) && /^\d+$/.test(id.slice(prefix.length)));
}
