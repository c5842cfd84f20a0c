import { createMemoryStores, type MemoryStores } from '../../../adapters/memory';
import type { AppContext } from '../../../app/context';
import { runStep } from '../../../app/failover/steps';
import { recordReport } from '../../../app/ingest/record-report';
import { enrollRelay } from '../../../app/operator/relays';
import { setVmMetadata } from '../../../app/operator/vm-metadata';
import type { Ports } from '../../../app/ports';
import type {
  CommandResult,
  FenceLevelReadiness,
  FenceReadiness,
  HostObservation,
  ObservedVm,
  RelayReport,
  ReportResponse,
} from '../../../contracts/relay-protocol';
import type { FenceResult, IncidentInput, StepRequest } from '../../../contracts/workflow';
import type { HaPolicyInput } from '../../../core/policy';
import { counted, FakeClock, FakeMetrics, FakeWorkflow, SeededIds, testHasher } from './fakes';

/** Test time zero: any fixed instant. */
export const T0 = 1_700_000_000_000;
export const SITE = 'dc1';
export const CLUSTER = 'c1';
/** Default policy: hosts are silent after 3 × 2 s; relays after 30 s. */
export const SILENT_MS = 9_000;
export const GiB = 1024;

/** A control plane on in-memory stores, with the fakes exposed for assertions. */
export interface World {
  readonly ctx: AppContext;
  readonly clock: FakeClock;
  readonly workflow: FakeWorkflow;
  readonly metrics: FakeMetrics;
  /** Every store call, as `<store>.<method>`, in order. */
  readonly calls: string[];
  /** The stores themselves, for setup and checks that must not show up in `calls`. */
  readonly stores: MemoryStores;
}

/** A fresh world at T0 with the given default policy. */
export function createWorld(defaults: HaPolicyInput = {}): World {
  const stores = createMemoryStores();
  const calls: string[] = [];
  const clock = new FakeClock(T0);
  const workflow = new FakeWorkflow();
  const metrics = new FakeMetrics();
  const ports: Ports = {
    sites: counted('sites', stores.sites, calls),
    relays: counted('relays', stores.relays, calls),
    hosts: counted('hosts', stores.hosts, calls),
    vms: counted('vms', stores.vms, calls),
    incidents: counted('incidents', stores.incidents, calls),
    commands: counted('commands', stores.commands, calls),
    clock,
    ids: new SeededIds(),
    workflow,
    metrics,
  };
  return { ctx: { ports, hasher: testHasher, defaults }, clock, workflow, metrics, calls, stores };
}

/** A VM as an agent reports it. */
export function vm(
  id: string,
  memoryMiB: number,
  cpus: number,
  state: ObservedVm['state'] = 'running',
): ObservedVm {
  return { id, cpus, memoryMiB, state };
}

/** A host as a relay reports it: heard just now unless told otherwise. */
export function host(hostId: string, opts: Partial<Omit<HostObservation, 'hostId'>> = {}): HostObservation {
  return {
    hostId,
    cluster: opts.cluster ?? CLUSTER,
    bootId: opts.bootId ?? `${hostId}-boot-1`,
    lastHeardMsAgo: opts.lastHeardMsAgo ?? 500,
    cpus: opts.cpus ?? 16,
    memoryMiB: opts.memoryMiB ?? 32 * GiB,
    vms: opts.vms ?? [],
  };
}

/** A fence level that answered a power-status read (power on). */
export function levelUp(level: number, driver = 'ipmitool'): FenceLevelReadiness {
  return { level, driver, ok: true, power: 'on', error: null };
}

/** A fence level that did not answer, and why. */
export function levelDown(level: number, error: string, driver = 'ipmitool'): FenceLevelReadiness {
  return { level, driver, ok: false, power: null, error };
}

/** A host's fence readiness as a relay's check found it at `checkedAt`; ok when any level answered. */
export function readiness(
  hostId: string,
  checkedAt: number,
  levels: readonly FenceLevelReadiness[],
): FenceReadiness {
  return { hostId, checkedAt, ok: levels.some((l) => l.ok), levels: [...levels] };
}

/** A relay as the tests drive it: each report takes the next sequence number. */
export class TestRelay {
  seq = 0;

  constructor(
    private readonly world: World,
    readonly siteId: string,
    readonly relayId: string,
    readonly credential: string,
  ) {}

  /** The report it would send now; fence readiness only when given, as relays send it. */
  build(
    hosts: readonly HostObservation[],
    results: readonly CommandResult[] = [],
    fenceReadiness?: readonly FenceReadiness[],
  ): RelayReport {
    this.seq += 1;
    return {
      protocol: 1,
      siteId: this.siteId,
      relayId: this.relayId,
      seq: this.seq,
      sentAt: this.world.clock.now(),
      hosts: [...hosts],
      results: [...results],
      ...(fenceReadiness === undefined ? {} : { fenceReadiness: [...fenceReadiness] }),
    };
  }

