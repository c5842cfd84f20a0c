import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  type IChainable,
  IntegrationPattern,
  JitterType,
  JsonPath,
  LogLevel,
  Map as MapState,
  Parallel,
  Pass,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Timeout,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  STATE,
  type StepName,
  type StepRequest,
  type VmAttempt,
  WORKFLOW_ERROR,
  type WorkflowResume,
} from '../../contracts/workflow';
import { acknowledge, acknowledgeFunctionVersions } from '../nag';

/**
 * The failover workflow (docs: ARCHITECTURE.md "The failover workflow"): Standard, JSONPath, one
 * Lambda for every Task. The local runner executes the definition this file synthesizes (via
 * infra/definition.ts), so everything a step needs must be in the Task's Parameters.
 */

/** Longest an execution may run: an operator may take days to confirm a power-off. */
export const WORKFLOW_TIMEOUT = Duration.days(8);

/** Transient Lambda service errors; each Task retries them (the step is idempotent). */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
] as const;

type RequestOf<S extends StepName> = Extract<StepRequest, { step: S }>;
/** A step's payload without `step`: exactly the request's keys (optional ones stay optional). */
type StepFields<S extends StepName> = { readonly [K in keyof Omit<RequestOf<S>, 'step'>]: unknown };

/** The Parameters of a step's Task: `step` plus its fields, so the payload matches StepRequestSchema. */
function stepPayload<S extends StepName>(step: S, fields: StepFields<S>): TaskInput {
  return TaskInput.fromObject({ step, ...fields });
}

function addStandardRetries(task: LambdaInvoke): void {
  task.addRetry({
    errors: [...LAMBDA_SERVICE_ERRORS],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 3,
  });
  // Lost optimistic-lock races (ten VMs of a wave reserving on the same host at once): jitter spreads
  // the retries so that they do not collide again.
  task.addRetry({
    errors: [WORKFLOW_ERROR.ConcurrentUpdate],
    interval: Duration.seconds(1),
    backoffRate: 2,
    maxAttempts: 3,
    jitterStrategy: JitterType.FULL,
  });
}

/** A request-response step: Resource is the function ARN and Parameters the payload itself. */
function stepTask<S extends StepName>(
  scope: Construct,
  name: string,
  fn: IFunction,
  step: S,
  fields: StepFields<S>,
  resultPath: string,
  shape: { readonly resultSelector?: Record<string, unknown>; readonly outputPath?: string } = {},
): LambdaInvoke {
  const task = LambdaInvoke.jsonPath(scope, name, {
    lambdaFunction: fn,
    payload: stepPayload(step, fields),
    // The bare function ARN keeps Parameters equal to the payload, which the local runner hands to the
    // local handler unchanged; the result is the handler's return value, no SDK envelope to unwrap.
    payloadResponseOnly: true,
    retryOnServiceExceptions: false,
    resultPath,
    ...shape,
  });
  addStandardRetries(task);
  return task;
}

/** A callback step: the Lambda dispatches a command carrying the task token; a relay's result resolves it. */
function callbackTask<S extends 'dispatch-fence' | 'await-operator' | 'dispatch-start'>(
  scope: Construct,
  name: string,
  fn: IFunction,
  step: S,
  fields: StepFields<S>,
  timeoutPath: string,
  resultPath: string,
): LambdaInvoke {
  const task = LambdaInvoke.jsonPath(scope, name, {
    lambdaFunction: fn,
    integrationPattern: IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: stepPayload(step, fields),
    taskTimeout: Timeout.at(timeoutPath),
    retryOnServiceExceptions: false,
    resultPath,
  });
  addStandardRetries(task);
  return task;
}

const incident = JsonPath.objectAt('$.incident');
const attempt = JsonPath.objectAt('$.attempt');
const caughtError = JsonPath.objectAt('$.error');
/**
 * What a VM's iteration of StartWave ends with: where the VM went (`{vmId, hostId, startedAt}`, VmStarted's
 * answer) or that it stays down (`{vmId, outcome}`), and nothing else. The iterations' outputs make up the
 * Map's result, which Step Functions holds to 256 KiB like any state's: the iteration's whole state (a few
 * hundred bytes a VM) would break it for a host of a few hundred HA VMs; this is about 70 bytes a VM. The
 * full story of each VM is on the timeline.
 */
