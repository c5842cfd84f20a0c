import type { AppContext } from '../context';
import type { IncidentEvent } from '../ports';

/** Kinds of timeline events, stable: the review, the simulator and the console read them. */
export type IncidentEventKind =
  | 'suspected'
  | 'silence-confirmed'
  | 'false-alarm'
  | 'fencing-suppressed'
  | 'fence-ordered'
  | 'power-off-confirmed'
  | 'fence-failed'
  | 'awaiting-operator'
  | 'fenced'
  | 'placement-planned'
  | 'capacity-reserved'
  | 'start-ordered'
  | 'vm-started'
  | 'start-failed'
  | 'vm-unplaced'
  | 'start-unconfirmed'
  | 'closed'
  | 'host-came-back'
  | 'split-brain'
  | 'maintenance'
  | 'reopened'
  // VM-level HA (app/recovery): a VM incident's own kinds, and `retry-listed` on a host incident.
  | 'vm-stopped'
  | 'restart-scheduled'
  | 'restart-failed'
  | 'restart-budget-exhausted'
  | 'retry-listed'
  | 'down-on-purpose'
  | 'ha-vms'
  | 'boot-ended'
  | 'operator-timed-out'
  | 'resumed';

/** Appends one line to an incident's timeline at the clock's now. */
export async function appendEvent(
  ctx: AppContext,
  incidentId: string,
  kind: IncidentEventKind,
  detail: string,
  data?: Readonly<Record<string, unknown>>,
): Promise<void> {
  // The subject (a command, else a VM, else a relay) keeps same-millisecond events of one kind apart.
  const subject = data?.commandId ?? data?.vmId ?? data?.relayId;
  const event: IncidentEvent = {
    incidentId,
    at: ctx.ports.clock.now(),
    kind,
    detail,
    ...(typeof subject === 'string' ? { key: subject } : {}),
  };
  await ctx.ports.incidents.appendEvent(data === undefined ? event : { ...event, data });
}

/** The incident's events of one kind, optionally narrowed (e.g. to one VM), oldest first. */
export async function eventsOf(
  ctx: AppContext,
  incidentId: string,
  kind: IncidentEventKind,
  match: (event: IncidentEvent) => boolean = () => true,
): Promise<IncidentEvent[]> {
  const events = await ctx.ports.incidents.listEvents(incidentId);
  return events.filter((e) => e.kind === kind && match(e));
}

/** True when the event's data names this VM (per-VM events carry `vmId`). */
export function aboutVm(vmId: string): (event: IncidentEvent) => boolean {
  return (event) => event.data?.vmId === vmId;
}
