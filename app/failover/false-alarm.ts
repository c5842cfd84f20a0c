import type { ConfirmSilenceOutput, IncidentInput, IncidentOutcome } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { listAdoptedLeftOf } from '../recovery/left-down';
import { toAppError } from '../shared/errors';
import { appendEvent } from '../shared/events';
import { incidentOf, transitionHost } from '../shared/host-lifecycle';
import { closeIncident, requireIncident } from '../shared/incidents';
import { METRIC } from '../shared/metrics';

/** FalseAlarm: the host was heard again before any fence; it is up and the incident closes. */
export async function falseAlarm(
  ctx: AppContext,
  incident: IncidentInput,
  silence: ConfirmSilenceOutput,
): Promise<{ outcome: IncidentOutcome }> {
  const now = ctx.ports.clock.now();
  try {
    // Ingest normally did this when the relay heard the host; here for a host it has not re-recorded yet.
    await transitionHost(ctx, incident.siteId, incident.hostId, (host) =>
      incidentOf(host.lifecycle) === incident.incidentId
        ? { command: { type: 'ReportAlive', at: now, bootId: host.bootId } }
        : null,
    );
  } catch (error) {
    throw toAppError(error);
  }
  const record = await requireIncident(ctx, incident.incidentId);
  if (record.closedAt === null) {
    await appendEvent(ctx, incident.incidentId, 'false-alarm', `false alarm: ${silence.detail}`, {
      relays: silence.relays,
    });
  }
  // Before the close (a repeat lists what a crash cut short): the VMs it took over as it opened.
  await listAdoptedLeftOf(ctx, incident.incidentId);
  const { changed } = await closeIncident(ctx, incident, 'false-alarm', silence.detail);
  if (changed) ctx.ports.metrics.count(METRIC.FalseAlarm);
  return { outcome: 'false-alarm' };
}