const ITERATION_OUTPUT = '$.outcome';
const stoppedIteration = (outcome: 'unplaced' | 'unconfirmed') => ({
  resultSelector: { vmId: JsonPath.stringAt('$.vmId'), outcome },
  outputPath: ITERATION_OUTPUT,
});

/**
 * VM starts one wave runs at once: an inline Map runs at most 40 iterations at a time, whatever its
 * MaxConcurrency says (Step Functions quotas), so a host of 500 HA VMs starts them 40 by 40.
 */
export const START_CONCURRENCY = 40;

/**
 * Builds the failover definition in `scope` (state constructs are named after STATE) with `stepsFunction`
 * serving every Task. It starts at StartOrResume?, which sends a new incident to Suspicion (Suspect beside
 * WaitBeforeConfirm) and an execution that resumes one to where it goes on.
 */
export function buildFailoverDefinition(scope: Construct, stepsFunction: IFunction): IChainable {
  const fn = stepsFunction;

  // ---------------------------------------------------------------- suspicion and confirmation
  const suspect = stepTask(scope, STATE.Suspect, fn, 'suspect', { incident }, '$.suspect');
  const waitBeforeConfirm = new Wait(scope, STATE.WaitBeforeConfirm, {
    time: WaitTime.secondsPath('$.incident.timing.confirmSilenceSeconds'),
  });
  // The confirmation wait runs from the execution's start, beside Suspect: the evidence is recorded (and a
  // cold steps Lambda warms up) while the host gets its chance to come back, not before that chance.
  const suspicion = new Parallel(scope, STATE.Suspicion, {
    comment: 'Suspect records why the host is suspected while WaitBeforeConfirm gives it time to come back.',
    // The branches' outputs are the whole state twice over: keep only what Suspect found, as before.
    resultSelector: { detail: JsonPath.stringAt('$[0].suspect.detail') },
    resultPath: '$.suspect',
  })
    .branch(suspect)
    .branch(waitBeforeConfirm);
  const confirmSilence = stepTask(
    scope,
    STATE.ConfirmSilence,
    fn,
    'confirm-silence',
    { incident },
    '$.silence',
  );
  // Exits keep the evidence: their result goes under `closed`, the rest of the state stays in the output.
  const falseAlarm = stepTask(
    scope,
    STATE.FalseAlarm,
    fn,
    'false-alarm',
    { incident, silence: JsonPath.objectAt('$.silence') },
    '$.closed',
  );
  const checkFencingPolicy = stepTask(
    scope,
    STATE.CheckFencingPolicy,
    fn,
    'check-fencing-policy',
    { incident },
    '$.fencing',
  );
  const fencingSuppressed = stepTask(
    scope,
    STATE.FencingSuppressed,
    fn,
    'fencing-suppressed',
    { incident, policy: JsonPath.objectAt('$.fencing') },
    '$.closed',
  );

  // ---------------------------------------------------------------- a new boot instead of a fence
  // The host is heard in a new boot before its failed boot was confirmed off: that boot has ended with its
  // VMs, so they restart without fencing (and the new boot is never powered off).
  const hostRebooted = stepTask(scope, STATE.HostRebooted, fn, 'host-rebooted', { incident }, '$.rebooted');
  const rebooted = { errors: [WORKFLOW_ERROR.HostRebooted], resultPath: '$.rebootedBy' };

  // ---------------------------------------------------------------- fencing
  const fence = callbackTask(
    scope,
    STATE.Fence,
    fn,
    'dispatch-fence',
    { incident, taskToken: JsonPath.taskToken },
    '$.incident.timing.fenceAttemptTimeoutSeconds',
    '$.fence',
  );
  // Each retry dispatches again and the step picks another live relay; past the policy's fence
  // deadline the step throws FenceDeadlinePassedError, which the catch below sends to the operator.
  fence.addRetry({
    errors: [WORKFLOW_ERROR.FenceNotConfirmed, 'States.Timeout'],
    interval: Duration.seconds(1),
    backoffRate: 1,
    maxAttempts: 4,
  });
  const verifyPowerOff = stepTask(
    scope,
    STATE.VerifyPowerOff,
    fn,
    'verify-power-off',
    { incident, fence: JsonPath.objectAt('$.fence') },
    '$.confirmation',
  );
  const fenceFailed = stepTask(
    scope,
    STATE.FenceFailed,
    fn,
    'fence-failed',
    { incident, error: JsonPath.objectAt('$.fenceError') },
    JsonPath.DISCARD,
  );
  // Before the catch-all: a relay that hears the host in a new boot refuses the fence, and the retried
  // dispatch finds the new boot.
  fence.addCatch(hostRebooted, rebooted);
  fence.addCatch(fenceFailed, { errors: ['States.ALL'], resultPath: '$.fenceError' });
  // An acknowledged power-off is not a confirmation (safety rule 1): only a read-back of `off` is.
  verifyPowerOff.addCatch(fenceFailed, {
    errors: [WORKFLOW_ERROR.FenceNotConfirmed],
    resultPath: '$.fenceError',
  });

  // ---------------------------------------------------------------- the operator
  const awaitOperator = callbackTask(
    scope,
    STATE.AwaitOperator,
    fn,
    'await-operator',
    { incident, taskToken: JsonPath.taskToken },
    '$.incident.timing.operatorTimeoutSeconds',
    '$.operator',
  );
  const operatorNeverAnswered = new Fail(scope, STATE.OperatorNeverAnswered, {
    error: WORKFLOW_ERROR.OperatorNeverAnswered,
    cause:
      'No operator decision before operatorTimeoutSeconds; the host was never confirmed off and nothing was restarted yet. The incident stays open: a later confirm-power-off resumes the failover in an execution of its own.',
  });
  // The wait ends at the policy's operator timeout, unless an answer raced it (then it leads on).
  const operatorTimedOut = stepTask(
    scope,
    STATE.OperatorTimedOut,
    fn,
    'operator-timed-out',
    { incident },
    '$.operator',
  );
  awaitOperator.addCatch(operatorTimedOut, { errors: ['States.Timeout'], resultPath: '$.operatorTimeout' });
  const hostCameBack = stepTask(
    scope,
    STATE.HostCameBack,
    fn,
    'close',
    { incident, outcome: 'false-alarm' },
    '$.closed',
  );
  const operatorConfirmedOff = new Pass(scope, STATE.OperatorConfirmedOff, {
    parameters: { by: 'operator', detail: JsonPath.stringAt('$.operator.by') },
    resultPath: '$.confirmation',
  });
  // Only the explicit 'confirmed-off' leads on to restarts; anything unexpected fails the execution
  // (ExecutionsFailed alarm) rather than being read as a confirmation.
  const unknownOperatorDecision = new Fail(scope, STATE.UnknownOperatorDecision, {
    error: WORKFLOW_ERROR.UnknownOperatorDecision,
    cause: 'The operator decision was neither confirmed-off nor host-came-back; nothing was restarted.',
  });
  const operatorOutcome = new Choice(scope, STATE.OperatorOutcome)
    .when(Condition.stringEquals('$.operator.decision', 'host-came-back'), hostCameBack)
    .when(Condition.stringEquals('$.operator.decision', 'confirmed-off'), operatorConfirmedOff)
    .when(Condition.stringEquals('$.operator.decision', 'no-answer'), operatorNeverAnswered)
    .otherwise(unknownOperatorDecision);
  operatorTimedOut.next(operatorOutcome);

  // ---------------------------------------------------------------- restarts
  const markFenced = stepTask(
    scope,
    STATE.MarkFenced,
    fn,
    'mark-fenced',
    { incident, confirmation: JsonPath.objectAt('$.confirmation') },
    JsonPath.DISCARD,
  );
  const planPlacement = stepTask(scope, STATE.PlanPlacement, fn, 'plan-placement', { incident }, '$.plan');

  const startVm = callbackTask(
    scope,
    STATE.StartVm,
    fn,
    'dispatch-start',
    { attempt, taskToken: JsonPath.taskToken },
    '$.startTimeoutSeconds',
    '$.started',
  );
  const vmStarted = stepTask(
    scope,
    STATE.VmStarted,
    fn,
    'vm-started',
    { attempt, result: JsonPath.objectAt('$.started') },
    ITERATION_OUTPUT,
    { outputPath: ITERATION_OUTPUT },
  );
  const releaseCapacity = stepTask(
    scope,
    STATE.ReleaseCapacity,
    fn,
    'release-capacity',
    { attempt, error: caughtError },
    JsonPath.DISCARD,
  );
  const pickNextHost = stepTask(scope, STATE.PickNextHost, fn, 'pick-next-host', { attempt }, '$.attempt');
  const vmUnplaced = stepTask(
    scope,
    STATE.VmUnplaced,
    fn,
    'vm-unplaced',
    { attempt, error: caughtError },
    ITERATION_OUTPUT,
    stoppedIteration('unplaced'),
  );
  const startUnconfirmed = stepTask(
    scope,
    STATE.StartUnconfirmed,
    fn,
    'start-unconfirmed',
    { attempt, error: caughtError },
    ITERATION_OUTPUT,
    stoppedIteration('unconfirmed'),
  );
  const outOfHosts = [WORKFLOW_ERROR.NoCapacity, WORKFLOW_ERROR.StartAttemptsExhausted];
  // A start that timed out may still have happened: keep the reservation and report it, never retry
  // it elsewhere (that could run the VM twice).
  startVm.addCatch(startUnconfirmed, { errors: ['States.Timeout'], resultPath: '$.error' });
  // StartVm reserves before it orders the start: no host of the cluster can take the VM.
  // Also when the incident of the host a start went to took the VM over: that incident restarts it.
  startVm.addCatch(vmUnplaced, {
    errors: [...outOfHosts, WORKFLOW_ERROR.VmHandedOver],
    resultPath: '$.error',
  });
  startVm.addCatch(releaseCapacity, { errors: ['States.ALL'], resultPath: '$.error' });
  pickNextHost.addCatch(vmUnplaced, { errors: outOfHosts, resultPath: '$.error' });
  releaseCapacity.next(pickNextHost);
  pickNextHost.next(startVm);

  const firstAttempt = {
    incidentId: JsonPath.stringAt('$.incident.incidentId'),
    siteId: JsonPath.stringAt('$.incident.siteId'),
    hostId: JsonPath.stringAt('$.incident.hostId'),
    vm: JsonPath.objectAt('$$.Map.Item.Value'),
    targetHostId: JsonPath.stringAt('$$.Map.Item.Value.hostId'),
    attempt: 1,
    triedHosts: [],
    maxAttempts: JsonPath.numberAt('$.startAttempts'),
  } satisfies { readonly [K in keyof VmAttempt]: unknown };
  const startWave = MapState.jsonPath(scope, STATE.StartWave, {
    itemsPath: '$.wave.vms',
    maxConcurrency: START_CONCURRENCY,
    itemSelector: {
      startTimeoutSeconds: JsonPath.numberAt('$.incident.timing.startTimeoutSeconds'),
      attempt: firstAttempt,
    },
  });
  startWave.itemProcessor(startVm.next(vmStarted));

  // One wave at a time: high, then medium, then low (the plan orders the waves). `waves` says where each VM
  // went, wave by wave: the incident review's summary.
  const startPriorityWaves = MapState.jsonPath(scope, STATE.StartPriorityWaves, {
    itemsPath: '$.plan.waves',
    maxConcurrency: 1,
    itemSelector: {
      incident,
      wave: JsonPath.objectAt('$$.Map.Item.Value'),
      startAttempts: JsonPath.numberAt('$.plan.startAttempts'),
    },
    resultPath: '$.waves',
  });
  startPriorityWaves.itemProcessor(startWave);

  const close = stepTask(scope, STATE.Close, fn, 'close', { incident }, '$.closed');
  const incidentClosed = new Succeed(scope, STATE.IncidentClosed);

  // ---------------------------------------------------------------- wiring
  fenceFailed.next(awaitOperator);
  awaitOperator.next(operatorOutcome);
  operatorConfirmedOff.next(markFenced);
  fence.next(verifyPowerOff);
  verifyPowerOff.next(markFenced);
  markFenced.next(planPlacement).next(startPriorityWaves).next(close).next(incidentClosed);
  hostRebooted.next(planPlacement);
  // Every state that can find the host in a new boot routes to HostRebooted.
  for (const state of [
    confirmSilence,
    checkFencingPolicy,
    fenceFailed,
    awaitOperator,
    operatorTimedOut,
    markFenced,
  ]) {
    state.addCatch(hostRebooted, rebooted);
  }

  const start = suspicion
    .next(confirmSilence)
    .next(
      new Choice(scope, STATE.StillSilent)
        .when(Condition.booleanEquals('$.silence.stillSilent', false), falseAlarm)
        .otherwise(
          checkFencingPolicy.next(
            new Choice(scope, STATE.FenceOrSuppress)
              .when(Condition.stringEquals('$.fencing.action', 'suppress'), fencingSuppressed)
              .otherwise(fence),
          ),
        ),
    );
  // An execution that resumes a failover (its first one had stopped waiting for an operator) starts where
  // that one would have gone on: at the operator's decision, or at the host's new boot.
  const resuming = (resume: WorkflowResume['resume']) =>
    Condition.and(Condition.isPresent('$.resume'), Condition.stringEquals('$.resume', resume));
  return new Choice(scope, STATE.StartOrResume)
    .when(resuming('host-rebooted'), hostRebooted)
    .when(Condition.and(resuming('operator-confirmed'), Condition.isPresent('$.operator')), operatorOutcome)
    .otherwise(start);
}

