import type { IncidentEvent, IncidentRecord } from '../../app/ports';
import type { OperatorRouteName } from '../../contracts/operator-api';
import type { Scenario, ScenarioFault, ScenarioReport } from '../../contracts/scenario';
import { PlanOutputSchema, WORKFLOW_ERROR } from '../../contracts/workflow';
import { hostSilentAfterMs } from '../../core/policy';
import { HostAgent } from '../../site/agent/host-agent';
import type { SiteLogger, Uplink } from '../../site/ports';
import type { FenceLevel } from '../../site/relay/config';
import { Relay } from '../../site/relay/relay';
import { type LocalControlPlane, type OperatorCall, startLocalControlPlane } from '../control-plane';
import { synthesizedDefinition } from '../definition';
import type { LocalDynalite } from '../dynalite';
import { startVirtualControlPlane } from '../virtual-control-plane';
import {
  DispatchUplink,
  httpUplink,
  MemoryRelayStateStore,
  programClock,
  realClock,
  SeededIds,
  SimBmc,
  SimHypervisor,
  SimNetwork,
  SimUplink,
} from './adapters';
import { Oracle } from './oracle';
import { availabilityConfig, scenarioPolicy } from './policy';
import { incidentEventText, summaryTable, Timeline, type TimelineEntry } from './timeline';
import { onVirtualTime } from './virtual-time';
import { World } from './world';

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Seeds the simulator's choices (agents' and relays' start offsets, BMC secrets). */
  readonly seed?: number;
  /** Each timeline line as it happens. */
  readonly onEvent?: (line: string) => void;
  /** The control plane's own log lines (requests, refusals); dropped when absent. */
  readonly log?: (line: string) => void;
  /** A dynalite server shared by many runs (a table each); the run starts its own when absent. */
  readonly dynamo?: LocalDynalite;
  /**
   * `'virtual'` (the default): the deterministic simulator, on virtual time with seeded randomness and an
   * in-process control plane on the memory stores; the same seed gives the same bytes. `'real-time'`: the
   * local control plane on dynalite behind its HTTP endpoint, on the wall clock (a live smoke run).
   */
  readonly time?: 'virtual' | 'real-time';
}

/** What a run produces. */
export interface RunResult {
  readonly report: ScenarioReport;
  readonly timeline: TimelineEntry[];
  /** 1 iff a safety rule was broken. */
  readonly exitCode: 0 | 1;
  /**
   * When each host's last heartbeat reached a relay (ms of scenario time): for a host that crashed and
   * stayed down, the instant its silence began, from which the detection threshold counts.
   */
  readonly lastHeartbeatAtMs: Readonly<Record<string, number>>;
}

/** A small seeded PRNG (mulberry32): the simulator's choices repeat for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A program of the site (agent or relay) that runs until its host or box goes away. */
interface Program {
  readonly controller: AbortController;
  readonly done: Promise<void>;
  /** The host agent, told of its hypervisor's changes as libvirt's events would tell it. */
  readonly agent?: HostAgent;
}

