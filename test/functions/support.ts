import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { vi } from 'vitest';
import { MemoryCommandStore } from '../../adapters/memory/memory-command-store';
import { MemoryHostStore } from '../../adapters/memory/memory-host-store';
import { MemoryIncidentStore } from '../../adapters/memory/memory-incident-store';
import { MemoryRelayStore } from '../../adapters/memory/memory-relay-store';
import { MemorySiteStore } from '../../adapters/memory/memory-site-store';
import { createMemoryState, type MemoryState } from '../../adapters/memory/memory-state';
import { MemoryVmStore } from '../../adapters/memory/memory-vm-store';
import { Sha256Hasher } from '../../adapters/node/sha256-hasher';
import type { AppContext } from '../../app/context';
import { formatCredential } from '../../app/ingest/credential';
import type { Clock, IdGenerator, MetricsPort, WorkflowPort } from '../../app/ports';
import type { HostObservation, RelayReport } from '../../contracts/relay-protocol';
import type { IncidentInput, WorkflowResume } from '../../contracts/workflow';
import type { OperatorApiEvent } from '../../functions/operator-api/operator-api';
import type { HandlerLogger } from '../../functions/shared/powertools';

export const T0 = 1_750_000_000_000;
export const SITE = 'site-a';
export const RELAY = 'relay-1';
export const SECRET = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA';
export const CALLER = 'arn:aws:iam::123456789012:user/alice';

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  constructor(public t = T0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Deterministic ids and secrets. */
export class SeqIds implements IdGenerator {
  private n = 0;
  newId(prefix: string): string {
    this.n += 1;
    return `${prefix}-${this.n}`;
  }
  newSecret(): string {
    this.n += 1;
    return `secret${this.n}${'x'.repeat(40)}`;
  }
}

/** Metrics kept in memory. */
export class RecordingMetrics implements MetricsPort {
  readonly recorded: { name: string; value: number; dimensions?: Record<string, string> }[] = [];
  count(name: string, value = 1, dimensions?: Record<string, string>): void {
    this.recorded.push({ name, value, dimensions });
  }
  seconds(name: string, value: number, dimensions?: Record<string, string>): void {
    this.recorded.push({ name, value, dimensions });
  }
}

/** A workflow that records what it was asked to do. */
export class RecordingWorkflow implements WorkflowPort {
  readonly started: IncidentInput[] = [];
  readonly successes: { taskToken: string; output: unknown }[] = [];
  readonly failures: { taskToken: string; error: string; cause: string }[] = [];
  async startIncident(input: IncidentInput): Promise<{ executionArn: string }> {
    this.started.push(input);
    return { executionArn: `arn:aws:states:eu-west-1:1:execution:m:${input.incidentId}` };
  }
  readonly resumed: { input: IncidentInput; resume: WorkflowResume }[] = [];
  async resumeIncident(input: IncidentInput, resume: WorkflowResume): Promise<{ executionArn: string }> {
    this.resumed.push({ input, resume });
    return { executionArn: `arn:aws:states:eu-west-1:1:execution:m:${input.incidentId}-${resume.resume}` };
  }
  async sendTaskSuccess(taskToken: string, output: unknown): Promise<void> {
    this.successes.push({ taskToken, output });
  }
  async sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void> {
    this.failures.push({ taskToken, error, cause });
  }
}

/** An AppContext on the in-memory stores, with the state exposed so tests can prove nothing was written. */
export function memoryContext() {
  const state = createMemoryState();
  const clock = new FakeClock();
  const metrics = new RecordingMetrics();
  const workflow = new RecordingWorkflow();
  const ctx: AppContext = {
    ports: {
      clock,
      ids: new SeqIds(),
      sites: new MemorySiteStore(state),
      relays: new MemoryRelayStore(state),
      hosts: new MemoryHostStore(state),
      vms: new MemoryVmStore(state),
      incidents: new MemoryIncidentStore(state),
      commands: new MemoryCommandStore(state),
      workflow,
      metrics,
    },
    hasher: new Sha256Hasher(),
    defaults: {},
  };
  return { ctx, state, clock, metrics, workflow };
}

/** A deep copy of the store state, to compare before and after a refused request. */
export function snapshot(state: MemoryState): MemoryState {
  return structuredClone(state);
}

/** A site with one enrolled relay whose secret is SECRET. */
export async function seedSite(ctx: AppContext, relayId = RELAY): Promise<void> {
  await ctx.ports.sites.putSite({ siteId: SITE, createdAt: T0 - 60_000 });
  await ctx.ports.relays.enroll({
    siteId: SITE,
    relayId,
    credentialHash: ctx.hasher.hash(SECRET),
    at: T0 - 60_000,
  });
}

/** `Authorization` value of a relay of SITE. */
export function bearer(relayId = RELAY, siteId = SITE, secret = SECRET): string {
  return `Bearer ${formatCredential(siteId, relayId, secret)}`;
}

/** A host every relay hears, with `vmsPerHost` running VMs. */
export function host(i: number, vmsPerHost = 4): HostObservation {
  const hostId = `node${String(i).padStart(2, '0')}`;
  return {
    hostId,
    cluster: 'c1',
    bootId: `boot-${hostId}`,
    lastHeardMsAgo: 500,
    cpus: 32,
    memoryMiB: 65_536,
    vms: Array.from({ length: vmsPerHost }, (_, v) => ({
      id: `${hostId}-vm${v}`,
      cpus: 2,
      memoryMiB: 4096,
      state: 'running' as const,
    })),
  };
}

/** A valid report of SITE by RELAY. */
export function report(overrides: Partial<RelayReport> = {}, hosts = 3): RelayReport {
  return {
    protocol: 1,
    siteId: SITE,
    relayId: RELAY,
    seq: 1,
    sentAt: T0,
    hosts: Array.from({ length: hosts }, (_, i) => host(i + 1)),
    results: [],
    ...overrides,
  };
}

/** An HTTP API v2 event, the way API Gateway delivers it. */
export function httpEvent(opts: {
  routeKey?: string;
  body?: string;
  isBase64Encoded?: boolean;
  headers?: Record<string, string>;
  pathParameters?: Record<string, string>;
  queryStringParameters?: Record<string, string>;
}): APIGatewayProxyEventV2 {
  const routeKey = opts.routeKey ?? 'POST /v1/reports';
  const [method = 'POST', path = '/'] = routeKey.split(' ');
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: opts.headers ?? {},
    body: opts.body,
    isBase64Encoded: opts.isBase64Encoded ?? false,
    pathParameters: opts.pathParameters,
    queryStringParameters: opts.queryStringParameters,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
      requestId: 'req-1',
      routeKey,
      stage: '$default',
      time: '01/Jan/2025:00:00:00 +0000',
      timeEpoch: T0,
    },
  };
}

/** An operator API event with the IAM authorizer's identity (`caller: null` leaves it out). */
export function operatorEvent(
  opts: Parameters<typeof httpEvent>[0] & { caller?: string | null },
): OperatorApiEvent {
  const event = httpEvent(opts);
  const caller = opts.caller === undefined ? CALLER : opts.caller;
  return {
    ...event,
    requestContext: {
      ...event.requestContext,
      ...(caller === null ? {} : { authorizer: { iam: { userArn: caller } } }),
    },
  };
}

/** A logger that keeps quiet and remembers. */
export function quietLogger() {
  return { info: vi.fn(), warn: vi.fn(), error: vi.fn() } satisfies HandlerLogger;
}

/** The parsed JSON body of a response. */
export function bodyOf(response: { body?: string }): unknown {
  return response.body === undefined ? undefined : JSON.parse(response.body);
}
