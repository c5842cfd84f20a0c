import type {
  DownPeriod,
  FeedPosition,
  IncidentEvent,
  IncidentKind,
  IncidentRecord,
  IncidentStore,
} from '../../app/ports';
import type { IncidentInput, IncidentOutcome } from '../../contracts/workflow';
import {
  beginsWith,
  type DynamoContext,
  getItem,
  type Item,
  type Key,
  keyOf,
  mapOrNull,
  num,
  numOrNull,
  putIfAbsent,
  queryAll,
  str,
  strOrNull,
  updateVersioned,
} from './dynamo-support';
import {
  EVENTS_GSI_PK,
  eventSk,
  feedGsiSk,
  GSI1,
  INCIDENT_META_SK,
  INCIDENTS_GSI_PK,
  idAfter,
  incidentGsiSk,
  incidentKey,
  PK,
  PK_PREFIX,
  padEpochMs,
  parseEventSk,
  SK,
  SK_PREFIX,
} from './table-definition';

/** Outcomes of an incident still being worked on (the rest are final). */
export const OPEN_OUTCOMES: readonly IncidentOutcome[] = ['in-progress', 'awaiting-operator'];

/**
 * Incidents: a META item per incident, listed newest first through gsi1, and its timeline as EVENT items
 * in the same partition, so one query returns the incident with its timeline.
 */
export class DynamoIncidentStore implements IncidentStore {
  constructor(private readonly ctx: DynamoContext) {}

  async create(
    incident: Omit<IncidentRecord, 'version'>,
  ): Promise<{ created: boolean; incident: IncidentRecord }> {
    const fresh: IncidentRecord = { ...incident, version: 1 };
    if (await putIfAbsent(this.ctx, incidentToItem(fresh))) return { created: true, incident: fresh };
    const existing = await this.get(incident.incidentId);
    if (existing === null) throw new Error(`incident ${incident.incidentId} vanished`);
    return { created: false, incident: existing };
  }

  async get(incidentId: string): Promise<IncidentRecord | null> {
    const item = await getItem(this.ctx, metaKey(incidentId));
    return item === null ? null : incidentFromItem(item);
  }

