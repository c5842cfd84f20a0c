import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { z } from 'zod';
import { HaloError, PayloadTooLargeError, ValidationError } from '../../app/errors';
import type { ErrorBody } from '../../contracts/relay-protocol';
import type { HandlerLogger } from './powertools';

/** What every HTTP handler returns (API Gateway HTTP API v2 payload format). */
export type HttpResponse = APIGatewayProxyStructuredResultV2;

/** The body is not JSON (or not UTF-8). An edge-only error: nothing past the edge parses raw bodies. */
export class InvalidJsonError extends HaloError {
  readonly code = 'invalid-json';
  readonly status = 400;
}

// Attacker-controlled text (keys, parser snippets) echoed back is capped, and so is the issue list:
// a 500-host report that is wrong everywhere must not produce a megabyte of errors.
const MAX_MESSAGE = 300;
const MAX_PATH = 200;
const MAX_ISSUES = 20;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);

/** A JSON response. */
export function json(statusCode: number, body: unknown): HttpResponse {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify(body) };
}

/** A 204 with no body. */
export function noContent(): HttpResponse {
  return { statusCode: 204 };
}

/** A request header, looked up case-insensitively (HTTP API lowercases them; the local endpoint may not). */
export function header(event: Pick<APIGatewayProxyEventV2, 'headers'>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}

/**
 * The body as text, refused with 413 when over `maxBytes` before anything is decoded or parsed.
 * Base64 bodies (API Gateway encodes non-text content types) are decoded, and must be valid UTF-8.
 */
export function readBody(
  event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'>,
  maxBytes: number,
): string {
  const raw = event.body ?? '';
  const tooLarge = () => new PayloadTooLargeError(`request body exceeds ${maxBytes} bytes`);
  if (event.isBase64Encoded) {
    // Length of the encoding bounds the decoded size: refuse without decoding.
    if (raw.length > Math.ceil(maxBytes / 3) * 4 + 4) throw tooLarge();
    const bytes = Buffer.from(raw, 'base64');
    if (bytes.length > maxBytes) throw tooLarge();
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new InvalidJsonError('request body is not valid UTF-8');
    }
  }
  // Every UTF-16 code unit is at least one UTF-8 byte, so a long string is refused before it is measured.
  if (raw.length > maxBytes || Buffer.byteLength(raw, 'utf8') > maxBytes) throw tooLarge();
  return raw;
}

/** The body parsed as JSON: 413 when too large, 400 `invalid-json` with the parser's message otherwise. */
export function parseJsonBody(
  event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'>,
  maxBytes: number,
): unknown {
  const text = readBody(event, maxBytes);
  if (text.trim() === '') throw new InvalidJsonError('request body is empty; expected JSON');
  try {
    // JSON.parse turns "__proto__" into an own property, never a prototype; the strict schemas refuse it.
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidJsonError(clip(error instanceof Error ? error.message : String(error), MAX_MESSAGE));
  }
}

/** zod issues as the API reports them: a dotted path (`hosts.0.vms.0.memoryMiB`) and a message. */
export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.slice(0, MAX_ISSUES).map((issue) => ({
    path: clip(issue.path.map(String).join('.'), MAX_PATH),
    message: clip(issue.message, MAX_MESSAGE),
  }));
}

/** Parses `input` with `schema`, or throws a ValidationError (400 `invalid-request`) naming each issue. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = issuesOf(result.error);
  // The message names the first few issues too: Step Functions shows only the message of a failed task.
  const first = issues
    .slice(0, 3)
    .map((i) => `${i.path || '(root)'}: ${i.message}`)
    .join('; ');
  const count = result.error.issues.length;
  throw new ValidationError(`invalid ${what} (${count} issue${count === 1 ? '' : 's'}): ${first}`, issues);
}

/**
 * The one error → response table of the HTTP edge. Named errors carry their own status and code
 * (app/errors.ts), so the table is the class hierarchy itself and cannot drift from it; anything else is a
 * bug or an outage: 500 `internal`, logged, with nothing of its internals in the body.
 */
export function errorResponse(error: unknown, logger: HandlerLogger): HttpResponse {
  if (error instanceof HaloError) {
    const body: ErrorBody = { error: error.code, message: error.message };
    if (error instanceof ValidationError && error.issues.length > 0) body.issues = [...error.issues];
    logger.info('request refused', { status: error.status, code: error.code, errorName: error.name });
    return json(error.status, body);
  }
  logger.error('unhandled error', error instanceof Error ? error : String(error));
  return json(500, { error: 'internal', message: 'internal error' } satisfies ErrorBody);
}
