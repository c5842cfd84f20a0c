import type { IncidentRecord } from '../app/ports';
import { REPORT_ROUTE } from '../contracts/operator-api';
import type {
  CommandResult,
  HostObservation,
  ObservedVm,
  RelayCommand,
  RelayReport,
  ReportResponse,
} from '../contracts/relay-protocol';
import { type HaPolicyInput, resolvePolicy } from '../core/policy';
import { synthesizedDefinition } from '../local/definition';
import type { LocalExecution } from '../local/local-workflow';
import { SeededIds } from '../local/sim/adapters';
import { seededRandom } from '../local/sim/runner';
import { onVirtualTime } from '../local/sim/virtual-time';
import { type InProcessControlPlane, startVirtualControlPlane } from '../local/virtual-control-plane';
import { mapConcurrencies } from '../local/workflow-limits';
import { reportAnswer } from '../site/adapters/http-uplink';

/**
 * One host with hundreds of HA VMs fails, and the whole failover runs through the synthesized state machine
 * on the virtual control plane (memory stores, in-process dispatch, virtual time): what Step Functions'
 * limits are held against (local/workflow-limits.ts). A scripted relay plays the site: it reports every
 * host, powers the failed host off when told, and starts each VM where the start command says, reporting
 * each result with its next report.
 */

const SITE = 'big-site';
const CLUSTER = 'c1';
const RELAY = 'relay-a';
const GiB = 1024;
const PRIORITIES = ['high', 'medium', 'low'] as const;

/** Options of {@link largeHostFailover}. */
export interface LargeHostOptions {
  /** HA VMs on the host that fails. */
  readonly vms: number;
  /** Hosts that survive it (enough room for every VM). */
  readonly survivors?: number;
  /** Starts that fail on their first host (VmStartFailed: released and tried on the next host), by count. */
  readonly failedStartsPerVm?: 0 | 1 | 2;
  readonly seed?: number;
}

/** What the run found. */
export interface LargeHostRun {
  readonly execution: LocalExecution;
  readonly incident: IncidentRecord;
  /** VMs of the failed host running elsewhere at the end. */
  readonly running: number;
  /** MaxConcurrency of every Map state of the definition. */
  readonly mapConcurrency: Record<string, number>;
  /** Virtual time from the host's silence to the incident's close, ms. */
  readonly failoverMs: number;
}

/** The production timing: 2 s heartbeats, 3 misses, 10 s reports. */
const POLICY: HaPolicyInput = { hostHeartbeatMs: 2000, missedHeartbeats: 3, relayReportMs: 10_000 };

/** Runs the failover of one host of `vms` HA VMs to its end, on virtual time. */
export async function largeHostFailover(options: LargeHostOptions): Promise<LargeHostRun> {
  const seed = options.seed ?? 1;
  const random = seededRandom(seed);
  // Synthesized before time stands still, as the simulator's runner does: the synth loads its modules.
  await synthesizedDefinition();
  return onVirtualTime(() => run(options, random), { random: seededRandom(seed ^ 0x5eed) });
}

async function run(options: LargeHostOptions, random: () => number): Promise<LargeHostRun> {
  const plane = await startVirtualControlPlane({
    policy: POLICY,
    detectorTickMs: 10_000,
    ids: new SeededIds(random),
  });
  try {
    const site = new ScriptedSite(plane, options);
    await site.enroll();
    await site.report();
    for (let i = 0; i < options.vms; i++) {
      const answer = await plane.operator('setVmMetadata', {
        params: { siteId: SITE, vmId: vmId(i) },
        body: { ha: true, priority: PRIORITIES[i % 3] ?? 'low' },
      });
      if (answer.status !== 200) throw new Error(`setVmMetadata: ${answer.status}`);
    }
    await site.report();
    const silentFrom = Date.now();
    site.silence('big');
    const policy = resolvePolicy(POLICY);
    const deadline = silentFrom + 3_600_000;
    let incident: IncidentRecord | undefined;
    for (;;) {
      await sleep(policy.incidentReportMs);
      await site.report();
      incident = (await plane.ctx.ports.incidents.list({ siteId: SITE })).find(
        (i) => i.hostId === 'big' && i.kind !== 'vm',
      );
      if (incident?.closedAt !== null && incident !== undefined) break;
      if (Date.now() > deadline) {
        const ended = plane.workflow.executions().map((e) => `${e.status} ${e.error?.cause ?? ''}`);
        throw new Error(`the failover did not end within an hour (virtual): ${ended.join('; ')}`);
      }
    }
    await plane.workflow.whenIdle();
    const execution = plane.workflow.executions().find((e) => e.input.incident.hostId === 'big');
    if (execution === undefined) throw new Error('no execution for the failed host');
    const definition = await synthesizedDefinition();
    return {
      execution,
      incident,
      running: site.runningElsewhere(),
      mapConcurrency: mapConcurrencies(definition.States),
      failoverMs: (incident.closedAt ?? Date.now()) - silentFrom,
    };
  } finally {
    await plane.stop();
  }
}

