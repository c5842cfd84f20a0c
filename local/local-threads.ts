import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../adapters/dynamodb';

/**
 * What local mode's threads share (dynalite's, the failover steps', the main one): how a worker loads
 * TypeScript, and how a thread reaches dynalite. Light on purpose: a worker imports it at start-up.
 */

/** A local worker's module is TypeScript: it runs with tsx's loader, found from this package wherever it runs. */
export function workerExecArgv(): string[] {
  return ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];
}

/** SDK clients for a dynalite endpoint: the plain one, and the document client the stores expect. */
export function localDynamoClients(endpoint: string): {
  raw: DynamoDBClient;
  client: DynamoDBDocumentClient;
} {
  // dynalite checks only that a signature is present: any credentials do, and none are looked up.
  const raw = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return { raw, client: createDocumentClient(raw) };
}
