import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { formatCredential } from '../app/ingest/credential';
import {
  type AnyRelayReport,
  type HostObservation,
  type HostReport,
  type ObservedVm,
  REPORT_BUDGET_BYTES,
  REPORT_DIGEST_HEX,
  type RelayReport,
  type RelayReportV2,
} from '../contracts/relay-protocol';
import { mulberry32 } from './placement.bench';

/**
 * A production-shaped site for the ingest bench: KVM hosts in racks of 10 and 2 clusters (50 by default),
 * 20 VMs each with libvirt UUIDs, boot ids as /proc/sys/kernel/random/boot_id prints them, 2 relays with
 * 32-byte base64url secrets. Seeded, so every run sends the same bytes.
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

export function siteFixture(seed = 7, hostCount: number = HOSTS_PER_SITE): SiteFixture {
  const random = mulberry32(seed);
  const secrets = { [RELAYS[0]]: secret(random), [RELAYS[1]]: secret(random) } as Record<RelayId, string>;
  const hosts = Array.from({ length: hostCount }, (_, i): HostObservation => {
    const rack = Math.floor(i / 10) + 1;
    const hostId = `fra1-r${String(rack).padStart(3, '0')}-kvm${String((i % 10) + 1).padStart(2, '0')}`;
    const vms = Array.from({ length: VMS_PER_HOST }, (): ObservedVm => {
      const shape = VM_SHAPES[Math.floor(random() * VM_SHAPES.length)] ?? VM_SHAPES[0];
      return { id: uuid(random), ...shape, state: random() < 0.9 ? 'running' : 'shut-off' };
    });
    return {
      hostId,
      cluster: i < hostCount / 2 ? 'prod-a' : 'prod-b',
      bootId: uuid(random),
      lastHeardMsAgo: 0,
      cpus: 64,
      memoryMiB: 512 * 1024,
      vms,
    };
  });
  return { siteId: SITE_ID, secrets, hosts };
}

/**
 * One host's VM list changes: one of its VMs is stopped, or started again. Change `index` touches host
 * `index mod hosts` and, on each pass over the hosts, its next VM, so no change brings a host back to an
 * inventory it had (its digest is new every time, as a real change's is, for a pass over every VM of the
 * site). Returns the host's id.
 */
export function changeOneHost(site: SiteFixture, index: number): string {
  const host = site.hosts[index % site.hosts.length];
  const v = Math.floor(index / site.hosts.length) % (host?.vms.length ?? 1);
  const vm = host?.vms[v];
  if (host === undefined || vm === undefined) throw new Error('empty site fixture');
  host.vms[v] = { ...vm, state: vm.state === 'running' ? 'shut-off' : 'running' };
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

/** A host's inventory digest as its agent announces it (first 128 bits of a SHA-256 of its content). */
function digestOf(host: HostObservation): string {
  const { lastHeardMsAgo: _heard, ...content } = host;
  return createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, REPORT_DIGEST_HEX);
}

/**
 * A protocol v2 relay of the site, as site/relay/relay.ts reports: every host's liveness and digest, the
 * inventories the control plane has not taken from it (all of them at first, spread over reports of at
 * most REPORT_BUDGET_BYTES), and the other relay heard on the LAN. `accepted` marks a report's inventories
 * taken, as a 200 answer does.
 */
export class V2Relay {
  private readonly taken = new Map<string, string>();

  constructor(
    private readonly site: SiteFixture,
    readonly relayId: RelayId,
  ) {}

  next(seq: number, sentAt: number): RelayReportV2 {
    const hosts = this.site.hosts.map((h, i): HostReport => {
      const digest = digestOf(h);
      const lastHeardMsAgo = 200 + ((seq * 37 + i * 131) % 1800);
      return { hostId: h.hostId, lastHeardMsAgo, digest };
    });
    const report: RelayReportV2 = {
      protocol: 2,
      siteId: this.site.siteId,
      relayId: this.relayId,
      seq,
      sentAt,
      hosts,
      results: [],
      relays: RELAYS.filter((r) => r !== this.relayId).map((relayId) => ({ relayId, lastHeardMsAgo: 700 })),
    };
    let size = JSON.stringify(report).length;
    this.site.hosts.forEach((h, i) => {
      const entry = hosts[i];
      if (entry === undefined || this.taken.get(h.hostId) === entry.digest) return;
      const { hostId: _id, lastHeardMsAgo: _heard, ...inventory } = h;
      const more = 13 + JSON.stringify(inventory).length;
      if (size + more > REPORT_BUDGET_BYTES) return;
      size += more;
      hosts[i] = { ...entry, inventory };
    });
    return report;
  }

  /** The report was answered 200: its inventories are the control plane's. */
  accepted(report: RelayReportV2): void {
    for (const host of report.hosts)
      if (host.inventory !== undefined) this.taken.set(host.hostId, host.digest);
  }

  /** Hosts whose inventory this relay has not had taken yet. */
  pending(): number {
    return this.site.hosts.filter((h) => this.taken.get(h.hostId) !== digestOf(h)).length;
  }
}

/** The HTTP API v2 event API Gateway hands the ingest Lambda for a report. */
export function reportEvent(site: SiteFixture, report: AnyRelayReport): APIGatewayProxyEventV2 {
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
