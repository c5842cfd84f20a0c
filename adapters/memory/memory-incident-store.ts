import type { FeedPosition, IncidentEvent, IncidentRecord, IncidentStore } from '../../app/ports';
import type { IncidentOutcome } from '../../contracts/workflow';
import { checkVersion, compareStrings, copy, definedFields, type MemoryState } from './memory-state';

/** Outcomes of an incident still being worked on (the rest are final). */
const OPEN_OUTCOMES: readonly IncidentOutcome[] = ['in-progress', 'awaiting-operator'];

/** In-memory IncidentStore with the DynamoDB store's semantics. */
export class MemoryIncidentStore implements IncidentStore {
  constructor(private readonly state: MemoryState) {}

  async create(
    incident: Omit<IncidentRecord, 'version'>,
  ): Promise<{ created: boolean; incident: IncidentRecord }> {
    const existing = this.state.incidents.get(incident.incidentId);
    if (existing !== undefined) return { created: false, incident: copy(existing) };
    const fresh: IncidentRecord = { ...copy(incident), version: 1 };
    this.state.incidents.set(incident.incidentId, fresh);
    return { created: true, incident: copy(fresh) };
  }

  async get(incidentId: string): Promise<IncidentRecord | null> {
    const incident = this.state.incidents.get(incidentId);
    return incident === undefined ? null : copy(incident);
  }

  async list(filter?: {
    siteId?: string;
    openOnly?: boolean;
    since?: number;
    limit?: number;
  }): Promise<IncidentRecord[]> {
    return [...this.state.incidents.values()]
      .filter((i) => filter?.siteId === undefined || i.siteId === filter.siteId)
      .filter((i) => filter?.since === undefined || i.openedAt >= filter.since)
      .filter((i) => filter?.openOnly !== true || OPEN_OUTCOMES.includes(i.outcome))
      .sort((a, b) => b.openedAt - a.openedAt || compareStrings(b.incidentId, a.incidentId))
      .slice(0, filter?.limit)
      .map(copy);
  }

  async update(
    incidentId: string,
    expectedVersion: number,
    patch: Parameters<IncidentStore['update']>[2],
  ): Promise<IncidentRecord> {
    const current = checkVersion(
      this.state.incidents.get(incidentId),
      expectedVersion,
      `incident ${incidentId}`,
    );
    const {
      outcome,
      executionArn,
      fencedAt,
      closedAt,
      operatorTaskToken,
      operatorAnswer,
      operatorWaitEndedAt,
      downtime,
    } = patch;
    const next: IncidentRecord = {
      ...current,
      ...definedFields({
        outcome,
        executionArn,
        fencedAt,
        closedAt,
        operatorTaskToken,
        operatorAnswer,
        operatorWaitEndedAt,
        downtime,
      }),
      version: current.version + 1,
    };
    this.state.incidents.set(incidentId, next);
    return copy(next);
  }

  async appendEvent(event: IncidentEvent): Promise<void> {
    let timeline = this.state.events.get(event.incidentId);
    if (timeline === undefined) {
      timeline = new Map();
      this.state.events.set(event.incidentId, timeline);
    }
    const key = `${event.at}\u0000${event.kind}\u0000${event.key ?? ''}`;
    // (at, kind, key) is the event's identity: the same fact written twice is stored once.
    if (!timeline.has(key)) timeline.set(key, copy(event));
  }

  async listEvents(incidentId: string, options: { readonly fromAt?: number } = {}): Promise<IncidentEvent[]> {
    const timeline = this.state.events.get(incidentId);
    if (timeline === undefined) return [];
    const fromAt = options.fromAt ?? Number.NEGATIVE_INFINITY;
    return [...timeline.values()]
      .filter((e) => e.at >= fromAt)
      .sort(
        (a, b) => a.at - b.at || compareStrings(a.kind, b.kind) || compareStrings(a.key ?? '', b.key ?? ''),
      )
      .map(copy);
  }

  async listFeed(options: {
    readonly fromAt?: number;
    readonly after?: FeedPosition;
    readonly limit: number;
  }): Promise<IncidentEvent[]> {
    const { after } = options;
    const fromAt = options.fromAt ?? Number.NEGATIVE_INFINITY;
    const all = [...this.state.events.values()].flatMap((timeline) => [...timeline.values()]);
    return all
      .filter((e) => (after === undefined ? e.at >= fromAt : compareFeed(positionOf(e), after) > 0))
      .sort((a, b) => compareFeed(positionOf(a), positionOf(b)))
      .slice(0, options.limit)
      .map(copy);
  }
}

function positionOf(event: IncidentEvent): FeedPosition {
  return { at: event.at, incidentId: event.incidentId, kind: event.kind, key: event.key ?? '' };
}

/** Feed order, as the DynamoDB store's gsi1 sort key orders it (time, incident, kind, key). */
function compareFeed(a: FeedPosition, b: FeedPosition): number {
  return (
    a.at - b.at ||
    compareStrings(a.incidentId, b.incidentId) ||
    compareStrings(a.kind, b.kind) ||
    compareStrings(a.key, b.key)
  );
}
