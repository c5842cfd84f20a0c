import { createHash } from 'node:crypto';
import {
  ExecutionAlreadyExists,
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  type SFNClient,
  StartExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import type { WorkflowPort } from '../../app/ports';
import type { IncidentInput, WorkflowResume } from '../../contracts/workflow';

/** Where the adapter reports swallowed late completions (Powertools Logger fits). */
export interface WorkflowLogger {
  warn(message: string, ...extra: Record<string, unknown>[]): void;
}

export interface SfnWorkflowOptions {
  readonly client: SFNClient;
  /** Needed only to start executions: failover-steps cannot know it (it would be a circular reference in CFN). */
  readonly stateMachineArn?: string;
  readonly logger?: WorkflowLogger;
}

const MAX_NAME = 80;
const NAME_UNSAFE = /[^A-Za-z0-9_-]/g;
// Step Functions' limits on SendTaskFailure (characters).
const MAX_ERROR = 256;
const MAX_CAUSE = 32_768;

/**
 * Execution name for an incident: Step Functions names allow ≤ 80 chars of [A-Za-z0-9-_]. Ids that already
 * fit are used as they are (readable in the console); others map '.' (and anything else) to '_' and get a
 * short hash of the original, so that `h.1` and `h_1` never share an execution.
 */
export function executionName(incidentId: string): string {
  const safe = incidentId.replace(NAME_UNSAFE, '_');
  if (safe === incidentId && safe.length <= MAX_NAME && safe.length > 0) return safe;
  const suffix = createHash('sha256').update(incidentId, 'utf8').digest('hex').slice(0, 8);
  return `${safe.slice(0, MAX_NAME - suffix.length - 1)}-${suffix}`;
}

/**
 * Execution name of the execution that resumes an incident's failover at `resume`: one per incident and
 * resume point, so that a repeated resume finds the same execution.
 */
export function resumeExecutionName(incidentId: string, resume: WorkflowResume['resume']): string {
  return executionName(`${incidentId}:${resume}`);
}

/** Execution ARN of `name` under a state machine ARN (`…:stateMachine:X` → `…:execution:X:name`). */
export function executionArnFor(stateMachineArn: string, name: string): string {
  const parts = stateMachineArn.split(':');
  const machine = parts[6];
  if (parts.length < 7 || parts[5] !== 'stateMachine' || !machine) {
    throw new Error(`not a state machine ARN: ${stateMachineArn}`);
  }
  return [...parts.slice(0, 5), 'execution', machine, name].join(':');
}

/** Errors meaning the callback task already ended (timed out, finished, or its execution stopped). */
function isTaskGone(error: unknown): boolean {
  return error instanceof TaskTimedOut || error instanceof TaskDoesNotExist || error instanceof InvalidToken;
}

/** WorkflowPort over Step Functions: one execution per incident, callback tasks completed by token. */
export class SfnWorkflow implements WorkflowPort {
  private readonly client: SFNClient;
  private readonly stateMachineArn: string | undefined;
  private readonly logger: WorkflowLogger | undefined;

  constructor(options: SfnWorkflowOptions) {
    this.client = options.client;
    this.stateMachineArn = options.stateMachineArn;
    this.logger = options.logger;
    // Validate at construction (cold start), not at the first incident.
    if (this.stateMachineArn !== undefined) executionArnFor(this.stateMachineArn, 'probe');
  }

  async startIncident(input: IncidentInput): Promise<{ executionArn: string }> {
    const stateMachineArn = this.requireArn();
    return this.start(stateMachineArn, executionName(input.incidentId), { incident: input });
  }

  async resumeIncident(input: IncidentInput, resume: WorkflowResume): Promise<{ executionArn: string }> {
    const stateMachineArn = this.requireArn();
    const name = resumeExecutionName(input.incidentId, resume.resume);
    return this.start(stateMachineArn, name, { incident: input, ...resume });
  }

  private requireArn(): string {
    if (this.stateMachineArn === undefined) {
      throw new Error(
        'SfnWorkflow: no state machine ARN configured in this function, cannot start executions',
      );
    }
    return this.stateMachineArn;
  }

  private async start(
    stateMachineArn: string,
    name: string,
    input: Readonly<Record<string, unknown>>,
  ): Promise<{ executionArn: string }> {
    const existing = executionArnFor(stateMachineArn, name);
    try {
      const out = await this.client.send(
        new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
      );
      return { executionArn: out.executionArn ?? existing };
    } catch (error) {
      // Same name with a different input (e.g. a retried ingest that rebuilt the evidence), or the execution
      // has closed already: the incident has its execution, and a repeated start is never an error.
      if (error instanceof ExecutionAlreadyExists) return { executionArn: existing };
      throw error;
    }
  }

  async sendTaskSuccess(taskToken: string, output: unknown): Promise<void> {
    await this.complete(
      new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output ?? null) }),
      'success',
    );
  }

  async sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void> {
    await this.complete(
      new SendTaskFailureCommand({
        taskToken,
        error: error.slice(0, MAX_ERROR),
        cause: cause.slice(0, MAX_CAUSE),
      }),
      'failure',
    );
  }

  private async complete(
    command: SendTaskSuccessCommand | SendTaskFailureCommand,
    kind: 'success' | 'failure',
  ): Promise<void> {
    try {
      // The union defeats send()'s overloads; each branch is a concrete command.
      if (command instanceof SendTaskSuccessCommand) await this.client.send(command);
      else await this.client.send(command);
    } catch (error) {
      // A late relay result for a task that already ended must not fail the report that carried it.
      if (!isTaskGone(error)) throw error;
      this.logger?.warn('callback task already ended; completion dropped', {
        kind,
        reason: error instanceof Error ? error.name : String(error),
      });
    }
  }
}
