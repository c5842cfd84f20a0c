import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createDynamoStores } from '../adapters/dynamodb';
import { SK_PREFIX } from '../adapters/dynamodb/table-definition';
import { Sha256Hasher } from '../adapters/node/sha256-hasher';
import type { AppContext } from '../app/context';
import { detectOnce } from '../app/detector/detect';
import { type AnyRelayReport, MAX_REPORT_BYTES } from '../contracts/relay-protocol';
import { DEFAULT_TIMING, resolvePolicy } from '../core/policy';
import { makeDetectorHandler } from '../functions/detector/detector';
import { makeIngestHandler } from '../functions/ingest/ingest';
import { createAppContext } from '../functions/shared/context';
import { withHaloMiddleware } from '../functions/shared/middleware';
import type { Powertools } from '../functions/shared/powertools';
import { DETECTOR_RUN_SECONDS } from '../infra/constructs/detector';
import { HALO_MEMORY_MB, REPO_ROOT } from '../infra/constructs/halo-function';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../infra/metrics';
import { startDynalite } from '../test/support/dynalite';
import { accessLogFormat, renderAccessLog, reportContext } from './access-log';
import {
  type DetectorFigures,
  detectorTicks,
  type Fleet,
  type IngestFigures,
  incidentWorkflowCost,
  monthlyCost,
  PRICES,
  reportsPerMonth,
  summarizeCost,
} from './cost-model';
import { type CallSummary, DynamoRecorder, describeCalls, operationOf, summarize } from './dynamo-accounting';
import type { Cell, Measurement } from './harness';
import {
  changeOneHost,
  HOSTS_PER_SITE,
  lambdaContext,
  RELAYS,
  type RelayId,
  reportEvent,
  reportOf,
  type SiteFixture,
  siteFixture,
  V2Relay,
  VMS_PER_HOST,
} from './ingest-fixture';
import { count, kb, percentile, type ReportSuite, type Table } from './report-suite';

/**
 * The relay ingest Lambda in-process: the real handler (makeIngestHandler inside the Powertools middleware
 * bundle, as functions/ingest/handler.ts deploys it) on a real AppContext (createAppContext), against
 * dynalite and against the SDK clients mocked with answers recorded from dynalite. Also the detector's
 * reads per tick, and the monthly cost computed from all of it (bench/cost-model.ts, docs/cost.md).
 */

const TABLE = 'halo-bench';
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench' };
const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:HaloFailover';
/** Nothing listens here: a Step Functions call from a steady report would fail the bench, loudly. */
const NO_SFN_ENDPOINT = 'http://127.0.0.1:9';

const WARMUP = 50;
const RUNS = 250;
const ACCOUNTED = 10;

/** research/performance-and-cost.md §5.4: warm p50 ≤ 10 ms billed, p99 ≤ 50 ms. */
export const LATENCY_TARGET = { medianMs: 10, p99Ms: 50 } as const;
/** Fleets priced (50 hosts and 2 relays a site taking turns). */
export const FLEET_SIZES = [100, 1_000, 10_000] as const;
/** The liveness budget per host and the fixed budget (research §5.3). */
export const COST_TARGET = { perHostMonth: 0.01, fixedMonth: 10 } as const;
/** research §3: a failover incident is ~100 state transitions (not measured here). */
const TRANSITIONS_PER_INCIDENT = 100;

type Handler = (event: APIGatewayProxyEventV2, context: ReturnType<typeof lambdaContext>) => Promise<unknown>;

/** The deployed configuration the bench runs with: cdk.json's policy and detector tick. */
function deployedContext(): { policy: string; detectorTickSeconds: number } {
  const cdk = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return {
    policy: JSON.stringify(cdk.context['halo:policy'] ?? {}),
    detectorTickSeconds: Number(cdk.context['halo:detectorTickSeconds'] ?? 10),
  };
}

/** Powertools as the deployed ingest configures it: INFO logs (applicationLogLevelV2), EMF metrics, no X-Ray. */
function benchPowertools(): Powertools {
  // As Lambda sets it for an on-demand environment: Powertools then emits the ColdStart metric once.
  const saved = process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
  process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
  try {
    const logger = new Logger({ serviceName: METRICS_SERVICE, logLevel: 'INFO' });
    const metrics = new Metrics({ serviceName: METRICS_SERVICE, namespace: METRICS_NAMESPACE, logger });
    // Ingest runs without a tracer, as deployed (infra: tracing off for ingest).
    return { logger, metrics };
  } finally {
    if (saved === undefined) delete process.env.AWS_LAMBDA_INITIALIZATION_TYPE;
    else process.env.AWS_LAMBDA_INITIALIZATION_TYPE = saved;
  }
}

/** Runs `fn` with stdout swallowed and measured: what the function would send to CloudWatch Logs. */
async function capturingStdout<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; bytes: number; lines: string[] }> {
  const original = process.stdout.write;
  let bytes = 0;
  const lines: string[] = [];
  process.stdout.write = ((chunk: string | Uint8Array) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    bytes += Buffer.byteLength(text, 'utf8');
    lines.push(...text.split('\n').filter((l) => l !== ''));
    return true;
  }) as typeof process.stdout.write;
  try {
    return { value: await fn(), bytes, lines };
  } finally {
    process.stdout.write = original;
  }
}

function measurement(name: string, times: number[]): Measurement {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    name,
    median: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    runs: sorted.length,
  };
}

/**
 * Reports of the site, each relay in turn, with strictly increasing sequence numbers (shared by every
 * `Relays` of one table, so v1 and v2 reports can follow each other). v2 by default, as relays report now:
 * a report's inventories count as taken once it is built (the bench stops at any answer but 200).
 */
export class Relays {
  private turn = 0;
  private readonly v2: Record<RelayId, V2Relay>;
  constructor(
    private readonly site: SiteFixture,
    private readonly protocol: 1 | 2 = 2,
    private readonly seq: Record<RelayId, number> = { [RELAYS[0]]: 0, [RELAYS[1]]: 0 },
  ) {
    this.v2 = {
      [RELAYS[0]]: new V2Relay(site, RELAYS[0]),
      [RELAYS[1]]: new V2Relay(site, RELAYS[1]),
    } as Record<RelayId, V2Relay>;
  }

