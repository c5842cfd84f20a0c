import { OPERATOR_ROUTES, type OperatorRouteName } from '../contracts/operator-api';
import { ApiError, UnreachableError } from './errors';

/** One HTTP request to the control plane, before any credential is added. */
export interface WireRequest {
  readonly method: string;
  readonly url: URL;
  /** JSON text; absent for routes without a body. */
  readonly body?: string;
}

/** The control plane's answer: status and body text. */
export interface WireResponse {
  readonly status: number;
  readonly text: string;
}

/**
 * How requests reach the control plane: plain HTTP with the local operator token (local mode), or
 * signed with SigV4 (a deployed stack). Throws UnreachableError when nothing answers.
 */
export interface Transport {
  readonly mode: 'local' | 'aws';
  /** Base URL of the API, without a trailing slash. */
  readonly baseUrl: string;
  /** What to tell the operator when a request is refused for who made it (401/403). */
  readonly authHint: string;
  send(request: WireRequest): Promise<WireResponse>;
}

/** One operator call: the route's path parameters, query string and JSON body. */
export interface OperatorCall {
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly body?: unknown;
}

/** Requests that take longer than this are given up as unreachable. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** What a failed fetch says, in words: `connection refused`, `host not found`, `timed out`. */
export function describeNetworkError(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = cause instanceof Error && 'code' in cause ? String(cause.code) : '';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET') return 'connection reset';
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Sends with fetch, turning a network failure into UnreachableError naming the URL and what `hint` says. */
export async function fetchWire(
  request: WireRequest,
  headers: Readonly<Record<string, string>>,
  hint: string,
): Promise<WireResponse> {
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers: { ...headers },
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (error) {
    const origin = `${request.url.protocol}//${request.url.host}`;
    throw new UnreachableError(`cannot reach ${origin}: ${describeNetworkError(error)}${hint}`);
  }
  return { status: response.status, text: await response.text() };
}

/**
 * Local mode: plain HTTP to `npm start -- --serve` on loopback, JSON bodies, and the local operator token
 * as a Bearer credential when there is one.
 */
export function localTransport(baseUrl: string, token: string | null, tokenHint: string): Transport {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    mode: 'local',
    baseUrl: base,
    authHint: tokenHint,
    send: (request) =>
      fetchWire(
        request,
        {
          accept: 'application/json',
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
        ' (is `npm start -- --serve` running there?)',
      ),
  };
}

/** The path of an operator route with its parameters filled in (percent-encoded). */
export function routePath(name: OperatorRouteName, params: Readonly<Record<string, string>>): string {
  const route = OPERATOR_ROUTES.find((r) => r.name === name);
  if (route === undefined) throw new Error(`unknown operator route ${name}`);
  return route.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, param: string) => {
    const value = params[param];
    if (value === undefined) throw new Error(`operator route ${name} needs the path parameter ${param}`);
    return encodeURIComponent(value);
  });
}

function errorOf(text: string): { code: string; message: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    return {
      code: typeof body.error === 'string' ? body.error : 'error',
      message: typeof body.message === 'string' ? body.message : text,
    };
  } catch {
    return { code: 'error', message: text.trim() === '' ? 'no message' : text.trim().slice(0, 300) };
  }
}

/** The operator API over a transport: one method call per route, JSON in and out. */
export class OperatorClient {
  constructor(readonly transport: Transport) {}

  /** Calls a route; resolves to its parsed JSON body (null when empty), throws ApiError for non-2xx. */
  async call(name: OperatorRouteName, call: OperatorCall = {}): Promise<unknown> {
    const route = OPERATOR_ROUTES.find((r) => r.name === name);
    if (route === undefined) throw new Error(`unknown operator route ${name}`);
    const url = new URL(`${this.transport.baseUrl}${routePath(name, call.params ?? {})}`);
    for (const [key, value] of Object.entries(call.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, value);
    const response = await this.transport.send({
      method: route.method,
      url,
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
    });
    if (response.status >= 200 && response.status < 300) {
      return response.text === '' ? null : (JSON.parse(response.text) as unknown);
    }
    const { code, message } = errorOf(response.text);
    let text = `${route.method} ${url.pathname}: ${response.status} ${code}: ${message}`;
    if (response.status === 401 || response.status === 403) text += `\n${this.transport.authHint}`;
    if (response.status === 404 && code === 'not-found' && message.startsWith('no route'))
      text += '\nthe control plane does not serve this route: is it older than this CLI?';
    throw new ApiError(response.status, code, text);
  }
}
