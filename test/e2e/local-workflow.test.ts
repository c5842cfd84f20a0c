import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { executionArnFor, executionName } from '../../adapters/sfn/sfn-workflow';
import { NoCapacityError } from '../../app/errors';
import {
  type IncidentInput,
  type PlanOutput,
  STATE,
  type StepRequest,
  StepRequestSchema,
  WORKFLOW_ERROR,
} from '../../contracts/workflow';
import { FailoverWorkflow } from '../../infra/constructs/failover-workflow';
import {
  type AslDefinition,
  adaptForLocalRunner,
  extractDefinition,
  PLACEHOLDER_FUNCTION_ARN,
} from '../../infra/definition';
import { lastSynthMs, synthesizedDefinition } from '../../local/definition';
import { LOCAL_STATE_MACHINE_ARN, type LocalExecution, LocalWorkflow } from '../../local/local-workflow';
import { failedExecutions } from '../../local/sim/runner';
import { eventsOfType, mainPath, waitFor } from './harness';

/**
 * LocalWorkflow as a WorkflowPort, with a stub in place of the failover-steps handler: tokens, one
 * execution per incident, errors by name, timeouts and timings. The definition's paths themselves are
 * test/infra/definition.test.ts's subject; the real handler's, the e2e scenarios'.
 */

let definition: AslDefinition;

beforeAll(async () => {
  definition = await synthesizedDefinition();
});

const incident = (
  incidentId = 'site-1:host-a:1',
  timing: Partial<IncidentInput['timing']> = {},
): IncidentInput => ({
  incidentId,
  siteId: 'site-1',
  hostId: 'host-a',
  cluster: 'c1',
  bootId: 'boot-1',
  openedAt: 1_700_000_000_000,
  timing: {
    confirmSilenceSeconds: 0,
    fenceAttemptTimeoutSeconds: 1,
    startTimeoutSeconds: 1,
    operatorTimeoutSeconds: 1,
    ...timing,
  },
  evidence: { relays: [{ relayId: 'relay-1', lastHeardMsAgo: 400 }], silentAfterMs: 300 },
});

const plan: PlanOutput = {
  waves: [
    {
      priority: 'high',
      vms: ['vm-1', 'vm-2', 'vm-3'].map((vmId) => ({
        vmId,
        cpus: 1,
        memoryMiB: 1024,
        priority: 'high' as const,
        hostId: 'host-b',
        reason: 'fits',
      })),
    },
  ],
  unplaced: [],
  // PlanPlacement always says how many attempts each VM gets (app/failover/start-budget.ts).
  startAttempts: 3,
};

/** A stand-in for the failover-steps handler: canned answers, callbacks parked until the test settles them. */
function stubSteps(overrides: Partial<Record<StepRequest['step'], (req: StepRequest) => unknown>> = {}) {
  const requests: StepRequest[] = [];
  const tokens: { step: string; token: string; vmId?: string }[] = [];
  const handler = async (event: unknown): Promise<unknown> => {
    const req = StepRequestSchema.parse(event);
    requests.push(req);
    if ('taskToken' in req) {
      tokens.push({
        step: req.step,
        token: req.taskToken,
        ...('attempt' in req ? { vmId: req.attempt.vm.vmId } : {}),
      });
    }
    const override = overrides[req.step];
    if (override !== undefined) return override(req);
    switch (req.step) {
      case 'suspect':
        return { detail: 'silent for every live relay' };
      case 'confirm-silence':
        return { stillSilent: true, detail: 'silent', relays: [] };
      case 'check-fencing-policy':
        return { action: 'fence', reason: 'host-silent', detail: 'fence', evidence: {} };
      case 'verify-power-off':
        return { by: 'ipmi-read-back', detail: 'off' };
      case 'plan-placement':
        return plan;
      // As the real steps answer: the VM, which the iteration's output names.
      case 'start-unconfirmed':
      case 'vm-unplaced':
        return { vmId: req.attempt.vm.vmId, detail: req.step };
      case 'operator-timed-out':
        return { decision: 'no-answer', by: 'halo:operator-timed-out', at: 1_700_000_003_000 };
      case 'host-rebooted':
        return { fencedAt: 1_700_000_003_000, bootId: 'boot-2', detail: 'new boot' };
      case 'close':
        return { outcome: 'recovered' };
      default:
        return { step: req.step };
    }
  };
  return { handler, requests, tokens };
}