  /** The same site's reports in the other version, on the same sequence numbers. */
  other(protocol: 1 | 2): Relays {
    return new Relays(this.site, protocol, this.seq);
  }

  next(relayId: RelayId = RELAYS[this.turn++ % RELAYS.length] as RelayId): APIGatewayProxyEventV2 {
    return reportEvent(this.site, this.nextReport(relayId));
  }

  nextReport(relayId: RelayId = RELAYS[this.turn++ % RELAYS.length] as RelayId): AnyRelayReport {
    this.seq[relayId] += 1;
    if (this.protocol === 1) return reportOf(this.site, relayId, this.seq[relayId], Date.now());
    const relay = this.v2[relayId];
    const report = relay.next(this.seq[relayId], Date.now());
    relay.accepted(report);
    return report;
  }

  /** Hosts whose inventory a relay has not had taken yet (v2): first contact spans several reports. */
  pending(relayId: RelayId): number {
    return this.v2[relayId].pending();
  }
}

/** Invokes the handler; anything but a 200 stops the bench (a measurement of an error path is worthless). */
async function invoke(
  handler: Handler,
  event: APIGatewayProxyEventV2,
  remainingMs?: number,
): Promise<APIGatewayProxyStructuredResultV2> {
  const response = (await handler(
    event,
    lambdaContext('halo-ingest', HALO_MEMORY_MB, remainingMs),
  )) as APIGatewayProxyStructuredResultV2;
  if (response.statusCode !== 200) {
    throw new Error(`ingest answered ${response.statusCode}: ${response.body ?? ''}`);
  }
  return response;
}

interface TimedRun {
  readonly measurement: Measurement;
  /** Bytes written to stdout per report (EMF metrics and log lines). */
  readonly logBytes: number;
  readonly responseBytes: number;
}

/** Warm-up, then `RUNS` timed reports; events are built before the clock starts. */
async function timed(
  name: string,
  handler: Handler,
  events: readonly APIGatewayProxyEventV2[],
): Promise<TimedRun> {
  const warm = events.slice(0, WARMUP);
  const runs = events.slice(WARMUP);
  for (const event of warm) await capturingStdout(() => invoke(handler, event));
  const times: number[] = [];
  let responseBytes = 0;
  const captured = await capturingStdout(async () => {
    for (const event of runs) {
      const start = performance.now();
      const response = await invoke(handler, event);
      times.push(performance.now() - start);
      responseBytes = Buffer.byteLength(response.body ?? '', 'utf8');
    }
  });
  return { measurement: measurement(name, times), logBytes: captured.bytes / runs.length, responseBytes };
}

/** A recorded report and the document-client outputs dynalite gave each of its calls. */
interface Replay {
  readonly report: AnyRelayReport;
  readonly answers: Map<string, Record<string, unknown>>;
}

function replayKey(operation: string, input: Record<string, unknown>): string {
  const values = input.ExpressionAttributeValues as Record<string, unknown> | undefined;
  const item = input.Item as Record<string, unknown> | undefined;
  const where =
    operation === 'Query'
      ? { index: input.IndexName, pk: values?.[':pk'] ?? values?.[':sites'], prefix: values?.[':prefix'] }
      : (input.Key ?? { pk: item?.pk, sk: item?.sk });
  return `${operation} ${JSON.stringify(where)}`;
}

interface Scenario {
  readonly name: 'steady' | 'changed';
  readonly what: string;
}

const STEADY: Scenario = { name: 'steady', what: 'nothing changed since the last report' };
const CHANGED: Scenario = { name: 'changed', what: "one host's VM list changed (a VM stopped or started)" };

