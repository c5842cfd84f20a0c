import { parentPort } from 'node:worker_threads';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDynamoStores } from '../adapters/dynamodb';
import { CryptoIds } from '../adapters/node/crypto-ids';
import { Sha256Hasher } from '../adapters/node/sha256-hasher';
import { SystemClock } from '../adapters/node/system-clock';
import type { AppContext } from '../app/context';
import type { MetricsPort, WorkflowPort } from '../app/ports';
import { makeFailoverStepsHandler } from '../functions/failover-steps/failover-steps';
import { localDynamoClients } from './local-threads';
import { fromWire, type StepsRequest, type StepsResponse, toWire } from './steps-protocol';

/**
 * The failover-steps Lambda of local mode, on a thread of its own (local/steps-runtime.ts): as in AWS, the
 * steps share no memory with the ingest and operator handlers, only the table, through a DynamoDB client of
 * their own. Their CPU work (the handlers and the SDK calls) runs beside the main thread's, which serves the
 * HTTP endpoint, the runner and a simulated site. Callback completions and metrics go back to the control
 * plane they belong to as messages.
 */
if (parentPort === null) throw new Error('local/steps-worker.ts runs only as a worker thread');
const port = parentPort;

interface Plane {
  readonly handler: (event: unknown) => Promise<unknown>;
}

const planes = new Map<number, Plane>();
/** One client per dynalite endpoint: control planes sharing a server share its sockets, as one process would. */
const clients = new Map<string, DynamoDBDocumentClient>();
const pendingCalls = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
let callSeq = 0;

function post(message: StepsResponse): void {
  port.postMessage(message);
}

function clientFor(endpoint: string): DynamoDBDocumentClient {
  let client = clients.get(endpoint);
  if (client === undefined) {
    client = localDynamoClients(endpoint).client;
    clients.set(endpoint, client);
  }
  return client;
}

/** A workflow call made by a step (a result that came before the token), answered by the control plane. */
function callWorkflow(
  planeId: number,
  method: 'sendTaskSuccess' | 'sendTaskFailure',
  args: readonly unknown[],
): Promise<void> {
  callSeq += 1;
  const callId = callSeq;
  return new Promise<void>((resolve, reject) => {
    pendingCalls.set(callId, { resolve, reject });
    post({ type: 'workflow', planeId, callId, method, args });
  });
}

function contextFor(planeId: number, endpoint: string, tableName: string, defaults: unknown): AppContext {
  const clock = new SystemClock();
  const stores = createDynamoStores({ client: clientFor(endpoint), tableName, clock });
  const workflow: WorkflowPort = {
    startIncident: () => Promise.reject(new Error('failover steps never start an incident')),
    // A step answers the wait only while its own token is stored, which completes the task, never resumes.
    resumeIncident: () => Promise.reject(new Error('failover steps never resume an incident')),
    sendTaskSuccess: (token, output) => callWorkflow(planeId, 'sendTaskSuccess', [token, output]),
    sendTaskFailure: (token, error, cause) => callWorkflow(planeId, 'sendTaskFailure', [token, error, cause]),
  };
  const metrics: MetricsPort = {
    count: (name, value, dimensions) =>
      post({ type: 'metric', planeId, unit: 'count', name, value: value ?? 1, dimensions }),
    seconds: (name, value, dimensions) =>
      post({ type: 'metric', planeId, unit: 'seconds', name, value, dimensions }),
  };
  return {
    ports: { ...stores, clock, ids: new CryptoIds(), workflow, metrics },
    hasher: new Sha256Hasher(),
    defaults: defaults as AppContext['defaults'],
  };
}

async function invoke(planeId: number, invocation: number, payload: unknown): Promise<void> {
  const plane = planes.get(planeId);
  try {
    if (plane === undefined) throw new Error(`steps worker: control plane ${planeId} is not open`);
    const value = await plane.handler(payload);
    // Plain data, cloned across; LocalWorkflow turns it into JSON at the Lambda boundary, as for any step.
    post({ type: 'result', invocation, value: value ?? null });
  } catch (thrown) {
    post({ type: 'result', invocation, error: toWire(thrown) });
  }
}

port.on('message', (message: StepsRequest) => {
  switch (message.type) {
    case 'open': {
      const ctx = contextFor(message.planeId, message.endpoint, message.tableName, message.defaults);
      planes.set(message.planeId, { handler: makeFailoverStepsHandler(ctx) });
      post({ type: 'opened', planeId: message.planeId });
      return;
    }
    case 'close':
      planes.delete(message.planeId);
      return;
    case 'invoke':
      void invoke(message.planeId, message.invocation, message.payload);
      return;
    case 'workflow-done': {
      const call = pendingCalls.get(message.callId);
      pendingCalls.delete(message.callId);
      if (message.error === undefined) call?.resolve();
      else call?.reject(fromWire(message.error));
      return;
    }
    case 'stop':
      for (const client of clients.values()) client.destroy();
      clients.clear();
      post({ type: 'stopped' });
      port.close();
      return;
    default:
      unreachable(message);
  }
});

function unreachable(value: never): never {
  throw new Error(`steps worker: unknown message ${JSON.stringify(value)}`);
}
