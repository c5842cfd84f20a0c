import { createDynamoStores } from '../adapters/dynamodb';
import { CryptoIds } from '../adapters/node/crypto-ids';
import { Sha256Hasher } from '../adapters/node/sha256-hasher';
import { SystemClock } from '../adapters/node/system-clock';
import type { WorkflowLogger } from '../adapters/sfn/sfn-workflow';
import type { AppContext } from '../app/context';
import { type DetectorReport, detectOnce } from '../app/detector/detect';
import { OPERATOR_ROUTES, type OperatorRouteName } from '../contracts/operator-api';
import { PREVIOUS_PROTOCOL_VERSION, type RelayReport } from '../contracts/relay-protocol';
import { type HaPolicyInput, resolvePolicy } from '../core/policy';
import { makeFailoverStepsHandler } from '../functions/failover-steps/failover-steps';
import type { HandlerLogger } from '../functions/shared/powertools';
import { synthesizedDefinition } from './definition';
import { type LocalDynalite, startDynalite } from './dynalite';
import { type HttpEndpoint, startHttpEndpoint } from './http-endpoint';
import { newLocalToken } from './local-token';
import { createLocalWorkflow, type LocalWorkflow, type StepsHandler } from './local-workflow';
import { MetricsRecorder } from './metrics-recorder';
import { type StepsRuntime, sharedStepsRuntime } from './steps-runtime';

/** Options of {@link startLocalControlPlane}. */
export interface LocalControlPlaneOptions {
  /** The deployment's default policy (HALO_POLICY in AWS); production defaults when absent. */
  readonly policy?: HaPolicyInput;
  /** Port of the HTTP endpoint; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Loopback only: the endpoint has no SigV4 (local/http-endpoint.ts). */
  readonly host?: '127.0.0.1';
  /**
   * The local operator token the endpoint's operator routes require (local/local-token.ts); a fresh random
   * one when absent. `operator()` sends it.
   */
  readonly operatorToken?: string;
  /** Where that token is stored, named in the endpoint's 401s. */
  readonly tokenFile?: string;
  /** Detector tick in ms; defaults to the policy's hostHeartbeatMs. 0 turns the timer off (runDetectorOnce still works). */
  readonly detectorTickMs?: number;
  /** Capacity (N+1) is evaluated on every Nth tick; defaults to about every 5 minutes, as in AWS. */
  readonly capacityEveryTicks?: number;
  /** Wait state durations by state name, in ms (LocalWorkflow waitOverridesMs). */
  readonly waitOverridesMs?: Readonly<Record<string, number>>;
  /** Length of one Retry-interval second, in ms (LocalWorkflow retryIntervalMs). */
  readonly retryIntervalMs?: number;
  /** Where log lines go (requests, refusals, detector findings); silent by default. */
  readonly log?: (line: string) => void;
  /**
   * A dynalite server to share (many simulator runs in one process): this control plane gets a table of
   * its own there, deleted when it stops, and leaves the server running. Without it, it starts its own.
   */
  readonly dynamo?: LocalDynalite;
  /**
   * Where the failover steps run: `'worker'` (the default) on the process's steps thread
   * (local/steps-runtime.ts), sharing nothing with the ingest and operator handlers but the table, as in
   * AWS; `'inline'` on this thread over the same AppContext.
   */
  readonly stepsThread?: 'worker' | 'inline';
}

/** Extracts `{name}` parameters from a route template. */
type ParamNames<P extends string> = P extends `${string}{${infer N}}${infer Rest}`
  ? N | ParamNames<Rest>
  : never;
type RouteOf<N extends OperatorRouteName> = Extract<(typeof OPERATOR_ROUTES)[number], { name: N }>;

/** One operator call: the route's path parameters, query string and JSON body. */
export interface OperatorCall<N extends OperatorRouteName = OperatorRouteName> {
  readonly params?: Readonly<Record<ParamNames<RouteOf<N>['path']>, string>>;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
}

