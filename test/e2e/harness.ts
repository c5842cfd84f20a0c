import { createDynamoStores, type Stores } from '../../adapters/dynamodb';
import { MemoryCommandStore } from '../../adapters/memory/memory-command-store';
import { MemoryHostStore } from '../../adapters/memory/memory-host-store';
import { MemoryIncidentStore } from '../../adapters/memory/memory-incident-store';
import { MemoryRelayStore } from '../../adapters/memory/memory-relay-store';
import { MemorySiteStore } from '../../adapters/memory/memory-site-store';
import { createMemoryState, type MemoryState } from '../../adapters/memory/memory-state';
import { MemoryVmStore } from '../../adapters/memory/memory-vm-store';
import { CryptoIds } from '../../adapters/node/crypto-ids';
import { Sha256Hasher } from '../../adapters/node/sha256-hasher';
import { SystemClock } from '../../adapters/node/system-clock';
import type { AppContext } from '../../app/context';
import { enrollRelay, setVmMetadata } from '../../app/operator';
import type { IncidentEvent, IncidentRecord } from '../../app/ports';
import type { FenceCommand, StartVmCommand } from '../../contracts/relay-protocol';
import { type PlanOutput, PlanOutputSchema, STATE } from '../../contracts/workflow';
import type { HaPolicyInput } from '../../core/policy';
import { makeIngestHandler } from '../../functions/ingest/ingest';
import type { HttpResponse } from '../../functions/shared/http';
import { synthesizedDefinition } from '../../local/definition';
import {
  createLocalWorkflow,
  type ExecutionEvent,
  type LocalExecution,
  type LocalWorkflow,
} from '../../local/local-workflow';
import { onVirtualTime } from '../../local/sim/virtual-time';
import { httpEvent, quietLogger, RecordingMetrics } from '../functions/support';
import type { LocalDynamo } from '../support/dynalite';
import { Journal, type JournalEntry, type RelayScript, ScriptedRelay } from './relay';
import { World, type WorldSpec } from './world';

/**
 * The e2e harness: the real control plane (ingest handler, failover-steps handler, operator use cases)
 * on in-memory stores or dynalite, the failover definition CDK synthesizes executed by LocalWorkflow,
 * scripted relays reporting a simulated world, and real time with short policy timings.
 */

export const SITE = 'site-e2e';
export const CLUSTER = 'c1';

/**
 * Short timings: a host is silent 300 ms after its last heartbeat, relays report every 100–200 ms, a fence
 * attempt gets 1 s (the state machine's unit) and a start 2 s, the confirmation wait is 1 s. Relays stay
 * live for 5 s without a report, so a test may pause them without a partition. Scenarios on the in-memory
 * stores run on virtual time (onVirtualTimeScenario), where these hold exactly; one in real time gives
 * the bounds it does not test room for a loaded machine.
 */
export const E2E_POLICY: HaPolicyInput = {
  hostHeartbeatMs: 100,
  missedHeartbeats: 3,
  relayReportMs: 200,
  incidentReportMs: 100,
  relaySilentAfterMs: 5000,
  confirmSilenceMs: 1000,
  fenceAttemptTimeoutMs: 1000,
  fenceDeadlineMs: 15_000,
  startTimeoutMs: 2000,
  maxStartAttempts: 3,
};

/**
 * A four-host cluster. node01 is the one that fails in most scenarios: two high, one medium and one low
 * HA VM, and one VM nobody registered (not HA, never restarted). The others carry uneven loads.
 */
export const SEED: WorldSpec = {
  cluster: CLUSTER,
  hosts: [
    {
      hostId: 'node01',
      cpus: 16,
      memoryMiB: 32_768,
      vms: [
        { id: 'vm-db', cpus: 4, memoryMiB: 8192, state: 'running', ha: true, priority: 'high' },
        { id: 'vm-web', cpus: 2, memoryMiB: 4096, state: 'running', ha: true, priority: 'high' },
        { id: 'vm-app', cpus: 2, memoryMiB: 4096, state: 'running', ha: true, priority: 'medium' },
        { id: 'vm-batch', cpus: 1, memoryMiB: 2048, state: 'running', ha: true, priority: 'low' },
        { id: 'vm-scratch', cpus: 1, memoryMiB: 1024, state: 'running', ha: false, priority: 'low' },
      ],
    },
    {
      hostId: 'node02',
      cpus: 16,
      memoryMiB: 32_768,
      vms: [{ id: 'vm-big', cpus: 8, memoryMiB: 20_480, state: 'running', ha: true, priority: 'medium' }],
    },
    {
      hostId: 'node03',
      cpus: 16,
      memoryMiB: 32_768,
      vms: [{ id: 'vm-cache', cpus: 2, memoryMiB: 4096, state: 'running', ha: true, priority: 'high' }],
    },
    {
      hostId: 'node04',
      cpus: 16,
      memoryMiB: 32_768,
      vms: [{ id: 'vm-mq', cpus: 2, memoryMiB: 8192, state: 'running', ha: true, priority: 'medium' }],
    },
  ],
};

