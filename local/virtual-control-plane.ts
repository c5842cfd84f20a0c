import { createMemoryStores } from '../adapters/memory';
import { Sha256Hasher } from '../adapters/node/sha256-hasher';
import { SystemClock } from '../adapters/node/system-clock';
import type { AppContext } from '../app/context';
import type { DetectorReport } from '../app/detector/detect';
import type { IdGenerator, MetricsPort } from '../app/ports';
import { OPERATOR_ROUTES, type OperatorRouteName } from '../contracts/operator-api';
import { type HaPolicyInput, resolvePolicy } from '../core/policy';
import { makeFailoverStepsHandler } from '../functions/failover-steps/failover-steps';
import {
  lineLogger,
  type OperatorAnswer,
  type OperatorCall,
  operatorPath,
  startDetector,
  trackSteps,
} from './control-plane';
import { synthesizedDefinition } from './definition';
import { type LocalDispatcher, makeLocalDispatcher } from './http-endpoint';
import { createLocalWorkflow, type LocalWorkflow } from './local-workflow';
import { MetricsRecorder } from './metrics-recorder';

/**
 * The control plane of the deterministic simulator: the same handlers, use cases and synthesized workflow
 * as local mode, on the memory stores (the stores' conformance suite holds them to DynamoDB's semantics),
 * with every request dispatched in-process. No socket, no thread, no dynalite: run on a virtual clock
 * (local/sim/virtual-time.ts), it is a pure function of its inputs and its seed.
 */

/** Options of {@link startVirtualControlPlane}. */
export interface VirtualControlPlaneOptions {
  readonly policy?: HaPolicyInput;
  /** Detector tick in ms (the EventBridge schedule); 0 turns the timer off. */
  readonly detectorTickMs: number;
  /** Capacity (N+1) is evaluated on every Nth tick. */
  readonly capacityEveryTicks?: number;
  readonly waitOverridesMs?: Readonly<Record<string, number>>;
  readonly retryIntervalMs?: number;
  readonly log?: (line: string) => void;
  /** Ids, secrets, request ids and task tokens: seeded in the simulator. */
  readonly ids: IdGenerator;
  /**
   * Whether the datapoints the use cases publish are kept in `metrics` (true by default). The simulator
   * reads none: it passes false, and they are dropped as published (one per report and detector tick).
   */
  readonly recordMetrics?: boolean;
}

/** A control plane served in-process: what the simulator drives. */
export interface InProcessControlPlane {
  readonly ctx: AppContext;
  readonly workflow: LocalWorkflow;
  /** What the use cases published; empty when started with `recordMetrics: false`. */
  readonly metrics: MetricsRecorder;
  /** Serves one request as the HTTP endpoint would, without a socket. */
  readonly dispatch: LocalDispatcher;
  operator<N extends OperatorRouteName>(name: N, call?: OperatorCall<N>): Promise<OperatorAnswer>;
  runDetectorOnce(args?: { readonly evaluateCapacity?: boolean }): Promise<DetectorReport>;
  stop(): Promise<void>;
}

const CAPACITY_PERIOD_MS = 5 * 60_000;
const DROP_METRICS: MetricsPort = { count: () => undefined, seconds: () => undefined };
const STEP_DRAIN_MS = 5_000;

export async function startVirtualControlPlane(
  options: VirtualControlPlaneOptions,
): Promise<InProcessControlPlane> {
  const policy = options.policy ?? {};
  resolvePolicy(policy);
  const tickMs = options.detectorTickMs;
  const capacityEvery =
    options.capacityEveryTicks ?? Math.max(1, Math.round(CAPACITY_PERIOD_MS / Math.max(1, tickMs)));
  const logger = lineLogger(options.log ?? (() => {}));
  const definition = await synthesizedDefinition();
  const clock = new SystemClock();
  const metrics = new MetricsRecorder(clock);
  const published: MetricsPort = options.recordMetrics === false ? DROP_METRICS : metrics;
  const { ids } = options;
  const { workflow, ctx } = createLocalWorkflow(
    {
      definition,
      logger,
      tokenNonce: () => ids.newSecret().slice(0, 12),
      ...(options.waitOverridesMs === undefined ? {} : { waitOverridesMs: options.waitOverridesMs }),
      ...(options.retryIntervalMs === undefined ? {} : { retryIntervalMs: options.retryIntervalMs }),
    },
    (wf) => ({
      ports: { ...createMemoryStores(), clock, ids, workflow: wf, metrics: published },
      hasher: new Sha256Hasher(),
      defaults: { ...policy },
    }),
  );
  const steps = trackSteps(workflow, makeFailoverStepsHandler(ctx));
  const dispatch = makeLocalDispatcher({ ctx, logger, requestId: () => ids.newId('req') });
  const detector = startDetector(ctx, { tickMs, capacityEvery, logger });

  const operator = async <N extends OperatorRouteName>(
    name: N,
    call: OperatorCall<N> = {},
  ): Promise<OperatorAnswer> => {
    const route = OPERATOR_ROUTES.find((r) => r.name === name);
    if (route === undefined) throw new Error(`unknown operator route ${name}`);
    const body = call.body === undefined ? '' : JSON.stringify(call.body);
    const result = await dispatch({
      method: route.method,
      rawPath: operatorPath(name, call.params ?? {}),
      rawQueryString: new URLSearchParams(call.query ?? {}).toString(),
      headers: body === '' ? {} : { 'content-type': 'application/json' },
      body: Buffer.from(body),
      sourceIp: '127.0.0.1',
      protocol: 'HTTP/1.1',
    });
    const text =
      result.body === undefined
        ? ''
        : Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8').toString();
    return { status: result.statusCode ?? 200, body: text === '' ? null : JSON.parse(text) };
  };

  let stopping: Promise<void> | undefined;
  return {
    ctx,
    workflow,
    metrics,
    dispatch,
    operator,
    runDetectorOnce: (args = {}) => detector.runOnce(args.evaluateCapacity ?? false),
    stop: () => {
      stopping ??= (async () => {
        await detector.stop();
        await workflow.stop();
        await steps.drain(STEP_DRAIN_MS);
      })();
      return stopping;
    },
  };
}
