import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConcurrentUpdateError, NotFoundError } from '../../app/errors';
import type { Clock } from '../../app/ports';
import { PK, SK } from './table-definition';

/** What every DynamoDB store needs: the document client, the table and the clock (for TTLs only). */
export interface DynamoContext {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly clock: Clock;
}

/** An item as the document client returns it (attribute values are untyped until mapped). */
export type Item = Record<string, unknown>;

/** A table key. */
export interface Key {
  readonly pk: string;
  readonly sk: string;
}

/** Document client with the marshalling every store relies on (optional fields are left out, not NULL). */
export function createDocumentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** True for the SDK's ConditionalCheckFailedException, however it was constructed. */
export function isConditionalCheckFailed(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err instanceof Error && err.name === 'ConditionalCheckFailedException')
  );
}

/** Marker for a conditional write whose condition did not hold. */
export const CONDITION_FAILED: unique symbol = Symbol('condition-failed');

/** Runs a conditional write, turning only a failed condition into CONDITION_FAILED; other errors propagate. */
export async function unlessConditionFails<T>(write: Promise<T>): Promise<T | typeof CONDITION_FAILED> {
  try {
    return await write;
  } catch (err) {
    if (isConditionalCheckFailed(err)) return CONDITION_FAILED;
    throw err;
  }
}

/** The primary key attributes of an item. */
export function keyOf(key: Key): Item {
  return { [PK]: key.pk, [SK]: key.sk };
}

/** Reads one item, strongly consistent: it is read right before a conditional write or to explain one. */
export async function getItem(ctx: DynamoContext, key: Key): Promise<Item | null> {
  const out = await ctx.client.send(
    new GetCommand({ TableName: ctx.tableName, Key: keyOf(key), ConsistentRead: true }),
  );
  return out.Item ?? null;
}

/** Creates an item unless one with its key exists; false when it did (the idempotent repeat). */
export async function putIfAbsent(ctx: DynamoContext, item: Item): Promise<boolean> {
  const result = await unlessConditionFails(
    ctx.client.send(
      new PutCommand({
        TableName: ctx.tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': PK },
      }),
    ),
  );
  return result !== CONDITION_FAILED;
}

/** Runs a query to its end (following LastEvaluatedKey), stopping once `limit` items are collected. */
export async function queryAll(
  ctx: DynamoContext,
  input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
  limit = Number.POSITIVE_INFINITY,
): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Item | undefined;
  do {
    const out = await ctx.client.send(
      new QueryCommand({ ...input, TableName: ctx.tableName, ExclusiveStartKey: startKey }),
    );
    items.push(...(out.Items ?? []));
    startKey = out.LastEvaluatedKey;
  } while (startKey !== undefined && items.length < limit);
  return items.slice(0, limit);
}

/** Query input for the items of one partition whose sort key starts with `prefix`. */
export function beginsWith(pk: string, prefix: string): Omit<QueryCommandInput, 'TableName'> {
  return {
    KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
    ExpressionAttributeNames: { '#pk': PK, '#sk': SK },
    ExpressionAttributeValues: { ':pk': pk, ':prefix': prefix },
  };
}

/** Parts of an update expression: `#f = :f` per field, with the placeholders they use. */
export interface Assignments {
  readonly expression: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/**
 * `#f = :f` for every field whose value is not undefined (null is written: it clears the field). Field
 * names are attribute names, so each placeholder reads as the attribute it stands for.
 */
export function assignments(fields: Readonly<Record<string, unknown>>): Assignments {
  const parts: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`#${field} = :${field}`);
    names[`#${field}`] = field;
    values[`:${field}`] = value;
  }
  return { expression: parts.join(', '), names, values };
}

/**
 * Optimistic-lock update: sets `fields` and increments `version`, only if `version` still equals
 * `expectedVersion`. Returns the new item; throws NotFoundError for a missing item and
 * ConcurrentUpdateError when the version moved (the item is re-read only on that failure path).
 */
