import { DeleteTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDynamoStores } from '../../adapters/dynamodb';
import { FINISHED_COMMAND_TTL_SECONDS } from '../../adapters/dynamodb/dynamo-command-store';
import {
  commandSk,
  GSI1,
  hostSk,
  INCIDENT_META_SK,
  incidentKey,
  relaySk,
  SITE_SK,
  siteKey,
} from '../../adapters/dynamodb/table-definition';
import { type LocalDynamo, startDynalite } from '../support/dynalite';
import { HASH_A, newCommand, newHost, newIncident, resultOf, SITE, T0 } from '../support/store-fixtures';
import { describeStoreConformance } from './stores.conformance';

// One dynalite for the file, one fresh table per test: tests cannot see each other's items.
let dynamo: LocalDynamo;
let tableCount = 0;
const NOW = T0 + 60_000;
const clock = { now: () => NOW };

beforeAll(async () => {
  dynamo = await startDynalite();
});

afterAll(async () => {
  await dynamo.stop();
});

async function freshTable(): Promise<string> {
  tableCount += 1;
  const tableName = `halo-test-${tableCount}`;
  await dynamo.createTable(tableName);
  return tableName;
}

describeStoreConformance('dynamodb (dynalite)', async () => {
  const tableName = await freshTable();
  return {
    stores: createDynamoStores({ client: dynamo.client, tableName, clock }),
    cleanup: async () => {
      await dynamo.raw.send(new DeleteTableCommand({ TableName: tableName }));
    },
  };
});

describe('dynamodb items (what the conformance suite cannot see)', () => {
  let tableName: string;
  let stores: ReturnType<typeof createDynamoStores>;
  const rawItem = async (pk: string, sk: string) =>
    (await dynamo.client.send(new GetCommand({ TableName: tableName, Key: { pk, sk } }))).Item;

  beforeEach(async () => {
    tableName = await freshTable();
    stores = createDynamoStores({ client: dynamo.client, tableName, clock });
  });

  it('builds the table from the one definition: pk/sk and the gsi1 index', async () => {
    const { Table } = await dynamo.raw.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(Table?.GlobalSecondaryIndexes?.[0]).toMatchObject({
      IndexName: 'gsi1',
      KeySchema: [
        { AttributeName: 'gsi1pk', KeyType: 'HASH' },
        { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    });
  });

  it('keeps the relay liveness item under 1 KB and off the index after a report', async () => {
    await stores.relays.enroll({ siteId: SITE, relayId: 'relay-01', credentialHash: HASH_A, at: T0 });
    await stores.relays.acceptReport(SITE, 'relay-01', {
      seq: 123_456,
      at: T0 + 10_000,
      credentialHash: HASH_A,
      silentHosts: { 'host-017': 7_500, 'host-042': 9_000, 'host-113': 12_000 },
    });
    const item = await rawItem(siteKey(SITE), relaySk('relay-01'));
    expect(item).toBeDefined();
    expect(item).not.toHaveProperty(GSI1.pk);
    expect(item).not.toHaveProperty(GSI1.sk);
    // JSON over-counts DynamoDB's item size (quotes, braces), so this is an upper bound.
    expect(Buffer.byteLength(JSON.stringify(item))).toBeLessThan(1024);
  });

  it('indexes sites and incidents in gsi1 as the data model says', async () => {
    await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
    await stores.incidents.create(newIncident('i1', 42));
    expect(await rawItem(siteKey(SITE), SITE_SK)).toMatchObject({ gsi1pk: 'SITES', gsi1sk: SITE });
    expect(await rawItem(incidentKey('i1'), INCIDENT_META_SK)).toMatchObject({
      gsi1pk: 'INCIDENTS',
      gsi1sk: '0000000000042#i1',
    });
  });

  it('reads a host item written before fence readiness as one no relay has checked', async () => {
    await stores.hosts.createHost(newHost('h1'));
    await dynamo.client.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { pk: siteKey(SITE), sk: hostSk('h1') },
        UpdateExpression: 'REMOVE fenceReadiness',
      }),
    );
    expect(await rawItem(siteKey(SITE), hostSk('h1'))).not.toHaveProperty('fenceReadiness');

    expect((await stores.hosts.getHost(SITE, 'h1'))?.fenceReadiness).toEqual({});
    const level = { level: 1, driver: 'ipmitool', ok: true, power: 'on', error: null } as const;
    const entry = { ok: true, checkedAt: T0, reportedAt: T0, levels: [level] };
    const saved = await stores.hosts.saveFenceReadiness(SITE, 'h1', 1, { r1: entry });
    expect(saved.fenceReadiness).toEqual({ r1: entry });
  });

  it('stores a timeline event under EVENT#{at:013d}#{kind}', async () => {
    await stores.incidents.appendEvent({ incidentId: 'i1', at: 7, kind: 'suspected', detail: '' });
    expect(await rawItem(incidentKey('i1'), 'EVENT#0000000000007#suspected')).toBeDefined();
  });

  it('dates a finished command for TTL in epoch seconds, 7 days after completion', async () => {
    await stores.commands.create(newCommand('c1'));
    expect(await rawItem(siteKey(SITE), commandSk('c1'))).not.toHaveProperty('expiresAt');
    await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1');
    expect(await rawItem(siteKey(SITE), commandSk('c1'))).toMatchObject({
      expiresAt: Math.floor(NOW / 1000) + FINISHED_COMMAND_TTL_SECONDS,
    });
    expect(FINISHED_COMMAND_TTL_SECONDS).toBe(7 * 24 * 3600);
  });
});