/** An operator call's answer: the HTTP status and the parsed JSON body (null when empty). */
export interface OperatorAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** A running local control plane. */
export interface LocalControlPlane {
  /** Base URL of the HTTP endpoint, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The AppContext every handler shares (DynamoDB stores on dynalite, LocalWorkflow, MetricsRecorder). */
  readonly ctx: AppContext;
  readonly workflow: LocalWorkflow;
  readonly metrics: MetricsRecorder;
  /** The dynalite endpoint the stores use. */
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  /** The local operator token operator routes require (`Authorization: Bearer …`). */
  readonly operatorToken: string;
  /** Calls an operator route through the HTTP endpoint with the local operator token, as the CLI would. */
  operator<N extends OperatorRouteName>(name: N, call?: OperatorCall<N>): Promise<OperatorAnswer>;
  /** One detector pass now (serialised with the timer's ticks). */
  runDetectorOnce(args?: { readonly evaluateCapacity?: boolean }): Promise<DetectorReport>;
  /** Stops the endpoint, the detector, every execution and dynalite; calling it again is harmless. */
  stop(): Promise<void>;
}

/**
 * Does once, up front, what the first control plane of a process would otherwise do while others already
 * run on real time: synthesize the definition, have the runner validate it, and load and compile the
 * handlers' code paths (a throwaway control plane on `dynamo` takes an enrolment and a first report).
 * Together that blocks the event loop for a couple of seconds, which a run in progress would see as
 * silent hosts.
 */
export async function prepareLocalControlPlanes(dynamo?: LocalDynalite): Promise<void> {
  const cp = await startLocalControlPlane({ detectorTickMs: 0, ...(dynamo === undefined ? {} : { dynamo }) });
  try {
    const enrolled = await cp.operator('enrollRelay', {
      params: { siteId: 'warm-up' },
      body: { relayId: 'r1' },
    });
    const credential = (enrolled.body as { credential?: unknown } | null)?.credential;
    const report: RelayReport = {
      protocol: PREVIOUS_PROTOCOL_VERSION,
      siteId: 'warm-up',
      relayId: 'r1',
      seq: 1,
      sentAt: Date.now(),
      hosts: [
        {
          hostId: 'h1',
          cluster: 'c1',
          bootId: 'b1',
          lastHeardMsAgo: 0,
          cpus: 4,
          memoryMiB: 8192,
          vms: [{ id: 'vm-1', cpus: 1, memoryMiB: 1024, state: 'running' }],
        },
      ],
      results: [],
    };
    await fetch(`${cp.url}/v1/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${String(credential)}` },
      body: JSON.stringify(report),
    });
    await cp.runDetectorOnce();
  } finally {
    await cp.stop();
  }
}

/** The table's name in dynalite, when the control plane has a dynalite of its own. */
export const LOCAL_TABLE_NAME = 'halo-local';

/** Tables of control planes sharing one dynalite: one each, never reused within the process. */
let sharedTables = 0;

/** The Lambda evaluates capacity every 5th minute; the local timer keeps the same rhythm by default. */
const CAPACITY_PERIOD_MS = 5 * 60_000;
/** How long stop() waits for failover steps still running after their executions were aborted. */
const STEP_DRAIN_MS = 5_000;

/** Writes handler and workflow log calls as single lines (JSON for their structured parts). */
export function lineLogger(log: (line: string) => void): HandlerLogger & WorkflowLogger {
  const replacer = (_key: string, value: unknown) =>
    value instanceof Error ? { name: value.name, message: value.message } : value;
  const emit =
    (level: string) =>
    (message: unknown, ...extra: unknown[]): void => {
      const text = typeof message === 'string' ? message : JSON.stringify(message, replacer);
      const rest = extra.map((e) => (typeof e === 'string' ? e : JSON.stringify(e, replacer)));
      log([level, text, ...rest].join(' '));
    };
  return { info: emit('INFO'), warn: emit('WARN'), error: emit('ERROR') };
}

/** The path of an operator route with its parameters filled in (percent-encoded). */
export function operatorPath(name: OperatorRouteName, params: Readonly<Record<string, string>>): string {
  const route = OPERATOR_ROUTES.find((r) => r.name === name);
  if (route === undefined) throw new Error(`unknown operator route ${name}`);
  return route.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, param: string) => {
    const value = params[param];
    if (value === undefined) throw new Error(`operator route ${name} needs the path parameter ${param}`);
    return encodeURIComponent(value);
  });
}

/**
 * Starts the control plane on this machine: dynalite in memory with the one table, the AppContext on the
 * real DynamoDB stores, the synthesized failover definition on LocalWorkflow (Tasks served by the
 * failover-steps handler over that same context), the HTTP endpoint on loopback serving the ingest and
 * operator handlers, and the detector on a timer. Everything started is stopped again if a later part fails.
 */
