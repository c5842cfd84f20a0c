import { randomBytes } from 'node:crypto';
import { type RunOptions, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import {
  executionArnFor,
  executionName,
  resumeExecutionName,
  type WorkflowLogger,
} from '../adapters/sfn/sfn-workflow';
import type { AppContext } from '../app/context';
import type { WorkflowPort } from '../app/ports';
import { type IncidentInput, STATE, type WorkflowResume } from '../contracts/workflow';
import { makeFailoverStepsHandler } from '../functions/failover-steps/failover-steps';
import { type AslDefinition, type AslState, LOCAL_TIMEOUT_KEY } from '../infra/definition';
import { addUsage, limitsBroken, NO_USAGE, type RunnerEvent, type WorkflowUsage } from './workflow-limits';

/**
 * WorkflowPort over aws-local-stepfunctions: each incident runs the synthesized failover definition
 * (local/definition.ts) in this process, every Task served by the failover-steps Lambda handler itself.
 *
 * What the runner lacks is supplied here, as Step Functions does it:
 * - `.waitForTaskToken`: each callback Task gets a token of its own (the runner's `$$.Task.Token` is one
 *   value per execution, so two StartVm iterations would share it), the handler is invoked with it, and the
 *   Task settles when sendTaskSuccess/sendTaskFailure names it, or times out per TimeoutSecondsPath.
 * - one execution per name: starting an incident again returns its execution, running or finished.
 * - the Lambda boundary: requests and results cross as JSON, errors by `name` (Retry/Catch match on it).
 * - Step Functions' limits (local/workflow-limits.ts): every state's input and output is sized and the
 *   history AWS would record is counted as the execution runs; one that breaks a limit fails as it would in
 *   AWS (`States.DataLimitExceeded`, or `HistoryLimitExceeded` for the 25,000 events), so that no test or
 *   simulated run passes on a workflow AWS would stop.
 */

/** The failover-steps Lambda as the local runner calls it: one JSON payload in, its result out. */
export type StepsHandler = (event: unknown) => Promise<unknown>;

type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type Json = Awaited<ReturnType<LocalHandlers[string]>>;
type Execution = ReturnType<StateMachine['run']>;

/** One entry of an execution's event log, as aws-local-stepfunctions records it (with `timestamp`). */
export type ExecutionEvent = Execution['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** Where an execution stands; `aborted` only after {@link LocalWorkflow.stop}. */
export type ExecutionStatus = 'running' | 'succeeded' | 'failed' | 'aborted';

/** An execution's input: the incident, and for one that resumes a failover, where and why (StartOrResume?). */
export type ExecutionInput = { readonly incident: IncidentInput } & (
  | { readonly resume?: undefined }
  | WorkflowResume
);

/** A snapshot of one execution: its input, outcome and event log so far. */
export interface LocalExecution {
  readonly name: string;
  readonly executionArn: string;
  readonly input: ExecutionInput;
  readonly startedAt: number;
  readonly status: ExecutionStatus;
  readonly stoppedAt: number | null;
  readonly output?: unknown;
  /** The failure an execution ended with: the error name Retry/Catch would see, and its cause. */
  readonly error?: { readonly error: string; readonly cause: string };
  /** The runner's event log in time order (millisecond timestamps; ties keep the order they arrived in). */
  readonly events: readonly ExecutionEvent[];
  /** What it used of Step Functions' limits: its largest state payload and its history events. */
  readonly usage: WorkflowUsage;
}

/** Options of a {@link LocalWorkflow}. */
export interface LocalWorkflowOptions {
  /** The definition, adapted for the local runner (local/definition.ts synthesizedDefinition). */
  readonly definition: AslDefinition;
  /** The failover-steps handler; optional here so it can be built from a context holding this workflow. */
  readonly steps?: StepsHandler;
  /**
   * Wait state durations in milliseconds, by state name. WaitBeforeConfirm defaults to the incident's
   * confirmSilenceSeconds × 1000, which is what Step Functions waits.
   */
  readonly waitOverridesMs?: Readonly<Record<string, number>>;
  /**
   * How long one second of a Retry interval lasts, in milliseconds. 1000 (the default) leaves retries
   * exactly as in AWS (IntervalSeconds, BackoffRate, MaxDelaySeconds, jitter). Any other value makes each
   * retry wait IntervalSeconds × this, flat: the runner's override has no backoff or jitter.
   */
  readonly retryIntervalMs?: number;
  /** ARN the execution ARNs are derived from, as in AWS (`…:execution:<machine>:<name>`). */
  readonly stateMachineArn?: string;
  /** Told about completions for tasks that already ended (AWS answers those with TaskDoesNotExist). */
  readonly logger?: WorkflowLogger;
  /** The unguessable part of each task token; random bytes by default (the simulator seeds its own). */
  readonly tokenNonce?: () => string;
}

/** State machine ARN of local executions when none is given. */
export const LOCAL_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:HaloFailover';

/** What `$$.Task.Token` resolves to in the runner; each callback Task replaces it with a token of its own. */
const CONTEXT_TOKEN = 'halo-local-context-token';
const CALLBACK_RESOURCE = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const LAMBDA_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$/;
/** The runner's timeout of a Task without TimeoutSeconds(Path). */
const RUNNER_DEFAULT_TIMEOUT_SECONDS = 60;
// Step Functions' limits on SendTaskFailure, as the SFN adapter applies them.
const MAX_ERROR = 256;
const MAX_CAUSE = 32_768;

/** Definitions the runner validated in this process; it runs copies, so they stay as validated. */
const VALIDATED = new WeakSet<AslDefinition>();

interface PendingTask {
  readonly execution: string;
  readonly resolve: (output: Json) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface ExecutionRecord {
  readonly name: string;
  readonly executionArn: string;
  readonly input: ExecutionInput;
  readonly startedAt: number;
  status: ExecutionStatus;
  stoppedAt: number | null;
  output?: unknown;
  error?: { error: string; cause: string };
  readonly events: ExecutionEvent[];
  usage: WorkflowUsage;
  /** The limit it broke, once it broke one: it fails with this, as AWS would fail it. */
  limitBroken?: { error: string; cause: string };
  /** Settles (never rejects) once the result and the whole event log are in. */
  done: Promise<void>;
  abort: () => void;
}

type TaskKind = 'request-response' | 'callback';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value as it crosses the Lambda boundary: JSON, `undefined` as null. */
function toJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null));
}