export const ingestSuite: ReportSuite = {
  title: `Ingest (functions/ingest): a ${HOSTS_PER_SITE}-host site, ${RELAYS.length} relays, ${VMS_PER_HOST} VMs per host`,
  report: async () => {
    const deployed = deployedContext();
    const local = await startDynalite();
    try {
      await local.createTable(TABLE);
      const site = siteFixture();
      const { tools, recorder, ctx, handler } = await ingestOnDynalite(local, TABLE, site, deployed.policy);
      const relays = new Relays(site);
      /** Changes made so far: each one new (changeOneHost). */
      let changes = 0;

      // First contact: relay A creates hosts, VMs, clusters and summaries; relay B finds them.
      const firstMark = recorder.mark();
      // The first report writes every host and VM of the site, one call at a time: given minutes here (the
      // deployed timeout is 10 s), and timed, because that is the one report that can be slow.
      const firstStart = performance.now();
      const first = await capturingStdout(() => invoke(handler, relays.next(), 600_000));
      const firstMs = performance.now() - firstStart;
      const firstCalls = recorder.since(firstMark);
      await capturingStdout(() => invoke(handler, relays.next()));

      const accounted = async (scenario: Scenario) => {
        const next = () => {
          if (scenario.name === 'changed') changeOneHost(site, changes++);
          return relays.nextReport();
        };
        recorder.mode = { accounting: true, consumedCapacity: false, retain: true };
        const mark = recorder.mark();
        let last: { report: AnyRelayReport; mark: number } | undefined;
        for (let i = 0; i < ACCOUNTED; i++) {
          const report = next();
          last = { report: structuredClone(report), mark: recorder.mark() };
          await capturingStdout(() => invoke(handler, reportEvent(site, report)));
        }
        const calls = recorder.since(mark);
        if (last === undefined) throw new Error('nothing accounted');
        // The mocked clients replay the last report: its body, and the answers dynalite gave it.
        const answers = new Map<string, Record<string, unknown>>();
        for (const call of recorder.since(last.mark)) {
          answers.set(replayKey(call.operation, call.input), structuredClone(call.output));
        }
        recorder.mode = { accounting: false, consumedCapacity: true, retain: false };
        const ccMark = recorder.mark();
        for (let i = 0; i < ACCOUNTED; i++)
          await capturingStdout(() => invoke(handler, reportEvent(site, next())));
        const dynaliteUnits = summarize(recorder.since(ccMark), ACCOUNTED).dynaliteUnits;
        recorder.mode = { accounting: false, consumedCapacity: false, retain: false };
        return {
          summary: summarize(calls, ACCOUNTED),
          dynaliteUnits,
          replay: { answers, report: last.report } satisfies Replay,
        };
      };
      const steadyAccount = await accounted(STEADY);
      const changedAccount = await accounted(CHANGED);

      const dynaliteRun = async (scenario: Scenario) => {
        const events = Array.from({ length: WARMUP + RUNS }, () => {
          if (scenario.name === 'changed') changeOneHost(site, changes++);
          return relays.next();
        });
        const mark = recorder.mark();
        const run = await timed(`${scenario.name}, dynalite`, handler, events);
        const ops = summarize(recorder.since(mark), WARMUP + RUNS).byOperation;
        return { run, ops };
      };
      const steadyDynalite = await dynaliteRun(STEADY);
      const changedDynalite = await dynaliteRun(CHANGED);
      const reportBodyBytes = Buffer.byteLength(relays.next().body ?? '', 'utf8');

      // ------------------------------------------------------------ detector, on the same table
      const detector = await measureDetector(ctx, recorder, tools, deployed.detectorTickSeconds);

      // ------------------------------------------------------------ mocked SDK clients, replaying dynalite
      const env = { TABLE_NAME: TABLE, HALO_POLICY: deployed.policy, STATE_MACHINE_ARN };
      const mocked = await mockedRuns(site, env, steadyAccount.replay, changedAccount.replay);

      // ------------------------------------------------------------ tables
      const steadyLogBytes = mocked.steady.run.logBytes;
      const accessLine = renderAccessLog(
        accessLogFormat(),
        reportContext({
          responseLength: mocked.steady.run.responseBytes,
          integrationLatencyMs: Math.ceil(steadyDynalite.run.measurement.median),
        }),
      );
      const accessLogBytes = Buffer.byteLength(accessLine, 'utf8');

      const latency: Table = {
        title: `Ingest latency per report, warm (${WARMUP} warm-up + ${RUNS} timed; target: mocked median ≤ ${LATENCY_TARGET.medianMs} ms, p99 ≤ ${LATENCY_TARGET.p99Ms} ms)`,
        rows: [
          latencyRow(mocked.steady.run.measurement, true),
          latencyRow(mocked.changed.run.measurement, true),
          latencyRow(steadyDynalite.run.measurement, false),
          latencyRow(changedDynalite.run.measurement, false),
        ],
      };
      const units: Table = {
        title:
          'DynamoDB per report (sized from the items stored and returned; target for steady: 1 write of ≤ 1 KB)',
        rows: [
          unitsRow(STEADY, steadyAccount.summary, steadyAccount.dynaliteUnits, true),
          unitsRow(CHANGED, changedAccount.summary, changedAccount.dynaliteUnits, false),
        ],
      };
      const firstReport: Table = {
        title: 'First report of a new site (relay A creates every host, VM, cluster and summary; dynalite)',
        rows: [
          {
            calls: describeCalls(summarize(firstCalls, 1).byOperation),
            'sequential calls': firstCalls.length,
            'duration ms': firstMs,
            'deployed timeout': '10 s',
            'ms per call': firstMs / firstCalls.length,
          },
        ],
      };
      const consistency: Table = {
        title: 'Calls per report in the timed runs: the mocked clients make exactly the calls dynalite saw',
        rows: [
          {
            scenario: 'steady',
            dynalite: describeCalls(steadyDynalite.ops),
            mocked: describeCalls(mocked.steady.ops),
            'Step Functions': mocked.steady.sfnCalls,
            same: same(steadyDynalite.ops, mocked.steady.ops),
          },
          {
            scenario: 'changed',
            dynalite: describeCalls(changedDynalite.ops),
            mocked: describeCalls(mocked.changed.ops),
            'Step Functions': mocked.changed.sfnCalls,
            same: same(changedDynalite.ops, mocked.changed.ops),
          },
        ],
      };
      const wire: Table = {
        title: 'Per report on the wire and in the logs',
        rows: [
          {
            what: 'report body (POST /v1/reports)',
            bytes: reportBodyBytes,
            KB: kb(reportBodyBytes),
            note: `API Gateway meters per 512 KB: ${Math.ceil(reportBodyBytes / PRICES.apiMeteringBytes)} request`,
          },
          {
            what: 'response body',
            bytes: mocked.steady.run.responseBytes,
            KB: kb(mocked.steady.run.responseBytes),
            note: 'no commands (no open incident)',
          },
          {
            what: 'ingest stdout → CloudWatch Logs, steady',
            bytes: Math.round(steadyLogBytes),
            KB: kb(steadyLogBytes),
            note: 'EMF metrics flush (ReportsIngested); no log line on success',
          },
          {
            what: 'ingest stdout → CloudWatch Logs, changed',
            bytes: Math.round(mocked.changed.run.logBytes),
            KB: kb(mocked.changed.run.logBytes),
            note: '',
          },
          {
            what: 'ingest stdout, first (cold) invocation',
            bytes: first.bytes,
            KB: kb(first.bytes),
            note: 'adds the ColdStart metric',
          },
          {
            what: 'API access-log line',
            bytes: accessLogBytes,
            KB: kb(accessLogBytes),
            note: 'format of infra/constructs/api.ts, this report’s values',
          },
        ],
      };

      const billedMs = Math.ceil(mocked.steady.run.measurement.median);
      const ingestFigures: IngestFigures = {
        memoryMb: HALO_MEMORY_MB,
        billedMs,
        wru: steadyAccount.summary.wru,
        rru: steadyAccount.summary.rru,
        reportBodyBytes,
        functionLogBytes: steadyLogBytes,
        accessLogBytes,
      };
      // ------------------------------------------------------------ before: protocol v1 on the same table
      // Every host's whole inventory in every report. Its first reports rewrite the hosts once (their
      // digests are v2's); then it is steady.
      const v1 = relays.other(1);
      for (let i = 0; i < 4; i++) await capturingStdout(() => invoke(handler, v1.next()));
      recorder.mode = { accounting: true, consumedCapacity: false, retain: true };
      const v1Mark = recorder.mark();
      for (let i = 0; i < ACCOUNTED; i++) await capturingStdout(() => invoke(handler, v1.next()));
      const v1Steady = summarize(recorder.since(v1Mark), ACCOUNTED);
      recorder.mode = { accounting: false, consumedCapacity: false, retain: false };
      const v1BodyBytes = Buffer.byteLength(v1.next().body ?? '', 'utf8');
      const beforeFigures: IngestFigures = {
        ...ingestFigures,
        wru: v1Steady.wru,
        rru: v1Steady.rru,
        reportBodyBytes: v1BodyBytes,
      };
      const cost = costTables(
        ingestFigures,
        beforeFigures,
        detector.figures,
        mocked.steady.run.measurement.median,
      );
      return [latency, units, firstReport, consistency, wire, ...detector.tables, ...cost];
    } finally {
      await local.stop();
    }
  },
};

