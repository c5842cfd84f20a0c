import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { AppContext } from '../app/context';
import { OPERATOR_ROUTES, type OperatorRouteName, REPORT_ROUTE } from '../contracts/operator-api';
import type { ErrorBody } from '../contracts/relay-protocol';
import { makeIngestHandler } from '../functions/ingest/ingest';
import { makeOperatorApiHandler, type OperatorApiEvent } from '../functions/operator-api/operator-api';
import type { HttpResponse } from '../functions/shared/http';
import type { HandlerLogger } from '../functions/shared/powertools';
import { bearerMatches } from './local-token';

/**
 * The local stand-in for API Gateway (HTTP API, payload format 2.0): each request becomes the event API
 * Gateway would deliver, handed to the same handler factories the Lambdas wrap.
 *
 * SECURITY: there is no SigV4 here. Every operator request that passes the socket-level checks is given
 * one fixed IAM identity ({@link LOCAL_OPERATOR_ARN}), as if the IAM authorizer had accepted it. Those
 * checks ({@link localRefusal}) keep the endpoint from being an open door to anything that can make the
 * machine send a request, a web page in a browser above all: it listens on loopback only; it answers only
 * a loopback `Host` with its own port (DNS rebinding: 421) and no `Origin` but its own (403); operator
 * routes need the local operator token (`Authorization: Bearer`, local/local-token.ts: 401) and a JSON
 * body to be sent as `application/json` (a cross-origin "simple" POST can only be text/plain, a form or
 * multipart: 415). The relay report route keeps its own credential. The in-process dispatcher of the
 * simulator has no socket and makes none of these checks.
 */

/** The IAM identity every local operator request carries (no SigV4 locally: loopback only). */
export const LOCAL_OPERATOR_ARN = 'arn:aws:iam::000000000000:user/local-operator';

/** Largest body the endpoint reads; larger ones get 413 without being buffered (API Gateway's own cap is 10 MB). */
export const MAX_LOCAL_BODY_BYTES = 1024 * 1024;

/** Route key of the relay ingest route, `POST /v1/reports`. */
export const REPORT_ROUTE_KEY = `${REPORT_ROUTE.method} ${REPORT_ROUTE.path}`;

/** How long close() lets in-flight requests finish before cutting their connections. */
const DRAIN_MS = 5_000;
/** Bytes of a refused upload still read (and discarded) so the client sees the answer, not a reset. */
const DISCARD_LIMIT_BYTES = 4 * MAX_LOCAL_BODY_BYTES;

/** A route the endpoint serves: the relay ingest route or one operator route. */
export type LocalRoute =
  | { readonly kind: 'report' }
  | { readonly kind: 'operator'; readonly name: OperatorRouteName };

interface CompiledRoute {
  readonly route: LocalRoute;
  readonly method: string;
  readonly routeKey: string;
  /** Path segments; `{name}` segments are parameters. */
  readonly segments: readonly string[];
}

/** A request matched to a route: its route key and its (decoded) path parameters. */
export interface RouteMatch {
  readonly route: LocalRoute;
  readonly routeKey: string;
  readonly pathParameters: Readonly<Record<string, string>>;
}

const ROUTES: readonly CompiledRoute[] = [
  {
    route: { kind: 'report' },
    method: REPORT_ROUTE.method,
    routeKey: REPORT_ROUTE_KEY,
    segments: REPORT_ROUTE.path.split('/'),
  },
  ...OPERATOR_ROUTES.map(
    (r): CompiledRoute => ({
      route: { kind: 'operator', name: r.name },
      method: r.method,
      routeKey: `${r.method} ${r.path}`,
      segments: r.path.split('/'),
    }),
  ),
];

const PARAM = /^\{([A-Za-z0-9_]+)\}$/;

/**
 * The route serving `method` and `path` (a raw, still percent-encoded path), as API Gateway matches its
 * route templates: same method, same number of segments, literals equal, parameters non-empty. Null when
 * none matches or a parameter is not valid percent-encoding.
 */
