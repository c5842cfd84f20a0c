import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  type QueryCommandInput,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-dynamodb';
import type { BuildMiddleware, InitializeMiddleware } from '@smithy/types';

/**
 * What a report costs in DynamoDB, counted on the wire of a real client: calls by operation, write and read
 * units from the item sizes actually stored or returned (DynamoDB's sizing rules), and HTTP body bytes.
 *
 * Sizing: docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html.
 * On-demand units: a write is 1 WRU per started KB of the larger of the item before and after; a read is
 * 1 RRU per started 4 KB, half for an eventually consistent read; a Query sums its items first.
 */

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/** Bytes of a number: 1 per two significant digits (leading and trailing zeros trimmed), plus 1. */
export function numberSize(n: string): number {
  const digits = n
    .replace(/^[-+]/, '')
    .replace(/[eE].*$/, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** Bytes of one attribute value (without its name). */
export function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + utf8(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, b) => sum + b.length, 0);
  // List and map: 3 bytes of overhead plus 1 per element; a map element also counts its name.
  if (value.L !== undefined) return 3 + value.L.reduce((sum, v) => sum + 1 + valueSize(v), 0);
  if (value.M !== undefined) {
    return 3 + Object.entries(value.M).reduce((sum, [name, v]) => sum + 1 + utf8(name) + valueSize(v), 0);
  }
  throw new Error(`unsized attribute value ${JSON.stringify(value)}`);
}

/** Bytes of an item: attribute names plus values. */
export function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}

/** Write units of a write whose item was `before` bytes (0: absent) and is `after` bytes (0: deleted). */
export function writeUnits(before: number, after: number): number {
  return Math.max(1, Math.ceil(Math.max(before, after) / 1024));
}

/** Read units of one Query/GetItem call that returned `bytes` of items. */
export function readUnits(bytes: number, consistent: boolean): number {
  const fourKb = Math.max(1, Math.ceil(bytes / 4096));
  return consistent ? fourKb : fourKb / 2;
}

/** The DynamoDB API name of a command (`UpdateCommand` of lib-dynamodb → `UpdateItem`). */
export function operationOf(commandName: string): string {
  const bare = commandName.replace(/Command$/, '');
  const documentNames: Record<string, string> = {
    Get: 'GetItem',
    Put: 'PutItem',
    Update: 'UpdateItem',
    Delete: 'DeleteItem',
    BatchGet: 'BatchGetItem',
    BatchWrite: 'BatchWriteItem',
  };
  return documentNames[bare] ?? bare;
}

/** One call as the recorder saw it (document-client shapes: what the stores send and receive). */
export interface RecordedCall {
  readonly operation: string;
  readonly input: Record<string, unknown>;
  readonly output: Record<string, unknown>;
  /** Set when accounting: write units (writes), read units and bytes read (reads). */
  wru?: number;
  itemBytesBefore?: number;
  itemBytesAfter?: number;
  rru?: number;
  bytesRead?: number;
  /** dynalite's own ConsumedCapacity, when asked for (a cross-check of the sizing above). */
  dynaliteUnits?: number;
  requestBytes?: number;
  responseBytes?: number;
}

/** How much the recorder does on each call. */
export interface RecorderMode {
  /** Probe item sizes before/after writes and re-read query pages raw (extra calls on the probe client). */
  accounting: boolean;
  /** Ask the store for ConsumedCapacity (changes the request by a few bytes: not with `accounting`). */
  consumedCapacity: boolean;
  /** Keep each call's input and output (for replay); off, only the operation is kept. */
  retain: boolean;
}

type In = ServiceInputTypes;
type Out = ServiceOutputTypes;
type Key = Record<string, AttributeValue>;

const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);

/** A document-level value of a key or an expression value, as the stores use them: strings and numbers. */
function marshalSimple(value: unknown): AttributeValue {
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  throw new Error(`the probe marshals only strings, numbers and booleans, not ${JSON.stringify(value)}`);
}

function marshalMap(map: unknown): Record<string, AttributeValue> | undefined {
  if (map === undefined) return undefined;
  return Object.fromEntries(
    Object.entries(map as Record<string, unknown>).map(([k, v]) => [k, marshalSimple(v)]),
  );
}

/**
 * Records every call made through `client` (attach before handing the client to the code under test) and,
 * in accounting mode, sizes what each call wrote or read with a second, unrecorded client on the same table.
 */
export class DynamoRecorder {
  readonly calls: RecordedCall[] = [];
  mode: RecorderMode = { accounting: false, consumedCapacity: false, retain: false };
  private readonly wire = new WeakMap<object, { request?: number; response?: number }>();