function same(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): string {
  return describeCalls(a) === describeCalls(b) ? 'yes' : 'NO';
}

function latencyRow(m: Measurement, targeted: boolean): Record<string, Cell> {
  const pass = m.median <= LATENCY_TARGET.medianMs && m.p99 <= LATENCY_TARGET.p99Ms;
  return {
    case: m.name,
    runs: m.runs,
    'median ms': m.median,
    'p99 ms': m.p99,
    'min ms': m.min,
    'max ms': m.max,
    target: targeted
      ? `≤ ${LATENCY_TARGET.medianMs} / ≤ ${LATENCY_TARGET.p99Ms} ms`
      : 'none (loopback HTTP + dynalite)',
    result: targeted ? (pass ? 'PASS' : 'MISS') : '',
  };
}

function unitsRow(
  scenario: Scenario,
  s: CallSummary,
  dynaliteUnits: number,
  targeted: boolean,
): Record<string, Cell> {
  const pass = s.writes === 1 && s.largestWrittenItem <= 1024;
  return {
    scenario: scenario.name,
    calls: describeCalls(s.byOperation),
    writes: s.writes,
    WRU: s.wru,
    'largest item written B': s.largestWrittenItem,
    RRU: s.rru,
    'bytes read': Math.round(s.bytesRead),
    'request B': Math.round(s.requestBytes),
    'response B': Math.round(s.responseBytes),
    'dynalite units': Number.isNaN(dynaliteUnits) ? '' : dynaliteUnits,
    result: targeted ? (pass ? 'PASS' : 'MISS') : '',
  };
}

/** The same handler and reports with the DynamoDB and Step Functions clients mocked, answering from dynalite's record. */
async function mockedRuns(
  site: SiteFixture,
  env: { TABLE_NAME: string; HALO_POLICY: string; STATE_MACHINE_ARN: string },
  steadyReplay: Replay,
  changedReplay: Replay,
) {
  const dynamo = mockClient(DynamoDBDocumentClient);
  const sfnMock = mockClient(SFNClient);
  try {
    const tools = benchPowertools();
    const ctx = createAppContext(env, tools, {
      dynamodb: new DynamoDBClient({ region: REGION, credentials: CREDENTIALS }),
      sfn: new SFNClient({ region: REGION, credentials: CREDENTIALS }),
    });
    const handler = withHaloMiddleware(makeIngestHandler(ctx, tools.logger), tools) as unknown as Handler;
    const answer = (replay: Replay, command: string) => (input: Record<string, unknown>) => {
      const operation = operationOf(command);
      const output = replay.answers.get(replayKey(operation, input));
      if (output === undefined) throw new Error(`no recorded answer for ${replayKey(operation, input)}`);
      return structuredClone(output);
    };
    const run = async (scenario: Scenario, replay: Replay) => {
      dynamo.reset();
      sfnMock.reset();
      dynamo.on(QueryCommand).callsFake(answer(replay, 'QueryCommand'));
      dynamo.on(GetCommand).callsFake(answer(replay, 'GetCommand'));
      dynamo.on(UpdateCommand).callsFake(answer(replay, 'UpdateCommand'));
      dynamo.on(PutCommand).callsFake(answer(replay, 'PutCommand'));
      // Every report is the recorded one (new seq and sentAt), so each takes the recorded path: for `changed`,
      // its host's digest differs from the recorded control items, as it did against dynalite.
      const base = replay.report.seq;
      const events = Array.from({ length: WARMUP + RUNS }, (_, i) =>
        reportEvent(site, { ...replay.report, seq: base + 1 + i, sentAt: Date.now() }),
      );
      const result = await timed(`${scenario.name}, mocked clients`, handler, events);
      const counts: Record<string, number> = {};
      for (const call of dynamo.calls()) {
        const op = operationOf(call.args[0].constructor.name);
        counts[op] = (counts[op] ?? 0) + 1;
      }
      const ops = Object.fromEntries(Object.entries(counts).map(([op, n]) => [op, n / (WARMUP + RUNS)]));
      return { run: result, ops, sfnCalls: sfnMock.calls().length };
    };
    const steady = await run(STEADY, steadyReplay);
    const changed = await run(CHANGED, changedReplay);
    return { steady, changed };
  } finally {
    dynamo.restore();
    sfnMock.restore();
  }
}