/** An error the runner matches by name, as Lambda reports a function error by its type. */
function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : namedError('Error', String(thrown));
}

/** Every state of the definition, Map item processors and Parallel branches included, with its name. */
function* allStates(states: AslDefinition['States']): Generator<[string, AslState]> {
  for (const [name, state] of Object.entries(states)) {
    yield [name, state];
    const processor = state.ItemProcessor;
    if (isObject(processor) && isObject(processor.States)) {
      yield* allStates(processor.States as AslDefinition['States']);
    }
    const branches = state.Branches;
    if (!Array.isArray(branches)) continue;
    for (const branch of branches) {
      if (isObject(branch) && isObject(branch.States))
        yield* allStates(branch.States as AslDefinition['States']);
    }
  }
}

/** Every Task of the definition with how it is invoked; local handlers are keyed by state name. */
function taskKinds(definition: AslDefinition): Map<string, { kind: TaskKind; state: AslState }> {
  const tasks = new Map<string, { kind: TaskKind; state: AslState }>();
  for (const [name, state] of allStates(definition.States)) {
    if (state.Type !== 'Task') continue;
    // Two Tasks of one name could not be told apart by the runner's handler map.
    if (tasks.has(name)) throw new Error(`the definition has two Task states named ${name}`);
    tasks.set(name, { kind: kindOf(name, state), state });
  }
  return tasks;
}

function kindOf(name: string, state: AslState): TaskKind {
  const resource = state.Resource;
  if (typeof resource === 'string' && LAMBDA_ARN.test(resource)) return 'request-response';
  const parameters = state.Parameters;
  if (resource === CALLBACK_RESOURCE && isObject(parameters) && isObject(parameters.Payload)) {
    return 'callback';
  }
  throw new Error(`${name}: the local runner serves only Lambda Tasks, not ${JSON.stringify(resource)}`);
}

/** The IntervalSeconds of each retrier, by the name of the state that has them. */
function retryIntervals(definition: AslDefinition): Map<string, number[]> {
  const intervals = new Map<string, number[]>();
  for (const [name, state] of allStates(definition.States)) {
    const retry = state.Retry;
    if (!Array.isArray(retry)) continue;
    // ASL's default IntervalSeconds is 1.
    intervals.set(
      name,
      retry.map((r) => (isObject(r) && typeof r.IntervalSeconds === 'number' ? r.IntervalSeconds : 1)),
    );
  }
  return intervals;
}