/** Throws unless the operator call answered 2xx; returns its body. */
async function expect2xx<N extends OperatorRouteName>(
  cp: SimPlane,
  name: N,
  call: OperatorCall<N>,
): Promise<unknown> {
  const answer = await cp.operator(name, call);
  if (answer.status < 200 || answer.status > 299) {
    throw new Error(`operator ${name} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}

function credentialOf(body: unknown): string {
  if (
    typeof body === 'object' &&
    body !== null &&
    'credential' in body &&
    typeof body.credential === 'string'
  )
    return body.credential;
  throw new Error('enrollRelay answered without a credential');
}

/**
 * Runs one scenario: the local control plane, the site programs on simulated ports, the faults at their
 * times, the oracle watching. Ends at durationMs, or earlier once everything has settled (see `settled`).
 */
export async function runScenario(scenario: Scenario, options: RunOptions = {}): Promise<RunResult> {
  if ((options.time ?? 'virtual') === 'real-time') return runOnce(scenario, options);
  // Definition synthesis (CDK, seconds of real work) is cached per process: done before time stands still.
  await synthesizedDefinition();
  const seed = options.seed ?? 1;
  return onVirtualTime(() => runOnce(scenario, options), { random: seededRandom(seed ^ 0x5eed) });
}

/** A control plane the simulator drives: local mode's on dynalite, or the in-process one. */
type SimPlane = Pick<LocalControlPlane, 'ctx' | 'workflow' | 'operator' | 'runDetectorOnce' | 'stop'>;

async function runOnce(scenario: Scenario, options: RunOptions): Promise<RunResult> {
  const virtual = (options.time ?? 'virtual') === 'virtual';
  const seed = options.seed ?? 1;
  const random = seededRandom(seed);
  const policy = scenarioPolicy(scenario);
  const hb = policy.hostHeartbeatMs;
  let t0 = Date.now();
  const elapsed = () => Date.now() - t0;
  const timeline = new Timeline(options.onEvent);
  const world = new World(scenario, elapsed);
  const oracle = new Oracle(world, {
    vms: scenario.vms,
    cpuOvercommit: policy.cpuOvercommit,
    startTimeoutMs: policy.startTimeoutMs,
    availability: availabilityConfig(scenario, policy),
  });
  const reported = new Set<number>();
  const printViolations = (atMs: number) => {
    for (const [i, v] of oracle.violations.entries()) {
      if (reported.has(i)) continue;
      reported.add(i);
      timeline.add({ atMs, source: 'oracle', subject: v.rule, text: v.detail });
    }
  };
  world.subscribe((event) => {
    timeline.world(event);
    printViolations(event.atMs);
  });
  const siteErrors: string[] = [];
  const network = new SimNetwork(
    world,
    (error) => siteErrors.push(String(error)),
    seededRandom(seed ^ 0x1a4),
  );

  const planeOptions = {
    policy,
    detectorTickMs: hb,
    waitOverridesMs: { WaitBeforeConfirm: policy.confirmSilenceMs },
    retryIntervalMs: hb,
    ...(options.log === undefined ? {} : { log: options.log }),
  };
  let cp: SimPlane;
  let uplinkOf: () => Uplink;
  if (virtual) {
    const plane = await startVirtualControlPlane({
      ...planeOptions,
      ids: new SeededIds(seededRandom(seed ^ 0x1d5)),
      recordMetrics: false,
    });
    cp = plane;
    uplinkOf = () => new DispatchUplink(plane.dispatch);
  } else {
    const plane = await startLocalControlPlane({
      ...planeOptions,
      port: 0,
      ...(options.dynamo === undefined ? {} : { dynamo: options.dynamo }),
    });
    cp = plane;
    uplinkOf = () => httpUplink(plane.url);
  }
  const agents = new Map<string, Program>();
  const relays = new Map<string, Program>();
  const timers = new Set<NodeJS.Timeout>();
  const siteLog = (subject: string): SiteLogger => ({
    info: (message, data) => {
      if (message !== 'command finished' && message !== 'command taken') return;
      if (message === 'command taken' && typeof data?.commandId === 'string')
        oracle.commandTaken(data.commandId);
      const detail =
        data === undefined ? '' : ` ${String(data.commandId ?? '')} ${String(data.outcome ?? '')}`;
      timeline.add({ atMs: elapsed(), source: 'site', subject, text: `${message}${detail}`.trim() });
    },
    warn: () => undefined,
  });

  try {
    // ---- enrolment and metadata, before any report
    const credentials = new Map<string, string>();
    for (const site of scenario.sites) {
      for (const relayId of site.relays) {
        const body = await expect2xx(cp, 'enrollRelay', { params: { siteId: site.id }, body: { relayId } });
        credentials.set(relayId, credentialOf(body));
      }
    }
    const hostSite = new Map(scenario.hosts.map((h) => [h.id, h.site]));
    await inBatches(scenario.vms, 8, async (vm) => {
      await expect2xx(cp, 'setVmMetadata', {
        params: { siteId: hostSite.get(vm.host) ?? '', vmId: vm.id },
        body: { ha: vm.ha, priority: vm.priority, antiAffinity: vm.antiAffinity ?? null },
      });
    });

    // ---- the site programs
    const startAgent = (hostId: string, delayMs: number) => {
      const host = world.host(hostId);
      const site = scenario.sites.find((s) => s.id === host.site);
      const agent = new HostAgent(
        { hostId, cluster: host.cluster, relays: site?.relays ?? [], hostHeartbeatMs: hb },
        {
          clock: realClock,
          hypervisor: new SimHypervisor(world, hostId, realClock, scenario.timing.vmBootMs ?? 0),
          lan: network.lanFor(hostId),
        },
      );
      network.attach(hostId, agent);
      const controller = new AbortController();
      const done = (async () => {
        await realClock.sleep(delayMs);
        await agent.run(controller.signal);
      })().catch((error: unknown) => void siteErrors.push(`agent ${hostId}: ${String(error)}`));
      agents.set(hostId, { controller, done, agent });
    };
    const stopProgram = (programs: Map<string, Program>, id: string) => {
      programs.get(id)?.controller.abort();
      programs.delete(id);
    };
    const stateStores = new Map<string, MemoryRelayStateStore>();
    const startRelay = (siteId: string, relayId: string, delayMs: number) => {
      const fence: Record<string, FenceLevel[]> = {};
      for (const h of scenario.hosts) {
        if (h.site === siteId) fence[h.id] = [{ device: new SimBmc(world, relayId, h.id) }];
      }
      const state = stateStores.get(relayId) ?? new MemoryRelayStateStore();
      stateStores.set(relayId, state);
      const controller = new AbortController();
      const done = (async () => {
        await realClock.sleep(delayMs);
        const relay = await Relay.open(
          {
            siteId,
            relayId,
            credential: credentials.get(relayId) ?? '',
            timing: {
              hostHeartbeatMs: hb,
              missedHeartbeats: policy.missedHeartbeats,
              relayReportMs: policy.relayReportMs,
            },
            fence,
            // The site's other relays, heard and heartbeaten on the simulated LAN (relays take turns).
            peers: (scenario.sites.find((s) => s.id === siteId)?.relays ?? []).filter((r) => r !== relayId),
            bmcPollMs: scenario.timing.bmcPollMs ?? Math.min(hb, 250),
            loopMs: Math.max(10, Math.min(50, Math.floor(hb / 4))),
            minReportGapMs: Math.min(250, hb),
          },
          {
            clock: programClock(world, relayId),
            uplink: new SimUplink(world, relayId, siteId, uplinkOf()),
            random: seededRandom(Math.floor(random() * 2 ** 32)),
            lan: network.lanFor(relayId),
            state,
            log: siteLog(relayId),
          },
        );
        if (controller.signal.aborted) return;
        network.attach(relayId, relay);
        controller.signal.addEventListener('abort', () => network.detach(relayId, relay));
        await relay.run(controller.signal);
      })().catch((error: unknown) => void siteErrors.push(`relay ${relayId}: ${String(error)}`));
      relays.set(relayId, { controller, done });
    };
    // The world decides which programs run: a crashed host's agent dies, a booted one starts afresh. A VM
    // that starts or stops is a libvirt lifecycle event, which the production agent watches.
    world.subscribe((event) => {
      if (event.kind === 'vm-start' || event.kind === 'vm-stop') {
        agents.get(event.host)?.agent?.changed();
      } else if (event.kind === 'os') {
        if (event.running) startAgent(event.host, 0);
        else stopProgram(agents, event.host);
      } else if (event.kind === 'relay') {
        const siteId = world.relaySite.get(event.relay) ?? '';
        if (event.up) startRelay(siteId, event.relay, 0);
        else stopProgram(relays, event.relay);
      }
    });
    for (const host of scenario.hosts) startAgent(host.id, Math.floor(random() * hb));
    for (const site of scenario.sites) {
      for (const relayId of site.relays) startRelay(site.id, relayId, Math.floor(random() * hb));
    }

    // ---- warm-up: the scenario starts once the control plane knows every host
    await warmUp(cp, scenario, hostSilentAfterMs(policy) + 10 * policy.relayReportMs + 10_000);
    for (const cluster of clustersOf(scenario)) {
      if (scenario.policy.fencingEnabled) break;
      await expect2xx(cp, 'setFencing', {
        params: { siteId: cluster.site, clusterId: cluster.cluster },
        body: { enabled: false },
      });
    }
    for (const host of scenario.hosts) {
      if (!host.maintenance) continue;
      await expect2xx(cp, 'setMaintenance', {
        params: { siteId: host.site, hostId: host.id },
        body: { enabled: true },
      });
    }
    t0 = Date.now();
    timeline.add({ atMs: 0, source: 'world', subject: 'sim', text: `scenario "${scenario.name}" starts` });

    // ---- faults
    let faultsPending = scenario.faults.length;
    let operatorsPending = 0;
    let lastFaultAt = 0;
    const schedule = (atMs: number, action: () => void) => {
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          action();
        },
        Math.max(0, atMs - elapsed()),
      );
      timers.add(timer);
    };
    const confirmOff = (fault: Extract<ScenarioFault, { type: 'operator-confirms-off' }>) => {
      // The operator answers the incident waiting for them; until there is one, they keep checking.
      void (async () => {
        const incident = await awaitingOperator(cp, fault.host);
        if (incident !== null) {
          const answer = await cp.operator('confirmPowerOff', {
            params: { incidentId: incident.incidentId },
            body: { hostId: fault.host, operator: 'sim-operator' },
          });
          if (answer.status === 200) {
            oracle.operatorConfirmed(fault.host, elapsed());
            operatorsPending -= 1;
            return;
          }
        }
        if (elapsed() + hb < scenario.durationMs) schedule(elapsed() + hb, () => confirmOff(fault));
        else operatorsPending -= 1;
      })().catch((error: unknown) => {
        siteErrors.push(`operator: ${String(error)}`);
        operatorsPending -= 1;
      });
    };
    for (const fault of scenario.faults) {
      schedule(fault.atMs, () => {
        faultsPending -= 1;
        lastFaultAt = elapsed();
        world.inject(fault);
        if (fault.type === 'operator-confirms-off') {
          operatorsPending += 1;
          confirmOff(fault);
        }
      });
    }

    // ---- watch until the end or until everything has settled
    const margin = (policy.missedHeartbeats + 2) * hb + policy.relayReportMs;
    // A host gone from the LAN of a reachable site must get its incident before the run may end early:
    // under load the margin alone can pass before the control plane has noticed.
    const silentSince = new Map<string, number>();
    world.subscribe((event) => {
      if (event.kind !== 'os' && event.kind !== 'lan' && event.kind !== 'power') return;
      if (world.onLan(event.host)) silentSince.delete(event.host);
      else if (!silentSince.has(event.host)) silentSince.set(event.host, event.atMs);
    });
    const maintenance = new Set(scenario.hosts.filter((h) => h.maintenance).map((h) => h.id));
    const awaitedIncidents = (incidents: readonly IncidentRecord[]): boolean =>
      [...silentSince].every(([hostId, since]) => {
        const site = world.host(hostId).site;
        const reachable =
          world.uplinkUp(site) &&
          [...world.relaySite].some(([relay, s]) => s === site && world.relayUp(relay));
        if (maintenance.has(hostId) || !reachable) return true;
        return incidents.some((i) => i.hostId === hostId && i.openedAt - t0 >= since);
      });
    const watcher = new IncidentWatcher(
      cp,
      () => t0,
      timeline,
      (event) => {
        const vmId = event.data?.vmId;
        const hostId = event.data?.hostId;
        if (event.kind === 'start-ordered' && typeof vmId === 'string' && typeof hostId === 'string') {
          oracle.startOrdered(vmId, hostId, event.at - t0);
        }
      },
    );
    const judgeIncidents = (incidents: readonly IncidentRecord[]) => {
      for (const i of incidents) {
        if (i.closedAt === null) continue;
        oracle.incidentClosed({
          incidentId: i.incidentId,
          host: i.hostId,
          vm: i.kind === 'vm' ? i.vmId : undefined,
          outcome: i.outcome,
          openedAtMs: i.openedAt - t0,
          closedAtMs: i.closedAt - t0,
        });
      }
    };
    for (;;) {
      // An operator's view, not part of the control plane: often enough to end a run soon after it
      // settles, seldom enough not to load the store the control plane runs on.
      await realClock.sleep(Math.max(50, Math.min(250, hb)));
      await watcher.poll();
      const now = elapsed();
      judgeIncidents(watcher.incidents);
      oracle.tick(now);
      printViolations(now);
      if (now >= scenario.durationMs) break;
      if (faultsPending > 0 || operatorsPending > 0 || now < lastFaultAt + margin) continue;
      // An HA VM down and still inside its bound may yet be restarted: ending now would hide either outcome.
      if (oracle.pending()) continue;
      if (awaitedIncidents(watcher.incidents) && (await settled(cp, watcher.incidents))) break;
    }
    await watcher.poll();
    judgeIncidents(watcher.incidents);
    oracle.tick(elapsed());
    printViolations(elapsed());

    // ---- the report
    for (const program of [...agents.values(), ...relays.values()]) program.controller.abort();
    for (const timer of timers) clearTimeout(timer);
    await Promise.all([...agents.values(), ...relays.values()].map((p) => p.done));
    failedExecutions(cp);
    const report = await buildReport(cp, scenario, world, watcher, t0, seed, oracle);
    if (options.onEvent !== undefined) {
      for (const e of siteErrors) options.onEvent(`site program error: ${e}`);
    }
    return {
      report,
      timeline: timeline.sorted(),
      exitCode: report.violations.length > 0 ? 1 : 0,
      lastHeartbeatAtMs: Object.fromEntries(network.lastHeartbeatAt),
    };
  } finally {
    for (const program of [...agents.values(), ...relays.values()]) program.controller.abort();
    for (const timer of timers) clearTimeout(timer);
    await cp.stop();
  }
}

/** Runs `fn` over `items`, `size` at a time. */
async function inBatches<T>(
  items: readonly T[],
  size: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

function clustersOf(scenario: Scenario): { site: string; cluster: string }[] {
  const seen = new Map<string, { site: string; cluster: string }>();
  for (const h of scenario.hosts) seen.set(`${h.site}/${h.cluster}`, { site: h.site, cluster: h.cluster });
  return [...seen.values()];
}

/** Waits until the control plane has a record of every host. */
async function warmUp(cp: SimPlane, scenario: Scenario, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const sites = [...new Set(scenario.hosts.map((h) => h.site))];
  for (;;) {
    const known = new Set<string>();
    for (const site of sites) {
      for (const host of await cp.ctx.ports.hosts.listHosts(site)) known.add(host.hostId);
    }
    if (scenario.hosts.every((h) => known.has(h.id))) return;
    if (Date.now() > deadline) {
      const missing = scenario.hosts.filter((h) => !known.has(h.id)).map((h) => h.id);
      throw new Error(`the control plane never heard of ${missing.join(', ')} during warm-up`);
    }
    await realClock.sleep(100);
  }
}

/**
 * The host's newest incident left to an operator. Also one whose wait timed out (no task token any more):
 * an operator who confirms late still answers it, and the control plane must still recover.
 */
async function awaitingOperator(cp: SimPlane, hostId: string): Promise<IncidentRecord | null> {
  const all = await cp.ctx.ports.incidents.list({ limit: 200 });
  const waiting = all
    .filter((i) => i.hostId === hostId && i.outcome === 'awaiting-operator')
    .sort((a, b) => b.openedAt - a.openedAt);
  return waiting[0] ?? null;
}

/** How a failover may end failed by design: its Fail states. */
const DESIGNED_FAILURES: ReadonlySet<string> = new Set([
  WORKFLOW_ERROR.OperatorNeverAnswered,
  WORKFLOW_ERROR.UnknownOperatorDecision,
]);

/**
 * Throws (a harness error of the run) when a failover execution failed other than by one of its Fail
 * states: a step that threw what no Catch takes is a bug, and its incident would otherwise just stay open.
 */
export function failedExecutions(cp: Pick<SimPlane, 'workflow'>): void {
  const failed = cp.workflow
    .executions()
    .filter((e) => e.status === 'failed' && !DESIGNED_FAILURES.has(e.error?.error ?? ''));
  if (failed.length === 0) return;
  const named = failed.map((e) => `${e.input.incident.incidentId}: ${e.error?.error}: ${e.error?.cause}`);
  throw new Error(`failover execution(s) failed: ${named.join('; ')}`);
}

/** Nothing more will happen by itself: every incident closed or waiting for an operator, no execution busy. */
async function settled(cp: SimPlane, incidents: readonly IncidentRecord[]): Promise<boolean> {
  // Waiting with a task token, or past the operator timeout without one: either way only an operator moves it.
  const waiting = new Set(
    incidents
      .filter((i) => i.closedAt === null && i.outcome === 'awaiting-operator')
      .map((i) => i.incidentId),
  );
  if (incidents.some((i) => i.closedAt === null && !waiting.has(i.incidentId))) return false;
  return cp.workflow
    .executions()
    .every((e) => e.status !== 'running' || waiting.has(e.input.incident.incidentId));
}

/** Polls the control plane's incidents and their timelines, feeding new events to the run's timeline. */
class IncidentWatcher {
  incidents: IncidentRecord[] = [];
  private readonly seen = new Set<string>();
  private readonly finished = new Set<string>();
  /** The newest event time read per incident: the next poll reads the timeline from there on. */
  private readonly readUpTo = new Map<string, number>();

  constructor(
    private readonly cp: SimPlane,
    private readonly t0: () => number,
    private readonly timeline: Timeline,
    /** Each new event, once, as it is read. */
    private readonly onEvent: (event: IncidentEvent) => void = () => undefined,
  ) {}

  async poll(): Promise<void> {
    const all = await this.cp.ctx.ports.incidents.list({ limit: 200 });
    this.incidents = [...all].sort(
      (a, b) => a.openedAt - b.openedAt || a.incidentId.localeCompare(b.incidentId),
    );
    for (const incident of this.incidents) {
      if (this.finished.has(incident.incidentId)) continue;
      const opened = `${incident.incidentId}#opened`;
      if (!this.seen.has(opened)) {
        this.seen.add(opened);
        this.timeline.add({
          atMs: incident.openedAt - this.t0(),
          source: 'control-plane',
          subject: incident.kind === 'vm' ? (incident.vmId ?? incident.hostId) : incident.hostId,
          text:
            incident.kind === 'vm'
              ? `VM incident ${incident.incidentId} opened: down on ${incident.hostId}`
              : `incident ${incident.incidentId} opened: silent to every live relay`,
        });
      }
      const fromAt = this.readUpTo.get(incident.incidentId);
      const events = await this.cp.ctx.ports.incidents.listEvents(
        incident.incidentId,
        fromAt === undefined ? {} : { fromAt },
      );
      for (const event of events) {
        this.readUpTo.set(incident.incidentId, Math.max(fromAt ?? 0, event.at));
        const key = `${event.incidentId}#${event.at}#${event.kind}#${event.key ?? ''}`;
        if (this.seen.has(key)) continue;
        this.seen.add(key);
        this.onEvent(event);
        if (event.kind === 'closed') this.seen.add(`closed#${incident.incidentId}`);
        const { subject, text } = incidentEventText(event);
        this.timeline.add({
          atMs: event.at - this.t0(),
          source: 'control-plane',
          subject: subject ?? incident.hostId,
          text,
        });
      }
      if (incident.closedAt !== null && this.seen.has(`closed#${incident.incidentId}`)) {
        this.finished.add(incident.incidentId);
      }
    }
  }

  async events(incidentId: string) {
    return this.cp.ctx.ports.incidents.listEvents(incidentId);
  }
}