/** The detector's reads and logs for this one site, measured per tick, scaled per site by the cost model. */
async function measureDetector(
  ctx: AppContext,
  recorder: DynamoRecorder,
  tools: Powertools,
  tickSeconds: number,
) {
  recorder.mode = { accounting: true, consumedCapacity: false, retain: true };
  const plainMark = recorder.mark();
  await detectOnce(ctx, { evaluateCapacity: false });
  const plain = recorder.since(plainMark);
  const capacityMark = recorder.mark();
  await capturingStdout(() => detectOnce(ctx, { evaluateCapacity: true }));
  const capacity = recorder.since(capacityMark);
  recorder.mode = { accounting: false, consumedCapacity: false, retain: false };

  const listSites = plain.find((c) => c.operation === 'Query' && c.input.IndexName !== undefined);
  const control = plain.filter((c) => c.operation === 'Query' && c.input.IndexName === undefined);
  const capacityPrefixes = new Set<unknown>([SK_PREFIX.host, SK_PREFIX.vm]);
  const extra = capacity.filter((c) =>
    capacityPrefixes.has(
      (c.input.ExpressionAttributeValues as Record<string, unknown> | undefined)?.[':prefix'],
    ),
  );
  const controlRru = control.reduce((s, c) => s + (c.rru ?? 0), 0);
  const capacityRru = extra.reduce((s, c) => s + (c.rru ?? 0), 0);

  const times: number[] = [];
  await capturingStdout(async () => {
    for (let i = 0; i < 5; i++) await detectOnce(ctx, { evaluateCapacity: false });
    for (let i = 0; i < 50; i++) {
      const start = performance.now();
      await detectOnce(ctx, { evaluateCapacity: false });
      times.push(performance.now() - start);
    }
  });
  const tick = measurement('detectOnce, 1 site, dynalite', times);

  // One real invocation of one tick (runSeconds = tickSeconds), middleware and all: its log line and its
  // metrics flush are what CloudWatch Logs receives; a deployed invocation has `ticks` such lines.
  const handler = withHaloMiddleware(
    makeDetectorHandler(ctx, { tickSeconds, runSeconds: tickSeconds, logger: tools.logger }),
    tools,
  ) as unknown as (event: unknown, context: ReturnType<typeof lambdaContext>) => Promise<unknown>;
  await capturingStdout(() => handler({}, lambdaContext('halo-detector', HALO_MEMORY_MB))); // cold start
  const logged = await capturingStdout(() =>
    handler({ time: '2026-11-25T14:31:00Z' }, lambdaContext('halo-detector', HALO_MEMORY_MB)),
  );
  const tickLines = logged.lines.filter((l) => l.includes('"detector tick"'));
  const tickBytes = tickLines.reduce((s, l) => s + Buffer.byteLength(`${l}\n`, 'utf8'), 0);

  const ticks = detectorTicks(tickSeconds, DETECTOR_RUN_SECONDS);
  const figures: DetectorFigures = {
    memoryMb: HALO_MEMORY_MB,
    tickSeconds,
    runSeconds: DETECTOR_RUN_SECONDS,
    tickMsPerSite: tick.median,
    siteItemBytes: listSites?.bytesRead ?? 0,
    controlRruPerSite: controlRru,
    capacityRruPerSite: capacityRru,
    capacityEveryMinutes: 5,
    logBytesPerTick: tickBytes / Math.max(1, tickLines.length),
    logBytesPerInvocation: logged.bytes - tickBytes,
  };
  const tables: Table[] = [
    {
      title: `Detector per tick (app/detector/detect.ts; ${ticks} ticks per invocation at ${tickSeconds} s over ${DETECTOR_RUN_SECONDS} s)`,
      rows: [
        {
          tick: 'every tick',
          calls: describeCalls(summarize(plain, 1).byOperation),
          RRU: summarize(plain, 1).rru,
          'bytes read': summarize(plain, 1).bytesRead,
          note: `site list (${figures.siteItemBytes} B per site on gsi1) + 1 control query per site (${controlRru} RRU)`,
        },
        {
          tick: 'capacity tick (first of every 5th minute)',
          calls: describeCalls(summarize(extra, 1).byOperation),
          RRU: capacityRru,
          'bytes read': summarize(extra, 1).bytesRead,
          note: 'extra: every host and VM of each site',
        },
        {
          tick: 'duration (dynalite, 1 site)',
          calls: `median ${tick.median.toFixed(2)} ms, p99 ${tick.p99.toFixed(2)} ms`,
          RRU: '',
          'bytes read': '',
          note: `${tick.runs} ticks`,
        },
        {
          tick: 'logs',
          calls: `${Math.round(figures.logBytesPerTick)} B per tick line, ${figures.logBytesPerInvocation} B metrics flush per invocation`,
          RRU: '',
          'bytes read': '',
          note: 'application log level INFO',
        },
      ],
    },
  ];
  return { figures, tables };
}

/** Each relay's steady report interval while relays take turns: relaySilentAfterMs (app/ingest/pace.ts). */
export const TURN_SECONDS = resolvePolicy(DEFAULT_TIMING).relaySilentAfterMs / 1000;

/**
 * Liveness per host per month at 50-host sites, line by line: before (protocol v1, each relay every 10 s)
 * and after (protocol v2, relays taking turns), each from the calls and bytes measured above.
 */
function beforeAfter(before: IngestFigures, after: IngestFigures, detector: DetectorFigures): Table {
  const fleet = (reportIntervalSeconds: number): Fleet => ({
    hosts: 10_000,
    hostsPerSite: HOSTS_PER_SITE,
    relaysPerSite: RELAYS.length,
    reportIntervalSeconds,
  });
  const was = monthlyCost(fleet(10), before, detector).filter((l) => l.group === 'liveness');
  const now = monthlyCost(fleet(TURN_SECONDS), after, detector).filter((l) => l.group === 'liveness');
  const perHost = (d: number) => `$${(d / 10_000).toFixed(5)}`;
  const total = (lines: readonly { dollars: number }[]) => lines.reduce((sum, l) => sum + l.dollars, 0);
  const rows: Record<string, Cell>[] = was.map((line, i) => ({
    item: line.item.replace(/ \(ingest, .*\)$/, ' (ingest)'),
    'before $/host/month': perHost(line.dollars),
    'after $/host/month': perHost(now[i]?.dollars ?? 0),
  }));
  const afterPerHost = total(now) / 10_000;
  rows.push({
    item: `= liveness (target ≤ $${COST_TARGET.perHostMonth})`,
    'before $/host/month': perHost(total(was)),
    'after $/host/month': `${perHost(total(now))} ${afterPerHost <= COST_TARGET.perHostMonth ? 'PASS' : 'MISS'}`,
  });
  return {
    title: `Liveness per host and month at ${HOSTS_PER_SITE}-host sites with ${RELAYS.length} relays: before (v1, each relay every 10 s) and after (v2, turns of ${TURN_SECONDS} s)`,
    rows: [
      ...rows,
      {
        item: 'reports a month per site',
        'before $/host/month': count(reportsPerMonth(fleet(10)) / 200),
        'after $/host/month': count(reportsPerMonth(fleet(TURN_SECONDS)) / 200),
      },
      {
        item: 'steady report: WRU / RRU / body bytes',
        'before $/host/month': `${before.wru} / ${before.rru} / ${count(before.reportBodyBytes)}`,
        'after $/host/month': `${after.wru} / ${after.rru} / ${count(after.reportBodyBytes)}`,
      },
    ],
    footnote:
      'Both columns from this run: the v1 figures are a steady v1 report measured on the same table after the v2 runs.' +
      ' Reports a month: 2 relays × 730 h × 3,600 s / interval. A site with an open incident or a VM down reports at 10 s' +
      ' (and a silence under way at the incident pace): incidents are not steady state.',
  };
}

