import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createDocumentClient, createDynamoStores } from '../../../adapters/dynamodb';
import { StaleSequenceError } from '../../../app/errors';
import { HASH_A, SITE, T0 } from '../../support/store-fixtures';

// The liveness write is what every report of every site costs: pin its exact shape.
const client = createDocumentClient(new DynamoDBClient({ region: 'us-east-1' }));
const ddb = mockClient(client);
const { relays } = createDynamoStores({ client, tableName: 'halo', clock: { now: () => T0 } });

const report = { seq: 8, at: T0 + 10_000, credentialHash: HASH_A, silentHosts: { h3: 7000 } };

const storedRelay = {
  pk: `SITE#${SITE}`,
  sk: 'C#RELAY#r1',
  credentialHash: HASH_A,
  revoked: false,
  lastSeq: 8,
  lastSeenAt: T0 + 10_000,
  silentHosts: { h3: 7000 },
  enrolledAt: T0,
};

afterEach(() => {
  ddb.reset();
});

describe('DynamoRelayStore.acceptReport', () => {
  it('stores the hosts a report does not list, and reads them back', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { ...storedRelay, unheardHosts: ['h1', 'h2'] } });
    const relay = await relays.acceptReport(SITE, 'r1', { ...report, unheardHosts: ['h1', 'h2'] });
    const [call] = ddb.commandCalls(UpdateCommand);
    expect(call?.args[0].input.UpdateExpression).toBe(
      'SET #lastSeq = :seq, #lastSeenAt = :at, #silentHosts = :silentHosts, #unheardHosts = :unheard REMOVE #peers',
    );
    expect(call?.args[0].input.ExpressionAttributeValues?.[':unheard']).toEqual(['h1', 'h2']);
    expect(relay.unheardHosts).toEqual(['h1', 'h2']);
  });

  it('stores the peer relays a report lists, in the same write, and reads them back', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: { ...storedRelay, peers: { r2: 700 } } });
    const relay = await relays.acceptReport(SITE, 'r1', { ...report, peers: { r2: 700 } });
    expect(ddb.calls()).toHaveLength(1);
    const [call] = ddb.commandCalls(UpdateCommand);
    expect(call?.args[0].input.UpdateExpression).toBe(
      'SET #lastSeq = :seq, #lastSeenAt = :at, #silentHosts = :silentHosts, #peers = :peers REMOVE #unheardHosts',
    );
    expect(call?.args[0].input.ExpressionAttributeValues?.[':peers']).toEqual({ r2: 700 });
    expect(relay.peers).toEqual({ r2: 700 });
  });

  it('is one conditional UpdateItem: credential, revocation and replay guard, no GSI attributes', async () => {
    ddb.on(UpdateCommand).resolves({ Attributes: storedRelay });

    const relay = await relays.acceptReport(SITE, 'r1', report);

    expect(ddb.calls()).toHaveLength(1);
    const [call] = ddb.commandCalls(UpdateCommand);
    expect(call?.args[0].input).toEqual({
      TableName: 'halo',
      Key: { pk: `SITE#${SITE}`, sk: 'C#RELAY#r1' },
      // A report that lists every host removes what an earlier one said it did not hear; one that lists no
      // peer relay, what an earlier one said of them.
      UpdateExpression:
        'SET #lastSeq = :seq, #lastSeenAt = :at, #silentHosts = :silentHosts REMOVE #unheardHosts, #peers',
      ConditionExpression: '#credentialHash = :hash AND #revoked = :false AND #lastSeq < :seq',
      ExpressionAttributeNames: {
        '#lastSeq': 'lastSeq',
        '#lastSeenAt': 'lastSeenAt',
        '#silentHosts': 'silentHosts',
        '#credentialHash': 'credentialHash',
        '#revoked': 'revoked',
        '#unheardHosts': 'unheardHosts',
        '#peers': 'peers',
      },
      ExpressionAttributeValues: {
        ':seq': 8,
        ':at': T0 + 10_000,
        ':silentHosts': { h3: 7000 },
        ':hash': HASH_A,
        ':false': false,
      },
      ReturnValues: 'ALL_NEW',
    });
    expect(JSON.stringify(call?.args[0].input)).not.toMatch(/gsi1/);
    expect(relay).toEqual({
      siteId: SITE,
      relayId: 'r1',
      credentialHash: HASH_A,
      revoked: false,
      lastSeq: 8,
      lastSeenAt: T0 + 10_000,
      silentHosts: { h3: 7000 },
      enrolledAt: T0,
    });
  });

  it('reads the item only after the condition failed, to name the refusal', async () => {
    ddb
      .on(UpdateCommand)
      .rejects(
        new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }),
      );
    ddb.on(GetCommand).resolves({ Item: { ...storedRelay, lastSeq: 9 } });

    await expect(relays.acceptReport(SITE, 'r1', report)).rejects.toBeInstanceOf(StaleSequenceError);

    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(1);
    expect(ddb.commandCalls(GetCommand)).toHaveLength(1);
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({ ConsistentRead: true });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(ddb.commandCalls(QueryCommand)).toHaveLength(0);
  });

  it('lets errors other than a failed condition through untouched', async () => {
    const throttled = Object.assign(new Error('slow down'), {
      name: 'ProvisionedThroughputExceededException',
    });
    ddb.on(UpdateCommand).rejects(throttled);

    await expect(relays.acceptReport(SITE, 'r1', report)).rejects.toBe(throttled);
    expect(ddb.commandCalls(GetCommand)).toHaveLength(0);
  });
});
