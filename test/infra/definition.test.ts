import aslValidator from 'asl-validator';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type RunOptions, StateMachine } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type FenceResult,
  type IncidentInput,
  type OperatorDecision,
  type PlanOutput,
  STATE,
  type StartResult,
  type StepRequest,
  StepRequestSchema,
  type VmAttempt,
  VmAttemptSchema,
  WORKFLOW_ERROR,
  type WorkflowResume,
  type WorkflowTiming,
} from '../../contracts/workflow';
import { FailoverWorkflow, LAMBDA_SERVICE_ERRORS } from '../../infra/constructs/failover-workflow';
import {
  type AslDefinition,
  type AslState,
  adaptForLocalRunner,
  extractDefinition,
  LOCAL_TIMEOUT_KEY,
  PLACEHOLDER_FUNCTION_ARN,
} from '../../infra/definition';
import { asArray, asObject, type JsonObject } from './helpers';

// The workflow construct around an imported function: the same definition the stack synthesizes, with
// no bundling, so this file stays fast.
let definition: AslDefinition;

beforeAll(() => {
  const stack = new Stack(new App(), 'Definition');
  const steps = LambdaFunction.fromFunctionAttributes(stack, 'Steps', {
    functionArn: PLACEHOLDER_FUNCTION_ARN,
    sameEnvironment: true,
  });
  new FailoverWorkflow(stack, 'Failover', { stepsFunction: steps, logRetention: RetentionDays.ONE_MONTH });
  definition = extractDefinition(Template.fromStack(stack).toJSON());
});

// ---------------------------------------------------------------- helpers over the definition

/** Every (name, state) of the definition, Map item processors included, with the processor they sit in. */
function allStates(
  root: AslDefinition = definition,
): { name: string; state: AslState; scope: AslDefinition }[] {
  const out: { name: string; state: AslState; scope: AslDefinition }[] = [];
  const visit = (scope: AslDefinition) => {
    for (const [name, state] of Object.entries(scope.States)) {
      out.push({ name, state, scope });
      if (state.ItemProcessor !== undefined) visit(processorOf(state));
      for (const branch of Array.isArray(state.Branches) ? state.Branches : []) {
        const b = asObject(branch, 'Branch');
        visit({ StartAt: String(b.StartAt), States: asObject(b.States) as AslDefinition['States'] });
      }
    }
  };
  visit(root);
  return out;
}

function processorOf(state: AslState): AslDefinition {
  const processor = asObject(state.ItemProcessor, 'ItemProcessor');
  return {
    StartAt: String(processor.StartAt),
    States: asObject(processor.States) as AslDefinition['States'],
  };
}

function stateNamed(name: string): AslState {
  const found = allStates().find((s) => s.name === name);
  if (found === undefined) throw new Error(`no state ${name}`);
  return found.state;
}

/** Transitions out of a state: Next, Choice branches and Default, Catch targets. */
function successors(state: AslState): string[] {
  const next: string[] = [];
  if (typeof state.Next === 'string') next.push(state.Next);
  if (typeof state.Default === 'string') next.push(state.Default);
  for (const c of Array.isArray(state.Choices) ? state.Choices : []) next.push(String(asObject(c).Next));
  for (const c of Array.isArray(state.Catch) ? state.Catch : []) next.push(String(asObject(c).Next));
  return next;
}

/** States reachable from the scope's StartAt without passing through `avoid`. */
function reachable(scope: AslDefinition, avoid: string): Set<string> {
  return reachableAvoiding(scope, [avoid]);
}

/** States reachable from the scope's StartAt without passing through any of `avoid`. */
function reachableAvoiding(scope: AslDefinition, avoid: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const queue = [scope.StartAt];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (seen.has(name) || avoid.includes(name)) continue;
    seen.add(name);
    const state = scope.States[name];
    if (state !== undefined) queue.push(...successors(state));
  }
  return seen;
}

/** Minimal JSONPath for the dotted paths the definition uses (`$.a.b`, `$$.Map.Item.Value.hostId`). */
function readPath(path: string, input: unknown, context: unknown): unknown {
  if (!/^\$\$?(\.[A-Za-z0-9_]+)*$/.test(path)) throw new Error(`unsupported path ${path}`);
  const [root, ...segments] = path.split('.');
  let value: unknown = root === '$$' ? context : input;
  for (const segment of segments) {
    value = asObject(value, `${path} at ${segment}`)[segment];
    if (value === undefined) throw new Error(`${path} resolves to nothing`);
  }
  return value;
}

/** Applies a Parameters/ItemSelector template the way Step Functions does (`key.$` → path value). */
function applyTemplate(template: unknown, input: unknown, context: unknown): unknown {
  if (Array.isArray(template)) return template.map((t) => applyTemplate(t, input, context));
  if (typeof template !== 'object' || template === null) return template;
  return Object.fromEntries(
    Object.entries(template).map(([key, value]) =>
      key.endsWith('.$')
        ? [key.slice(0, -2), readPath(String(value), input, context)]
        : [key, applyTemplate(value, input, context)],
    ),
  );
}