export async function startLocalControlPlane(
  options: LocalControlPlaneOptions = {},
): Promise<LocalControlPlane> {
  const policy = options.policy ?? {};
  // Refused here, before anything starts: the Lambda's cold start refuses a bad HALO_POLICY the same way.
  const resolved = resolvePolicy(policy);
  const tickMs = options.detectorTickMs ?? resolved.hostHeartbeatMs;
  if (!(Number.isFinite(tickMs) && tickMs >= 0)) throw new Error('detectorTickMs must be a number ≥ 0');
  const capacityEvery =
    options.capacityEveryTicks ?? Math.max(1, Math.round(CAPACITY_PERIOD_MS / Math.max(1, tickMs)));
  if (!(Number.isInteger(capacityEvery) && capacityEvery >= 1))
    throw new Error('capacityEveryTicks must be an integer ≥ 1');
  const log = options.log ?? (() => {});
  const logger = lineLogger(log);
  const operatorToken = options.operatorToken ?? newLocalToken();

  // Synthesis (seconds) runs alongside dynalite's start-up.
  const shared = options.dynamo;
  const [definition, dynamo] = await Promise.all([
    synthesizedDefinition(),
    shared ?? startDynalite({ thread: 'worker' }),
  ]);
  const tableName = shared === undefined ? LOCAL_TABLE_NAME : `${LOCAL_TABLE_NAME}-${++sharedTables}`;
  // A shared server outlives this control plane: only its table goes.
  const release = shared === undefined ? () => dynamo.stop() : () => dynamo.deleteTable(tableName);
  let endpoint: HttpEndpoint | undefined;
  let workflow: LocalWorkflow | undefined;
  let served: Awaited<ReturnType<StepsRuntime['open']>> | undefined;
  try {
    await dynamo.createTable(tableName);
    const clock = new SystemClock();
    const metrics = new MetricsRecorder(clock);
    const stores = createDynamoStores({ client: dynamo.client, tableName, clock });
    const built = createLocalWorkflow(
      {
        definition,
        logger,
        ...(options.waitOverridesMs === undefined ? {} : { waitOverridesMs: options.waitOverridesMs }),
        ...(options.retryIntervalMs === undefined ? {} : { retryIntervalMs: options.retryIntervalMs }),
      },
      (wf) => ({
        ports: { ...stores, clock, ids: new CryptoIds(), workflow: wf, metrics },
        hasher: new Sha256Hasher(),
        defaults: { ...policy },
      }),
    );
    workflow = built.workflow;
    const ctx = built.ctx;
    if ((options.stepsThread ?? 'worker') === 'worker') {
      served = await sharedStepsRuntime().open({
        endpoint: dynamo.endpoint,
        tableName,
        defaults: ctx.defaults,
        workflow,
        metrics,
      });
    }
    const steps = trackSteps(workflow, served?.handler ?? makeFailoverStepsHandler(ctx));
    endpoint = await startHttpEndpoint({
      ctx,
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      operatorToken,
      ...(options.tokenFile === undefined ? {} : { tokenFile: options.tokenFile }),
      logger,
      log,
    });
    const detector = startDetector(ctx, { tickMs, capacityEvery, logger });
    const stepsServed = served;
    return assemble({
      ctx,
      workflow,
      metrics,
      dynamo,
      tableName,
      release: async () => {
        stepsServed?.close();
        await release();
      },
      endpoint,
      detector,
      steps,
      operatorToken,
    });
  } catch (error) {
    await endpoint?.close();
    await workflow?.stop();
    served?.close();
    await release();
    throw error;
  }
}

export interface TrackedSteps {
  /** Resolves once no failover step is running (or after `ms`). */
  drain(ms: number): Promise<void>;
}

/**
 * Serves the workflow's Tasks with the failover-steps handler, counting the invocations still running:
 * aborting an execution does not cancel the handler it was awaiting, and that handler still writes to
 * dynalite, which must stay up until it is done. Registered before any execution starts.
 */
export function trackSteps(workflow: LocalWorkflow, steps: StepsHandler): TrackedSteps {
  const running = new Set<Promise<void>>();
  workflow.useSteps((event) => {
    const run = steps(event);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    running.add(settled);
    void settled.then(() => running.delete(settled));
    return run;
  });
  return {
    drain: async (ms) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...running]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, ms);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