const money = (d: number): string =>
  d >= 100 ? `$${d.toFixed(0)}` : d >= 1 ? `$${d.toFixed(2)}` : `$${d.toFixed(4)}`;

function costTables(
  ingest: IngestFigures,
  before: IngestFigures,
  detector: DetectorFigures,
  measuredMedianMs: number,
): Table[] {
  const fleets: Fleet[] = FLEET_SIZES.map((hosts) => ({
    hosts,
    hostsPerSite: HOSTS_PER_SITE,
    relaysPerSite: RELAYS.length,
    reportIntervalSeconds: TURN_SECONDS,
  }));
  const lines = fleets.map((f) => monthlyCost(f, ingest, detector));
  const summaries = fleets.map((f, i) => summarizeCost(f, lines[i] ?? []));
  const column = (i: number) => `${count(fleets[i]?.hosts ?? 0)} hosts`;
  const first = lines[0] ?? [];
  const rows: Record<string, Cell>[] = first.map((line, li) => ({
    item: line.item,
    ...Object.fromEntries(fleets.map((_, fi) => [column(fi), money(lines[fi]?.[li]?.dollars ?? 0)])),
    [`quantity at ${column(fleets.length - 1)}`]: lines[fleets.length - 1]?.[li]?.quantity ?? '',
  }));
  const summaryRow = (label: string, pick: (s: ReturnType<typeof summarizeCost>) => string, note = '') => ({
    item: label,
    ...Object.fromEntries(fleets.map((_, fi) => [column(fi), summaries[fi] ? pick(summaries[fi]) : ''])),
    [`quantity at ${column(fleets.length - 1)}`]: note,
  });
  const fixedPass = summaries.every((s) => s.detectorFixed < COST_TARGET.fixedMonth);
  rows.push(
    summaryRow('= liveness (ingest path), $/month', (s) => money(s.liveness)),
    summaryRow(
      `= liveness $/host/month (target ≤ $${COST_TARGET.perHostMonth})`,
      (s) => `${money(s.livenessPerHost)} ${s.livenessPerHost <= COST_TARGET.perHostMonth ? 'PASS' : 'MISS'}`,
    ),
    summaryRow(
      `= detector fixed, $/month (target < $${COST_TARGET.fixedMonth})`,
      (s) => `${money(s.detectorFixed)} ${fixedPass ? 'PASS' : 'MISS'}`,
    ),
    summaryRow('= detector reads (grow with sites), $/month', (s) => money(s.detectorPerSite)),
    summaryRow('= total, $/month', (s) => money(s.total)),
    summaryRow(
      `Step Functions per incident (~${TRANSITIONS_PER_INCIDENT} transitions, research §3; not measured)`,
      () => money(incidentWorkflowCost(TRANSITIONS_PER_INCIDENT)),
    ),
  );

  const inputs: Table = {
    title: 'Cost model inputs (measured above unless marked)',
    rows: [
      {
        input: 'reports a month per relay',
        value: count(
          reportsPerMonth({
            hosts: 1,
            hostsPerSite: 1,
            relaysPerSite: 1,
            reportIntervalSeconds: TURN_SECONDS,
          }),
        ),
        from: `730 h × 3,600 s / ${TURN_SECONDS} s (relays taking turns; 10 s each before)`,
      },
      {
        input: 'ingest billed duration',
        value: `${ingest.billedMs} ms`,
        from: `mocked steady median ${measuredMedianMs.toFixed(2)} ms, rounded up to 1 ms`,
      },
      {
        input: 'ingest memory',
        value: `${ingest.memoryMb} MB arm64`,
        from: 'HALO_MEMORY_MB, infra/constructs/halo-function.ts',
      },
      { input: 'WRU per steady report', value: ingest.wru, from: 'DynamoDB per report, steady' },
      {
        input: 'RRU per steady report',
        value: ingest.rru,
        from: 'DynamoDB per report, steady (eventually consistent Query)',
      },
      { input: 'report body', value: `${ingest.reportBodyBytes} B`, from: 'Per report on the wire' },
      {
        input: 'function log bytes per report',
        value: Math.round(ingest.functionLogBytes),
        from: 'ingest stdout, steady (system log level WARN: no platform lines)',
      },
      { input: 'access-log bytes per report', value: ingest.accessLogBytes, from: 'API access-log line' },
      {
        input: 'detector',
        value: `${detectorTicks(detector.tickSeconds, detector.runSeconds)} ticks, ${detector.controlRruPerSite} RRU/site/tick, +${detector.capacityRruPerSite} RRU/site every 5 min`,
        from: 'Detector per tick',
      },
      {
        input: 'X-Ray sampling',
        value: '1 req/s + 5 %',
        from: 'assumed: Lambda active tracing default rule',
      },
    ],
  };
  const sensitivity: Table = {
    title:
      'Sensitivity: liveness $/host/month at 10,000 hosts if the billed duration in Lambda is longer than measured here',
    rows: [ingest.billedMs, 10, 25, 50].map((ms) => {
      const fleet = fleets[fleets.length - 1] as Fleet;
      const s = summarizeCost(fleet, monthlyCost(fleet, { ...ingest, billedMs: ms }, detector));
      return {
        'billed ms': ms,
        '$/host/month': money(s.livenessPerHost),
        result: s.livenessPerHost <= COST_TARGET.perHostMonth ? 'PASS' : 'MISS',
      };
    }),
  };
  return [
    {
      title: `Monthly cost, us-east-1 list prices, no free tier (${HOSTS_PER_SITE} hosts and ${RELAYS.length} relays a site taking turns: each reports every ${TURN_SECONDS} s, the site every ${TURN_SECONDS / RELAYS.length} s)`,
      rows,
    },
    beforeAfter(before, ingest, detector),
    inputs,
    sensitivity,
  ];
}

