import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { createDocumentClient, createTableInput } from '../adapters/dynamodb';

/** An in-memory dynalite server in this process, with SDK clients pointed at it. */
export interface LocalDynalite {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** The plain client (control-plane calls, raw reads). */
  readonly raw: DynamoDBClient;
  /** Document client configured as the stores expect (createDocumentClient). */
  readonly client: DynamoDBDocumentClient;
  /** Creates a table from the one table definition and waits until it is ACTIVE. */
  createTable(name: string): Promise<void>;
  /** Destroys the clients and closes the server; calling it again is harmless. */
  stop(): Promise<void>;
}

const ACTIVE_POLL_MS = 10;
const ACTIVE_TIMEOUT_MS = 10_000;

/** Starts dynalite in memory on 127.0.0.1 and a free port; tables become ACTIVE at once. */
export async function startDynalite(): Promise<LocalDynalite> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  // dynalite checks only that a signature is present: any credentials do, and none are looked up.
  const raw = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const client = createDocumentClient(raw);

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

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      raw.destroy();
      // Keep-alive sockets of the SDK's agent would otherwise hold close() open.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    })();
    return stopped;
  };

  return { endpoint, raw, client, createTable, stop };
}