function vmId(i: number): string {
  return `vm-${String(i).padStart(4, '0')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The site: `big` runs every HA VM, the survivors run nothing and have room for all of them. */
class ScriptedSite {
  private seq = 0;
  private credential = '';
  private readonly hosts = new Map<string, ObservedVm[]>();
  private readonly silent = new Set<string>();
  private readonly done = new Set<string>();
  private readonly failedStarts = new Map<string, number>();
  private results: CommandResult[] = [];

  constructor(
    private readonly plane: InProcessControlPlane,
    private readonly options: LargeHostOptions,
  ) {
    this.hosts.set(
      'big',
      Array.from({ length: options.vms }, (_, i) => ({
        id: vmId(i),
        cpus: 1,
        memoryMiB: GiB,
        state: 'running' as const,
      })),
    );
    for (let s = 0; s < (options.survivors ?? 10); s++) this.hosts.set(survivorId(s), []);
  }

  async enroll(): Promise<void> {
    const enrolled = await this.plane.operator('enrollRelay', {
      params: { siteId: SITE },
      body: { relayId: RELAY },
    });
    const body = enrolled.body as { credential?: string } | null;
    if (typeof body?.credential !== 'string') throw new Error(`enrollRelay: ${enrolled.status}`);
    this.credential = body.credential;
  }

  silence(hostId: string): void {
    this.silent.add(hostId);
  }

  runningElsewhere(): number {
    let n = 0;
    for (const [hostId, vms] of this.hosts) {
      if (hostId !== 'big') n += vms.filter((vm) => vm.state === 'running').length;
    }
    return n;
  }

  async report(): Promise<void> {
    this.seq += 1;
    const hosts: HostObservation[] = [...this.hosts].map(([hostId, vms]) => ({
      hostId,
      cluster: CLUSTER,
      bootId: `boot-${hostId}`,
      lastHeardMsAgo: this.silent.has(hostId) ? 60_000 : 100,
      // The failed host is as large as it must be; each survivor takes a tenth of its VMs and more.
      cpus: hostId === 'big' ? 4096 : 256,
      memoryMiB: hostId === 'big' ? 4096 * GiB : 256 * GiB,
      vms: this.silent.has(hostId) && hostId !== 'big' ? [] : vms,
    }));
    const report: RelayReport = {
      protocol: 1,
      siteId: SITE,
      relayId: RELAY,
      seq: this.seq,
      sentAt: Date.now(),
      hosts,
      results: this.results,
    };
    const response = await this.send(report);
    this.results = [];
    for (const command of response.commands) this.carryOut(command);
  }

  private async send(report: RelayReport): Promise<ReportResponse> {
    const result = await this.plane.dispatch({
      method: REPORT_ROUTE.method,
      rawPath: REPORT_ROUTE.path,
      rawQueryString: '',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.credential}` },
      body: Buffer.from(JSON.stringify(report)),
      sourceIp: '127.0.0.1',
      protocol: 'HTTP/1.1',
    });
    const text =
      result.body === undefined
        ? ''
        : Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8').toString();
    return reportAnswer(result.statusCode ?? 200, text);
  }

  private carryOut(command: RelayCommand): void {
    if (this.done.has(command.commandId)) return;
    this.done.add(command.commandId);
    const base = { commandId: command.commandId, incidentId: command.incidentId, finishedAt: Date.now() };
    if (command.kind === 'fence') {
      // Off, and nothing of what it ran runs any more.
      this.hosts.set(command.hostId, []);
      this.results.push({ ...base, outcome: 'succeeded', powerState: 'off' });
      return;
    }
    const failed = this.failedStarts.get(command.vm.id) ?? 0;
    if (failed < (this.options.failedStartsPerVm ?? 0)) {
      this.failedStarts.set(command.vm.id, failed + 1);
      this.results.push({ ...base, outcome: 'failed', detail: 'libvirt: failed to start (scripted)' });
      return;
    }
    const vms = this.hosts.get(command.hostId) ?? [];
    if (!vms.some((vm) => vm.id === command.vm.id)) {
      vms.push({
        id: command.vm.id,
        cpus: command.vm.cpus,
        memoryMiB: command.vm.memoryMiB,
        state: 'running',
      });
    }
    this.hosts.set(command.hostId, vms);
    this.results.push({ ...base, outcome: 'succeeded' });
  }
}

function survivorId(s: number): string {
  return `node-${String(s).padStart(2, '0')}`;
}