  async list(filter?: {
    siteId?: string;
    openOnly?: boolean;
    since?: number;
    limit?: number;
  }): Promise<IncidentRecord[]> {
    const conditions: string[] = [];
    const names: Record<string, string> = { '#gsi1pk': GSI1.pk };
    const values: Record<string, unknown> = { ':incidents': INCIDENTS_GSI_PK };
    if (filter?.siteId !== undefined) {
      conditions.push('#siteId = :siteId');
      names['#siteId'] = 'siteId';
      values[':siteId'] = filter.siteId;
    }
    if (filter?.openOnly === true) {
      const placeholders = OPEN_OUTCOMES.map((outcome, i) => {
        values[`:open${i}`] = outcome;
        return `:open${i}`;
      });
      conditions.push(`#outcome IN (${placeholders.join(', ')})`);
      names['#outcome'] = 'outcome';
    }
    // The sort key starts with the opening time: `since` is a key range, read and paid for alone.
    let range = '';
    if (filter?.since !== undefined) {
      names['#gsi1sk'] = GSI1.sk;
      values[':since'] = `${padEpochMs(Math.max(0, filter.since))}#`;
      range = ' AND #gsi1sk >= :since';
    }
    // A filter applies after each page is read, so `limit` counts matching items across pages.
    const items = await queryAll(
      this.ctx,
      {
        IndexName: GSI1.indexName,
        KeyConditionExpression: `#gsi1pk = :incidents${range}`,
        ScanIndexForward: false,
        FilterExpression: conditions.length > 0 ? conditions.join(' AND ') : undefined,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      filter?.limit,
    );
    return items.map(incidentFromItem);
  }

  async update(
    incidentId: string,
    expectedVersion: number,
    patch: Parameters<IncidentStore['update']>[2],
  ): Promise<IncidentRecord> {
    const item = await updateVersioned(
      this.ctx,
      metaKey(incidentId),
      expectedVersion,
      {
        outcome: patch.outcome,
        executionArn: patch.executionArn,
        fencedAt: patch.fencedAt,
        closedAt: patch.closedAt,
        operatorTaskToken: patch.operatorTaskToken,
        operatorAnswer: patch.operatorAnswer,
        operatorWaitEndedAt: patch.operatorWaitEndedAt,
        downtime: patch.downtime,
      },
      `incident ${incidentId}`,
    );
    return incidentFromItem(item);
  }

  async appendEvent(event: IncidentEvent): Promise<void> {
    // (at, kind, key) is the event's identity: the same fact written twice is stored once.
    await putIfAbsent(this.ctx, {
      ...keyOf({ pk: incidentKey(event.incidentId), sk: eventSk(event.at, event.kind, event.key) }),
      // The feed's index entry: events are rare (incidents), so the second write they cost is too.
      [GSI1.pk]: EVENTS_GSI_PK,
      [GSI1.sk]: feedGsiSk(event.at, event.incidentId, event.kind, event.key),
      kind: event.kind,
      key: event.key,
      detail: event.detail,
      data: event.data,
    });
  }

  async listEvents(incidentId: string, options: { readonly fromAt?: number } = {}): Promise<IncidentEvent[]> {
    const pk = incidentKey(incidentId);
    // Event keys start with the padded time, so a tail is a key range: only what is new is read (and paid).
    const items = await queryAll(
      this.ctx,
      options.fromAt === undefined
        ? beginsWith(pk, SK_PREFIX.event)
        : {
            KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
            ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
            ExpressionAttributeValues: {
              ':pk': pk,
              ':from': eventSk(Math.max(0, options.fromAt), ''),
              ':to': `${SK_PREFIX.event}\uffff`,
            },
          },
    );
    return items.map(eventFromItem);
  }

  async listFeed(options: {
    readonly fromAt?: number;
    readonly after?: FeedPosition;
    readonly limit: number;
  }): Promise<IncidentEvent[]> {
    const { after } = options;
    const bound =
      after === undefined
        ? { op: '>=', sk: `${padEpochMs(Math.max(0, options.fromAt ?? 0))}#` }
        : { op: '>', sk: feedGsiSk(after.at, after.incidentId, after.kind, after.key) };
    const items = await queryAll(
      this.ctx,
      {
        IndexName: GSI1.indexName,
        KeyConditionExpression: `#gsi1pk = :events AND #gsi1sk ${bound.op} :bound`,
        ExpressionAttributeNames: { '#gsi1pk': GSI1.pk, '#gsi1sk': GSI1.sk },
        ExpressionAttributeValues: { ':events': EVENTS_GSI_PK, ':bound': bound.sk },
        Limit: options.limit,
      },
      options.limit,
    );
    return items.map(eventFromItem);
  }
}

function metaKey(incidentId: string): Key {
  return { pk: incidentKey(incidentId), sk: INCIDENT_META_SK };
}

function incidentToItem(incident: IncidentRecord): Item {
  return {
    ...keyOf(metaKey(incident.incidentId)),
    [GSI1.pk]: INCIDENTS_GSI_PK,
    [GSI1.sk]: incidentGsiSk(incident.openedAt, incident.incidentId),
    siteId: incident.siteId,
    // Left out for host incidents, so their items stay as they were before VM incidents existed.
    kind: incident.kind === 'vm' ? 'vm' : undefined,
    vmId: incident.vmId,
    hostId: incident.hostId,
    cluster: incident.cluster,
    bootId: incident.bootId,
    openedAt: incident.openedAt,
    outcome: incident.outcome,
    input: incident.input,
    executionArn: incident.executionArn,
    fencedAt: incident.fencedAt,
    closedAt: incident.closedAt,
    operatorTaskToken: incident.operatorTaskToken,
    downtime: incident.downtime,
    version: incident.version,
  };
}

function incidentFromItem(item: Item): IncidentRecord {
  return {
    incidentId: idAfter(PK_PREFIX.incident, str(item, 'pk')),
    siteId: str(item, 'siteId'),
    ...kindOf(item),
    hostId: str(item, 'hostId'),
    cluster: str(item, 'cluster'),
    bootId: str(item, 'bootId'),
    openedAt: num(item, 'openedAt'),
    outcome: str(item, 'outcome') as IncidentOutcome,
    input: mapOrNull<IncidentInput>(item, 'input'),
    executionArn: strOrNull(item, 'executionArn'),
    fencedAt: numOrNull(item, 'fencedAt'),
    closedAt: numOrNull(item, 'closedAt'),
    operatorTaskToken: strOrNull(item, 'operatorTaskToken'),
    // Absent from incidents that never waited for an operator (and from items older than them).
    ...optionalWait(item),
    ...downtimeOf(item),
    version: num(item, 'version'),
  };
}

/** `kind` and `vmId` of a VM incident; nothing for a host incident (the items without them). */
function kindOf(item: Item): { kind?: IncidentKind; vmId?: string } {
  const vmId = strOrNull(item, 'vmId');
  return strOrNull(item, 'kind') === 'vm' && vmId !== null ? { kind: 'vm', vmId } : {};
}

/** The operator wait's answer and end, when the item has them. */
function optionalWait(item: Item): Pick<IncidentRecord, 'operatorAnswer' | 'operatorWaitEndedAt'> {
  const answer = mapOrNull<NonNullable<IncidentRecord['operatorAnswer']>>(item, 'operatorAnswer');
  const ended = numOrNull(item, 'operatorWaitEndedAt');
  return {
    ...(answer === null ? {} : { operatorAnswer: answer }),
    ...(ended === null ? {} : { operatorWaitEndedAt: ended }),
  };
}

/** The VMs' down periods, when the item has them. */
function downtimeOf(item: Item): Pick<IncidentRecord, 'downtime'> {
  const downtime = mapOrNull<Record<string, DownPeriod>>(item, 'downtime');
  return downtime === null ? {} : { downtime };
}

function eventFromItem(item: Item): IncidentEvent {
  const { at } = parseEventSk(str(item, 'sk'));
  const data = mapOrNull<Record<string, unknown>>(item, 'data');
  const key = typeof item.key === 'string' ? item.key : '';
  return {
    incidentId: idAfter(PK_PREFIX.incident, str(item, 'pk')),
    at,
    kind: str(item, 'kind'),
    ...(key === '' ? {} : { key }),
    detail: str(item, 'detail'),
    ...(data === null ? {} : { data }),
  };
}
