import { REPORT_ROUTE } from '../../contracts/operator-api';
import {
  type AnyRelayReport,
  ErrorBodySchema,
  type ReportResponse,
  ReportResponseSchema,
} from '../../contracts/relay-protocol';
import { type Uplink, UplinkError } from '../ports';

/** A report that has not been answered in this long is abandoned (the relay retries with a new seq). */
export const DEFAULT_REPORT_TIMEOUT_MS = 5000;

/**
 * The relay's uplink: `POST /v1/reports` over HTTPS (plain HTTP to a local control plane), with
 * `Authorization: Bearer` and a request timeout. One attempt per call: the relay's loop decides when to
 * try again (full-jitter backoff), with a new seq and the latest state, so a retry never resends a stale
 * report. The credential travels only in the header; no error message repeats it.
 */
export class HttpUplink implements Uplink {
  private readonly url: URL;

  constructor(
    baseUrl: string,
    private readonly timeoutMs = DEFAULT_REPORT_TIMEOUT_MS,
  ) {
    this.url = new URL(REPORT_ROUTE.path.replace(/^\//, ''), baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  async send(report: AnyRelayReport, credential: string): Promise<ReportResponse> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: REPORT_ROUTE.method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${credential}` },
        body: JSON.stringify(report),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new UplinkError(
        null,
        null,
        `POST ${this.url.pathname} to ${this.url.host} failed: ${describe(error)}`,
      );
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new UplinkError(null, null, `response of ${this.url.host} cut off: ${describe(error)}`);
    }
    return reportAnswer(response.status, text);
  }
}

/**
 * What the control plane's answer to a report means: the response on 200, else an UplinkError with the
 * status and the error body's code and message (the relay's loop decides on them).
 */
export function reportAnswer(status: number, text: string): ReportResponse {
  const body = parseJson(text);
  if (status !== 200) {
    const error = ErrorBodySchema.safeParse(body);
    throw new UplinkError(
      status,
      error.success ? error.data.error : null,
      error.success ? error.data.message : `HTTP ${status}`,
    );
  }
  const parsed = ReportResponseSchema.safeParse(body);
  if (!parsed.success) throw new UplinkError(200, null, 'response does not follow the protocol');
  return parsed.data;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${error.name === 'TimeoutError' ? 'timed out' : error.message}${cause}`;
  }
  return String(error);
}
