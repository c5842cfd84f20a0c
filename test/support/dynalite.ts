import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { createDocumentClient } from '../../adapters/dynamodb/dynamo-support';
import { createTableInput } from '../../adapters/dynamodb/table-definition';

/** A dynalite server running in this process, with clients pointed at it. */
export interface LocalDynamo {
  readonly endpoint: string;
  /** Document client configured as the stores expect (createDocumentClient). */
  readonly client: DynamoDBDocumentClient;
  /** The plain client, for control-plane calls and raw item reads. */
  readonly raw: DynamoDBClient;
  /** Creates a table from the one table definition and waits until it is ACTIVE. */
  createTable(name: string): Promise<void>;
  stop(): Promise<void>;
}

const ACTIVE_POLL_MS = 10;
const ACTIVE_TIMEOUT_MS = 10_000;

/** Starts dynalite in-process on 127.0.0.1 and a free port; tables become ACTIVE at once. */
export async function startDynalite(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
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

  const stop = async (): Promise<void> => {
    raw.destroy();
    // Keep-alive sockets of the SDK's agent would otherwise hold close() open.
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  };

  return { endpoint, client, raw, createTable, stop };
}