/** Site sizes of the scale table; liveness is priced for those of them a site of its kind has. */
export const SCALE_SITES = [10, 50, 200, 1_000] as const;
const PRICED_SITES: readonly number[] = [10, 50, 200];

/** What one site size measured. */
interface SizeFigures {
  readonly hosts: number;
  /** Reports relay A needed to have every inventory taken, and the slowest of them (ms, dynalite). */
  readonly firstContactReports: number;
  readonly firstContactSlowestMs: number;
  readonly steady: {
    readonly summary: CallSummary;
    readonly latency: Measurement;
    readonly bodyBytes: number;
  };
  readonly changed: {
    readonly summary: CallSummary;
    readonly latency: Measurement;
    readonly bodyBytes: number;
  };
  /** A v1 report of the same site: its body, and its DynamoDB figures when it fits the limit. */
  readonly v1: { readonly bodyBytes: number; readonly summary: CallSummary | null };
}

/** One site of `hosts` hosts on its own table: first contact, steady and changed v2 reports, and v1. */
async function measureSize(
  local: Awaited<ReturnType<typeof startDynalite>>,
  hosts: number,
  policy: string,
): Promise<SizeFigures> {
  const table = `halo-bench-${hosts}`;
  await local.createTable(table);
  const site = siteFixture(7, hosts);
  const { recorder, handler } = await ingestOnDynalite(local, table, site, policy);
  const relays = new Relays(site);
  let changes = 0;

  // First contact: relay A's reports carry the inventories, as many as fit each (REPORT_BUDGET_BYTES).
  let firstContactReports = 0;
  let firstContactSlowestMs = 0;
  while (relays.pending(RELAYS[0]) > 0 && firstContactReports < 100) {
    const event = relays.next(RELAYS[0]);
    const start = performance.now();
    await capturingStdout(() => invoke(handler, event, 600_000));
    firstContactSlowestMs = Math.max(firstContactSlowestMs, performance.now() - start);
    firstContactReports += 1;
  }
  while (relays.pending(RELAYS[1]) > 0) await capturingStdout(() => invoke(handler, relays.next(RELAYS[1])));

  const measure = async (changed: boolean, runs: number) => {
    const next = () => {
      if (changed) changeOneHost(site, changes++);
      return relays.next();
    };
    for (let i = 0; i < 5; i++) await capturingStdout(() => invoke(handler, next()));
    recorder.mode = { accounting: true, consumedCapacity: false, retain: true };
    const mark = recorder.mark();
    let bodyBytes = 0;
    for (let i = 0; i < ACCOUNTED; i++) {
      const event = next();
      bodyBytes += Buffer.byteLength(event.body ?? '', 'utf8') / ACCOUNTED;
      await capturingStdout(() => invoke(handler, event));
    }
    const summary = summarize(recorder.since(mark), ACCOUNTED);
    recorder.mode = { accounting: false, consumedCapacity: false, retain: false };
    const events = Array.from({ length: runs }, next);
    const times: number[] = [];
    await capturingStdout(async () => {
      for (const event of events) {
        const start = performance.now();
        await invoke(handler, event);
        times.push(performance.now() - start);
      }
    });
    return { summary, latency: measurement(`${hosts} hosts`, times), bodyBytes: Math.round(bodyBytes) };
  };
  const steady = await measure(false, 60);
  const changed = await measure(true, 40);

  // Before: the same site in protocol v1, if its report fits the limit at all.
  const v1 = relays.other(1);
  const v1Body = Buffer.byteLength(v1.next().body ?? '', 'utf8');
  let v1Summary: CallSummary | null = null;
  if (v1Body <= MAX_REPORT_BYTES) {
    for (let i = 0; i < 4; i++) await capturingStdout(() => invoke(handler, v1.next(), 600_000));
    recorder.mode = { accounting: true, consumedCapacity: false, retain: true };
    const mark = recorder.mark();
    for (let i = 0; i < ACCOUNTED; i++) await capturingStdout(() => invoke(handler, v1.next()));
    v1Summary = summarize(recorder.since(mark), ACCOUNTED);
    recorder.mode = { accounting: false, consumedCapacity: false, retain: false };
  }
  return {
    hosts,
    firstContactReports,
    firstContactSlowestMs,
    steady,
    changed,
    v1: { bodyBytes: v1Body, summary: v1Summary },
  };
}

/** Liveness per host and month of a site of `hosts` hosts and 2 relays, from its measured steady report. */
function livenessPerHost(
  hosts: number,
  figures: {
    readonly wru: number;
    readonly rru: number;
    readonly bodyBytes: number;
    readonly billedMs: number;
  },
  intervalSeconds: number,
  logs: { readonly functionLogBytes: number; readonly accessLogBytes: number },
): number {
  const ingest: IngestFigures = {
    memoryMb: HALO_MEMORY_MB,
    billedMs: figures.billedMs,
    wru: figures.wru,
    rru: figures.rru,
    reportBodyBytes: figures.bodyBytes,
    ...logs,
  };
  const fleet: Fleet = {
    hosts,
    hostsPerSite: hosts,
    relaysPerSite: RELAYS.length,
    reportIntervalSeconds: intervalSeconds,
  };
  const detector: DetectorFigures = {
    memoryMb: HALO_MEMORY_MB,
    tickSeconds: 10,
    runSeconds: DETECTOR_RUN_SECONDS,
    tickMsPerSite: 0,
    siteItemBytes: 0,
    controlRruPerSite: 0,
    capacityRruPerSite: 0,
    capacityEveryMinutes: 5,
    logBytesPerTick: 0,
    logBytesPerInvocation: 0,
  };
  return summarizeCost(fleet, monthlyCost(fleet, ingest, detector)).livenessPerHost;
}