/** Properties of the {@link FailoverWorkflow}. */
export interface FailoverWorkflowProps {
  /** The `failover-steps` function, invoked by every Task. */
  readonly stepsFunction: IFunction;
  readonly logRetention: RetentionDays;
}

/** The failover state machine with its log group. */
export class FailoverWorkflow extends Construct {
  /** The state machine. */
  readonly stateMachine: StateMachine;

  constructor(scope: Construct, id: string, props: FailoverWorkflowProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      comment: 'Halo failover: confirm, fence, then restart the HA VMs of a failed host in priority waves.',
      definitionBody: DefinitionBody.fromChainable(buildFailoverDefinition(this, props.stepsFunction)),
      timeout: WORKFLOW_TIMEOUT,
      tracingEnabled: true,
      logs: { destination: logGroup, level: LogLevel.ERROR, includeExecutionData: false },
    });

    acknowledge(
      this.stateMachine,
      'AwsSolutions-SF1',
      'Logs ERROR events only: the execution history (kept 90 days) already holds every state with its input and output, which is the incident review; logging ALL would copy it into CloudWatch for every state of multi-day executions.',
    );
    acknowledge(
      this.stateMachine.role,
      'AwsSolutions-IAM5[Resource::*]',
      'Added by CDK for logging and tracing: the CloudWatch Logs vended-delivery actions (logs:CreateLogDelivery, logs:PutResourcePolicy, ...) and X-Ray PutTraceSegments/GetSampling* support no resource-level permissions.',
    );
    acknowledgeFunctionVersions(
      this.stateMachine.role,
      props.stepsFunction,
      'Added by the LambdaInvoke tasks: lambda:InvokeFunction on failover-steps and its versions/aliases (`arn:*`); the machine can invoke nothing else.',
    );
  }
}
