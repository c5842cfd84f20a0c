import type { HostObservation, RelayReport } from '../../contracts/relay-protocol';
import type { HaPolicyInput } from '../../core/policy';

/**
 * Short timings for the local control plane tests, which run in real time: a host is silent 300 ms after
 * its last heartbeat, relays report every 100–200 ms. What the tests answer by hand (a fence attempt, a
 * start) has a minute, and relays stay live for a minute without a report, so that a loaded machine
 * delaying the answer or a report never sends a test down a timeout's path; a test of a timeout sets its
 * own.
 */
export const TEST_POLICY: HaPolicyInput = {
  hostHeartbeatMs: 100,
  missedHeartbeats: 3,
  relayReportMs: 200,
  incidentReportMs: 100,
  relaySilentAfterMs: 60_000,
  confirmSilenceMs: 1000,
  fenceAttemptTimeoutMs: 60_000,
  fenceDeadlineMs: 120_000,
  startTimeoutMs: 60_000,
};

export const SITE = 'site-local';
export const CLUSTER = 'c1';
export const HOSTS = ['node01', 'node02', 'node03', 'node04'] as const;

/** A host as a relay reports it; `lastHeardMsAgo` above 300 makes it silent under TEST_POLICY. */
export function observed(hostId: string, lastHeardMsAgo = 50): HostObservation {
  return {
    hostId,
    cluster: CLUSTER,
    bootId: `boot-${hostId}`,
    lastHeardMsAgo,
    cpus: 16,
    memoryMiB: 32_768,
    vms: [{ id: `${hostId}-vm1`, cpus: 2, memoryMiB: 4096, state: 'running' }],
  };
}

/** A relay that posts reports with its Bearer credential to the endpoint with fetch. */
export class HttpRelay {
  private seq = 0;

  constructor(
    private readonly url: string,
    readonly relayId: string,
    private readonly credential: string,
  ) {}

  /** POSTs a report of `hosts` (and `results`); returns the status and parsed body. */
  async report(
    hosts: readonly HostObservation[],
    results: RelayReport['results'] = [],
  ): Promise<{ status: number; body: unknown }> {
    this.seq += 1;
    const report: RelayReport = {
      protocol: 1,
      siteId: SITE,
      relayId: this.relayId,
      seq: this.seq,
      sentAt: Date.now(),
      hosts: [...hosts],
      results: [...results],
    };
    return postJson(`${this.url}/v1/reports`, report, { authorization: `Bearer ${this.credential}` });
  }
}

/** POSTs `body` as JSON; the answer's status and parsed body (null when empty). */
export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

/**
 * Polls `probe` every 25 ms until it returns a value other than undefined. The deadline is for a loaded
 * machine (a condition that holds at all does so in well under a second on an idle one): it only turns a
 * hang into a failure.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The credential from an enrolRelay answer body. */
export function credentialOf(body: unknown): string {
  if (
    typeof body === 'object' &&
    body !== null &&
    'credential' in body &&
    typeof body.credential === 'string'
  ) {
    return body.credential;
  }
  throw new Error(`no credential in ${JSON.stringify(body)}`);
}
