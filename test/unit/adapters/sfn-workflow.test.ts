import {
  ExecutionAlreadyExists,
  InvalidArn,
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  executionArnFor,
  executionName,
  resumeExecutionName,
  SfnWorkflow,
} from '../../../adapters/sfn/sfn-workflow';
import type { IncidentInput } from '../../../contracts/workflow';

const sfn = mockClient(SFNClient);
afterEach(() => sfn.reset());

const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:HaloFailover';
const meta = { $metadata: {} };

const incident = (incidentId: string): IncidentInput => ({
  incidentId,
  siteId: 'site-a',
  hostId: 'node01',
  cluster: 'c1',
  bootId: 'boot-1',
  openedAt: 1_700_000_000_000,
  timing: {
    confirmSilenceSeconds: 2,
    fenceAttemptTimeoutSeconds: 20,
    startTimeoutSeconds: 20,
    operatorTimeoutSeconds: 3600,
  },
  evidence: { relays: [{ relayId: 'r1', lastHeardMsAgo: 7000 }], silentAfterMs: 6000 },
});

const workflow = (logger = { warn: vi.fn() }) =>
  new SfnWorkflow({ client: new SFNClient({ region: 'eu-west-1' }), stateMachineArn: MACHINE, logger });

describe('executionName', () => {
  it('keeps ids that already satisfy Step Functions naming', () => {
    expect(executionName('site-a_node01-3')).toBe('site-a_node01-3');
  });

  it("maps '.' to '_' deterministically, with a hash so distinct ids never share a name", () => {
    const dotted = executionName('site.a-node.01-1');
    expect(dotted).toMatch(/^site_a-node_01-1-[0-9a-f]{8}$/);
    expect(executionName('site.a-node.01-1')).toBe(dotted);
    expect(executionName('site_a-node_01-1')).not.toBe(dotted);
  });

  it('stays within 80 characters of [A-Za-z0-9-_]', () => {
    for (const id of ['x'.repeat(80), 'y'.repeat(81), `${'a.'.repeat(60)}z`, '']) {
      const name = executionName(id);
      expect(name.length).toBeLessThanOrEqual(80);
      expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
    }
    expect(executionName('x'.repeat(81))).not.toBe(executionName('x'.repeat(82)));
  });
});

describe('executionArnFor', () => {
  it('turns a state machine ARN into the execution ARN of a name', () => {
    expect(executionArnFor(MACHINE, 'inc-1')).toBe(
      'arn:aws:states:eu-west-1:123456789012:execution:HaloFailover:inc-1',
    );
  });

  it('refuses anything that is not a state machine ARN', () => {
    expect(() => executionArnFor('arn:aws:lambda:eu-west-1:1:function:f', 'x')).toThrow(/state machine ARN/);
    expect(() => new SfnWorkflow({ client: new SFNClient({}), stateMachineArn: 'nope' })).toThrow();
  });
});

describe('SfnWorkflow.resumeIncident', () => {
  it('starts an execution of its own per incident and resume point, carrying what it resumes with', async () => {
    sfn.on(StartExecutionCommand).resolves({ ...meta, executionArn: 'arn:x', startDate: new Date() });
    const input = incident('site-a_node01-1');
    const operator = { decision: 'confirmed-off' as const, by: 'alice', at: 5 };

    await workflow().resumeIncident(input, { resume: 'operator-confirmed', operator });
    await workflow().resumeIncident(input, { resume: 'host-rebooted' });

    const sent = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(sent.map((s) => s.name)).toEqual([
      resumeExecutionName('site-a_node01-1', 'operator-confirmed'),
      resumeExecutionName('site-a_node01-1', 'host-rebooted'),
    ]);
    expect(new Set([...sent.map((s) => s.name), executionName('site-a_node01-1')]).size).toBe(3);
    expect(sent.map((s) => JSON.parse(s.input ?? 'null'))).toEqual([
      { incident: input, resume: 'operator-confirmed', operator },
      { incident: input, resume: 'host-rebooted' },
    ]);
  });

  it('returns the existing execution when it was resumed already', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} }));
    const result = await workflow().resumeIncident(incident('i-1'), { resume: 'host-rebooted' });
    expect(result.executionArn).toBe(executionArnFor(MACHINE, resumeExecutionName('i-1', 'host-rebooted')));
  });
});

