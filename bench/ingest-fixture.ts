import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { formatCredential } from '../app/ingest/credential';
import type { HostObservation, ObservedVm, RelayReport } from '../contracts/relay-protocol';
import { mulberry32 } from './placement.bench';

/**
 * A production-shaped site for the ingest bench: 50 KVM hosts in 5 racks and 2 clusters, ~20 VMs each
 * with libvirt UUIDs, boot ids as /proc/sys/kernel/random/boot_id prints them, 2 relays with 32-byte
 * base64url secrets. Seeded, so every run sends the same bytes.
 */

export const SITE_ID = 'fra1-dc2';
export const RELAYS = ['relay-fra1-a', 'relay-fra1-b'] as const;
export const HOSTS_PER_SITE = 50;
export const VMS_PER_HOST = 20;

export type RelayId = (typeof RELAYS)[number];

type Random = () => number;

function uuid(random: Random): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Math.floor(random() * 4) + 8) as number).toString(16);
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function secret(random: Random): string {
  return Buffer.from(Array.from({ length: 32 }, () => Math.floor(random() * 256))).toString('base64url');
}

const VM_SHAPES = [
  { cpus: 1, memoryMiB: 2048 },
  { cpus: 2, memoryMiB: 4096 },
  { cpus: 2, memoryMiB: 8192 },
  { cpus: 4, memoryMiB: 16_384 },
  { cpus: 8, memoryMiB: 32_768 },
] as const;

/** The site as its relays see it; `hosts` is mutated by {@link changeOneHost}. */
export interface SiteFixture {
  readonly siteId: string;
  readonly secrets: Readonly<Record<RelayId, string>>;
  readonly hosts: HostObservation[];
}

export function siteFixture(seed = 7): SiteFixture {
  const random = mulberry32(seed);
  const secrets = { [RELAYS[0]]: secret(random), [RELAYS[1]]: secret(random) } as Record<RelayId, string>;
  const hosts = Array.from({ length: HOSTS_PER_SITE }, (_, i): HostObservation => {
    const rack = Math.floor(i / 10) + 1;
    const hostId = `fra1-r${String(rack).padStart(2, '0')}-kvm${String((i % 10) + 1).padStart(2, '0')}`;
    const vms = Array.from({ length: VMS_PER_HOST }, (): ObservedVm => {
      const shape = VM_SHAPES[Math.floor(random() * VM_SHAPES.length)] ?? VM_SHAPES[0];
      return { id: uuid(random), ...shape, state: random() < 0.9 ? 'running' : 'shut-off' };
    });
    return {
      hostId,
      cluster: i < HOSTS_PER_SITE / 2 ? 'prod-a' : 'prod-b',
      bootId: uuid(random),
      lastHeardMsAgo: 0,
      cpus: 64,
      memoryMiB: 512 * 1024,
      vms,
    };
  });
  return { siteId: SITE_ID, secrets, hosts };
}

/** One host's VM list changes: its first VM is stopped, or started again. Returns the host's id. */
export function changeOneHost(site: SiteFixture, index: number): string {
  const host = site.hosts[index % site.hosts.length];
  const vm = host?.vms[0];
  if (host === undefined || vm === undefined) throw new Error('empty site fixture');
  host.vms[0] = { ...vm, state: vm.state === 'running' ? 'shut-off' : 'running' };
  return host.hostId;
}

/** A relay's report of the site as it stands; `lastHeardMsAgo` varies as a 2 s LAN heartbeat would. */
export function reportOf(site: SiteFixture, relayId: RelayId, seq: number, sentAt: number): RelayReport {
  return {
    protocol: 1,
    siteId: site.siteId,
    relayId,
    seq,
    sentAt,
    hosts: site.hosts.map((h, i) => ({ ...h, lastHeardMsAgo: 200 + ((seq * 37 + i * 131) % 1800) })),
    results: [],
  };
}

/** The HTTP API v2 event API Gateway hands the ingest Lambda for a report. */
export function reportEvent(site: SiteFixture, report: RelayReport): APIGatewayProxyEventV2 {
  const relayId = report.relayId as RelayId;
  const body = JSON.stringify(report);
  return {
    version: '2.0',
    routeKey: 'POST /v1/reports',
    rawPath: '/v1/reports',
    rawQueryString: '',
    headers: {
      authorization: `Bearer ${formatCredential(site.siteId, relayId, site.secrets[relayId])}`,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      host: 'abcdef1234.execute-api.us-east-1.amazonaws.com',
      'user-agent': 'halo-relay/1.0',
    },
    body,
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abcdef1234',
      domainName: 'abcdef1234.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abcdef1234',
      http: {
        method: 'POST',
        path: '/v1/reports',
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.10',
        userAgent: 'halo-relay/1.0',
      },
      requestId: 'Kx3V9gAbIAMEYwQ=',
      routeKey: 'POST /v1/reports',
      stage: '$default',
      time: '25/Nov/2026:14:38:08 +0000',
      timeEpoch: report.sentAt,
    },
  };
}

/** The Lambda context of an invocation with `remainingMs` left (middy aborts the handler when it runs out). */
export function lambdaContext(functionName: string, memoryMb: number, remainingMs = 10_000): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/11/25/[$LATEST]abcdef0123456789',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