/** Options of {@link createHarness}. */
export interface HarnessOptions {
  /** Overrides of {@link E2E_POLICY}. */
  readonly policy?: HaPolicyInput;
  /** Relays of the site, enrolled through the operator use case. */
  readonly relays?: readonly string[];
  readonly world?: WorldSpec;
  /** Run on dynalite instead of the in-memory stores (a fresh table). */
  readonly dynamo?: LocalDynamo;
  readonly waitOverridesMs?: Readonly<Record<string, number>>;
  /** Length of one Retry-interval second; 100 makes the 1 s fence retry 100 ms. */
  readonly retryIntervalMs?: number;
}

let tables = 0;

/** One scenario's control plane, world and relays. */
export class Harness {
  readonly journal = new Journal();
  readonly relays = new Map<string, ScriptedRelay>();
  private readonly handleReport: (event: ReturnType<typeof httpEvent>) => Promise<HttpResponse>;

  constructor(
    readonly ctx: AppContext,
    readonly workflow: LocalWorkflow,
    readonly world: World,
    readonly metrics: RecordingMetrics,
    /** The in-memory stores' state (null on dynalite), to prove a request changed nothing. */
    readonly state: MemoryState | null,
  ) {
    this.handleReport = makeIngestHandler(ctx, quietLogger());
  }

  /** POST /v1/reports through the ingest handler, as API Gateway delivers it. */
  ingest(body: string, authorization: string | undefined): Promise<HttpResponse> {
    return this.handleReport(
      httpEvent({ body, headers: authorization === undefined ? {} : { authorization } }),
    );
  }

  relay(relayId: string): ScriptedRelay {
    const relay = this.relays.get(relayId);
    if (relay === undefined) throw new Error(`no relay ${relayId}`);
    return relay;
  }

  /** Enrols the relays, lets each report the world once, and registers the HA VMs' metadata. */
  async boot(
    relayIds: readonly string[],
    scripts: Readonly<Record<string, RelayScript>> = {},
  ): Promise<void> {
    for (const relayId of relayIds) {
      const { credential } = await enrollRelay(this.ctx, { siteId: SITE, relayId });
      const env = { siteId: SITE, world: this.world, journal: this.journal, ingest: this.ingest.bind(this) };
      this.relays.set(relayId, new ScriptedRelay(env, relayId, credential, scripts[relayId] ?? {}));
    }
    for (const relay of this.relays.values()) await expectOk(relay.report());
    for (const vm of this.world.spec.hosts.flatMap((h) => h.vms)) {
      if (!vm.ha) continue;
      await setVmMetadata(this.ctx, {
        siteId: SITE,
        vmId: vm.id,
        body: { ha: true, priority: vm.priority, antiAffinity: null },
      });
    }
  }

  startRelays(): void {
    for (const relay of this.relays.values()) relay.start();
  }

  async stopRelays(): Promise<void> {
    await Promise.all([...this.relays.values()].map((r) => r.stop()));
  }

  async incidents(): Promise<IncidentRecord[]> {
    return this.ctx.ports.incidents.list({ siteId: SITE });
  }

  /** The one incident of the site; fails if there are none or several. */
  async incident(): Promise<IncidentRecord> {
    const all = await this.incidents();
    if (all.length !== 1) throw new Error(`expected one incident, found ${all.length}`);
    const [only] = all;
    if (only === undefined) throw new Error('no incident');
    return only;
  }

  /** Waits until `count` incidents are open with their executions started (ingest writes, then starts). */
  async incidentsStarted(count = 1): Promise<IncidentRecord[]> {
    return waitFor(`${count} incident(s) with an execution`, async () => {
      const all = await this.incidents();
      return all.length >= count && all.every((i) => i.executionArn !== null) ? all : undefined;
    });
  }

  async timeline(incidentId: string): Promise<IncidentEvent[]> {
    return this.ctx.ports.incidents.listEvents(incidentId);
  }

  /** The one execution; fails if there are none or several. */
  execution(): LocalExecution {
    const all = this.workflow.executions();
    const [only] = all;
    if (all.length !== 1 || only === undefined)
      throw new Error(`expected one execution, found ${all.length}`);
    return only;
  }

  /** Waits for the incident(s) to settle: every execution done (the deadline is for a loaded machine). */
  async settle(timeoutMs = 60_000): Promise<void> {
    await within(this.workflow.whenIdle(), timeoutMs, 'the executions to finish');
  }

  /** Stops relays and executions; the oracle's findings stay for the test to check. */
  async dispose(): Promise<void> {
    await this.stopRelays();
    await this.workflow.stop();
  }
}