/** The step request a Task sends: Parameters (request-response) or Parameters.Payload (callback). */
function payloadOf(state: AslState, input: unknown, context: unknown): unknown {
  const parameters = asObject(state.Parameters, 'Parameters');
  if (state.Resource === PLACEHOLDER_FUNCTION_ARN) return applyTemplate(parameters, input, context);
  expect(state.Resource).toBe('arn:aws:states:::lambda:invoke.waitForTaskToken');
  expect(parameters.FunctionName).toBe(PLACEHOLDER_FUNCTION_ARN);
  return applyTemplate(parameters.Payload, input, context);
}

// ---------------------------------------------------------------- fixtures

const incident: IncidentInput = {
  incidentId: 'inc-1',
  siteId: 'site-1',
  hostId: 'host-a',
  cluster: 'cluster-1',
  bootId: 'boot-1',
  openedAt: 1_700_000_000_000,
  timing: {
    confirmSilenceSeconds: 2,
    fenceAttemptTimeoutSeconds: 20,
    startTimeoutSeconds: 20,
    operatorTimeoutSeconds: 3600,
  },
  evidence: { relays: [{ relayId: 'relay-1', lastHeardMsAgo: 400 }], silentAfterMs: 6000 },
};

const plan: PlanOutput = {
  waves: [
    {
      priority: 'high',
      vms: [
        {
          vmId: 'vm-db',
          cpus: 4,
          memoryMiB: 8192,
          priority: 'high',
          hostId: 'host-b',
          reason: 'largest first',
        },
        { vmId: 'vm-web', cpus: 2, memoryMiB: 2048, priority: 'high', hostId: 'host-c', reason: 'most even' },
      ],
    },
    {
      priority: 'low',
      vms: [
        { vmId: 'vm-batch', cpus: 1, memoryMiB: 1024, priority: 'low', hostId: 'host-b', reason: 'fits' },
      ],
    },
  ],
  unplaced: [],
  // PlanPlacement always says how many attempts each VM gets (app/failover/start-budget.ts).
  startAttempts: 3,
};

const fenceResult: FenceResult = {
  commandId: 'cmd-1',
  relayId: 'relay-1',
  powerState: 'off',
  finishedAt: 1_700_000_030_000,
};

const startResult = (attempt: VmAttempt): StartResult => ({
  commandId: `cmd-${attempt.vm.vmId}`,
  vmId: attempt.vm.vmId,
  hostId: attempt.targetHostId,
  finishedAt: 1_700_000_060_000,
});

function namedError(name: string, message = name): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

// ---------------------------------------------------------------- static checks

