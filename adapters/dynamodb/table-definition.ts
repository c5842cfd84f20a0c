import type {
  AttributeDefinition,
  CreateTableCommandInput,
  GlobalSecondaryIndex,
  KeySchemaElement,
} from '@aws-sdk/client-dynamodb';

/**
 * The single table's shape and key layout (docs/data-model.md). Pure data: the CDK construct and the
 * dynalite tests both build the table from it, so the two cannot drift apart.
 */

/** Primary key attribute names. */
export const PK = 'pk';
export const SK = 'sk';

/** The one sparse GSI: only sites and incidents carry its attributes. */
export const GSI1 = { indexName: 'gsi1', pk: 'gsi1pk', sk: 'gsi1sk' } as const;

/** TTL attribute (epoch seconds) set on finished commands. */
export const TTL_ATTRIBUTE = 'expiresAt';

const attributeDefinitions: AttributeDefinition[] = [
  { AttributeName: PK, AttributeType: 'S' },
  { AttributeName: SK, AttributeType: 'S' },
  { AttributeName: GSI1.pk, AttributeType: 'S' },
  { AttributeName: GSI1.sk, AttributeType: 'S' },
];

const keySchema: KeySchemaElement[] = [
  { AttributeName: PK, KeyType: 'HASH' },
  { AttributeName: SK, KeyType: 'RANGE' },
];

const globalSecondaryIndexes: GlobalSecondaryIndex[] = [
  {
    IndexName: GSI1.indexName,
    KeySchema: [
      { AttributeName: GSI1.pk, KeyType: 'HASH' },
      { AttributeName: GSI1.sk, KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'ALL' },
  },
];

/** Everything needed to create the table, in the SDK's shapes (the CDK construct maps them 1:1). */
export const tableDefinition = {
  defaultTableName: 'halo',
  partitionKey: PK,
  sortKey: SK,
  attributeDefinitions,
  keySchema,
  globalSecondaryIndexes,
  billingMode: 'PAY_PER_REQUEST',
  timeToLiveAttribute: TTL_ATTRIBUTE,
} as const;

/** CreateTable input for `tableName` (TTL is a separate UpdateTimeToLive call, which dynalite lacks). */
export function createTableInput(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    AttributeDefinitions: tableDefinition.attributeDefinitions.map((a) => ({ ...a })),
    KeySchema: tableDefinition.keySchema.map((k) => ({ ...k })),
    GlobalSecondaryIndexes: tableDefinition.globalSecondaryIndexes.map((g) => ({
      ...g,
      KeySchema: g.KeySchema?.map((k) => ({ ...k })),
    })),
    BillingMode: tableDefinition.billingMode,
  };
}

// ---------------------------------------------------------------- key builders

/** Prefixes of partition keys. */
export const PK_PREFIX = { site: 'SITE#', incident: 'INCIDENT#' } as const;

/** Prefixes of sort keys, used by the begins_with queries. */
export const SK_PREFIX = {
  control: 'C#',
  cluster: 'C#CLUSTER#',
  relay: 'C#RELAY#',
  host: 'HOST#',
  vm: 'VM#',
  command: 'CMD#',
  event: 'EVENT#',
} as const;

/** Sort key of the site item. */
export const SITE_SK = 'C#SITE';
/** Sort key of the site's host-summaries item. */
export const HOSTS_SK = 'C#HOSTS';
/** Sort key of an incident's main item. */
export const INCIDENT_META_SK = 'META';
/** gsi1 partition of the site items. */
export const SITES_GSI_PK = 'SITES';
/** gsi1 partition of the incident items. */
export const INCIDENTS_GSI_PK = 'INCIDENTS';
/** gsi1 partition of the incident events: the fleet-wide feed. */
export const EVENTS_GSI_PK = 'EVENTS';

/** Width of zero-padded epoch milliseconds in sort keys, so that string order is time order. */
const EPOCH_MS_WIDTH = 13;

/** Epoch milliseconds zero-padded to 13 digits. */
export function padEpochMs(ms: number): string {
  return String(ms).padStart(EPOCH_MS_WIDTH, '0');
}

/** Partition key of everything belonging to a site. */
export function siteKey(siteId: string): string {
  return `${PK_PREFIX.site}${siteId}`;
}

/** Sort key of a cluster item. */
export function clusterSk(clusterId: string): string {
  return `${SK_PREFIX.cluster}${clusterId}`;
}

/** Sort key of a relay's liveness item. */
export function relaySk(relayId: string): string {
  return `${SK_PREFIX.relay}${relayId}`;
}

/** Sort key of a host item. */
export function hostSk(hostId: string): string {
  return `${SK_PREFIX.host}${hostId}`;
}

/** Sort key of a VM item. */
export function vmSk(vmId: string): string {
  return `${SK_PREFIX.vm}${vmId}`;
}

/** Sort key of a command item. */
export function commandSk(commandId: string): string {
  return `${SK_PREFIX.command}${commandId}`;
}

/** Partition key of an incident and its timeline. */
export function incidentKey(incidentId: string): string {
  return `${PK_PREFIX.incident}${incidentId}`;
}

/** gsi1 sort key of an incident: opening time first, so a descending query lists newest first. */
export function incidentGsiSk(openedAt: number, incidentId: string): string {
  return `${padEpochMs(openedAt)}#${incidentId}`;
}

/** Sort key of a timeline event: time first, so the timeline reads in order; (at, kind, key) is its identity. */
export function eventSk(at: number, kind: string, key = ''): string {
  return `${SK_PREFIX.event}${padEpochMs(at)}#${kind}${key === '' ? '' : `#${key}`}`;
}

/**
 * gsi1 sort key of a timeline event in the feed: time, then incident, kind and key, so a query reads the
 * fleet's events in time order, and a page's last key is where the next starts.
 */
export function feedGsiSk(at: number, incidentId: string, kind: string, key = ''): string {
  return `${padEpochMs(at)}#${incidentId}#${kind}#${key}`;
}

/** The id after a key's prefix (`SITE#s1` → `s1`); ids never contain `#`, kinds may (see eventSk). */
export function idAfter(prefix: string, key: string): string {
  if (!key.startsWith(prefix)) throw new Error(`key ${JSON.stringify(key)} does not start with ${prefix}`);
  return key.slice(prefix.length);
}

/** The time in an event sort key (kind and key are stored as attributes: they may contain `#`). */
export function parseEventSk(sk: string): { at: number } {
  const rest = idAfter(SK_PREFIX.event, sk);
  return { at: Number(rest.slice(0, EPOCH_MS_WIDTH)) };
}
