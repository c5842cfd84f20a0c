import { type IncidentInput, type IncidentOutcome, IncidentOutcomeSchema } from '../../contracts/workflow';
import type { AppContext } from '../context';
import type { IncidentRecord } from '../ports';
import { isRunning } from '../shared/capacity';
import { incidentOf } from '../shared/host-lifecycle';
import { closeIncident, requireIncident } from '../shared/incidents';
import { plannedVmIds, storedPlan } from './plan-record';
import { markDownAll } from './scope';

/**
 * Close: the final outcome. A fenced incident recovered when every HA VM of its plan started (by the start
 * commands' results, the store's record of what relays confirmed) and nothing was unplaced; otherwise it
 * partially recovered. An incident that never fenced takes the outcome the state machine names, else
 * false-alarm when its host came back, else what it already records.
 */
export async function close(
  ctx: AppContext,
  incident: IncidentInput,
  requested?: string,
): Promise<{ outcome: IncidentOutcome }> {
  const record = await requireIncident(ctx, incident.incidentId);
  if (record.fencedAt !== null) {
    // The fenced host's VMs still recorded running there are the ones no wave brought back: down. (Done
    // before the close, so a repeated Close finishes it; a VM restarted elsewhere is recorded there.)
    const left = await ctx.ports.vms.listVms(incident.siteId, { hostId: incident.hostId });
    await markDownAll(ctx, incident, left.filter(isRunning), ctx.ports.clock.now());
  }
  if (record.closedAt !== null) return { outcome: record.outcome };
  const { outcome, detail, data } = await resolveOutcome(ctx, record, requested);
  const { incident: closed } = await closeIncident(ctx, incident, outcome, detail, data);
  return { outcome: closed.outcome };
}

async function resolveOutcome(
  ctx: AppContext,
  record: IncidentRecord,
  requested: string | undefined,
): Promise<{ outcome: IncidentOutcome; detail: string; data?: Record<string, unknown> }> {
  if (record.fencedAt !== null) {
    const plan = storedPlan(await ctx.ports.incidents.listEvents(record.incidentId));
    const commands = await ctx.ports.commands.listForIncident(record.siteId, record.incidentId);
    const started = new Set(
      commands.flatMap((c) =>
        c.command.kind === 'start-vm' && c.status === 'succeeded' ? [c.command.vm.id] : [],
      ),
    );
    const planned = plan === null ? [] : plannedVmIds(plan);
    const down = planned.filter((id) => !started.has(id));
    const unplaced = plan?.unplaced.map((u) => u.vmId) ?? [];
    const recovered = plan !== null && down.length === 0 && unplaced.length === 0;
    return {
      outcome: recovered ? 'recovered' : 'partially-recovered',
      detail:
        plan === null
          ? 'the host was fenced but no placement was planned'
          : `${planned.length - down.length} of ${planned.length + unplaced.length} HA VM(s) restarted` +
            (down.length + unplaced.length === 0 ? '' : `; down: ${[...down, ...unplaced].join(', ')}`),
      data: { started: [...started], down, unplaced },
    };
  }
  const named = IncidentOutcomeSchema.safeParse(requested);
  if (named.success && named.data !== 'in-progress') {
    return { outcome: named.data, detail: 'no VM was restarted: the host was never confirmed off' };
  }
  const host = await ctx.ports.hosts.getHost(record.siteId, record.hostId);
  if (host !== null && incidentOf(host.lifecycle) !== record.incidentId) {
    return {
      outcome: 'false-alarm',
      detail: `${record.hostId} came back (${host.lifecycle.status}) before any fence`,
    };
  }
  // Still this incident's and never fenced: like a suppressed fence, the host stays suspect for the detector.
  return {
    outcome: record.outcome === 'in-progress' ? 'fencing-suppressed' : record.outcome,
    detail: `no VM was restarted: ${record.hostId} was never confirmed off`,
  };
}