/** Ingest at 10, 50, 200 and 1,000 hosts a site, and liveness per host at the site sizes priced. */
export const ingestScaleSuite: ReportSuite = {
  title: `Ingest at scale: sites of ${SCALE_SITES.join(', ')} hosts (${VMS_PER_HOST} VMs each, ${RELAYS.length} relays, protocol v2, dynalite)`,
  report: async () => {
    const deployed = deployedContext();
    const local = await startDynalite();
    try {
      const sizes: SizeFigures[] = [];
      for (const hosts of SCALE_SITES) sizes.push(await measureSize(local, hosts, deployed.policy));
      const ingestRows = sizes.flatMap((z) =>
        (['steady', 'changed'] as const).map((kind) => {
          const m = z[kind];
          return {
            site: `${count(z.hosts)} hosts`,
            report: kind,
            'median ms': m.latency.median,
            'p99 ms': m.latency.p99,
            calls: describeCalls(m.summary.byOperation),
            WRU: m.summary.wru,
            RRU: m.summary.rru,
            'bytes read': Math.round(m.summary.bytesRead),
            'body B': m.bodyBytes,
            'B/host': Math.round(m.bodyBytes / z.hosts),
          };
        }),
      );
      const firstRows = sizes.map((z) => ({
        site: `${count(z.hosts)} hosts`,
        'v2 first contact': `${z.firstContactReports} report(s), slowest ${Math.round(z.firstContactSlowestMs)} ms`,
        'v1 report body': `${kb(z.v1.bodyBytes)} KB${z.v1.bodyBytes > MAX_REPORT_BYTES ? ' — refused (413): such a site was never heard' : ''}`,
        'v2 steady body': `${kb(z.steady.bodyBytes)} KB (${Math.round((100 * z.steady.bodyBytes) / MAX_REPORT_BYTES)} % of the limit)`,
      }));
      // Log bytes per report do not depend on the site's size (EMF flush, access-log line): the deep dive's.
      const logs = { functionLogBytes: 198, accessLogBytes: 246 };
      const priced = sizes.filter((z) => PRICED_SITES.includes(z.hosts));
      const money5 = (d: number) => `$${d.toFixed(4)}`;
      const costRows = priced.map((z) => {
        const after = livenessPerHost(
          z.hosts,
          {
            wru: z.steady.summary.wru,
            rru: z.steady.summary.rru,
            bodyBytes: z.steady.bodyBytes,
            billedMs: Math.ceil(z.steady.latency.median),
          },
          TURN_SECONDS,
          logs,
        );
        const before =
          z.v1.summary === null
            ? null
            : livenessPerHost(
                z.hosts,
                {
                  wru: z.v1.summary.wru,
                  rru: z.v1.summary.rru,
                  bodyBytes: z.v1.bodyBytes,
                  billedMs: Math.ceil(z.steady.latency.median),
                },
                10,
                logs,
              );
        return {
          'hosts a site': count(z.hosts),
          'before (v1, 10 s each relay)':
            before === null ? 'cannot report (v1 body over 256 KiB)' : money5(before),
          'after (v2, turns of 30 s)': money5(after),
          'steady report after: WRU / RRU': `${z.steady.summary.wru} / ${z.steady.summary.rru}`,
          target: z.hosts === HOSTS_PER_SITE ? `≤ $${COST_TARGET.perHostMonth}` : '',
          result: z.hosts === HOSTS_PER_SITE ? (after <= COST_TARGET.perHostMonth ? 'PASS' : 'MISS') : '',
        };
      });
      return [
        {
          title:
            'Ingest of one report by site size (dynalite: latency includes loopback HTTP; 5 warm-up, 10 accounted, then 60 steady / 40 changed timed)',
          rows: ingestRows,
          footnote:
            'steady: nothing changed (digests only); changed: one host’s VM started or stopped (its inventory in the report).' +
            ' A changed report reads every VM of the site (recordInventory), which grows with the site: see "what is left" in docs/cost.md.',
        },
        {
          title: 'Report size: v1 (every inventory) against v2 (digests), and v2 first contact',
          rows: firstRows,
        },
        {
          title:
            'Liveness $/host/month by site size, 2 relays (us-east-1 list prices; from the steady report measured at each size)',
          rows: costRows,
          footnote:
            'Lambda duration priced at the dynalite median (an upper bound); logs per report as the deep dive measured them (198 B EMF flush, 246 B access log).' +
            ' Per site and month: 525,600 reports before (2 relays × 10 s), 175,200 after (2 relays taking turns of 30 s).',
        },
      ];
    } finally {
      await local.stop();
    }
  },
};

/**
 * The ingest Lambda as deployed, on dynalite: the site enrolled (its relays' credential hashes stored a
 * minute ago), the handler with its middleware, and a recorder of every DynamoDB call it makes.
 */
async function ingestOnDynalite(
  local: Awaited<ReturnType<typeof startDynalite>>,
  table: string,
  site: ReturnType<typeof siteFixture>,
  policy: string,
) {
  const hasher = new Sha256Hasher();
  const stores = createDynamoStores({ client: local.client, tableName: table });
  const enrolledAt = Date.now() - 60_000;
  await stores.sites.putSite({ siteId: site.siteId, createdAt: enrolledAt });
  for (const relayId of RELAYS) {
    await stores.relays.enroll({
      siteId: site.siteId,
      relayId,
      credentialHash: hasher.hash(site.secrets[relayId]),
      at: enrolledAt,
    });
  }
  const tools = benchPowertools();
  const raw = new DynamoDBClient({ endpoint: local.endpoint, region: REGION, credentials: CREDENTIALS });
  const recorder = new DynamoRecorder(raw, local.raw, table);
  const sfn = new SFNClient({
    endpoint: NO_SFN_ENDPOINT,
    region: REGION,
    credentials: CREDENTIALS,
    maxAttempts: 1,
  });
  const ctx = createAppContext({ TABLE_NAME: table, HALO_POLICY: policy, STATE_MACHINE_ARN }, tools, {
    dynamodb: raw,
    sfn,
  });
  const handler = withHaloMiddleware(makeIngestHandler(ctx, tools.logger), tools) as unknown as Handler;
  return { tools, recorder, ctx, handler };
}
