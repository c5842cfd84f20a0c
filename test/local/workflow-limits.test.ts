import { describe, expect, it } from 'vitest';
import { startAttemptsFor } from '../../app/failover/start-budget';
import { largeHostFailover } from '../../bench/large-host';
import { type IncidentInput, type PlanOutput, STATE, StepRequestSchema } from '../../contracts/workflow';
import { synthesizedDefinition } from '../../local/definition';
import { LocalWorkflow } from '../../local/local-workflow';
import {
  addUsage,
  historyEventsOf,
  mapConcurrencies,
  NO_USAGE,
  STEP_FUNCTIONS_LIMITS,
} from '../../local/workflow-limits';
import { waitFor } from '../e2e/harness';

/**
 * Step Functions' limits, which the local runner does not enforce: LocalWorkflow sizes every state's input
 * and output and counts the history AWS would record, and fails an execution that breaks a limit as AWS
 * would. A host of 500 HA VMs fails over through the synthesized definition on the virtual control plane
 * (bench/large-host.ts), and stays within them, even when every start fails.
 */

const KiB = 1024;

describe('the failover of a host of 500 HA VMs', () => {
  it('stays within 256 KiB per state and 25,000 history events, and starts them 40 at a time', async () => {
    const run = await largeHostFailover({ vms: 500 });

    expect(run.execution.status).toBe('succeeded');
    expect(run.incident.outcome).toBe('recovered');
    expect(run.running).toBe(500);
    // Every state's input and output, the Map results included: the plan in the state carries no
    // explanations and each VM's iteration ends with where it went (measured: 73 KB, at Close's output).
    expect(run.execution.usage.largestPayloadBytes).toBeLessThan(100 * KiB);
    expect(run.execution.usage.largestPayloadBytes).toBeLessThan(STEP_FUNCTIONS_LIMITS.statePayloadBytes);
    // About 14 events a VM (7,090 measured).
    expect(run.execution.usage.historyEvents).toBeLessThan(8_000);
    for (const concurrency of Object.values(run.mapConcurrency)) {
      expect(concurrency).toBeGreaterThan(0);
      expect(concurrency).toBeLessThanOrEqual(STEP_FUNCTIONS_LIMITS.inlineMapConcurrency);
    }
    expect(run.mapConcurrency[STATE.StartWave]).toBe(STEP_FUNCTIONS_LIMITS.inlineMapConcurrency);
  }, 120_000);

  it('stays within 25,000 events when every start fails: two attempts each, then VM-level HA', async () => {
    // Every start fails on every host it is tried on: the worst history a failover of 500 VMs can have.
    const run = await largeHostFailover({ vms: 500, failedStartsPerVm: 2 });

    expect(run.execution.status).toBe('succeeded');
    expect(run.incident.outcome).toBe('partially-recovered');
    expect(run.execution.usage.historyEvents).toBeLessThan(STEP_FUNCTIONS_LIMITS.historyEvents);
    expect(run.execution.usage.largestPayloadBytes).toBeLessThan(STEP_FUNCTIONS_LIMITS.statePayloadBytes);
  }, 120_000);
});

describe('the start budget', () => {
  it('keeps the policy attempts for ordinary hosts and cuts retries for very large ones', () => {
    expect(startAttemptsFor(25, 3)).toBe(3);
    expect(startAttemptsFor(300, 3)).toBe(3);
    expect(startAttemptsFor(500, 3)).toBe(2);
    expect(startAttemptsFor(1000, 3)).toBe(1);
    // Never more than the policy, never fewer than one.
    expect(startAttemptsFor(10, 1)).toBe(1);
    expect(startAttemptsFor(100_000, 3)).toBe(1);
  });
});