export async function updateVersioned(
  ctx: DynamoContext,
  key: Key,
  expectedVersion: number,
  fields: Readonly<Record<string, unknown>>,
  what: string,
): Promise<Item> {
  const set = assignments(fields);
  const result = await unlessConditionFails(
    ctx.client.send(
      new UpdateCommand({
        TableName: ctx.tableName,
        Key: keyOf(key),
        UpdateExpression: `SET ${set.expression ? `${set.expression}, ` : ''}#version = #version + :one`,
        ConditionExpression: '#version = :expected',
        ExpressionAttributeNames: { ...set.names, '#version': 'version' },
        ExpressionAttributeValues: { ...set.values, ':one': 1, ':expected': expectedVersion },
        ReturnValues: 'ALL_NEW',
      }),
    ),
  );
  if (result === CONDITION_FAILED) {
    const current = await getItem(ctx, key);
    throw versionConflict(current === null ? null : num(current, 'version'), expectedVersion, what);
  }
  return requireAttributes(result.Attributes, what);
}

/** The error for a failed optimistic-lock write, given the version found (null: the item is missing). */
function versionConflict(found: number | null, expected: number, what: string): Error {
  if (found === null) return new NotFoundError(`${what} not found`);
  return new ConcurrentUpdateError(`${what} changed: expected version ${expected}, found ${found}`);
}

/** The item an UpdateItem with ReturnValues ALL_NEW returned. */
export function requireAttributes(attributes: Item | undefined, what: string): Item {
  if (attributes === undefined) throw new Error(`update of ${what} returned no attributes`);
  return attributes;
}

// ---------------------------------------------------------------- typed attribute readers
// Items are written only by these adapters, so a wrong type means a corrupt item: fail loudly.

function corrupt(item: Item, name: string, expected: string): Error {
  return new Error(`item ${String(item[PK])}/${String(item[SK])}: ${name} is not ${expected}`);
}

/** A string attribute. */
export function str(item: Item, name: string): string {
  const value = item[name];
  if (typeof value !== 'string') throw corrupt(item, name, 'a string');
  return value;
}

/** A string attribute that may be null or absent. */
export function strOrNull(item: Item, name: string): string | null {
  const value = item[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw corrupt(item, name, 'a string or null');
  return value;
}

/** A number attribute. */
export function num(item: Item, name: string): number {
  const value = item[name];
  if (typeof value !== 'number') throw corrupt(item, name, 'a number');
  return value;
}

/** A number attribute that may be null or absent. */
export function numOrNull(item: Item, name: string): number | null {
  const value = item[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number') throw corrupt(item, name, 'a number or null');
  return value;
}

/** A boolean attribute. */
export function bool(item: Item, name: string): boolean {
  const value = item[name];
  if (typeof value !== 'boolean') throw corrupt(item, name, 'a boolean');
  return value;
}

/** A boolean attribute that may be null or absent. */
export function boolOrNull(item: Item, name: string): boolean | null {
  const value = item[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'boolean') throw corrupt(item, name, 'a boolean or null');
  return value;
}

/** A map attribute, typed as this adapter wrote it. */
export function map<T extends object>(item: Item, name: string): T {
  const value = item[name];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(item, name, 'a map');
  return value as T;
}

/** A map attribute that may be null or absent. */
export function mapOrNull<T extends object>(item: Item, name: string): T | null {
  const value = item[name];
  return value === undefined || value === null ? null : map<T>(item, name);
}

/** A string-set attribute as a sorted array; DynamoDB drops an emptied set, which reads as []. */
export function stringSet(item: Item, name: string): string[] {
  const value = item[name];
  if (value === undefined) return [];
  if (!(value instanceof Set)) throw corrupt(item, name, 'a string set');
  return [...value].filter((v): v is string => typeof v === 'string').sort();
}
