import { describe, expect, it } from 'vitest';
import { createMemoryStores } from '../../../adapters/memory';
import type { AppContext } from '../../../app/context';
import { enrollRelay } from '../../../app/operator/relays';
import {
  ErrorBodySchema,
  type RelayReport,
  type ReportResponse,
  ReportResponseSchema,
} from '../../../contracts/relay-protocol';
import { makeIngestHandler } from '../../../functions/ingest/ingest';
import { HostAgent } from '../../../site/agent/host-agent';
import { type Uplink, UplinkError } from '../../../site/ports';
import { Relay } from '../../../site/relay/relay';
import { httpEvent, quietLogger } from '../../functions/support';
import { FakeMetrics, FakeWorkflow, SeededIds, testHasher } from '../../unit/app/fakes';
import { FakeHypervisor, FakeLan, ManualClock, MemoryStateStore } from '../../unit/site/fakes';

const SITE = 'dc1';
const TIMING = { hostHeartbeatMs: 2000, missedHeartbeats: 3, relayReportMs: 10_000 } as const;

/** The relay's uplink wired to the real ingest handler, in process: the HTTPS hop is the only thing left out. */
class IngestUplink implements Uplink {
  readonly statuses: number[] = [];

  constructor(private readonly handle: ReturnType<typeof makeIngestHandler>) {}

  async send(report: RelayReport, credential: string): Promise<ReportResponse> {
    const response = await this.handle(
      httpEvent({
        body: JSON.stringify(report),
        headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      }),
    );
    const status = response.statusCode ?? 0;
    this.statuses.push(status);
    const body: unknown = response.body === undefined ? null : JSON.parse(response.body);
    if (status !== 200) {
      const error = ErrorBodySchema.safeParse(body);
      throw new UplinkError(status, error.success ? error.data.error : null, `ingest answered ${status}`);
    }
    return ReportResponseSchema.parse(body);
  }
}

describe('relays reporting to the real ingest handler', () => {
  it('are accepted, and a host silent on both relays opens exactly one incident', async () => {
    // given a control plane on in-memory stores, with relays r1 and r2 enrolled by the operator use case
    const clock = new ManualClock();
    const stores = createMemoryStores();
    const workflow = new FakeWorkflow();
    const ctx: AppContext = {
      ports: { ...stores, clock, ids: new SeededIds(), workflow, metrics: new FakeMetrics() },
      hasher: testHasher,
      defaults: TIMING,
    };
    const uplink = new IngestUplink(makeIngestHandler(ctx, quietLogger()));
    const lan = new FakeLan();
    const relays: Relay[] = [];
    for (const relayId of ['r1', 'r2']) {
      const { credential } = await enrollRelay(ctx, { siteId: SITE, relayId });
      const relay = await Relay.open(
        { siteId: SITE, relayId, credential, timing: TIMING, fence: {}, fenceCheckMs: 0 },
        { clock, lan, uplink, state: new MemoryStateStore() },
      );
      lan.attach(relayId, relay);
      relays.push(relay);
    }

    // and three hosts whose agents heartbeat to both relays
    const agents = new Map<string, HostAgent>();
    for (const hostId of ['h1', 'h2', 'h3']) {
      const hypervisor = new FakeHypervisor(`${hostId}-boot`, { cpus: 16, memoryMiB: 32_768 }, [
        { id: `${hostId}-vm`, cpus: 2, memoryMiB: 4096, state: 'running' },
      ]);
      const agent = new HostAgent(
        { hostId, cluster: 'c1', relays: ['r1', 'r2'], hostHeartbeatMs: TIMING.hostHeartbeatMs },
        { clock, hypervisor, lan },
      );
      lan.attach(hostId, agent);
      agents.set(hostId, agent);
    }
    const run = async (ms: number): Promise<void> => {
      for (let passed = 0; passed < ms; passed += 100) {
        for (const agent of agents.values()) await agent.tick();
        await lan.deliver();
        for (const relay of relays) await relay.tick();
        await lan.deliver();
        clock.advance(100);
      }
    };

    // when the site runs for 20 s
    await run(20_000);

    // then every report was accepted and the control plane knows the three hosts
    expect(uplink.statuses.length).toBeGreaterThanOrEqual(4);
    expect(uplink.statuses.every((s) => s === 200)).toBe(true);
    expect((await stores.hosts.listHosts(SITE)).map((h) => h.hostId).sort()).toEqual(['h1', 'h2', 'h3']);
    expect(workflow.startCalls).toEqual([]);

    // when h3 dies
    agents.delete('h3');
    lan.detach('h3');
    const diedAt = clock.now();
    await run(30_000);

    // then exactly one incident is opened for it, and one execution started, soon after the threshold
    const incidents = await stores.incidents.list({ siteId: SITE });
    expect(incidents.map((i) => i.hostId)).toEqual(['h3']);
    expect(workflow.executions.size).toBe(1);
    expect(workflow.startCalls).toHaveLength(1);
    const opened = incidents[0]?.openedAt ?? Number.POSITIVE_INFINITY;
    // Last heartbeat at most 2 s before diedAt; silent 6 s after it; reported at once, not at the 10 s report.
    expect(opened - diedAt).toBeLessThanOrEqual(TIMING.hostHeartbeatMs * TIMING.missedHeartbeats + 500);
    expect(uplink.statuses.every((s) => s === 200)).toBe(true);
    const evidence = incidents[0]?.input?.evidence.relays.map((r) => r.relayId).sort();
    expect(evidence).toEqual(['r1', 'r2']);
  });
});