const fenceResult = {
  commandId: 'c-1',
  relayId: 'relay-1',
  powerState: 'off',
  finishedAt: 1_700_000_001_000,
};

let workflow: LocalWorkflow | undefined;
afterEach(async () => {
  await workflow?.stop();
  workflow = undefined;
  vi.useRealTimers();
});

/**
 * Durations are asserted in virtual time: the runner's timers (Wait, Retry intervals, callback timeouts)
 * are vitest's fake ones, and the test moves the clock. Nothing else takes virtual time, so what happens
 * at a given instant is exact, however busy the machine.
 */
function useVirtualTime(): void {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
}

/** Lets the runner do everything it can without the clock moving (stub steps answer in microtasks). */
async function runNow(): Promise<void> {
  for (let turn = 0; turn < 20; turn += 1) await vi.advanceTimersByTimeAsync(0);
}

/** Moves virtual time by `ms`, firing every timer due meanwhile, then lets the runner catch up. */
async function elapse(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await runNow();
}

/** Whether the workflow has gone idle, tracked from now. */
function idleTracker(wf: LocalWorkflow): () => boolean {
  let idle = false;
  void wf.whenIdle().then(() => {
    idle = true;
  });
  return () => idle;
}

function only(wf: LocalWorkflow): LocalExecution {
  const [execution, ...others] = wf.executions();
  if (execution === undefined || others.length > 0) throw new Error('expected one execution');
  return execution;
}

describe('the in-process synth', () => {
  it('yields the definition the workflow construct synthesizes, adapted for the local runner', () => {
    // Built the way test/infra/definition.test.ts builds it: the construct alone, around an imported function.
    const stack = new Stack(new App(), 'Definition');
    const steps = LambdaFunction.fromFunctionAttributes(stack, 'Steps', {
      functionArn: PLACEHOLDER_FUNCTION_ARN,
      sameEnvironment: true,
    });
    new FailoverWorkflow(stack, 'Failover', { stepsFunction: steps, logRetention: RetentionDays.ONE_MONTH });
    expect(definition).toEqual(adaptForLocalRunner(extractDefinition(Template.fromStack(stack).toJSON())));
    expect(lastSynthMs()).toBeGreaterThan(0);
  });

  it('is synthesized once per process', async () => {
    expect(await synthesizedDefinition()).toBe(definition);
  });
});