export function matchRoute(method: string, path: string): RouteMatch | null {
  const segments = path.split('/');
  for (const candidate of ROUTES) {
    if (candidate.method !== method || candidate.segments.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let matched = true;
    for (const [i, template] of candidate.segments.entries()) {
      const actual = segments[i] ?? '';
      const param = PARAM.exec(template)?.[1];
      if (param === undefined) {
        if (actual !== template) matched = false;
      } else if (actual === '') {
        matched = false;
      } else {
        try {
          params[param] = decodeURIComponent(actual);
        } catch {
          matched = false;
        }
      }
      if (!matched) break;
    }
    if (matched) return { route: candidate.route, routeKey: candidate.routeKey, pathParameters: params };
  }
  return null;
}

/** What the endpoint knows of a request once its body is read. */
export interface LocalRequest {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  /** As node:http gives them: names lower-cased. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly protocol: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The last second `gatewayTime` formatted, and how: requests come many to a second. */
let formatted = { second: Number.NaN, text: '' };

/** `requestContext.time` as API Gateway writes it: `12/Mar/2020:19:03:58 +0000`. */
function gatewayTime(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== formatted.second) formatted = { second, text: formatGatewayTime(epochMs) };
  return formatted.text;
}

function formatGatewayTime(epochMs: number): string {
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()] ?? 'Jan'}/${d.getUTCFullYear()}:` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
  );
}

/** A fatal UTF-8 decoder keeps no state between whole-buffer decodes: one serves every request. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Valid UTF-8 bytes decode to text; anything else is passed on base64-encoded, as API Gateway does. */
function bodyOf(bytes: Buffer): Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded'> {
  if (bytes.length === 0) return { isBase64Encoded: false };
  try {
    return { body: UTF8.decode(bytes), isBase64Encoded: false };
  } catch {
    // The handler's readBody decodes it again and refuses it as invalid UTF-8, as it would in Lambda.
    return { body: bytes.toString('base64'), isBase64Encoded: true };
  }
}

/**
 * The HTTP API v2 event API Gateway would deliver for `request` on `match`: headers lower-cased with
 * repeated values comma-joined, query parameters likewise, and for operator routes the IAM authorizer's
 * identity ({@link LOCAL_OPERATOR_ARN}).
 */
export function toApiEvent(
  request: LocalRequest,
  match: RouteMatch,
  now: number,
  requestId: string = randomUUID(),
): OperatorApiEvent {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = typeof value === 'string' ? value : value.join(',');
  }
  const query: Record<string, string> = {};
  const pairs = request.rawQueryString === '' ? [] : new URLSearchParams(request.rawQueryString);
  for (const [name, value] of pairs) {
    const previous = query[name];
    query[name] = previous === undefined ? value : `${previous},${value}`;
  }
  const hasQuery = Object.keys(query).length > 0;
  const hasParams = Object.keys(match.pathParameters).length > 0;
  const base: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath: request.rawPath,
    rawQueryString: request.rawQueryString,
    headers,
    ...(hasQuery ? { queryStringParameters: query } : {}),
    ...(hasParams ? { pathParameters: { ...match.pathParameters } } : {}),
    ...bodyOf(request.body),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: request.method,
        path: request.rawPath,
        protocol: request.protocol,
        sourceIp: request.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: match.routeKey,
      stage: '$default',
      time: gatewayTime(now),
      timeEpoch: now,
    },
  };
  if (match.route.kind === 'report') return base;
  return {
    ...base,
    requestContext: { ...base.requestContext, authorizer: { iam: { userArn: LOCAL_OPERATOR_ARN } } },
  };
}

/** What the socket-level checks hold a request to. */
export interface LocalGuard {
  /** The port the endpoint listens on: the only one a `Host` or `Origin` may name. */
  readonly port: number;
  /** The local operator token operator routes must present (local/local-token.ts). */
  readonly operatorToken: string;
  /** Where the token is stored, named in a 401 so the caller knows where to look. */
  readonly tokenFile?: string;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

function headerOf(headers: LocalRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : value?.join(',');
}

/**
 * Why the endpoint refuses a request before reading its body, or null: a `Host` that is not a loopback
 * name with the endpoint's port (421: DNS rebinding, a foreign name resolving to 127.0.0.1), an `Origin`
 * other than the endpoint's own (403: a web page elsewhere), and for operator routes no valid local
 * operator token (401) or a body not declared `application/json` (415).
 */
export function localRefusal(
  request: Pick<LocalRequest, 'headers'>,
  match: RouteMatch,
  guard: LocalGuard,
): HttpResponse | null {
  const allowed = LOOPBACK_NAMES.map((name) => `${name}:${guard.port}`);
  const host = headerOf(request.headers, 'host')?.trim().toLowerCase();
  if (host === undefined || !allowed.includes(host)) {
    return errorJson(
      421,
      'misdirected-request',
      `Host ${JSON.stringify(clip(host ?? ''))} is not this endpoint: local mode answers 127.0.0.1:${guard.port} or localhost:${guard.port} only`,
    );
  }
  const origin = headerOf(request.headers, 'origin');
  if (origin !== undefined && !allowed.some((name) => origin.trim().toLowerCase() === `http://${name}`)) {
    return errorJson(
      403,
      'forbidden-origin',
      `Origin ${JSON.stringify(clip(origin))} may not call the local control plane: only its own origin may`,
    );
  }
  if (match.route.kind === 'report') return null;
  if (!bearerMatches(headerOf(request.headers, 'authorization'), guard.operatorToken)) {
    const where = guard.tokenFile === undefined ? '' : ` (stored in ${guard.tokenFile})`;
    return errorJson(
      401,
      'unauthorized',
      `local operator routes need Authorization: Bearer <the local operator token printed at start${where}>`,
    );
  }
  const length = Number(headerOf(request.headers, 'content-length') ?? '0');
  const hasBody = headerOf(request.headers, 'transfer-encoding') !== undefined || length > 0;
  const type = headerOf(request.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (hasBody && type !== 'application/json') {
    return errorJson(
      415,
      'unsupported-media-type',
      `operator request bodies must be sent as Content-Type: application/json, not ${JSON.stringify(clip(type ?? 'none'))}`,
    );
  }
  return null;
}