/** The WorkflowPort of local mode: executions of the synthesized definition on aws-local-stepfunctions. */
export class LocalWorkflow implements WorkflowPort {
  private readonly machine: StateMachine;
  private readonly tasks: Map<string, { kind: TaskKind; state: AslState }>;
  private readonly retryOverrides: Record<string, number[]> | undefined;
  private readonly waitOverridesMs: Readonly<Record<string, number>>;
  private readonly stateMachineArn: string;
  private readonly logger: WorkflowLogger | undefined;
  private steps: StepsHandler | undefined;
  private readonly executionsByName = new Map<string, ExecutionRecord>();
  private readonly pending = new Map<string, PendingTask>();
  private tokenSeq = 0;
  private readonly tokenNonce: () => string;

  constructor(options: LocalWorkflowOptions) {
    // The runner validates the definition (asl-validator) here rather than at the first incident; that costs
    // a few hundred ms, so a definition object already validated in this process is not checked again.
    // asl-validator writes QueryLanguage into the states it checks: the runner gets a copy, never the
    // caller's definition (which local/definition.ts shares across the process).
    // Unvalidated, the runner never writes into the definition: it runs the caller's own (frozen, when it
    // comes from local/definition.ts, so a write would throw), with no copy per workflow.
    const validated = VALIDATED.has(options.definition);
    this.machine = validated
      ? new StateMachine(options.definition as unknown as StateMachineDefinition, {
          validationOptions: { noValidate: true },
        })
      : new StateMachine(structuredClone(options.definition) as unknown as StateMachineDefinition, {});
    VALIDATED.add(options.definition);
    this.tasks = taskKinds(options.definition);
    this.steps = options.steps;
    this.waitOverridesMs = { ...options.waitOverridesMs };
    this.stateMachineArn = options.stateMachineArn ?? LOCAL_STATE_MACHINE_ARN;
    executionArnFor(this.stateMachineArn, 'probe');
    this.logger = options.logger;
    this.tokenNonce = options.tokenNonce ?? (() => randomBytes(6).toString('hex'));
    const scale = options.retryIntervalMs ?? 1000;
    if (!(Number.isFinite(scale) && scale >= 0)) throw new Error('retryIntervalMs must be a number ≥ 0');
    this.retryOverrides =
      scale === 1000
        ? undefined
        : Object.fromEntries(
            [...retryIntervals(options.definition)].map(([name, seconds]) => [
              name,
              seconds.map((s) => s * scale),
            ]),
          );
  }

  /** Serves every Task with `steps` (the failover-steps handler); needed before the first start. */
  useSteps(steps: StepsHandler): void {
    this.steps = steps;
  }

  async startIncident(input: IncidentInput): Promise<{ executionArn: string }> {
    return this.start(executionName(input.incidentId), { incident: input });
  }

  async resumeIncident(input: IncidentInput, resume: WorkflowResume): Promise<{ executionArn: string }> {
    return this.start(resumeExecutionName(input.incidentId, resume.resume), { incident: input, ...resume });
  }

  private start(name: string, executionInput: ExecutionInput): { executionArn: string } {
    const input = executionInput.incident;
    // Like StartExecution with a name already used (running or closed): the incident has its execution.
    const existing = this.executionsByName.get(name);
    if (existing !== undefined) return { executionArn: existing.executionArn };
    const steps = this.steps;
    if (steps === undefined) throw new Error('LocalWorkflow: no failover-steps handler (useSteps)');
    const executionArn = executionArnFor(this.stateMachineArn, name);
    const runInput = toJson(executionInput);
    const record: ExecutionRecord = {
      name,
      executionArn,
      input: structuredClone(executionInput),
      startedAt: Date.now(),
      status: 'running',
      stoppedAt: null,
      events: [],
      usage: NO_USAGE,
      done: Promise.resolve(),
      abort: () => {},
    };
    const execution = this.machine.run(runInput, {
      overrides: {
        taskResourceLocalHandlers: this.handlersFor(record, steps),
        waitTimeOverrides: {
          [STATE.WaitBeforeConfirm]: input.timing.confirmSilenceSeconds * 1000,
          ...this.waitOverridesMs,
        },
        ...(this.retryOverrides === undefined ? {} : { retryIntervalOverrides: this.retryOverrides }),
      },
      context: {
        Execution: { Id: executionArn, Name: name },
        StateMachine: {
          Id: this.stateMachineArn,
          Name: this.stateMachineArn.split(':')[6] ?? 'HaloFailover',
        },
        Task: { Token: CONTEXT_TOKEN },
      },
    });
    record.abort = execution.abort;
    const log = (async () => {
      for await (const event of execution.eventLogs) {
        record.events.push(event);
        record.usage = addUsage(record.usage, event as RunnerEvent);
        if (record.limitBroken === undefined) this.checkLimits(record);
      }
    })();
    // The status changes only once the result and the whole event log are in, so that whoever sees an
    // execution settled (whenIdle) also sees its last events.
    let outcome: Pick<ExecutionRecord, 'status' | 'output' | 'error'> = { status: 'running' };
    const result = execution.result.then(
      (output) => {
        outcome = { status: 'succeeded', output };
      },
      (error: unknown) => {
        // ExecutionError wraps the state's error in `cause`: that is what a Fail state or a task threw.
        const failure = error instanceof Error && error.cause instanceof Error ? error.cause : asError(error);
        outcome = { status: 'failed', error: { error: failure.name, cause: failure.message } };
      },
    );
    const finish = () => {
      // stop() may have marked it aborted meanwhile: that stands. A broken limit is what ended it.
      if (record.status === 'running') {
        Object.assign(
          record,
          record.limitBroken === undefined ? outcome : { status: 'failed', error: record.limitBroken },
        );
      }
      this.settled(record);
    };
    record.done = Promise.all([log, result]).then(finish, finish);
    this.executionsByName.set(name, record);
    return { executionArn };
  }