describe('the synthesized definition', () => {
  it('is valid ASL (asl-validator)', () => {
    // asl-validator writes QueryLanguage into every state it checks: give it a copy.
    const result = aslValidator(structuredClone(definition));
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('is JSONPath throughout: no JSONata anywhere (the local runner silently ignores it)', () => {
    expect(definition.QueryLanguage).toBeUndefined();
    for (const { name, state } of allStates()) {
      expect(state.QueryLanguage, name).toBeUndefined();
      expect(state.Arguments, name).toBeUndefined();
      expect(JSON.stringify(state), name).not.toContain('{%');
    }
  });

  it('names its states after contracts/workflow.ts STATE, and may run 8 days', () => {
    expect(
      allStates()
        .map((s) => s.name)
        .sort(),
    ).toEqual(Object.values(STATE).sort());
    expect(definition.StartAt).toBe(STATE.StartOrResume);
    expect(definition.TimeoutSeconds).toBe(8 * 24 * 3600);
  });

  it('starts a new incident at Suspicion, and an execution that resumes one where it goes on', () => {
    const start = stateNamed(STATE.StartOrResume);
    expect(start.Type).toBe('Choice');
    expect(start.Choices).toEqual([
      {
        And: [
          { Variable: '$.resume', IsPresent: true },
          { Variable: '$.resume', StringEquals: 'host-rebooted' },
        ],
        Next: STATE.HostRebooted,
      },
      {
        And: [
          {
            And: [
              { Variable: '$.resume', IsPresent: true },
              { Variable: '$.resume', StringEquals: 'operator-confirmed' },
            ],
          },
          { Variable: '$.operator', IsPresent: true },
        ],
        Next: STATE.OperatorOutcome,
      },
    ]);
    expect(start.Default).toBe(STATE.Suspicion);
  });

  it('starts the confirmation wait with the execution, beside Suspect, and then confirms', () => {
    const suspicion = stateNamed(STATE.Suspicion);
    expect(suspicion.Type).toBe('Parallel');
    const branches = asArray(suspicion.Branches, 'Branches').map((b) => asObject(b, 'branch'));
    expect(branches.map((b) => b.StartAt)).toEqual([STATE.Suspect, STATE.WaitBeforeConfirm]);
    expect(branches.map((b) => Object.keys(asObject(b.States)))).toEqual([
      [STATE.Suspect],
      [STATE.WaitBeforeConfirm],
    ]);
    expect(suspicion.Next).toBe(STATE.ConfirmSilence);
    expect(suspicion.ResultPath).toBe('$.suspect');
  });

  it('sends every Task a payload StepRequestSchema accepts (placeholders substituted for paths)', () => {
    const context = { Task: { Token: 'token-1' } };
    const failure = { Error: 'SomeError', Cause: 'why' };
    const world = {
      incident,
      suspect: {},
      silence: {
        stillSilent: true,
        detail: 'silent',
        relays: [{ relayId: 'relay-1', live: true, lastHeardMsAgo: 100 }],
      },
      fencing: { action: 'fence', reason: 'ok', detail: 'ok', evidence: {} },
      fence: fenceResult,
      fenceError: failure,
      operator: { decision: 'confirmed-off', by: 'arn:aws:iam::123456789012:user/ops', at: 1 },
      confirmation: { by: 'ipmi-read-back', detail: 'off read back' },
      plan,
    };
    const seen = new Set<string>();
    const checkScope = (scope: AslDefinition, input: JsonObject) => {
      for (const [name, state] of Object.entries(scope.States)) {
        if (state.Type === 'Task') {
          const payload = payloadOf(state, input, context);
          const parsed = StepRequestSchema.safeParse(payload);
          expect(parsed.error?.message, `${name}: ${JSON.stringify(payload)}`).toBeUndefined();
          seen.add(name);
        }
        if (state.Type === 'Map') {
          const items = asArray(readPath(String(state.ItemsPath), input, context), `${name} items`);
          const mapContext = { ...context, Map: { Item: { Value: items[0] } } };
          const item = asObject(applyTemplate(state.ItemSelector, input, mapContext));
          // Inside the VM processor, later states also see what earlier ones wrote.
          const processorInput =
            'attempt' in item
              ? { ...item, started: startResult(VmAttemptSchema.parse(item.attempt)), error: failure }
              : item;
          checkScope(processorOf(state), processorInput);
        }
        for (const branch of Array.isArray(state.Branches) ? state.Branches : []) {
          const b = asObject(branch, `${name} branch`);
          checkScope(
            { StartAt: String(b.StartAt), States: asObject(b.States) as AslDefinition['States'] },
            input,
          );
        }
      }
    };
    checkScope(definition, world);
    const tasks = allStates()
      .filter((s) => s.state.Type === 'Task')
      .map((s) => s.name);
    expect([...seen].sort()).toEqual(tasks.sort());
  });

  it('builds the first attempt of each VM as a VmAttempt, with an empty triedHosts array', () => {
    const selector = asObject(stateNamed(STATE.StartWave).ItemSelector);
    expect(asObject(selector.attempt).triedHosts).toEqual([]);
    const vm = plan.waves[0]?.vms[0];
    const item = asObject(
      applyTemplate(
        selector,
        { incident, wave: plan.waves[0], startAttempts: plan.startAttempts },
        { Map: { Item: { Value: vm } } },
      ),
    );
    expect(VmAttemptSchema.parse(item.attempt)).toEqual({
      incidentId: incident.incidentId,
      siteId: incident.siteId,
      hostId: incident.hostId,
      vm,
      targetHostId: vm?.hostId,
      attempt: 1,
      triedHosts: [],
      maxAttempts: plan.startAttempts,
    });
    expect(item.startTimeoutSeconds).toBe(incident.timing.startTimeoutSeconds);
  });

  it('retries Lambda service errors and lost optimistic-lock races on every Task', () => {
    for (const { name, state } of allStates().filter((s) => s.state.Type === 'Task')) {
      const retry = asArray(state.Retry, `${name} Retry`).map((r) => asObject(r));
      expect(retry, name).toContainEqual({
        ErrorEquals: [...LAMBDA_SERVICE_ERRORS],
        IntervalSeconds: 2,
        MaxAttempts: 3,
        BackoffRate: 2,
      });
      expect(retry, name).toContainEqual(
        expect.objectContaining({ ErrorEquals: [WORKFLOW_ERROR.ConcurrentUpdate], MaxAttempts: 3 }),
      );
    }
  });

  it('uses the bare function ARN for request-response Tasks and the callback integration for the rest', () => {
    const callbacks = allStates()
      .filter((s) => s.state.Type === 'Task' && s.state.Resource !== PLACEHOLDER_FUNCTION_ARN)
      .map((s) => s.name)
      .sort();
    expect(callbacks).toEqual([STATE.AwaitOperator, STATE.Fence, STATE.StartVm].sort());
  });
});

describe('fencing and the operator', () => {
  it('Fence: callback with the policy timeout, retried through another relay, failures to FenceFailed', () => {
    const fence = stateNamed(STATE.Fence);
    expect(fence.TimeoutSecondsPath).toBe('$.incident.timing.fenceAttemptTimeoutSeconds');
    expect(fence.ResultPath).toBe('$.fence');
    expect(fence.Retry).toContainEqual({
      ErrorEquals: [WORKFLOW_ERROR.FenceNotConfirmed, 'States.Timeout'],
      IntervalSeconds: 1,
      MaxAttempts: 4,
      BackoffRate: 1,
    });
    // Order matters: the host heard in a new boot goes to HostRebooted before the catch-all.
    expect(fence.Catch).toEqual([
      { ErrorEquals: [WORKFLOW_ERROR.HostRebooted], ResultPath: '$.rebootedBy', Next: STATE.HostRebooted },
      { ErrorEquals: ['States.ALL'], ResultPath: '$.fenceError', Next: STATE.FenceFailed },
    ]);
    expect(fence.Next).toBe(STATE.VerifyPowerOff);
  });

  it('VerifyPowerOff: an unconfirmed power-off goes to FenceFailed, a confirmed one to MarkFenced', () => {
    const verify = stateNamed(STATE.VerifyPowerOff);
    expect(verify.Catch).toEqual([
      {
        ErrorEquals: [WORKFLOW_ERROR.FenceNotConfirmed],
        ResultPath: '$.fenceError',
        Next: STATE.FenceFailed,
      },
    ]);
    expect(verify.ResultPath).toBe('$.confirmation');
    expect(verify.Next).toBe(STATE.MarkFenced);
  });

  it('FenceFailed → AwaitOperator, whose timeout goes to OperatorTimedOut and on to the decision', () => {
    expect(stateNamed(STATE.FenceFailed)).toMatchObject({ Next: STATE.AwaitOperator, ResultPath: null });
    const awaitOperator = stateNamed(STATE.AwaitOperator);
    expect(awaitOperator).toMatchObject({
      TimeoutSecondsPath: '$.incident.timing.operatorTimeoutSeconds',
      ResultPath: '$.operator',
      Next: STATE.OperatorOutcome,
      Catch: [
        { ErrorEquals: ['States.Timeout'], ResultPath: '$.operatorTimeout', Next: STATE.OperatorTimedOut },
        { ErrorEquals: [WORKFLOW_ERROR.HostRebooted], ResultPath: '$.rebootedBy', Next: STATE.HostRebooted },
      ],
    });
    expect(stateNamed(STATE.OperatorTimedOut)).toMatchObject({
      ResultPath: '$.operator',
      Next: STATE.OperatorOutcome,
    });
    expect(asObject(stateNamed(STATE.OperatorTimedOut).Parameters)).toMatchObject({
      step: 'operator-timed-out',
    });
    expect(stateNamed(STATE.OperatorNeverAnswered)).toMatchObject({
      Type: 'Fail',
      Error: WORKFLOW_ERROR.OperatorNeverAnswered,
    });
  });

  it('every state that can find the host in a new boot goes to HostRebooted, and HostRebooted to PlanPlacement', () => {
    const into = Object.entries(definition.States)
      .filter(([, state]) => successors(state).includes(STATE.HostRebooted))
      .map(([name]) => name)
      .sort();
    expect(into).toEqual(
      [
        STATE.StartOrResume,
        STATE.ConfirmSilence,
        STATE.CheckFencingPolicy,
        STATE.Fence,
        STATE.FenceFailed,
        STATE.AwaitOperator,
        STATE.OperatorTimedOut,
        STATE.MarkFenced,
      ].sort(),
    );
    expect(stateNamed(STATE.HostRebooted)).toMatchObject({
      Next: STATE.PlanPlacement,
      ResultPath: '$.rebooted',
    });
    expect(asObject(stateNamed(STATE.HostRebooted).Parameters)).toMatchObject({ step: 'host-rebooted' });
  });

  it('only an explicit confirmed-off becomes a confirmation; anything unexpected fails', () => {
    const outcome = stateNamed(STATE.OperatorOutcome);
    expect(outcome.Choices).toEqual([
      { Variable: '$.operator.decision', StringEquals: 'host-came-back', Next: STATE.HostCameBack },
      { Variable: '$.operator.decision', StringEquals: 'confirmed-off', Next: STATE.OperatorConfirmedOff },
      { Variable: '$.operator.decision', StringEquals: 'no-answer', Next: STATE.OperatorNeverAnswered },
    ]);
    expect(outcome.Default).toBe(STATE.UnknownOperatorDecision);
    expect(stateNamed(STATE.UnknownOperatorDecision).Type).toBe('Fail');
    expect(stateNamed(STATE.OperatorConfirmedOff)).toMatchObject({
      Type: 'Pass',
      Parameters: { by: 'operator', 'detail.$': '$.operator.by' },
      ResultPath: '$.confirmation',
      Next: STATE.MarkFenced,
    });
    expect(asObject(stateNamed(STATE.HostCameBack).Parameters)).toMatchObject({
      step: 'close',
      outcome: 'false-alarm',
    });
    expect(stateNamed(STATE.HostCameBack).End).toBe(true);
  });
});

describe('safety rule 1 at the definition level', () => {
  it('no path reaches StartPriorityWaves without passing MarkFenced or HostRebooted', () => {
    expect(reachable(definition, '')).toContain(STATE.StartPriorityWaves);
    // HostRebooted is the other proof that the failed boot is off: it was heard in a new boot.
    expect(reachable(definition, STATE.MarkFenced)).toContain(STATE.StartPriorityWaves);
    expect(reachable(definition, STATE.HostRebooted)).toContain(STATE.StartPriorityWaves);
    expect(reachableAvoiding(definition, [STATE.MarkFenced, STATE.HostRebooted])).not.toContain(
      STATE.StartPriorityWaves,
    );
  });

  it('MarkFenced is entered only from a read-back power-off or an operator confirmation', () => {
    const into = Object.entries(definition.States)
      .filter(([, state]) => successors(state).includes(STATE.MarkFenced))
      .map(([name]) => name)
      .sort();
    expect(into).toEqual([STATE.OperatorConfirmedOff, STATE.VerifyPowerOff].sort());
  });

  it('inside a wave, StartVm (which reserves before it orders) is the only start; no capacity anywhere ends at VmUnplaced', () => {
    const vmProcessor = processorOf(stateNamed(STATE.StartWave));
    expect(vmProcessor.StartAt).toBe(STATE.StartVm);
    const startVm = asObject(vmProcessor.States[STATE.StartVm], 'StartVm');
    const catches = asArray(startVm.Catch, 'Catch').map((c) => asObject(c, 'catcher'));
    // Order matters: the first matching catcher wins, and a timed-out start keeps its reservation.
    expect(catches.map((c) => [c.ErrorEquals, c.Next])).toEqual([
      [['States.Timeout'], STATE.StartUnconfirmed],
      [
        [WORKFLOW_ERROR.NoCapacity, WORKFLOW_ERROR.StartAttemptsExhausted, WORKFLOW_ERROR.VmHandedOver],
        STATE.VmUnplaced,
      ],
      [['States.ALL'], STATE.ReleaseCapacity],
    ]);
    // The VM's iteration ends there: nothing after them starts it again.
    for (const end of [STATE.VmUnplaced, STATE.StartUnconfirmed]) {
      expect(asObject(vmProcessor.States[end], end).End).toBe(true);
    }
  });
});

// ---------------------------------------------------------------- executions (aws-local-stepfunctions)

type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type LocalResult = Awaited<ReturnType<LocalHandlers[string]>>;

/** A handler's result as the runner's JSON type (our contract types are interfaces, not JSON types). */
function json(value: unknown): LocalResult {
  return JSON.parse(JSON.stringify(value));
}

interface Scenario {
  stillSilent?: boolean;
  fencingAction?: 'fence' | 'suppress';
  /** Result of each Fence attempt, in order; `off` resolves the callback. */
  fenceAttempts?: ('off' | 'not-confirmed')[];
  operator?: OperatorDecision['decision'];
  /** VMs whose first start fails. */
  failFirstStart?: string[];
  /** VMs whose first reservation loses an optimistic-lock race. */
  raceOnReserve?: string[];
  /** VMs whose start is never reported (the relay went quiet). */
  hangStart?: string[];
  /** The operator never answers. */
  operatorSilent?: boolean;
  /** What OperatorTimedOut finds: no answer (the default), or one that raced the timeout. */
  timedOut?: OperatorDecision['decision'];
  /** The step that finds the host heard in a new boot (throws HostRebootedError). */
  rebootedAt?: 'confirm-silence' | 'check-fencing-policy' | 'fence' | 'await-operator';
  /** The execution resumes a failover (StartOrResume?). */
  resume?: WorkflowResume;
  timing?: Partial<WorkflowTiming>;
}

interface Run {
  /** Steps as the handler saw them, in order. */
  steps: StepRequest[];
  output?: unknown;
  /** The execution's failure (what a Fail state or an uncaught error ends it with). */
  failure?: { error: string; cause: string };
}

const never = () => new Promise<never>(() => {});

/** Runs the definition with local handlers that parse every request against StepRequestSchema. */
async function execute(scenario: Scenario): Promise<Run> {
  const steps: StepRequest[] = [];
  const fenceAttempts = [...(scenario.fenceAttempts ?? ['off'])];
  const failFirstStart = new Set(scenario.failFirstStart ?? []);
  const raceOnReserve = new Set(scenario.raceOnReserve ?? []);
  const request = (input: unknown): StepRequest => {
    const parsed = StepRequestSchema.parse(input);
    steps.push(parsed);
    return parsed;
  };
  const callback = (input: unknown): StepRequest => {
    const parameters = asObject(input);
    expect(parameters.FunctionName).toBe(PLACEHOLDER_FUNCTION_ARN);
    return request(parameters.Payload);
  };
  const step = (state: string, result: (req: StepRequest) => unknown = () => ({})) => ({
    [state]: async (input: unknown) => json(result(request(input))),
  });
  // Throws where the scenario finds the host in a new boot; else nothing to add to the step's result.
  const rebootedAt = (where: Scenario['rebootedAt']): Record<string, never> => {
    if (scenario.rebootedAt === where) throw namedError(WORKFLOW_ERROR.HostRebooted, 'new boot heard');
    return {};
  };

  const handlers: LocalHandlers = {
    ...step(STATE.Suspect, () => ({ detail: 'h1 is silent for every live relay' })),
    ...step(STATE.ConfirmSilence, () => ({
      ...rebootedAt('confirm-silence'),
      stillSilent: scenario.stillSilent ?? true,
      detail: 'every live relay still misses the host',
      relays: [{ relayId: 'relay-1', live: true, lastHeardMsAgo: 300 }],
    })),
    ...step(STATE.FalseAlarm, () => ({ outcome: 'false-alarm' })),
    ...step(STATE.CheckFencingPolicy, () => ({
      ...rebootedAt('check-fencing-policy'),
      action: scenario.fencingAction ?? 'fence',
      reason: 'policy',
      detail: 'fencing enabled, 1 of 4 hosts silent',
      evidence: {},
    })),
    ...step(STATE.FencingSuppressed, () => ({ outcome: 'fencing-suppressed' })),
    [STATE.Fence]: async (input: unknown) => {
      callback(input);
      rebootedAt('fence');
      const attempt = fenceAttempts.shift() ?? 'not-confirmed';
      if (attempt === 'not-confirmed')
        throw namedError(WORKFLOW_ERROR.FenceNotConfirmed, 'power status read back on');
      return json(fenceResult);
    },
    ...step(STATE.VerifyPowerOff, () => ({ by: 'ipmi-read-back', detail: 'chassis power status: off' })),
    ...step(STATE.FenceFailed),
    [STATE.AwaitOperator]: async (input: unknown) => {
      callback(input);
      rebootedAt('await-operator');
      if (scenario.operatorSilent === true) return never();
      const decision: OperatorDecision = {
        decision: scenario.operator ?? 'confirmed-off',
        by: 'arn:aws:iam::123456789012:user/ops',
        at: 1_700_000_100_000,
      };
      return json(decision);
    },
    ...step(STATE.OperatorTimedOut, () => ({
      decision: scenario.timedOut ?? 'no-answer',
      by: scenario.timedOut === undefined ? 'halo:operator-timed-out' : 'arn:aws:iam::123456789012:user/late',
      at: 1_700_000_200_000,
    })),
    ...step(STATE.HostRebooted, () => ({
      fencedAt: 1_700_000_050_000,
      bootId: 'boot-2',
      detail: 'new boot',
    })),
    ...step(STATE.HostCameBack, () => ({ outcome: 'false-alarm' })),
    ...step(STATE.MarkFenced),
    ...step(STATE.PlanPlacement, () => plan),
    [STATE.StartVm]: async (input: unknown) => {
      const req = callback(input);
      const attempt = VmAttemptSchema.parse('attempt' in req ? req.attempt : undefined);
      if (raceOnReserve.delete(attempt.vm.vmId))
        throw namedError(WORKFLOW_ERROR.ConcurrentUpdate, 'version moved');
      if ((scenario.hangStart ?? []).includes(attempt.vm.vmId)) return never();
      if (attempt.attempt === 1 && failFirstStart.has(attempt.vm.vmId)) {
        throw namedError(WORKFLOW_ERROR.VmStartFailed, 'domain failed to start');
      }
      return json(startResult(attempt));
    },
    ...step(STATE.VmStarted, (req) => {
      const result = req.step === 'vm-started' ? req.result : undefined;
      return { vmId: result?.vmId, hostId: result?.hostId, startedAt: result?.finishedAt };
    }),
    ...step(STATE.ReleaseCapacity),
    ...step(STATE.PickNextHost, (req) => {
      const attempt = VmAttemptSchema.parse('attempt' in req ? req.attempt : undefined);
      // The failed host's reservation was released: the next attempt carries none.
      const { reservationId: _released, ...rest } = attempt;
      const next: VmAttempt = {
        ...rest,
        attempt: attempt.attempt + 1,
        triedHosts: [...attempt.triedHosts, attempt.targetHostId],
        targetHostId: 'host-d',
      };
      return next;
    }),
    ...step(STATE.VmUnplaced, (req) => ({
      vmId: 'attempt' in req ? req.attempt.vm.vmId : undefined,
      detail: 'stays down',
    })),
    ...step(STATE.StartUnconfirmed, (req) => ({
      vmId: 'attempt' in req ? req.attempt.vm.vmId : undefined,
      detail: 'no result in time',
    })),
    ...step(STATE.Close, () => ({ outcome: 'recovered' })),
  };

  const local = adaptForLocalRunner(definition);
  const machine = new StateMachine(local as unknown as ConstructorParameters<typeof StateMachine>[0]);
  const input = {
    incident: { ...incident, timing: { ...incident.timing, ...scenario.timing } },
    ...scenario.resume,
  };
  const execution = machine.run(input, {
    overrides: {
      taskResourceLocalHandlers: handlers,
      waitTimeOverrides: { [STATE.WaitBeforeConfirm]: 0 },
      retryIntervalOverrides: { [STATE.Fence]: 0, [STATE.StartVm]: 0 },
    },
    context: { Task: { Token: 'token-1' } },
  });
  try {
    return { steps, output: await execution.result };
  } catch (error) {
    const cause = error instanceof Error ? error.cause : undefined;
    if (!(cause instanceof Error)) throw error;
    return { steps, failure: { error: cause.name, cause: cause.message } };
  }
}

const names = (run: Run) => run.steps.map((s) => s.step);

describe('the local-runner adaptation', () => {
  it('only hoists callback timeouts next to FunctionName; payloads and everything else stay as synthesized', () => {
    const local = adaptForLocalRunner(definition);
    const strip = (def: AslDefinition): unknown =>
      JSON.parse(JSON.stringify(def), (key, value) =>
        key === `${LOCAL_TIMEOUT_KEY}.$` || key === 'TimeoutSecondsPath' ? undefined : value,
      );
    expect(strip(local)).toEqual(strip(definition));
    const adapted = allStates(local).filter((s) => s.state.TimeoutSecondsPath !== undefined);
    expect(adapted.map((s) => s.name).sort()).toEqual(
      [STATE.AwaitOperator, STATE.Fence, STATE.StartVm].sort(),
    );
    for (const { name, state } of adapted) {
      const original = stateNamed(name);
      expect(state.TimeoutSecondsPath).toBe(`$.${LOCAL_TIMEOUT_KEY}`);
      expect(asObject(state.Parameters)[`${LOCAL_TIMEOUT_KEY}.$`]).toBe(original.TimeoutSecondsPath);
      expect(asObject(state.Parameters).Payload).toEqual(asObject(original.Parameters).Payload);
    }
  });
});

describe('executions of the synthesized definition', () => {
  it('restarts every VM, wave by wave, only after the fence is confirmed', async () => {
    const run = await execute({ failFirstStart: ['vm-web'], raceOnReserve: ['vm-db'] });
    const order = names(run);
    expect(order.slice(0, 6)).toEqual([
      'suspect',
      'confirm-silence',
      'check-fencing-policy',
      'dispatch-fence',
      'verify-power-off',
      'mark-fenced',
    ]);
    expect(order.indexOf('mark-fenced')).toBeLessThan(order.indexOf('dispatch-start'));
    // vm-web failed on host-c: released, moved to the next host, started there.
    const web = run.steps.filter((s) => 'attempt' in s && s.attempt.vm.vmId === 'vm-web').map((s) => s.step);
    expect(web).toEqual([
      'dispatch-start',
      'release-capacity',
      'pick-next-host',
      'dispatch-start',
      'vm-started',
    ]);
    // vm-db lost a reservation race once: the Task retried it (ConcurrentUpdateError retrier).
    const db = run.steps.filter((s) => 'attempt' in s && s.attempt.vm.vmId === 'vm-db').map((s) => s.step);
    expect(db).toEqual(['dispatch-start', 'dispatch-start', 'vm-started']);
    // The low wave starts only after the high wave is done.
    const lastHigh = Math.max(
      ...run.steps.map((s, i) => ('attempt' in s && s.attempt.vm.priority === 'high' ? i : -1)),
    );
    const firstLow = run.steps.findIndex((s) => 'attempt' in s && s.attempt.vm.priority === 'low');
    expect(firstLow).toBeGreaterThan(lastHigh);
    expect(order.at(-1)).toBe('close');
    // The output is the incident review: evidence of every step, and where each VM went.
    const output = asObject(run.output);
    expect(Object.keys(output).sort()).toEqual(
      [
        'incident',
        'suspect',
        'silence',
        'fencing',
        'fence',
        'confirmation',
        'plan',
        'waves',
        'closed',
      ].sort(),
    );
    // Each VM's iteration ends with where it went and nothing more (the Map result stays small).
    const waves = asArray(output.waves).map((w) => asArray(w).map((vm) => asObject(vm)));
    expect(Object.keys(waves[0]?.[0] ?? {}).sort()).toEqual(['hostId', 'startedAt', 'vmId']);
    expect(waves.map((w) => w.map((s) => `${s.vmId}@${s.hostId}`))).toEqual([
      ['vm-db@host-b', 'vm-web@host-d'],
      ['vm-batch@host-b'],
    ]);
  });

  it('retries the fence through another relay before giving up', async () => {
    const run = await execute({ fenceAttempts: ['not-confirmed', 'not-confirmed', 'off'] });
    expect(names(run).filter((s) => s === 'dispatch-fence')).toHaveLength(3);
    expect(names(run)).not.toContain('fence-failed');
    expect(names(run)).toContain('vm-started');
  });

  it('restarts nothing until an operator confirms when the fence never confirms', async () => {
    const run = await execute({ fenceAttempts: [] });
    const order = names(run);
    expect(order.filter((s) => s === 'dispatch-fence')).toHaveLength(5);
    expect(order.indexOf('fence-failed')).toBeGreaterThan(order.lastIndexOf('dispatch-fence'));
    expect(order.indexOf('await-operator')).toBeLessThan(order.indexOf('mark-fenced'));
    const marked = run.steps.find((s) => s.step === 'mark-fenced');
    expect(marked).toMatchObject({
      confirmation: { by: 'operator', detail: 'arn:aws:iam::123456789012:user/ops' },
    });
    expect(asObject(asObject(run.output).fenceError).Error).toBe(WORKFLOW_ERROR.FenceNotConfirmed);
  });

  it('closes as a false alarm, restarting nothing, when the operator says the host came back', async () => {
    const run = await execute({ fenceAttempts: [], operator: 'host-came-back' });
    const order = names(run);
    expect(order).not.toContain('mark-fenced');
    expect(order).not.toContain('dispatch-start');
    expect(run.steps.at(-1)).toMatchObject({ step: 'close', outcome: 'false-alarm' });
  });

  it('fails as OperatorNeverAnswered, restarting nothing, when the operator timeout passes', async () => {
    const run = await execute({
      fenceAttempts: [],
      operatorSilent: true,
      timing: { operatorTimeoutSeconds: 1 },
    });
    expect(run.failure?.error).toBe(WORKFLOW_ERROR.OperatorNeverAnswered);
    expect(names(run)).not.toContain('mark-fenced');
    expect(names(run).slice(-2)).toEqual(['await-operator', 'operator-timed-out']);
  });

  it('leads on with a confirmation that raced the operator timeout', async () => {
    const run = await execute({
      fenceAttempts: [],
      operatorSilent: true,
      timedOut: 'confirmed-off',
      timing: { operatorTimeoutSeconds: 1 },
    });
    const order = names(run);
    expect(order.indexOf('operator-timed-out')).toBeLessThan(order.indexOf('mark-fenced'));
    expect(run.steps.find((s) => s.step === 'mark-fenced')).toMatchObject({
      confirmation: { by: 'operator', detail: 'arn:aws:iam::123456789012:user/late' },
    });
    expect(order.at(-1)).toBe('close');
  });

  it('resumes a late confirmation at MarkFenced, and a late new boot at HostRebooted', async () => {
    const confirmed = await execute({
      resume: {
        resume: 'operator-confirmed',
        operator: { decision: 'confirmed-off', by: 'arn:aws:iam::123456789012:user/late', at: 5 },
      },
    });
    expect(names(confirmed).slice(0, 2)).toEqual(['mark-fenced', 'plan-placement']);
    expect(names(confirmed)).not.toContain('dispatch-fence');
    expect(names(confirmed).at(-1)).toBe('close');
    const rebooted = await execute({ resume: { resume: 'host-rebooted' } });
    expect(names(rebooted).slice(0, 2)).toEqual(['host-rebooted', 'plan-placement']);
    expect(names(rebooted)).not.toContain('mark-fenced');
    expect(names(rebooted).at(-1)).toBe('close');
  });

  it('restarts the VMs without a fence when the host is heard in a new boot, wherever it is found', async () => {
    for (const where of ['confirm-silence', 'check-fencing-policy', 'fence', 'await-operator'] as const) {
      const run = await execute({
        rebootedAt: where,
        fenceAttempts: where === 'await-operator' ? [] : ['off'],
      });
      const order = names(run);
      expect(order, where).not.toContain('mark-fenced');
      expect(order, where).not.toContain('verify-power-off');
      expect(order.slice(order.indexOf('host-rebooted'), order.indexOf('host-rebooted') + 2), where).toEqual([
        'host-rebooted',
        'plan-placement',
      ]);
      expect(order.at(-1), where).toBe('close');
      expect(asObject(run.output).rebootedBy, where).toMatchObject({ Error: WORKFLOW_ERROR.HostRebooted });
    }
  });

  it('reports a start that never confirms as StartUnconfirmed, keeping its reservation, and moves on', async () => {
    const run = await execute({ hangStart: ['vm-web'], timing: { startTimeoutSeconds: 1 } });
    const web = run.steps.filter((s) => 'attempt' in s && s.attempt.vm.vmId === 'vm-web').map((s) => s.step);
    expect(web).toEqual(['dispatch-start', 'start-unconfirmed']);
    expect(run.steps.find((s) => s.step === 'start-unconfirmed')).toMatchObject({
      error: { Error: 'States.Timeout' },
    });
    expect(names(run).at(-1)).toBe('close');
  });

  it('ends at FalseAlarm when the host is heard again, and at FencingSuppressed when policy says so', async () => {
    const back = await execute({ stillSilent: false });
    expect(names(back)).toEqual(['suspect', 'confirm-silence', 'false-alarm']);
    const suppressed = await execute({ fencingAction: 'suppress' });
    expect(names(suppressed)).toEqual([
      'suspect',
      'confirm-silence',
      'check-fencing-policy',
      'fencing-suppressed',
    ]);
    expect(asObject(suppressed.output).closed).toEqual({ outcome: 'fencing-suppressed' });
  });
});