describe('LocalWorkflow', () => {
  it('starts one execution per incident, named and ARN-ed as the SFN adapter does', async () => {
    const steps = stubSteps();
    workflow = new LocalWorkflow({ definition, steps: steps.handler });
    const first = await workflow.startIncident(incident());
    // Again, even with another input (a retried ingest that rebuilt the evidence): the same execution.
    const again = await workflow.startIncident({ ...incident(), openedAt: 1_700_000_000_500 });
    const name = executionName('site-1:host-a:1');
    expect(first.executionArn).toBe(executionArnFor(LOCAL_STATE_MACHINE_ARN, name));
    expect(again).toEqual(first);
    expect(workflow.executions().map((e) => e.name)).toEqual([name]);
    expect(only(workflow).input.incident.openedAt).toBe(1_700_000_000_000);
  });

  it('gives every callback Task its own token, completes it by that token, and settles', async () => {
    const steps = stubSteps();
    workflow = new LocalWorkflow({ definition, steps: steps.handler });
    await workflow.startIncident(incident());
    const fence = await waitFor('the fence token', () =>
      steps.tokens.find((t) => t.step === 'dispatch-fence'),
    );
    await workflow.sendTaskSuccess(fence.token, fenceResult);
    // Three StartVm iterations run at once in one execution: three distinct tokens, none the runner's.
    const starts = await waitFor('three start tokens', () => {
      const found = steps.tokens.filter((t) => t.step === 'dispatch-start');
      return found.length === 3 ? found : undefined;
    });
    expect(new Set(steps.tokens.map((t) => t.token)).size).toBe(steps.tokens.length);
    for (const start of starts.reverse()) {
      await workflow.sendTaskSuccess(start.token, {
        commandId: `c-${start.vmId}`,
        vmId: start.vmId,
        hostId: 'host-b',
        finishedAt: 1_700_000_002_000,
      });
    }
    await workflow.whenIdle();
    const execution = only(workflow);
    expect(execution.status).toBe('succeeded');
    expect(mainPath(execution).at(-1)).toBe(STATE.IncidentClosed);
    expect(execution.output).toMatchObject({ fence: fenceResult, closed: { outcome: 'recovered' } });
    // Each vm-started got the result sent for its own token.
    const started = steps.requests.flatMap((r) =>
      r.step === 'vm-started' ? [[r.attempt.vm.vmId, r.result.vmId]] : [],
    );
    expect(started.sort()).toEqual([
      ['vm-1', 'vm-1'],
      ['vm-2', 'vm-2'],
      ['vm-3', 'vm-3'],
    ]);
    // The event log is a timeline: timestamped, in order.
    const times = execution.events.map((e) => e.timestamp);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(execution.events[0]?.type).toBe('ExecutionStarted');
    expect(execution.events.at(-1)?.type).toBe('ExecutionSucceeded');
  });

  it('fails a Task with the name sendTaskFailure gives, so Retry matches it; the retry waits retryIntervalMs per second', async () => {
    useVirtualTime();
    const steps = stubSteps();
    workflow = new LocalWorkflow({ definition, steps: steps.handler, retryIntervalMs: 50 });
    await workflow.startIncident(incident());
    await runNow();
    const fences = () => steps.tokens.filter((t) => t.step === 'dispatch-fence');
    const [first] = fences();
    if (first === undefined) throw new Error('no fence');
    await workflow.sendTaskFailure(first.token, WORKFLOW_ERROR.FenceNotConfirmed, 'read back on');
    // IntervalSeconds 1 × 50 ms, not AWS's full second: no second attempt 1 ms before, one at 50 ms.
    await elapse(49);
    expect(fences()).toHaveLength(1);
    await elapse(1);
    const second = fences()[1];
    if (second === undefined) throw new Error('no second fence after 50 ms');
    expect(second.token).not.toBe(first.token);
    // The first token is dead: completing it again is a no-op (AWS: TaskDoesNotExist).
    await workflow.sendTaskSuccess(first.token, fenceResult);
    await workflow.sendTaskSuccess(second.token, fenceResult);
    await runNow();
    expect(steps.tokens.filter((t) => t.step === 'dispatch-start')).toHaveLength(3);
    const execution = only(workflow);
    const failed = eventsOfType(execution, 'StateFailed').find((e) => e.state.name === STATE.Fence);
    const retried = eventsOfType(execution, 'StateRetried').find((e) => e.state.name === STATE.Fence);
    expect(failed?.Error).toBe(WORKFLOW_ERROR.FenceNotConfirmed);
    expect(failed?.Cause).toBe('read back on');
    expect(retried).toBeDefined();
    expect(mainPath(execution)).not.toContain(STATE.FenceFailed);
  });

  it('hands a handler error to Retry/Catch by its class name', async () => {
    const steps = stubSteps({
      // StartVm reserves first: no host can take vm-2.
      'dispatch-start': (req) => {
        if ('attempt' in req && req.attempt.vm.vmId === 'vm-2') throw new NoCapacityError('full');
        return {};
      },
    });
    workflow = new LocalWorkflow({ definition, steps: steps.handler });
    await workflow.startIncident(incident());
    const fence = await waitFor('the fence token', () =>
      steps.tokens.find((t) => t.step === 'dispatch-fence'),
    );
    await workflow.sendTaskSuccess(fence.token, fenceResult);
    await waitFor('vm-unplaced', () => steps.requests.find((r) => r.step === 'vm-unplaced'));
    const unplaced = steps.requests.find((r) => r.step === 'vm-unplaced');
    expect(unplaced).toMatchObject({
      attempt: { vm: { vmId: 'vm-2' } },
      error: { Error: 'NoCapacityError', Cause: 'full' },
    });
  });

  it('times a callback out per TimeoutSecondsPath; a result after that is dropped and logged', async () => {
    useVirtualTime();
    const steps = stubSteps();
    const logger = { warn: vi.fn() };
    workflow = new LocalWorkflow({ definition, steps: steps.handler, logger });
    await workflow.startIncident(incident('site-1:host-a:2', { startTimeoutSeconds: 1 }));
    await runNow();
    const fence = steps.tokens.find((t) => t.step === 'dispatch-fence');
    if (fence === undefined) throw new Error('no fence');
    await workflow.sendTaskSuccess(fence.token, fenceResult);
    const idle = idleTracker(workflow);
    // No start is ever answered: each runs into its 1 s timeout, and not a millisecond before.
    await elapse(999);
    expect(idle()).toBe(false);
    expect(steps.requests.filter((r) => r.step === 'start-unconfirmed')).toHaveLength(0);
    await elapse(1);
    expect(idle()).toBe(true);
    expect(steps.requests.filter((r) => r.step === 'start-unconfirmed')).toHaveLength(3);
    const timedOut = eventsOfType(only(workflow), 'StateFailed').filter(
      (e) => e.state.name === STATE.StartVm,
    );
    expect(timedOut.map((e) => e.Error)).toEqual(['States.Timeout', 'States.Timeout', 'States.Timeout']);
    const late = steps.tokens.find((t) => t.step === 'dispatch-start');
    await workflow.sendTaskSuccess(late?.token ?? '', {});
    await workflow.sendTaskFailure('never-issued', 'X', 'y');
    expect(logger.warn).toHaveBeenCalledTimes(2);
    expect(only(workflow).status).toBe('succeeded');
  });

  it('waits confirmSilenceSeconds × 1000 at WaitBeforeConfirm unless overridden', async () => {
    useVirtualTime();
    const steps = stubSteps({
      'confirm-silence': () => ({ stillSilent: false, detail: 'back', relays: [] }),
    });
    const confirmations = () => steps.requests.filter((r) => r.step === 'confirm-silence').length;
    workflow = new LocalWorkflow({ definition, steps: steps.handler });
    await workflow.startIncident(incident('site-1:host-a:3', { confirmSilenceSeconds: 1 }));
    let idle = idleTracker(workflow);
    await elapse(999);
    expect(confirmations()).toBe(0);
    await elapse(1);
    expect(confirmations()).toBe(1);
    expect(idle()).toBe(true);
    await workflow.stop();

    workflow = new LocalWorkflow({
      definition,
      steps: steps.handler,
      waitOverridesMs: { [STATE.WaitBeforeConfirm]: 10 },
    });
    await workflow.startIncident(incident('site-1:host-a:4', { confirmSilenceSeconds: 60 }));
    idle = idleTracker(workflow);
    await elapse(9);
    expect(confirmations()).toBe(1);
    await elapse(1);
    expect(confirmations()).toBe(2);
    expect(idle()).toBe(true);
    expect(mainPath(only(workflow)).at(-1)).toBe(STATE.FalseAlarm);
  });

  it('reports a Fail state as the execution error; stop() aborts what still waits', async () => {
    const steps = stubSteps();
    workflow = new LocalWorkflow({ definition, steps: steps.handler, retryIntervalMs: 0 });
    // Fence: five unconfirmed attempts → FenceFailed → AwaitOperator, which nobody answers within 1 s.
    await workflow.startIncident(incident('site-1:host-a:5', { operatorTimeoutSeconds: 1 }));
    for (let attempt = 1; attempt <= 5; attempt += 1) {
      const token = await waitFor(
        `fence ${attempt}`,
        () => steps.tokens.filter((t) => t.step === 'dispatch-fence')[attempt - 1],
      );
      await workflow.sendTaskFailure(token.token, WORKFLOW_ERROR.FenceNotConfirmed, 'no read-back');
    }
    await workflow.whenIdle();
    const failed = only(workflow);
    expect(failed.status).toBe('failed');
    expect(failed.error?.error).toBe(WORKFLOW_ERROR.OperatorNeverAnswered);
    expect(mainPath(failed).slice(-3)).toEqual([
      STATE.OperatorTimedOut,
      STATE.OperatorOutcome,
      STATE.OperatorNeverAnswered,
    ]);

    // The simulator takes a Fail state for what it is, not for a broken run.
    expect(() => failedExecutions({ workflow: workflow as LocalWorkflow })).not.toThrow();

    // An execution parked on a callback (the operator has a day) is aborted by stop().
    await workflow.startIncident(incident('site-1:host-a:6', { operatorTimeoutSeconds: 86_400 }));
    await waitFor('a fence', () => steps.tokens.filter((t) => t.step === 'dispatch-fence')[5]);
    await workflow.stop();
    expect(workflow.executions().map((e) => e.status)).toEqual(['failed', 'aborted']);
  });

  it('an execution failed by an error no Catch takes is a broken simulator run, named with its cause', async () => {
    const steps = stubSteps({
      suspect: () => {
        throw new TypeError('Promise.withResolvers is not a function');
      },
    });
    workflow = new LocalWorkflow({ definition, steps: steps.handler, retryIntervalMs: 0 });
    await workflow.startIncident(incident('site-1:host-a:9'));
    await workflow.whenIdle();
    expect(only(workflow).status).toBe('failed');
    expect(() => failedExecutions({ workflow: workflow as LocalWorkflow })).toThrow(
      /site-1:host-a:9: TypeError: Promise.withResolvers is not a function/,
    );
  });

  it('resumes an incident in an execution of its own, named apart, starting where it goes on', async () => {
    const steps = stubSteps();
    workflow = new LocalWorkflow({ definition, steps: steps.handler });
    const first = await workflow.startIncident(
      incident('site-1:host-a:7', { operatorTimeoutSeconds: 86_400 }),
    );
    const resumed = await workflow.resumeIncident(incident('site-1:host-a:7'), { resume: 'host-rebooted' });
    const again = await workflow.resumeIncident(incident('site-1:host-a:7'), { resume: 'host-rebooted' });
    expect(resumed).toEqual(again);
    expect(resumed.executionArn).not.toBe(first.executionArn);
    const starts = await waitFor('three start tokens', () => {
      const found = steps.tokens.filter((t) => t.step === 'dispatch-start');
      return found.length === 3 ? found : undefined;
    });
    for (const start of starts) {
      await workflow.sendTaskSuccess(start.token, {
        commandId: `c-${start.vmId}`,
        vmId: start.vmId,
        hostId: 'host-b',
        finishedAt: 1_700_000_002_000,
      });
    }
    const execution = await waitFor('the resumed execution to end', () =>
      workflow?.executions().find((e) => e.executionArn === resumed.executionArn && e.status !== 'running'),
    );
    expect(execution.status).toBe('succeeded');
    expect(mainPath(execution).slice(0, 3)).toEqual([
      STATE.StartOrResume,
      STATE.HostRebooted,
      STATE.PlanPlacement,
    ]);
    expect(execution.input).toMatchObject({ resume: 'host-rebooted' });
  });

  it('refuses to start without a steps handler', async () => {
    workflow = new LocalWorkflow({ definition });
    await expect(workflow.startIncident(incident())).rejects.toThrow(/no failover-steps handler/);
    expect(workflow.executions()).toEqual([]);
  });
});
