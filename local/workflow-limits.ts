/**
 * Step Functions' limits that aws-local-stepfunctions does not enforce, measured on a local execution's
 * event log (local/local-workflow.ts keeps one per execution), so that tests and the simulator can hold
 * the failover workflow to them:
 * - 256 KiB of UTF-8 JSON as the input or output of any state (States.DataLimitExceeded past it);
 * - 25,000 events in one execution's history (the execution fails past it);
 * - an inline Map runs at most 40 iterations at once, whatever its MaxConcurrency.
 * docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
 */

/** The quotas, as AWS documents them for Standard workflows. */
export const STEP_FUNCTIONS_LIMITS = {
  statePayloadBytes: 256 * 1024,
  historyEvents: 25_000,
  inlineMapConcurrency: 40,
} as const;

/** The local runner's state types (its `state.type` on state events). */
type StateType = 'Task' | 'Map' | 'Parallel' | 'Pass' | 'Wait' | 'Choice' | 'Succeed' | 'Fail' | string;

/** The part of a runner event the limits look at (aws-local-stepfunctions' EventLog, loosely typed). */
export interface RunnerEvent {
  readonly type: string;
  readonly state?: {
    readonly name: string;
    readonly type: StateType;
    readonly input?: unknown;
    readonly output?: unknown;
  };
}

/** What one execution used of the limits so far. */
export interface WorkflowUsage {
  /** The largest input or output of any state, in bytes of UTF-8 JSON, and whose it was. */
  readonly largestPayloadBytes: number;
  readonly largestPayloadState: string | null;
  /**
   * History events AWS would have recorded for the same run: an upper bound built from the runner's log
   * (historyEventsOf), since the runner logs per state, not per API event.
   */
  readonly historyEvents: number;
}

/** An empty usage, for an execution that has logged nothing yet. */
export const NO_USAGE: WorkflowUsage = {
  largestPayloadBytes: 0,
  largestPayloadState: null,
  historyEvents: 0,
};

/** Bytes of a value as Step Functions sizes it: its JSON text in UTF-8. */
export function payloadBytes(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/**
 * AWS history events one runner event stands for. AWS records, per Task attempt, Scheduled, Started and
 * Succeeded/Failed/TimedOut (and Submitted for a `.waitForTaskToken` Task), around the state's Entered and
 * Exited; a Map or Parallel adds Started and Succeeded/Failed to its Entered and Exited, and a Map each
 * iteration's Started and Succeeded/Failed. Every other state is Entered and Exited. The runner logs a state
 * once Entered and once Exited however many attempts it took, with a Failed per failed attempt and a
 * Retried before each retry. Counting the callback's Submitted for every Task keeps this an upper bound.
 */
export function historyEventsOf(event: RunnerEvent): number {
  const kind = event.state?.type;
  switch (event.type) {
    case 'ExecutionStarted':
    case 'ExecutionSucceeded':
    case 'ExecutionFailed':
    case 'ExecutionAborted':
    case 'ExecutionTimeout':
    case 'MapIterationStarted':
    case 'MapIterationSucceeded':
    case 'MapIterationFailed':
    case 'ParallelBranchStarted':
    case 'ParallelBranchSucceeded':
    case 'ParallelBranchFailed':
      return 1;
    case 'StateEntered':
      // Task: Entered, Scheduled, Started, Submitted. Map/Parallel: Entered, Started.
      return kind === 'Task' ? 4 : kind === 'Map' || kind === 'Parallel' ? 2 : 1;
    case 'StateExited':
      // Task: Succeeded, Exited. Map/Parallel: Succeeded, Exited.
      return kind === 'Task' || kind === 'Map' || kind === 'Parallel' ? 2 : 1;
    case 'StateFailed':
      // An attempt's Failed or TimedOut (the runner logs it before retrying or catching).
      return 1;
    case 'StateRetried':
      // The next attempt's Scheduled, Started and Submitted.
      return 3;
    case 'StateCaught':
      // The state's Exited follows as a StateExited of its own.
      return 0;
    default:
      return 1;
  }
}

/** Folds one runner event into an execution's usage. */
export function addUsage(usage: WorkflowUsage, event: RunnerEvent): WorkflowUsage {
  let largestPayloadBytes = usage.largestPayloadBytes;
  let largestPayloadState = usage.largestPayloadState;
  const state = event.state;
  if (state !== undefined && (event.type === 'StateEntered' || event.type === 'StateExited')) {
    const bytes = payloadBytes(event.type === 'StateEntered' ? state.input : state.output);
    if (bytes > largestPayloadBytes) {
      largestPayloadBytes = bytes;
      largestPayloadState = `${state.name} (${event.type === 'StateEntered' ? 'input' : 'output'})`;
    }
  }
  return {
    largestPayloadBytes,
    largestPayloadState,
    historyEvents: usage.historyEvents + historyEventsOf(event),
  };
}

/** The limits a usage breaks, in words; empty when it breaks none. */
export function limitsBroken(usage: WorkflowUsage): string[] {
  const broken: string[] = [];
  if (usage.largestPayloadBytes > STEP_FUNCTIONS_LIMITS.statePayloadBytes) {
    broken.push(
      `state payload of ${usage.largestPayloadBytes} bytes at ${usage.largestPayloadState} is above ` +
        `${STEP_FUNCTIONS_LIMITS.statePayloadBytes} (States.DataLimitExceeded)`,
    );
  }
  if (usage.historyEvents > STEP_FUNCTIONS_LIMITS.historyEvents) {
    broken.push(
      `${usage.historyEvents} history events are above ${STEP_FUNCTIONS_LIMITS.historyEvents} per execution`,
    );
  }
  return broken;
}

/** Every Map state of an ASL definition (item processors included) with its MaxConcurrency (0: unset). */
export function mapConcurrencies(states: Readonly<Record<string, unknown>>): Record<string, number> {
  const found: Record<string, number> = {};
  const visit = (all: Readonly<Record<string, unknown>>) => {
    for (const [name, raw] of Object.entries(all)) {
      if (typeof raw !== 'object' || raw === null) continue;
      const state = raw as Record<string, unknown>;
      if (state.Type === 'Map') {
        found[name] = typeof state.MaxConcurrency === 'number' ? state.MaxConcurrency : 0;
      }
      const processor = state.ItemProcessor as { States?: Record<string, unknown> } | undefined;
      if (processor?.States !== undefined) visit(processor.States);
      const branches = state.Branches as { States?: Record<string, unknown> }[] | undefined;
      for (const branch of branches ?? []) if (branch.States !== undefined) visit(branch.States);
    }
  };
  visit(states);
  return found;
}
