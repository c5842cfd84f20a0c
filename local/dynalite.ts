import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { createTableInput } from '../adapters/dynamodb';
import { localDynamoClients, workerExecArgv } from './local-threads';

/** An in-memory dynalite server (in this process or on a worker thread), with SDK clients pointed at it. */
export interface LocalDynalite {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** The plain client (control-plane calls, raw reads). */
  readonly raw: DynamoDBClient;
  /** Document client configured as the stores expect (createDocumentClient). */
  readonly client: DynamoDBDocumentClient;
  /** Creates a table from the one table definition and waits until it is ACTIVE. */
  createTable(name: string): Promise<void>;
  /**
   * Deletes a table and its items (a run that shared this server is over) and waits until it is gone; an
   * absent one is fine.
   */
  deleteTable(name: string): Promise<void>;
  /** Destroys the clients and closes the server; calling it again is harmless. */
  stop(): Promise<void>;
}

const ACTIVE_POLL_MS = 10;
const ACTIVE_TIMEOUT_MS = 10_000;

/** Options of {@link startDynalite}. */
export interface DynaliteOptions {
  /**
   * Where the server runs: `'worker'` puts it on a thread of its own, so that its CPU work runs beside the
   * caller's instead of queueing on the same event loop (the local control plane's choice); `'inline'`
   * (the default) keeps it in this thread, which is cheaper to start for a test that only needs a table.
   */
  readonly thread?: 'inline' | 'worker';
}

/** A listening dynalite server and how to close it. */
interface Server {
  readonly port: number;
  close(): Promise<void>;
}

async function inlineServer(): Promise<Server> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => {
      // Keep-alive sockets of the SDK's agent would otherwise hold close() open.
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

async function workerServer(): Promise<Server> {
  const worker = new Worker(new URL('./dynalite-worker.ts', import.meta.url), {
    execArgv: workerExecArgv(),
    workerData: { host: '127.0.0.1' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`dynalite worker exited (${code}) before listening`)));
    worker.once('message', (message: { port?: number; error?: string }) => {
      if (typeof message.port === 'number') resolve(message.port);
      else reject(new Error(`dynalite worker: ${message.error ?? 'no port'}`));
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  worker.removeAllListeners();
  // An error on the thread after start-up shows as failed requests; the listener keeps it from crashing us.
  worker.on('error', () => {});
  return {
    port,
    close: async () => {
      const stopped = new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.once('exit', () => resolve());
      });
      worker.postMessage('stop');
      await stopped;
      await worker.terminate();
    },
  };
}

/** Starts dynalite in memory on 127.0.0.1 and a free port; tables become ACTIVE at once. */
export async function startDynalite(options: DynaliteOptions = {}): Promise<LocalDynalite> {
  const server = options.thread === 'worker' ? await workerServer() : await inlineServer();
  const { port } = server;
  const endpoint = `http://127.0.0.1:${port}`;
  const { raw, client } = localDynamoClients(endpoint);

  const createTable = async (name: string): Promise<void> => {
    await raw.send(new CreateTableCommand(createTableInput(name)));
    const deadline = Date.now() + ACTIVE_TIMEOUT_MS;
    for (;;) {
      const { Table } = await raw.send(new DescribeTableCommand({ TableName: name }));
      if (Table?.TableStatus === 'ACTIVE') return;
      if (Date.now() > deadline) throw new Error(`table ${name} not ACTIVE after ${ACTIVE_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, ACTIVE_POLL_MS));
    }
  };

  const gone = (error: unknown): boolean =>
    error instanceof Error && error.name === 'ResourceNotFoundException';
  const deleteTable = async (name: string): Promise<void> => {
    try {
      await raw.send(new DeleteTableCommand({ TableName: name }));
    } catch (error) {
      if (gone(error)) return;
      throw error;
    }
    // DeleteTable answers while the table is DELETING (dynalite drops it a timer later, as DynamoDB does
    // some time later): like CreateTable's ACTIVE, its end is awaited, so that the table is gone once this
    // resolves, however busy the machine.
    const deadline = Date.now() + ACTIVE_TIMEOUT_MS;
    for (;;) {
      try {
        await raw.send(new DescribeTableCommand({ TableName: name }));
      } catch (error) {
        if (gone(error)) return;
        throw error;
      }
      if (Date.now() > deadline) throw new Error(`table ${name} not deleted after ${ACTIVE_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, ACTIVE_POLL_MS));
    }
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      raw.destroy();
      await server.close();
    })();
    return stopped;
  };

  return { endpoint, raw, client, createTable, deleteTable, stop };
}