const clip = (text: string): string => (text.length > 100 ? `${text.slice(0, 100)}…` : text);

/** Options of {@link startHttpEndpoint}. */
export interface HttpEndpointOptions {
  readonly ctx: AppContext;
  /** Loopback only: see the security note of this module. */
  readonly host: '127.0.0.1';
  /** 0 picks a free port. */
  readonly port: number;
  /** The local operator token operator routes must present. */
  readonly operatorToken: string;
  /** Where that token is stored, named when a request lacks it. */
  readonly tokenFile?: string;
  /** What the handlers log through (refusals, unhandled errors). */
  readonly logger: HandlerLogger;
  /** One line per request (method, path, status, duration). */
  readonly log?: (line: string) => void;
}

/** A running endpoint. */
export interface HttpEndpoint {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish (briefly), closes every connection; idempotent. */
  close(): Promise<void>;
}

type ReadResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false };

/** Reads the body up to `max` bytes; past it, stops collecting (nothing more is buffered). */
function readBody(req: IncomingMessage, max: number): Promise<ReadResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        chunks.length = 0;
        resolve({ ok: false });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve({ ok: true, body: Buffer.concat(chunks) });
    const onError = (error: Error) => reject(error);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function errorJson(status: number, error: string, message: string): HttpResponse {
  const body: ErrorBody = { error, message };
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
    body: JSON.stringify(body),
  };
}

/** Writes a handler's result as API Gateway would: status, headers, cookies, body (base64 decoded). */
function writeResponse(
  res: ServerResponse,
  result: HttpResponse,
  extraHeaders: Record<string, string> = {},
): void {
  const body =
    result.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8');
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  if (result.cookies !== undefined && result.cookies.length > 0) headers['set-cookie'] = [...result.cookies];
  headers['content-length'] = String(body.length);
  res.writeHead(result.statusCode ?? 200, { ...headers, ...extraHeaders });
  res.end(body);
}

/**
 * Answers before the request body is read (unknown route, too large) and closes the connection after.
 * The rest of the upload is read and dropped up to a bound, so that the client gets to read the answer
 * instead of a connection reset; a client that keeps sending past the bound is cut off.
 */
function refuseEarly(req: IncomingMessage, res: ServerResponse, result: HttpResponse): void {
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) req.socket.destroy();
  });
  req.on('error', () => {});
  writeResponse(res, result, { connection: 'close' });
}

/** Options of {@link makeLocalDispatcher}. */
export interface DispatcherOptions {
  readonly ctx: AppContext;
  /** What the handlers log through (refusals, unhandled errors). */
  readonly logger: HandlerLogger;
  /** API Gateway's request id for each event; random UUIDs by default (the simulator seeds its own). */
  readonly requestId?: () => string;
}

/** Serves one request already read: what API Gateway and the Lambda would answer. */
export type LocalDispatcher = (request: LocalRequest) => Promise<HttpResponse>;

