import type { IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import type { DownPeriod, IncidentEvent, IncidentRecord } from '../ports';
import { CONTENDED_WRITE_ATTEMPTS, updateIncident } from './incidents';

/**
 * Per-VM down time, kept in the incident records (`IncidentRecord.downtime`, one entry per VM): the SLA
 * minutes an operator reads back (`GET /v1/sites/{siteId}/downtime`). A period runs from when the VM went
 * down (its host's silence, or its own stop) to when it was seen running again. Where each is written:
 *
 * - a host incident, at its Close once the failed boot ended (fenced, or heard in a new boot): every VM of
 *   its HA set, ended for those that run (their start's report, or the first observation of them running),
 *   open (`to` null) for those it leaves down, which VM-level HA then takes over, naming this incident;
 * - a VM incident that opens an episode (a crash, a host rebooted under it), when it opens: open;
 * - the VM's episode, when it runs again (VM-level HA's resolve), or when it stops counting (marked down on
 *   purpose, no longer HA): the open period is ended then.
 *
 * A host incident that ends without its boot ending (false alarm, fencing suppressed) records none: the
 * host may well have run its VMs all along, and the control plane cannot say they were down.
 * Every write is conditional on the incident's version and repeat-safe: a period once ended never moves.
 */

/** When a host incident's host went silent: the last time any relay heard it, as the opening evidence says. */
export function silenceStart(
  incident: Pick<IncidentRecord, 'openedAt'> & { input: IncidentInput | null },
): number {
  const ago = incident.input?.evidence.relays.map((r) => r.lastHeardMsAgo) ?? [];
  return ago.length === 0 ? incident.openedAt : Math.max(0, incident.openedAt - Math.min(...ago));
}

/**
 * Records periods on an incident: a VM without one gets the given period; an open one is ended by a given
 * end; an ended one stays as it is.
 */
export async function recordDownPeriods(
  ctx: AppContext,
  incidentId: string,
  periods: Readonly<Record<string, DownPeriod>>,
  seen?: IncidentRecord,
): Promise<IncidentRecord> {
  const { incident } = await updateIncident(
    ctx,
    incidentId,
    (current) => {
      const held = current.downtime ?? {};
      const next: Record<string, DownPeriod> = { ...held };
      let changed = false;
      for (const [vmId, period] of Object.entries(periods)) {
        const had = held[vmId];
        if (had === undefined) {
          next[vmId] = {
            from: period.from,
            to: period.to === null ? null : Math.max(period.from, period.to),
          };
          changed = true;
        } else if (had.to === null && period.to !== null) {
          next[vmId] = { from: had.from, to: Math.max(had.from, period.to) };
          changed = true;
        }
      }
      return changed ? { downtime: next } : null;
    },
    seen,
    // A merge commutes with every other (each VM's entry is set once, then ended once).
    CONTENDED_WRITE_ATTEMPTS,
  );
  return incident;
}

/** Ends a VM's open period on an incident at `to` (nothing when it has none, or it has ended). */
export async function endDownPeriod(
  ctx: AppContext,
  incidentId: string,
  vmId: string,
  to: number,
): Promise<void> {
  const incident = await ctx.ports.incidents.get(incidentId);
  const open = incident?.downtime?.[vmId];
  if (incident === null || open === undefined || open.to !== null) return;
  await recordDownPeriods(ctx, incidentId, { [vmId]: { from: open.from, to } }, incident);
}

/**
 * When each VM of a host incident ran again, from its timeline (`vm-started`: the relay's report of the
 * start) and, for one found running without a start of this incident, its record's observation time.
 */
export function runningAgainAt(
  events: readonly IncidentEvent[],
  running: ReadonlyMap<string, number>,
): Map<string, number> {
  const at = new Map<string, number>();
  for (const event of events) {
    const vmId = event.data?.vmId;
    if (event.kind !== 'vm-started' || typeof vmId !== 'string') continue;
    at.set(vmId, Math.min(at.get(vmId) ?? Number.POSITIVE_INFINITY, event.at));
  }
  for (const [vmId, observedAt] of running) if (!at.has(vmId)) at.set(vmId, observedAt);
  return at;
}