export interface DetectorLoop {
  runOnce(evaluateCapacity: boolean): Promise<DetectorReport>;
  /** Clears the timer and waits for a pass still running. */
  stop(): Promise<void>;
}

/**
 * The one-minute EventBridge schedule as a local timer: one detectOnce per tick (the Lambda's inner loop
 * does the same), capacity on every `capacityEvery`th tick starting with the first. Passes never overlap:
 * the next tick is armed when a pass ends, and runOnce queues behind a running pass.
 */
export function startDetector(
  ctx: AppContext,
  opts: { readonly tickMs: number; readonly capacityEvery: number; readonly logger: HandlerLogger },
): DetectorLoop {
  let queue: Promise<unknown> = Promise.resolve();
  let ticks = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const runOnce = (evaluateCapacity: boolean): Promise<DetectorReport> => {
    const run = queue.then(() => detectOnce(ctx, { evaluateCapacity }));
    queue = run.catch(() => {});
    return run;
  };
  const tick = async (): Promise<void> => {
    const evaluateCapacity = ticks % opts.capacityEvery === 0;
    ticks += 1;
    try {
      const report = await runOnce(evaluateCapacity);
      // Quiet ticks are the norm (one every heartbeat): only findings are worth a line.
      const findings =
        report.incidentsOpened.length +
        report.partitionedSites.length +
        report.clustersFailingNPlusOne.length +
        report.alerts.length;
      if (findings > 0) opts.logger.info('detector findings', { report });
    } catch (error) {
      // As in the Lambda: a failed pass is logged and the next tick tries again.
      opts.logger.error('detector tick failed', error instanceof Error ? error : String(error));
    }
    if (!stopped) timer = setTimeout(() => void tick(), opts.tickMs);
  };
  if (opts.tickMs > 0) timer = setTimeout(() => void tick(), opts.tickMs);
  return {
    runOnce,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await queue;
    },
  };
}

function assemble(parts: {
  readonly ctx: AppContext;
  readonly workflow: LocalWorkflow;
  readonly metrics: MetricsRecorder;
  readonly dynamo: LocalDynalite;
  readonly tableName: string;
  /** Stops dynalite, or deletes this control plane's table from a shared one. */
  readonly release: () => Promise<void>;
  readonly endpoint: HttpEndpoint;
  readonly detector: DetectorLoop;
  readonly steps: TrackedSteps;
  readonly operatorToken: string;
}): LocalControlPlane {
  const { ctx, workflow, metrics, dynamo, tableName, release, endpoint, detector, steps, operatorToken } =
    parts;
  let stopping: Promise<void> | undefined;
  // Outside in: no new request or tick can start an execution once the workflow stops, and dynalite
  // stays up until the last step that writes to it has returned.
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const errors: unknown[] = [];
      const attempt = async (part: () => Promise<void>) => {
        try {
          await part();
        } catch (error) {
          errors.push(error);
        }
      };
      await attempt(() => endpoint.close());
      await attempt(() => detector.stop());
      await attempt(() => workflow.stop());
      await attempt(() => steps.drain(STEP_DRAIN_MS));
      await attempt(release);
      if (errors.length > 0) throw new AggregateError(errors, 'the local control plane did not stop cleanly');
    })();
    return stopping;
  };

  const operator = async <N extends OperatorRouteName>(
    name: N,
    call: OperatorCall<N> = {},
  ): Promise<OperatorAnswer> => {
    const route = OPERATOR_ROUTES.find((r) => r.name === name);
    if (route === undefined) throw new Error(`unknown operator route ${name}`);
    const params: Readonly<Record<string, string>> = call.params ?? {};
    const query = new URLSearchParams(call.query ?? {}).toString();
    const url = `${endpoint.url}${operatorPath(name, params)}${query === '' ? '' : `?${query}`}`;
    const authorization = `Bearer ${operatorToken}`;
    const response = await fetch(url, {
      method: route.method,
      ...(call.body === undefined
        ? { headers: { authorization } }
        : {
            body: JSON.stringify(call.body),
            headers: { authorization, 'content-type': 'application/json' },
          }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  };

  return {
    url: endpoint.url,
    ctx,
    workflow,
    metrics,
    dynamoEndpoint: dynamo.endpoint,
    tableName,
    operatorToken,
    operator,
    runDetectorOnce: (args = {}) => detector.runOnce(args.evaluateCapacity ?? false),
    stop,
  };
}