  async sendTaskSuccess(taskToken: string, output: unknown): Promise<void> {
    const task = this.take(taskToken, 'success');
    // SendTaskSuccess carries JSON: what the Task resumes with is the parsed copy, never the caller's object.
    task?.resolve(toJson(output));
  }

  async sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void> {
    const task = this.take(taskToken, 'failure');
    task?.reject(namedError(error.slice(0, MAX_ERROR), cause.slice(0, MAX_CAUSE)));
  }

  /** Snapshots of every execution, oldest first, each with its event log in time order. */
  executions(): LocalExecution[] {
    return [...this.executionsByName.values()].map((r) => ({
      name: r.name,
      executionArn: r.executionArn,
      input: structuredClone(r.input),
      startedAt: r.startedAt,
      status: r.status,
      stoppedAt: r.stoppedAt,
      ...(r.output === undefined ? {} : { output: structuredClone(r.output) }),
      ...(r.error === undefined ? {} : { error: { ...r.error } }),
      // Map iterations forward their events through nested loggers, so they arrive after root events of
      // the same moment: sorted by time (stably), the log reads as a timeline.
      events: [...r.events].sort((a, b) => a.timestamp - b.timestamp),
      usage: r.usage,
    }));
  }

  /**
   * Fails an execution that broke one of Step Functions' limits, as AWS would: a state whose input or output
   * is above 256 KiB fails with States.DataLimitExceeded (no Catch here catches it), and an execution past
   * 25,000 history events fails. The runner cannot fail a state from outside, so the execution is aborted
   * and reported failed with that error.
   */
  private checkLimits(record: ExecutionRecord): void {
    const broken = limitsBroken(record.usage);
    if (broken.length === 0) return;
    const payload = record.usage.largestPayloadBytes > 0 && broken[0]?.startsWith('state payload') === true;
    record.limitBroken = {
      error: payload ? 'States.DataLimitExceeded' : 'HistoryLimitExceeded',
      cause: broken.join('; '),
    };
    this.logger?.warn('execution broke a Step Functions limit; failed as AWS would fail it', {
      execution: record.name,
      cause: record.limitBroken.cause,
    });
    record.abort();
  }

  /** Resolves once no execution is running, including executions started while waiting. */
  async whenIdle(): Promise<void> {
    for (;;) {
      const running = [...this.executionsByName.values()].filter((r) => r.status === 'running');
      if (running.length === 0) return;
      await Promise.all(running.map((r) => r.done));
    }
  }

  /** Aborts every running execution (as StopExecution would) and waits for them to settle. */
  async stop(): Promise<void> {
    const now = Date.now();
    for (const record of this.executionsByName.values()) {
      if (record.status !== 'running') continue;
      record.status = 'aborted';
      record.stoppedAt = now;
      record.abort();
    }
    // A Task waiting for its token keeps the runner's timeout timer alive: end it so the run unwinds.
    for (const [token, task] of this.pending) {
      if (this.executionsByName.get(task.execution)?.status !== 'aborted') continue;
      this.pending.delete(token);
      clearTimeout(task.timer);
      task.reject(namedError('States.Aborted', 'the execution was stopped'));
    }
    await this.whenSettled();
  }

