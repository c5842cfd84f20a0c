import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  clusterSk,
  GSI1,
  HOSTS_SK,
  relaySk,
  SITE_SK,
  SITES_GSI_PK,
  siteKey,
} from '../../adapters/dynamodb/table-definition';
import { recordReport } from '../../app/ingest/record-report';
import { ReportResponseSchema } from '../../contracts/relay-protocol';
import { bearer, bodyOf, httpEvent, memoryContext, RELAY, report, SECRET, SITE, seedSite } from './support';

/**
 * The real Lambda entry (env parsed at module load, context factory, middleware bundle) with the SDK
 * clients mocked: proves the cost claim of an unchanged report, one Query and one UpdateItem.
 */
const dynamo = mockClient(DynamoDBDocumentClient);
const rawDynamo = mockClient(DynamoDBClient);
const sfn = mockClient(SFNClient);

type Handler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;
let handler: Handler;

const lambdaContext: Context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'halo-ingest',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:halo-ingest',
  memoryLimitInMB: '256',
  awsRequestId: 'req-1',
  logGroupName: '/aws/lambda/halo-ingest',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};

beforeAll(async () => {
  vi.stubEnv('TABLE_NAME', 'halo-test');
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'halo-ingest');
  vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'HaloTest');
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
  vi.stubEnv('POWERTOOLS_TRACE_ENABLED', 'false');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('STATE_MACHINE_ARN', 'arn:aws:states:eu-west-1:123456789012:stateMachine:HaloFailover');
  vi.stubEnv('HALO_POLICY', '{"relayReportMs": 10000}');
  ({ handler } = await import('../../functions/ingest/handler'));
});

afterEach(() => {
  dynamo.reset();
  rawDynamo.reset();
  sfn.reset();
});

afterAll(() => {
  vi.unstubAllEnvs();
});

/**
 * The site's control items as DynamoDB holds them after a first report of `hosts` hosts. The summaries
 * (with their digests) come from running the real use case once on the memory stores, so the test does not
 * depend on how digests are computed.
 */
async function controlItemsAfterFirstReport(hosts: number, now: number) {
  const { ctx, state, clock } = memoryContext();
  clock.t = now;
  await seedSite(ctx);
  await recordReport(ctx, { authorization: bearer(), report: report({ seq: 1, sentAt: now }, hosts) });
  const relay = state.relays.get(`${SITE}/${RELAY}`);
  const summaries = Object.fromEntries(state.hostSummaries.get(SITE) ?? new Map());
  const clusters = [...state.clusters.values()];
  if (relay === undefined) throw new Error('relay not seeded');
  const pk = siteKey(SITE);
  const relayItem = {
    pk,
    sk: relaySk(RELAY),
    credentialHash: relay.credentialHash,
    revoked: relay.revoked,
    lastSeq: relay.lastSeq,
    lastSeenAt: relay.lastSeenAt,
    silentHosts: relay.silentHosts,
    enrolledAt: relay.enrolledAt,
  };
  const items = [
    { pk, sk: SITE_SK, [GSI1.pk]: SITES_GSI_PK, [GSI1.sk]: SITE, createdAt: now - 60_000 },
    { pk, sk: HOSTS_SK, hosts: summaries },
    ...clusters.map((c) => ({
      pk,
      sk: clusterSk(c.clusterId),
      fencingEnabled: c.fencingEnabled,
      policy: c.policy,
      version: c.version,
    })),
    relayItem,
  ];
  return { items, relayItem, hostCount: Object.keys(summaries).length };
}

describe('AWS clients behind the ingest Lambda', () => {
  it('an unchanged 50-host report costs exactly 1 Query and 1 UpdateItem, and touches no workflow', async () => {
    const now = Date.now();
    const { items, relayItem, hostCount } = await controlItemsAfterFirstReport(50, now);
    expect(hostCount).toBe(50);
    dynamo.on(QueryCommand).resolves({ Items: items, $metadata: {} });
    dynamo
      .on(UpdateCommand)
      .resolves({ Attributes: { ...relayItem, lastSeq: 2, lastSeenAt: now }, $metadata: {} });

    const event = httpEvent({
      body: JSON.stringify(report({ seq: 2, sentAt: now }, 50)),
      headers: { authorization: bearer(RELAY, SITE, SECRET) },
    });
    const response = await handler(event, lambdaContext);

    expect(response.statusCode).toBe(200);
    expect(ReportResponseSchema.parse(bodyOf(response)).acceptedSeq).toBe(2);
    const calls = dynamo.calls().map((c) => c.args[0].constructor.name);
    expect(calls).toEqual(['QueryCommand', 'UpdateCommand']);
    const query = dynamo.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(query?.TableName).toBe('halo-test');
    expect(query?.ExpressionAttributeValues?.[':pk']).toBe(siteKey(SITE));
    const update = dynamo.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(update?.Key).toEqual({ pk: siteKey(SITE), sk: relaySk(RELAY) });
    expect(update?.ConditionExpression).toMatch(/lastSeq/);
    // The raw client is reached only through the document client, which is mocked.
    expect(rawDynamo.calls()).toHaveLength(0);
    expect(sfn.calls()).toHaveLength(0);
  });

  it('a refused report (bad JSON) reaches no AWS API at all', async () => {
    const response = await handler(
      httpEvent({ body: '{', headers: { authorization: bearer() } }),
      lambdaContext,
    );
    expect(response.statusCode).toBe(400);
    expect(dynamo.calls()).toHaveLength(0);
    expect(sfn.calls()).toHaveLength(0);
  });

  it('a DynamoDB outage is a 500 with no internals in the body', async () => {
    dynamo.on(QueryCommand).rejects(new Error('ProvisionedThroughputExceeded on table halo-test'));
    const response = await handler(
      httpEvent({
        body: JSON.stringify(report({ sentAt: Date.now() })),
        headers: { authorization: bearer() },
      }),
      lambdaContext,
    );
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/halo-test/);
  });
});
