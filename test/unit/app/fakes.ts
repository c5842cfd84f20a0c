import { createHash } from 'node:crypto';
import type { Hasher } from '../../../app/crypto';
import type { Clock, IdGenerator, MetricsPort, WorkflowPort } from '../../../app/ports';
import type { IncidentInput, WorkflowResume } from '../../../contracts/workflow';

/** A clock that stands still until a test moves it. */
export class FakeClock implements Clock {
  constructor(private current: number) {}

  now(): number {
    return this.current;
  }

  advance(ms: number): number {
    this.current += ms;
    return this.current;
  }
}

/** Deterministic ids and secrets: `<prefix>-<n>`, and URL-safe secrets from a seed and a counter. */
export class SeededIds implements IdGenerator {
  private counter = 0;

  constructor(private readonly seed = 'seed') {}

  newId(prefix: string): string {
    this.counter += 1;
    return `${prefix}-${this.counter}`;
  }

  newSecret(): string {
    this.counter += 1;
    return createHash('sha256').update(`${this.seed}:${this.counter}`).digest('base64url');
  }
}

/** sha256 hex, as the production hasher. */
export const testHasher: Hasher = {
  hash: (text) => createHash('sha256').update(text, 'utf8').digest('hex'),
};

/** A completed callback task. */
export type TaskCompletion =
  | { readonly kind: 'success'; readonly token: string; readonly output: unknown }
  | { readonly kind: 'failure'; readonly token: string; readonly error: string; readonly cause: string };

/**
 * Records what the use cases ask of Step Functions. Starting an incident twice keeps one execution, as
 * StartExecution does for the same name.
 */
export class FakeWorkflow implements WorkflowPort {
  readonly executions = new Map<string, IncidentInput>();
  readonly startCalls: IncidentInput[] = [];
  /** Executions that resume a failover, by `<incidentId>:<resume>` (one each, as the execution name). */
  readonly resumes = new Map<string, { readonly input: IncidentInput; readonly resume: WorkflowResume }>();
  readonly completions: TaskCompletion[] = [];
  /** Makes the next startIncident fail, as a Lambda dying mid-way would leave it. */
  failNextStart = false;

  async startIncident(input: IncidentInput): Promise<{ executionArn: string }> {
    this.startCalls.push(input);
    if (this.failNextStart) {
      this.failNextStart = false;
      throw new Error('StartExecution failed (simulated)');
    }
    if (!this.executions.has(input.incidentId)) this.executions.set(input.incidentId, input);
    return { executionArn: executionArnOf(input.incidentId) };
  }

  async resumeIncident(input: IncidentInput, resume: WorkflowResume): Promise<{ executionArn: string }> {
    const key = `${input.incidentId}:${resume.resume}`;
    if (!this.resumes.has(key)) this.resumes.set(key, { input, resume });
    return { executionArn: executionArnOf(key) };
  }

  async sendTaskSuccess(token: string, output: unknown): Promise<void> {
    this.completions.push({ kind: 'success', token, output });
  }

  async sendTaskFailure(token: string, error: string, cause: string): Promise<void> {
    this.completions.push({ kind: 'failure', token, error, cause });
  }

  /** The completion of one task token, if any. */
  completionOf(token: string): TaskCompletion | undefined {
    return this.completions.find((c) => c.token === token);
  }
}

/** The ARN the fake gives an incident's execution. */
export function executionArnOf(incidentId: string): string {
  return `arn:aws:states:eu-west-1:000000000000:execution:halo-failover:${incidentId}`;
}

/** One recorded metric datapoint. */
export interface MetricPoint {
  readonly unit: 'count' | 'seconds';
  readonly name: string;
  readonly value: number;
  readonly dimensions: Record<string, string> | undefined;
}

/** Records every metric datapoint. */
export class FakeMetrics implements MetricsPort {
  readonly points: MetricPoint[] = [];

  count(name: string, value = 1, dimensions?: Record<string, string>): void {
    this.points.push({ unit: 'count', name, value, dimensions });
  }

  seconds(name: string, value: number, dimensions?: Record<string, string>): void {
    this.points.push({ unit: 'seconds', name, value, dimensions });
  }

  /** Sum of a metric's values. */
  total(name: string): number {
    return this.points.filter((p) => p.name === name).reduce((sum, p) => sum + p.value, 0);
  }

  /** The datapoints of one metric. */
  of(name: string): MetricPoint[] {
    return this.points.filter((p) => p.name === name);
  }
}

/**
 * Wraps a store so that every method call is recorded as `<store>.<method>` before it runs: how the tests
 * prove what a use case read and wrote.
 */
export function counted<T extends object>(name: string, store: T, calls: string[]): T {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(`${name}.${String(property)}`);
        return Reflect.apply(value, target, args);
      };
    },
  });
}