/**
 * The endpoint without its socket: route matching, the body cap, the API Gateway event and the handler.
 * The HTTP endpoint serves through it, and the virtual-time simulator calls it in-process (no real I/O).
 */
export function makeLocalDispatcher(options: DispatcherOptions): LocalDispatcher {
  const ingest = makeIngestHandler(options.ctx, options.logger);
  const operator = makeOperatorApiHandler(options.ctx, options.logger);
  const clock = options.ctx.ports.clock;
  const requestId = options.requestId ?? (() => randomUUID());
  return async (request) => {
    const match = matchRoute(request.method, request.rawPath);
    if (match === null) return notFound(request.method, request.rawPath);
    if (request.body.length > MAX_LOCAL_BODY_BYTES) return tooLarge();
    const event = toApiEvent(request, match, clock.now(), requestId());
    return match.route.kind === 'report' ? ingest(event) : operator(event);
  };
}

function notFound(method: string, rawPath: string): HttpResponse {
  // The path is echoed back clipped: it is whatever the client sent.
  const shown = rawPath.length > 200 ? `${rawPath.slice(0, 200)}…` : rawPath;
  return errorJson(404, 'not-found', `no route ${method} ${shown}`);
}

function tooLarge(): HttpResponse {
  return errorJson(413, 'payload-too-large', `request body exceeds ${MAX_LOCAL_BODY_BYTES} bytes`);
}

/** Starts the local endpoint (node:http) on loopback, serving the report route and every operator route. */
export async function startHttpEndpoint(options: HttpEndpointOptions): Promise<HttpEndpoint> {
  if (options.host !== '127.0.0.1')
    throw new Error('the local endpoint listens on 127.0.0.1 only (no SigV4)');
  const dispatch = makeLocalDispatcher({ ctx: options.ctx, logger: options.logger });
  const inFlight = new Set<Promise<void>>();
  if (options.operatorToken.length < 16) throw new Error('the local operator token is too short');
  let guard: LocalGuard = { port: -1, operatorToken: options.operatorToken };

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    const rawPath = queryAt === -1 ? target : target.slice(0, queryAt);
    const rawQueryString = queryAt === -1 ? '' : target.slice(queryAt + 1);
    let status = 500;
    try {
      // Refused before a byte of the body is read: an unknown route, a request the socket-level checks
      // refuse, or a declared length over the cap.
      const match = matchRoute(method, rawPath);
      if (match === null) {
        status = 404;
        refuseEarly(req, res, notFound(method, rawPath));
        return;
      }
      const refused = localRefusal({ headers: req.headers }, match, guard);
      if (refused !== null) {
        status = refused.statusCode ?? 400;
        refuseEarly(req, res, refused);
        return;
      }
      const declared = Number(req.headers['content-length'] ?? '0');
      if (Number.isFinite(declared) && declared > MAX_LOCAL_BODY_BYTES) {
        status = 413;
        refuseEarly(req, res, tooLarge());
        return;
      }
      const read = await readBody(req, MAX_LOCAL_BODY_BYTES);
      if (!read.ok) {
        status = 413;
        refuseEarly(req, res, tooLarge());
        return;
      }
      const result = await dispatch({
        method,
        rawPath,
        rawQueryString,
        headers: req.headers,
        body: read.body,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        protocol: `HTTP/${req.httpVersion}`,
      });
      status = result.statusCode ?? 200;
      writeResponse(res, result);
    } catch (error) {
      // The handlers map their own errors; reaching here is a bug of this endpoint or a broken socket.
      options.logger.error('local endpoint failed', error instanceof Error ? error : String(error));
      status = 500;
      if (!res.headersSent) writeResponse(res, errorJson(500, 'internal', 'internal error'));
      else res.destroy();
    } finally {
      options.log?.(`${method} ${rawPath} ${status} ${Math.round(performance.now() - started)}ms`);
    }
  };

  const server = createServer((req, res) => {
    const task = serve(req, res).finally(() => inFlight.delete(task));
    inFlight.add(task);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  // Known once listening (port 0 picks one); no request is served before.
  guard = {
    port,
    operatorToken: options.operatorToken,
    ...(options.tokenFile === undefined ? {} : { tokenFile: options.tokenFile }),
  };

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, DRAIN_MS);
        }),
      ]);
      clearTimeout(timer);
      server.closeAllConnections();
      await done;
    })();
    return closed;
  };

  return { url: `http://${options.host}:${port}`, port, close };
}
