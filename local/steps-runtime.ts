import { Worker } from 'node:worker_threads';
import type { MetricsPort, WorkflowPort } from '../app/ports';
import { workerExecArgv } from './local-threads';
import type { StepsHandler } from './local-workflow';
import { fromWire, type StepsRequest, type StepsResponse, toWire } from './steps-protocol';

/**
 * The failover-steps "Lambda" of local mode: one worker thread per process (local/steps-worker.ts) serves
 * the steps of every local control plane, each with a context of its own (its table, its policy), the way
 * one deployed function serves every execution. Control planes that share a dynalite share the worker.
 *
 * The thread keeps the process alive only while a step is running in it.
 */
export interface StepsRuntime {
  /** Serves a control plane's steps; its callback completions and metrics come back to `workflow`/`metrics`. */
  open(plane: {
    readonly endpoint: string;
    readonly tableName: string;
    readonly defaults: unknown;
    readonly workflow: Pick<WorkflowPort, 'sendTaskSuccess' | 'sendTaskFailure'>;
    readonly metrics: MetricsPort;
  }): Promise<{ readonly handler: StepsHandler; close(): void }>;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

interface PlaneSinks {
  readonly workflow: Pick<WorkflowPort, 'sendTaskSuccess' | 'sendTaskFailure'>;
  readonly metrics: MetricsPort;
}

class WorkerStepsRuntime implements StepsRuntime {
  private readonly pending = new Map<number, Pending>();
  private readonly planes = new Map<number, PlaneSinks>();
  private readonly opening = new Map<number, Pending>();
  private invocationSeq = 0;
  private planeSeq = 0;
  private failure: Error | undefined;

  constructor(
    private readonly worker: Worker,
    private readonly onExit: () => void,
  ) {
    worker.unref();
    worker.on('message', (message: StepsResponse) => this.receive(message));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`the failover-steps worker exited (${code})`)));
  }

  async open(plane: Parameters<StepsRuntime['open']>[0]): ReturnType<StepsRuntime['open']> {
    if (this.failure !== undefined) throw this.failure;
    this.planeSeq += 1;
    const planeId = this.planeSeq;
    this.planes.set(planeId, { workflow: plane.workflow, metrics: plane.metrics });
    const opened = new Promise<unknown>((resolve, reject) => this.opening.set(planeId, { resolve, reject }));
    this.send({
      type: 'open',
      planeId,
      endpoint: plane.endpoint,
      tableName: plane.tableName,
      defaults: JSON.parse(JSON.stringify(plane.defaults ?? {})),
    });
    this.refIfBusy();
    try {
      await opened;
    } finally {
      this.refIfBusy();
    }
    return {
      handler: (payload) => this.invoke(planeId, payload),
      close: () => {
        this.planes.delete(planeId);
        if (this.failure === undefined) this.send({ type: 'close', planeId });
      },
    };
  }

  private invoke(planeId: number, payload: unknown): Promise<unknown> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.invocationSeq += 1;
    const invocation = this.invocationSeq;
    const result = new Promise<unknown>((resolve, reject) =>
      this.pending.set(invocation, { resolve, reject }),
    );
    this.send({ type: 'invoke', planeId, invocation, payload });
    this.refIfBusy();
    return result;
  }

  private receive(message: StepsResponse): void {
    switch (message.type) {
      case 'opened':
        this.opening.get(message.planeId)?.resolve(undefined);
        this.opening.delete(message.planeId);
        return;
      case 'result': {
        const pending = this.pending.get(message.invocation);
        this.pending.delete(message.invocation);
        if (message.error === undefined) pending?.resolve(message.value);
        else pending?.reject(fromWire(message.error));
        this.refIfBusy();
        return;
      }
      case 'workflow': {
        const sinks = this.planes.get(message.planeId);
        const [token, ...rest] = message.args as [string, ...unknown[]];
        const call =
          sinks === undefined
            ? Promise.reject(new Error(`control plane ${message.planeId} is closed`))
            : message.method === 'sendTaskSuccess'
              ? sinks.workflow.sendTaskSuccess(token, rest[0])
              : sinks.workflow.sendTaskFailure(token, String(rest[0]), String(rest[1]));
        call.then(
          () => this.send({ type: 'workflow-done', callId: message.callId }),
          (error: unknown) =>
            this.send({ type: 'workflow-done', callId: message.callId, error: toWire(error) }),
        );
        return;
      }
      case 'metric': {
        const sinks = this.planes.get(message.planeId);
        if (message.unit === 'count') sinks?.metrics.count(message.name, message.value, message.dimensions);
        else sinks?.metrics.seconds(message.name, message.value, message.dimensions);
        return;
      }
      case 'stopped':
        return;
      default:
        unreachable(message);
    }
  }

  private send(message: StepsRequest): void {
    this.worker.postMessage(message);
  }

  /** Held open while a step runs or a control plane opens, released when the worker has nothing to do. */
  private refIfBusy(): void {
    if (this.pending.size > 0 || this.opening.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  /** The thread is gone: every step still waiting fails, and the next control plane gets a new thread. */
  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const pending of [...this.pending.values(), ...this.opening.values()]) pending.reject(error);
    this.pending.clear();
    this.opening.clear();
    this.onExit();
  }
}

function unreachable(value: never): never {
  throw new Error(`unknown message from the steps worker: ${JSON.stringify(value)}`);
}

let shared: WorkerStepsRuntime | undefined;

/** The process's steps runtime, started on first use (and again if its thread died). */
export function sharedStepsRuntime(): StepsRuntime {
  if (shared === undefined) {
    const worker = new Worker(new URL('./steps-worker.ts', import.meta.url), { execArgv: workerExecArgv() });
    const runtime: WorkerStepsRuntime = new WorkerStepsRuntime(worker, () => {
      if (shared === runtime) shared = undefined;
    });
    shared = runtime;
  }
  return shared;
}
