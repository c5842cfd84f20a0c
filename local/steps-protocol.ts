/** Messages between local/steps-runtime.ts (the control planes' side) and local/steps-worker.ts. */

/** An error as it crosses the thread boundary: what Retry/Catch match on is its name. */
export interface WireError {
  readonly name: string;
  readonly message: string;
}

/** An error as it is sent across. */
export function toWire(thrown: unknown): WireError {
  return thrown instanceof Error
    ? { name: thrown.name, message: thrown.message }
    : { name: 'Error', message: String(thrown) };
}

/** The error a WireError stands for, with its name, as it was thrown on the other side. */
export function fromWire(wire: WireError): Error {
  const error = new Error(wire.message);
  error.name = wire.name;
  return error;
}

/** To the worker. */
export type StepsRequest =
  | {
      readonly type: 'open';
      readonly planeId: number;
      readonly endpoint: string;
      readonly tableName: string;
      /** The control plane's default policy (AppContext.defaults), as plain data. */
      readonly defaults: unknown;
    }
  | { readonly type: 'close'; readonly planeId: number }
  | {
      readonly type: 'invoke';
      readonly planeId: number;
      readonly invocation: number;
      readonly payload: unknown;
    }
  | { readonly type: 'workflow-done'; readonly callId: number; readonly error?: WireError }
  | { readonly type: 'stop' };

/** From the worker. */
export type StepsResponse =
  | { readonly type: 'opened'; readonly planeId: number }
  | {
      readonly type: 'result';
      readonly invocation: number;
      readonly value?: unknown;
      readonly error?: WireError;
    }
  | {
      readonly type: 'workflow';
      readonly planeId: number;
      readonly callId: number;
      readonly method: 'sendTaskSuccess' | 'sendTaskFailure';
      readonly args: readonly unknown[];
    }
  | {
      readonly type: 'metric';
      readonly planeId: number;
      readonly unit: 'count' | 'seconds';
      readonly name: string;
      readonly value: number;
      readonly dimensions: Record<string, string> | undefined;
    }
  | { readonly type: 'stopped' };