describe('SfnWorkflow.startIncident', () => {
  it('starts an execution named after the incident with {"incident": …} as input', async () => {
    const arn = `${MACHINE.replace('stateMachine', 'execution')}:site-a_node01-1`;
    sfn.on(StartExecutionCommand).resolves({ ...meta, executionArn: arn, startDate: new Date() });
    const input = incident('site-a_node01-1');

    await expect(workflow().startIncident(input)).resolves.toEqual({ executionArn: arn });

    const calls = sfn.commandCalls(StartExecutionCommand);
    expect(calls).toHaveLength(1);
    const sent = calls[0]?.args[0].input;
    expect(sent?.stateMachineArn).toBe(MACHINE);
    expect(sent?.name).toBe('site-a_node01-1');
    expect(JSON.parse(sent?.input ?? 'null')).toEqual({ incident: input });
  });

  it('returns the existing execution when the name is taken (a repeated start is never an error)', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} }));

    const result = await workflow().startIncident(incident('site.a-node01-1'));

    expect(result.executionArn).toBe(
      `arn:aws:states:eu-west-1:123456789012:execution:HaloFailover:${executionName('site.a-node01-1')}`,
    );
    expect(sfn.calls()).toHaveLength(1); // no DescribeExecution
  });

  it('propagates other errors', async () => {
    sfn.on(StartExecutionCommand).rejects(new InvalidArn({ message: 'bad arn', $metadata: {} }));
    await expect(workflow().startIncident(incident('i-1'))).rejects.toBeInstanceOf(InvalidArn);
  });

  it('refuses to start without a state machine ARN (failover-steps has none)', async () => {
    const noArn = new SfnWorkflow({ client: new SFNClient({}) });
    await expect(noArn.startIncident(incident('i-1'))).rejects.toThrow(/no state machine ARN/);
    expect(sfn.calls()).toHaveLength(0);
  });
});

describe('SfnWorkflow task completion', () => {
  it('sends task success with the output as JSON', async () => {
    sfn.on(SendTaskSuccessCommand).resolves(meta);
    await workflow().sendTaskSuccess('token-1', { powerState: 'off' });
    const sent = sfn.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input;
    expect(sent).toEqual({ taskToken: 'token-1', output: '{"powerState":"off"}' });
  });

  it('sends task failure with the error name and cause, capped to Step Functions limits', async () => {
    sfn.on(SendTaskFailureCommand).resolves(meta);
    await workflow().sendTaskFailure('token-1', 'VmStartFailedError', 'c'.repeat(40_000));
    const sent = sfn.commandCalls(SendTaskFailureCommand)[0]?.args[0].input;
    expect(sent?.error).toBe('VmStartFailedError');
    expect(sent?.cause).toHaveLength(32_768);
  });

  const gone = [
    new TaskTimedOut({ message: 'timed out', $metadata: {} }),
    new TaskDoesNotExist({ message: 'no task', $metadata: {} }),
    new InvalidToken({ message: 'bad token', $metadata: {} }),
  ];

  for (const error of gone) {
    it(`logs and swallows ${error.name}: the task already ended`, async () => {
      sfn.on(SendTaskSuccessCommand).rejects(error);
      sfn.on(SendTaskFailureCommand).rejects(error);
      const logger = { warn: vi.fn() };
      const wf = workflow(logger);

      await expect(wf.sendTaskSuccess('late', {})).resolves.toBeUndefined();
      await expect(wf.sendTaskFailure('late', 'E', 'c')).resolves.toBeUndefined();
      expect(logger.warn).toHaveBeenCalledTimes(2);
      expect(logger.warn).toHaveBeenCalledWith(
        expect.any(String),
        expect.objectContaining({ reason: error.name }),
      );
    });
  }

  it('propagates any other completion error', async () => {
    sfn.on(SendTaskSuccessCommand).rejects(new Error('throttled'));
    sfn.on(SendTaskFailureCommand).rejects(new Error('throttled'));
    await expect(workflow().sendTaskSuccess('t', {})).rejects.toThrow('throttled');
    await expect(workflow().sendTaskFailure('t', 'E', 'c')).rejects.toThrow('throttled');
  });
});