/** When the incident stopped needing the control plane: closed, or (last) left to an operator. */
function settledAt(incident: IncidentRecord, events: readonly IncidentEvent[], t0: number): number | null {
  if (incident.closedAt !== null) return incident.closedAt - t0;
  if (incident.outcome !== 'awaiting-operator') return null;
  const waiting = events.filter((e) => e.kind === 'awaiting-operator').at(-1);
  return waiting === undefined ? null : waiting.at - t0;
}

async function buildReport(
  cp: SimPlane,
  scenario: Scenario,
  world: World,
  watcher: IncidentWatcher,
  t0: number,
  seed: number,
  oracle: Oracle,
): Promise<ScenarioReport> {
  const states = new Map<string, string>();
  for (const site of scenario.sites) {
    for (const host of await cp.ctx.ports.hosts.listHosts(site.id))
      states.set(host.hostId, host.lifecycle.status);
  }
  const hosts: ScenarioReport['hosts'] = {};
  for (const h of scenario.hosts) {
    hosts[h.id] = { power: world.host(h.id).power ? 'on' : 'off', state: states.get(h.id) ?? 'unknown' };
  }
  const vms: ScenarioReport['vms'] = {};
  const end = Date.now() - t0;
  for (const vm of scenario.vms) {
    vms[vm.id] = {
      runningOn: [...(world.runningOn.get(vm.id) ?? [])].sort(),
      downMs: oracle.downMs(vm.id, end),
    };
  }
  const incidents: ScenarioReport['incidents'] = [];
  for (const incident of watcher.incidents) {
    const events = await watcher.events(incident.incidentId);
    const str = (value: unknown) => (typeof value === 'string' ? value : '');
    incidents.push({
      host: incident.hostId,
      ...(incident.kind === 'vm'
        ? { kind: 'vm' as const, ...(incident.vmId === undefined ? {} : { vm: incident.vmId }) }
        : {}),
      outcome: incident.outcome,
      openedAtMs: incident.openedAt - t0,
      fencedAtMs: incident.fencedAt === null ? null : incident.fencedAt - t0,
      settledAtMs: settledAt(incident, events, t0),
      starts: events
        .filter((e) => e.kind === 'vm-started')
        .map((e) => ({ vm: str(e.data?.vmId), host: str(e.data?.hostId), atMs: e.at - t0 })),
      // Left out by the plan (no host fits) or by the waves (every attempt failed): unplaced either way.
      unplaced: [
        ...new Set([
          ...events.flatMap((e) => {
            if (e.kind !== 'placement-planned') return [];
            const plan = PlanOutputSchema.safeParse(e.data?.plan);
            return plan.success ? plan.data.unplaced.map((u) => u.vmId) : [];
          }),
          ...events.filter((e) => e.kind === 'vm-unplaced').map((e) => str(e.data?.vmId)),
        ]),
      ],
    });
  }
  return {
    scenario: scenario.name,
    seed,
    hosts,
    vms,
    incidents,
    violations: oracle.violations.map((v) => ({ rule: v.rule, detail: v.detail })),
  };
}

export { scenarioPolicy, summaryTable };