describe('LocalWorkflow against the limits', () => {
  const incident: IncidentInput = {
    incidentId: 'site-1:host-a:1',
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
    },
    evidence: { relays: [{ relayId: 'relay-1', lastHeardMsAgo: 400 }], silentAfterMs: 300 },
  };

  it('fails an execution whose state is above 256 KiB with States.DataLimitExceeded, as AWS does', async () => {
    // A plan with the explanations the execution no longer carries, for 600 VMs: about 300 KB.
    const plan: PlanOutput = {
      waves: [
        {
          priority: 'high',
          vms: Array.from({ length: 600 }, (_, i) => ({
            vmId: `vm-${i}`,
            cpus: 1,
            memoryMiB: 1024,
            priority: 'high' as const,
            hostId: 'host-b',
            reason: `high wave: 1024 MiB/1 vCPU; host-b keeps the cluster most even ${'.'.repeat(400)}`,
          })),
        },
      ],
      unplaced: [],
      startAttempts: 3,
    };
    let fenceToken: string | undefined;
    const steps = async (event: unknown): Promise<unknown> => {
      const request = StepRequestSchema.parse(event);
      switch (request.step) {
        case 'dispatch-fence':
          fenceToken = request.taskToken;
          return {};
        case 'suspect':
          return { detail: 'silent' };
        case 'confirm-silence':
          return { stillSilent: true, detail: 'silent', relays: [] };
        case 'check-fencing-policy':
          return { action: 'fence', reason: 'host-silent', detail: 'fence', evidence: {} };
        case 'verify-power-off':
          return { by: 'ipmi-read-back', detail: 'off' };
        case 'plan-placement':
          return plan;
        default:
          return {};
      }
    };
    const workflow = new LocalWorkflow({ definition: await synthesizedDefinition(), steps });
    try {
      await workflow.startIncident(incident);
      // The fence's callback: answered so that the execution reaches PlanPlacement.
      const token = await waitFor('the fence task', async () => fenceToken);
      await workflow.sendTaskSuccess(token, {
        commandId: 'c-1',
        relayId: 'relay-1',
        powerState: 'off',
        finishedAt: 1_700_000_001_000,
      });
      await workflow.whenIdle();
      const [execution] = workflow.executions();
      expect(execution?.status).toBe('failed');
      expect(execution?.error?.error).toBe('States.DataLimitExceeded');
      expect(execution?.error?.cause).toContain(STATE.PlanPlacement);
      expect(execution?.usage.largestPayloadBytes).toBeGreaterThan(STEP_FUNCTIONS_LIMITS.statePayloadBytes);
    } finally {
      await workflow.stop();
    }
  }, 60_000);

  it('counts history as AWS records it: Tasks with their attempts, Maps with their iterations', () => {
    const task = (type: string) => ({
      type,
      state: { name: 'StartVm', type: 'Task', input: {}, output: {} },
    });
    // A callback Task that failed once, was retried and succeeded: Entered, Scheduled, Started, Submitted,
    // Failed, Scheduled, Started, Submitted, Succeeded, Exited.
    const events = ['StateEntered', 'StateFailed', 'StateRetried', 'StateExited'].map(task);
    expect(events.reduce((n, e) => n + historyEventsOf(e), 0)).toBe(10);
    const map = (type: string) => ({
      type,
      state: { name: 'StartWave', type: 'Map', input: {}, output: [] },
    });
    expect(historyEventsOf(map('StateEntered')) + historyEventsOf(map('StateExited'))).toBe(4);
    expect(historyEventsOf({ type: 'MapIterationStarted' })).toBe(1);
    // The largest payload is kept with the state it came from.
    const usage = addUsage(NO_USAGE, {
      type: 'StateExited',
      state: { name: 'PlanPlacement', type: 'Task', input: {}, output: { big: 'x'.repeat(1000) } },
    });
    expect(usage.largestPayloadBytes).toBe(1000 + '{"big":""}'.length);
    expect(usage.largestPayloadState).toBe('PlanPlacement (output)');
  });

  it('finds every Map of a definition with its concurrency', async () => {
    const definition = await synthesizedDefinition();
    expect(mapConcurrencies(definition.States)).toEqual({
      [STATE.StartPriorityWaves]: 1,
      [STATE.StartWave]: STEP_FUNCTIONS_LIMITS.inlineMapConcurrency,
    });
  });
});