  constructor(
    client: DynamoDBClient,
    private readonly probe: DynamoDBClient,
    private readonly tableName: string,
  ) {
    const record: InitializeMiddleware<In, Out> = (next, context) => async (args) => {
      const operation = operationOf(context.commandName ?? 'unknown');
      const asked = this.mode.consumedCapacity;
      const input: Record<string, unknown> = {
        ...(args.input as unknown as Record<string, unknown>),
        ...(asked ? { ReturnConsumedCapacity: 'TOTAL' } : {}),
      };
      const key = WRITES.has(operation) ? this.keyOf(input) : undefined;
      const before = this.mode.accounting && key !== undefined ? await this.sizeOf(key) : 0;
      const result = await next({ ...args, input: input as unknown as In });
      const output = result.output as unknown as Record<string, unknown>;
      const kept = this.mode.retain || this.mode.accounting;
      const call: RecordedCall = kept ? { operation, input, output } : { operation, input: {}, output: {} };
      if (this.mode.accounting) {
        if (key !== undefined) {
          const after = await this.sizeOf(key);
          call.itemBytesBefore = before;
          call.itemBytesAfter = after;
          call.wru = writeUnits(before, after);
        }
        if (operation === 'Query') {
          call.bytesRead = await this.queryBytes(input, output);
          call.rru = readUnits(call.bytesRead, input.ConsistentRead === true);
        }
        if (operation === 'GetItem') {
          const item = output.Item === undefined ? 0 : await this.sizeOf(this.keyOf(input));
          call.bytesRead = item;
          call.rru = readUnits(item, input.ConsistentRead === true);
        }
        const wire = this.wire.get(context);
        call.requestBytes = wire?.request;
        call.responseBytes = wire?.response;
      }
      const consumed = output.ConsumedCapacity as { CapacityUnits?: number } | undefined;
      if (consumed?.CapacityUnits !== undefined) call.dynaliteUnits = consumed.CapacityUnits;
      this.calls.push(call);
      return result;
    };
    // Build step: the serialized HTTP request and, on the way back, the raw response's length.
    const measureWire: BuildMiddleware<In, Out> = (next, context) => async (args) => {
      // The body is a string-like adapter by now; its content-length header is set.
      const request = (args as { request?: { body?: unknown; headers?: Record<string, string> } }).request;
      const length = request?.headers?.['content-length'];
      const body = request?.body;
      const entry: { request?: number; response?: number } = {
        request: length !== undefined ? Number(length) : body === undefined ? undefined : utf8(String(body)),
      };
      this.wire.set(context, entry);
      const result = await next(args);
      const headers = (result.response as { headers?: Record<string, string> } | undefined)?.headers ?? {};
      const received = headers['content-length'] ?? headers['Content-Length'];
      entry.response = received === undefined ? undefined : Number(received);
      return result;
    };
    client.middlewareStack.add(record, { step: 'initialize', name: 'benchRecorder', priority: 'high' });
    client.middlewareStack.add(measureWire, { step: 'build', name: 'benchWire', priority: 'low' });
  }

  /** Calls recorded from here on. */
  mark(): number {
    return this.calls.length;
  }

  since(mark: number): RecordedCall[] {
    return this.calls.slice(mark);
  }

  private keyOf(input: Record<string, unknown>): Key {
    const raw = (input.Key ?? pickKey(input.Item)) as Record<string, unknown> | undefined;
    if (raw === undefined) throw new Error('a write without Key or Item');
    return marshalMap(raw) as Key;
  }

  private async sizeOf(key: Key): Promise<number> {
    const out = await this.probe.send(
      new GetItemCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }),
    );
    return out.Item === undefined ? 0 : itemSize(out.Item);
  }

  /** The raw bytes of the items one query page returned: the same page, read again on the probe client. */
  private async queryBytes(input: Record<string, unknown>, output: Record<string, unknown>): Promise<number> {
    const raw: QueryCommandInput = {
      ...(input as unknown as QueryCommandInput),
      TableName: this.tableName,
      ExpressionAttributeValues: marshalMap(input.ExpressionAttributeValues),
      ExclusiveStartKey: marshalMap(input.ExclusiveStartKey),
      ReturnConsumedCapacity: undefined,
    };
    const page = await this.probe.send(new QueryCommand(raw));
    const bytes = (page.Items ?? []).reduce((sum, item) => sum + itemSize(item), 0);
    const returned = (output.Items as unknown[] | undefined)?.length ?? 0;
    if ((page.Items ?? []).length !== returned) {
      throw new Error(`probe query returned ${page.Items?.length} items, the call ${returned}`);
    }
    return bytes;
  }
}

function pickKey(item: unknown): Record<string, unknown> | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const { pk, sk } = item as Record<string, unknown>;
  return { pk, sk };
}

/** Per-report totals of a set of calls. */
export interface CallSummary {
  readonly byOperation: Readonly<Record<string, number>>;
  readonly calls: number;
  readonly writes: number;
  readonly wru: number;
  readonly rru: number;
  /** Largest item size a write touched (before or after), bytes. */
  readonly largestWrittenItem: number;
  readonly bytesRead: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly dynaliteUnits: number;
}

/** Sums calls into per-report figures (`reports` reports made them). */
export function summarize(calls: readonly RecordedCall[], reports: number): CallSummary {
  const byOperation: Record<string, number> = {};
  let writes = 0;
  let wru = 0;
  let rru = 0;
  let largest = 0;
  let bytesRead = 0;
  let requestBytes = 0;
  let responseBytes = 0;
  let dynaliteUnits = 0;
  for (const c of calls) {
    byOperation[c.operation] = (byOperation[c.operation] ?? 0) + 1;
    if (WRITES.has(c.operation)) writes += 1;
    wru += c.wru ?? 0;
    rru += c.rru ?? 0;
    largest = Math.max(largest, c.itemBytesBefore ?? 0, c.itemBytesAfter ?? 0);
    bytesRead += c.bytesRead ?? 0;
    requestBytes += c.requestBytes ?? 0;
    responseBytes += c.responseBytes ?? 0;
    dynaliteUnits += c.dynaliteUnits ?? 0;
  }
  const per = (n: number) => n / reports;
  return {
    byOperation: Object.fromEntries(Object.entries(byOperation).map(([op, n]) => [op, per(n)])),
    calls: per(calls.length),
    writes: per(writes),
    wru: per(wru),
    rru: per(rru),
    largestWrittenItem: largest,
    bytesRead: per(bytesRead),
    requestBytes: per(requestBytes),
    responseBytes: per(responseBytes),
    dynaliteUnits: per(dynaliteUnits),
  };
}

/** `Query 1, UpdateItem 1` */
export function describeCalls(byOperation: Readonly<Record<string, number>>): string {
  return Object.entries(byOperation)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, n]) => `${op} ${Number.isInteger(n) ? n : n.toFixed(2)}`)
    .join(', ');
}