  /** Sends a report through recordReport with this relay's credential. */
  report(
    hosts: readonly HostObservation[],
    results: readonly CommandResult[] = [],
    fenceReadiness?: readonly FenceReadiness[],
  ): Promise<ReportResponse> {
    return this.send(this.build(hosts, results, fenceReadiness));
  }

  /** Sends a prepared report (e.g. a replay) with this relay's credential. */
  send(report: RelayReport): Promise<ReportResponse> {
    return recordReport(this.world.ctx, { authorization: `Bearer ${this.credential}`, report });
  }
}

/** Enrols a relay through the operator use case. */
export async function enrolledRelay(world: World, relayId: string, siteId = SITE): Promise<TestRelay> {
  const { credential } = await enrollRelay(world.ctx, { siteId, relayId });
  return new TestRelay(world, siteId, relayId, credential);
}

/**
 * The standard site: relays r1 and r2; cluster c1 of three 16-CPU, 32-GiB hosts. h1 runs db-1 (high),
 * web-1 (medium), batch-1 (low), all HA, and scratch-1 (not HA); h2 and h3 run one non-HA VM each.
 */
export interface StandardSite {
  readonly r1: TestRelay;
  readonly r2: TestRelay;
  /** The hosts as heard now, with per-host overrides. */
  hosts(overrides?: Partial<Record<string, Partial<Omit<HostObservation, 'hostId'>>>>): HostObservation[];
}

export const H1_VMS: readonly ObservedVm[] = [
  vm('db-1', 8 * GiB, 4),
  vm('web-1', 4 * GiB, 2),
  vm('batch-1', 2 * GiB, 1),
  vm('scratch-1', 1 * GiB, 1),
];

/** Builds the standard site: both relays report every host heard once, and the VMs' HA metadata is set. */
export async function standardSite(world: World): Promise<StandardSite> {
  const r1 = await enrolledRelay(world, 'r1');
  const r2 = await enrolledRelay(world, 'r2');
  const hosts: StandardSite['hosts'] = (overrides = {}) =>
    [
      host('h1', { vms: [...H1_VMS] }),
      host('h2', { vms: [vm('app-2', 16 * GiB, 8)] }),
      host('h3', { vms: [vm('app-3', 8 * GiB, 4)] }),
    ].map((h) => ({ ...h, ...overrides[h.hostId] }));
  await r1.report(hosts());
  await r2.report(hosts());
  const meta = [
    ['db-1', 'high'],
    ['web-1', 'medium'],
    ['batch-1', 'low'],
  ] as const;
  for (const [vmId, priority] of meta) {
    await world.stores.vms.setMetadata(SITE, vmId, { ha: true, priority, antiAffinity: null });
  }
  return { r1, r2, hosts };
}

/** Both relays report h1 silent, which opens its incident; returns the execution's input. */
export async function openH1Incident(world: World, site: StandardSite): Promise<IncidentInput> {
  world.clock.advance(1_000);
  const silent = site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
  await site.r1.report(silent);
  await site.r2.report(silent);
  const input = [...world.workflow.executions.values()].find((i) => i.hostId === 'h1');
  if (input === undefined) throw new Error('no incident opened for h1');
  return input;
}

/** Runs a step, then advances the clock 1 ms so that every timeline event has its own instant. */
export async function step(world: World, request: StepRequest): Promise<unknown> {
  const out = await runStep(world.ctx, request);
  world.clock.advance(1);
  return out;
}

/** Sets the HA metadata of a VM through the operator use case. */
export async function markHa(world: World, vmId: string, priority: 'high' | 'medium' | 'low'): Promise<void> {
  await setVmMetadata(world.ctx, { siteId: SITE, vmId, body: { ha: true, priority, antiAffinity: null } });
}

/** The test relay with this id. */
export function relayOf(site: StandardSite, relayId: string): TestRelay {
  return relayId === site.r1.relayId ? site.r1 : site.r2;
}

/** The hosts of the standard site with h1 silent. */
export function h1Silent(site: StandardSite): HostObservation[] {
  return site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } });
}

/**
 * Drives h1's incident through a confirmed fence: Fence dispatched, the relay's result read back `off`,
 * VerifyPowerOff and MarkFenced run. Returns the incident's input.
 */
export async function fencedH1(world: World, site: StandardSite): Promise<IncidentInput> {
  const incident = await openH1Incident(world, site);
  await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok-fence-1' });
  const [record] = await world.stores.commands.listForIncident(SITE, incident.incidentId);
  if (record === undefined) throw new Error('no fence command');
  const result: CommandResult = {
    commandId: record.command.commandId,
    incidentId: incident.incidentId,
    outcome: 'succeeded',
    powerState: 'off',
    finishedAt: world.clock.now(),
  };
  await relayOf(site, record.relayId).report(h1Silent(site), [result]);
  const completion = world.workflow.completionOf('tok-fence-1');
  if (completion?.kind !== 'success') throw new Error('fence not confirmed');
  const fence = completion.output as FenceResult;
  const confirmation = (await step(world, { step: 'verify-power-off', incident, fence })) as {
    by: 'ipmi-read-back';
    detail: string;
  };
  await step(world, { step: 'mark-fenced', incident, confirmation });
  return incident;
}
