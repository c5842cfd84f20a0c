import type { IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { appendEvent, eventsOf } from '../shared/events';
import { requireIncident } from '../shared/incidents';

/** Suspect: puts what opened the incident (each live relay's view) at the head of its timeline. */
export async function suspect(ctx: AppContext, incident: IncidentInput): Promise<{ detail: string }> {
  const [, suspected] = await Promise.all([
    requireIncident(ctx, incident.incidentId),
    eventsOf(ctx, incident.incidentId, 'suspected'),
  ]);
  const views = incident.evidence.relays.map((r) => `${r.relayId} last heard it ${r.lastHeardMsAgo} ms ago`);
  const overdue = (incident.evidence.overdueRelays ?? []).map(
    (r) => `${r.relayId} last heard it but has not reported for ${r.reportAgeMs} ms (overdue: vote ignored)`,
  );
  const unheard = (incident.evidence.unheardRelays ?? []).map(
    (relayId) => `${relayId} has not heard it since it started (no evidence of life: vote not counted)`,
  );
  const detail =
    `${incident.hostId} (cluster ${incident.cluster}, boot ${incident.bootId}) is silent for every live relay ` +
    `(silent after ${incident.evidence.silentAfterMs} ms): ${[...views, ...overdue, ...unheard].join('; ') || 'no relay view'}`;
  if (suspected.length === 0) {
    await appendEvent(ctx, incident.incidentId, 'suspected', detail, { evidence: incident.evidence });
  }
  return { detail };
}