/** Builds a harness: stores, clock, LocalWorkflow on the synthesized definition, the world. */
export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const definition = await synthesizedDefinition();
  const world = new World(options.world ?? SEED);
  const metrics = new RecordingMetrics();
  let state: MemoryState | null = null;
  let stores: Stores;
  if (options.dynamo === undefined) {
    state = createMemoryState();
    stores = {
      sites: new MemorySiteStore(state),
      relays: new MemoryRelayStore(state),
      hosts: new MemoryHostStore(state),
      vms: new MemoryVmStore(state),
      incidents: new MemoryIncidentStore(state),
      commands: new MemoryCommandStore(state),
    };
  } else {
    tables += 1;
    const tableName = `halo-e2e-${tables}`;
    await options.dynamo.createTable(tableName);
    stores = createDynamoStores({ client: options.dynamo.client, tableName });
  }
  const { workflow, ctx } = createLocalWorkflow(
    {
      definition,
      ...(options.waitOverridesMs === undefined ? {} : { waitOverridesMs: options.waitOverridesMs }),
      retryIntervalMs: options.retryIntervalMs ?? 100,
    },
    (wf) => ({
      ports: { ...stores, clock: new SystemClock(), ids: new CryptoIds(), workflow: wf, metrics },
      hasher: new Sha256Hasher(),
      defaults: { ...E2E_POLICY, ...options.policy },
    }),
  );
  const harness = new Harness(ctx, workflow, world, metrics, state);
  await harness.boot(options.relays ?? ['relay-a', 'relay-b']);
  return harness;
}

async function expectOk(response: Promise<HttpResponse>): Promise<void> {
  const { statusCode, body } = await response;
  if (statusCode !== 200) throw new Error(`report refused: ${statusCode} ${body ?? ''}`);
}

/**
 * Runs a scenario on virtual time (local/sim/virtual-time.ts): timers, `Date` and `performance` become a
 * simulated clock that jumps to the next timer as soon as nothing else can run, so the policy's short
 * real-time bounds (a confirmation wait, a fence attempt's timeout, a relay's vote ageing) hold exactly,
 * however busy the machine. The scenario must do no real I/O: in-memory stores only, and the definition
 * synthesized beforehand (synthesizedDefinition() in a beforeAll). `Math.random` is seeded meanwhile.
 */
export function onVirtualTimeScenario<T>(fn: () => Promise<T>): Promise<T> {
  let seed = 0x9e3779b9;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return onVirtualTime(fn, { random, startMs: Date.now() });
}

/** Rejects when `promise` takes longer than `ms`, naming what it waited for. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `probe` every 20 ms until it returns a value other than undefined. The deadline is for a loaded
 * machine in real time (on virtual time it passes only when nothing happens): it turns a hang into a failure.
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
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The execution's states in the order they were entered (Map iterations included). */
export function statesEntered(execution: LocalExecution): string[] {
  return execution.events.flatMap((e) => (e.type === 'StateEntered' ? [e.state.name] : []));
}

/** The execution's events of one type. */
export function eventsOfType<T extends ExecutionEvent['type']>(
  execution: LocalExecution,
  type: T,
): Extract<ExecutionEvent, { type: T }>[] {
  return execution.events.filter((e): e is Extract<ExecutionEvent, { type: T }> => e.type === type);
}

/** The top-level path of the execution, without the states inside Map iterations. */
export function mainPath(execution: LocalExecution): string[] {
  const path = execution.events.flatMap((e) =>
    e.type === 'StateEntered' && e.index === undefined ? [e.state.name] : [],
  );
  // Suspicion's two branches enter in the same instant, in either order: listed as the definition has them.
  const branches: string[] = [STATE.Suspect, STATE.WaitBeforeConfirm];
  const inBranches = path.filter((name) => branches.includes(name));
  const at = path.indexOf(STATE.Suspicion);
  if (at < 0) return path;
  const rest = path.filter((name, i) => i > at && !branches.includes(name));
  return [...path.slice(0, at + 1), ...branches.filter((b) => inBranches.includes(b)), ...rest];
}

/** Commands as the relays first received them, in order (repeated deliveries left out). */
export function commandsReceived(harness: Harness): Extract<JournalEntry, { kind: 'command' }>[] {
  const seen = new Set<string>();
  return harness.journal.commands().filter((e) => {
    if (seen.has(e.command.commandId)) return false;
    seen.add(e.command.commandId);
    return true;
  });
}

/** Start commands in order of receipt. */
export function startsReceived(harness: Harness): (Extract<JournalEntry, { kind: 'command' }> & {
  command: StartVmCommand;
})[] {
  return commandsReceived(harness).flatMap((e) =>
    e.command.kind === 'start-vm' ? [{ ...e, command: e.command }] : [],
  );
}

/** Fence commands in order of receipt. */
export function fencesReceived(harness: Harness): (Extract<JournalEntry, { kind: 'command' }> & {
  command: FenceCommand;
})[] {
  return commandsReceived(harness).flatMap((e) =>
    e.command.kind === 'fence' ? [{ ...e, command: e.command }] : [],
  );
}

/** The plan PlanPlacement produced, from the execution's output. */
export function planOf(execution: LocalExecution): PlanOutput {
  const output = execution.output;
  if (typeof output !== 'object' || output === null || !('plan' in output)) {
    throw new Error(`execution ${execution.name} has no plan in its output`);
  }
  return PlanOutputSchema.parse(output.plan);
}

/** Timeline kinds of an incident, in order. */
export async function kindsOf(harness: Harness, incidentId: string): Promise<string[]> {
  return (await harness.timeline(incidentId)).map((e) => e.kind);
}