  private async whenSettled(): Promise<void> {
    await Promise.all([...this.executionsByName.values()].map((r) => r.done));
  }

  private settled(record: ExecutionRecord): void {
    record.stoppedAt ??= Date.now();
    // Tokens of an ended execution are dead, as in AWS: a late result for them is a no-op.
    for (const [token, task] of this.pending) {
      if (task.execution !== record.name) continue;
      this.pending.delete(token);
      clearTimeout(task.timer);
    }
  }

  private take(taskToken: string, kind: 'success' | 'failure'): PendingTask | undefined {
    const task = this.pending.get(taskToken);
    if (task === undefined) {
      // AWS answers TaskDoesNotExist/TaskTimedOut; the SFN adapter drops those the same way.
      this.logger?.warn('callback task already ended; completion dropped', { kind });
      return undefined;
    }
    this.pending.delete(taskToken);
    clearTimeout(task.timer);
    return task;
  }

  private handlersFor(record: ExecutionRecord, steps: StepsHandler): LocalHandlers {
    const invoke = async (payload: unknown): Promise<unknown> => {
      try {
        // The Lambda receives a JSON copy of the request, never the runner's own object.
        return await steps(structuredClone(payload));
      } catch (error) {
        throw asError(error);
      }
    };
    const handlers: LocalHandlers = {};
    for (const [name, { kind, state }] of this.tasks) {
      handlers[name] =
        kind === 'request-response'
          ? async (input) => toJson(await invoke(input))
          : (input) => this.callback(record, name, state, input, invoke);
    }
    return handlers;
  }

  /**
   * A `.waitForTaskToken` Task: mint a token, invoke the handler with it in place of `$$.Task.Token`, and
   * wait for the token to be completed. The token dies with the Task's timeout, so a result that arrives
   * after it is dropped, as AWS drops it.
   */
  private async callback(
    record: ExecutionRecord,
    stateName: string,
    state: AslState,
    input: Json,
    invoke: (payload: unknown) => Promise<unknown>,
  ): Promise<Json> {
    if (!isObject(input) || !isObject(input.Payload)) {
      throw new Error(`${stateName}: a callback Task's Parameters must be {FunctionName, Payload}`);
    }
    if (input.Payload.taskToken !== CONTEXT_TOKEN) {
      throw new Error(`${stateName}: the Payload does not carry $$.Task.Token as taskToken`);
    }
    this.tokenSeq += 1;
    const token = `halo-local.${record.name}.${stateName}.${this.tokenSeq}.${this.tokenNonce()}`;
    const timeout =
      typeof state.TimeoutSeconds === 'number'
        ? state.TimeoutSeconds
        : typeof input[LOCAL_TIMEOUT_KEY] === 'number'
          ? input[LOCAL_TIMEOUT_KEY]
          : RUNNER_DEFAULT_TIMEOUT_SECONDS;
    let resolve: (output: Json) => void = () => {};
    let reject: (error: Error) => void = () => {};
    const promise = new Promise<Json>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A failure may be sent while the handler still runs, before the runner awaits this promise: marking
    // it handled keeps Node from treating that moment as an unhandled rejection. The runner still sees it.
    promise.catch(() => {});
    // Registered before the handler runs: a relay may answer before the Lambda invocation returns.
    this.pending.set(token, {
      execution: record.name,
      resolve,
      reject,
      timer: setTimeout(() => this.pending.delete(token), timeout * 1000),
    });
    try {
      await invoke({ ...input.Payload, taskToken: token });
    } catch (error) {
      // The invocation failed, so the Task fails with the function's error and the token is dead.
      const task = this.pending.get(token);
      if (task !== undefined) {
        this.pending.delete(token);
        clearTimeout(task.timer);
      }
      throw error;
    }
    return promise;
  }
}

/**
 * A LocalWorkflow and the AppContext around it, with the workflow's Tasks served by
 * makeFailoverStepsHandler over that same context: what the Lambda does in AWS, in this process.
 */
export function createLocalWorkflow(
  options: Omit<LocalWorkflowOptions, 'steps'>,
  context: (workflow: LocalWorkflow) => AppContext,
): { workflow: LocalWorkflow; ctx: AppContext } {
  const workflow = new LocalWorkflow(options);
  const ctx = context(workflow);
  if (ctx.ports.workflow !== workflow) throw new Error('the context must use the LocalWorkflow it was given');
  workflow.useSteps(makeFailoverStepsHandler(ctx));
  return { workflow, ctx };
}
