import {
  type CommandResult,
  type HostObservation,
  PROTOCOL_VERSION,
  type RelayCommand,
  type RelayReport,
  type ReportResponse,
} from '../../contracts/relay-protocol';
import { type HaPolicy, hostSilentAfterMs, resolvePolicy } from '../../core/policy';
import { type Heartbeat, HeartbeatSchema, type LanMessage, type StartVmReply } from '../lan-protocol';
import {
  type BmcEndpoint,
  type BmcPower,
  type Clock,
  type HeardHost,
  type Lan,
  type RelayState,
  type RelayStateStore,
  type SiteLogger,
  silentLogger,
  type Uplink,
  UplinkError,
} from '../ports';
import { type CommandRun, describeError } from './command-run';
import type { RelayConfig } from './config';
import { FenceRun } from './fence-run';
import { makeRedactor } from './redact';
import { StartRun } from './start-run';

/** What the relay talks to. */
export interface RelayPorts {
  readonly clock: Clock;
  readonly uplink: Uplink;
  readonly lan: Lan;
  readonly bmc: BmcPower;
  readonly state: RelayStateStore;
  readonly log?: SiteLogger;
}

/** A finished command is remembered this long past its notAfter, so a late repeat is still recognised. */
const REMEMBER_DONE_MS = 15 * 60 * 1000;

interface Job {
  readonly command: RelayCommand;
  run: CommandRun | null;
  busy: boolean;
  finished: boolean;
  result: CommandResult | null;
}

/**
 * The site relay: hears the host agents, sends the site's batched report to the control plane, and carries
 * out the commands its responses bring (fence through a BMC, start a VM through an agent).
 *
 * It observes; the control plane decides. It is driven from outside like the agent: `receive()` takes each
 * LAN message and `tick()` does whatever is due (command steps, the report), awaiting what it started, so
 * the simulator runs it deterministically on virtual time; `run()` is the real program's loop.
 */
export class Relay {
  private readonly log: SiteLogger;
  private readonly policy: HaPolicy;
  private readonly silentAfterMs: number;
  private readonly bmc: ReadonlyMap<string, BmcEndpoint>;
  private readonly redact: (text: string) => string;
  private readonly hosts = new Map<string, HeardHost>();
  private readonly jobs = new Map<string, Job>();
  /** Results not yet taken by the control plane, by command id. */
  private readonly unsent = new Map<string, CommandResult>();
  /** Hosts the last report called silent: a host crossing the threshold either way is reported at once. */
  private reportedSilent = new Set<string>();
  private nextSeq: number;
  /** A restarted relay first listens one silence threshold, so live hosts are heard before any report. */
  private readonly quietUntil: number;
  private nextReportAt: number;
  private lastReportAt = Number.NEGATIVE_INFINITY;
  private changed = false;
  /**
   * Something a failover waits on changed since the last report (a command finished, a host crossed the
   * silence threshold either way): it goes out at once, whatever the report gap.
   */
  private urgent = false;
  /** Ends run()'s current sleep early (a command finished between ticks). */
  private wake: (() => void) | null = null;
  private sending = false;
  private failures = 0;
  private staleJump = 1000;

  private constructor(
    private readonly config: RelayConfig,
    private readonly ports: RelayPorts,
    saved: RelayState | null,
  ) {
    this.log = ports.log ?? silentLogger;
    this.policy = resolvePolicy(config.timing);
    this.silentAfterMs = hostSilentAfterMs(this.policy);
    this.bmc = new Map(Object.entries(config.bmc));
    this.redact = makeRedactor(config.bmc, config.credential);
    const now = ports.clock.now();
    // Never below a seq handed out before the restart, nor below the wall clock (a lost state file).
    this.nextSeq = Math.max((saved?.seq ?? -1) + 1, now);
    for (const host of saved?.hosts ?? []) this.hosts.set(host.hostId, host);
    this.quietUntil = now + this.silentAfterMs;
    this.nextReportAt = this.quietUntil;
  }

  /** Opens a relay with its saved state (sequence number, hosts heard before a restart). */
  static async open(config: RelayConfig, ports: RelayPorts): Promise<Relay> {
    let saved: RelayState | null = null;
    try {
      saved = await ports.state.load();
    } catch (error) {
      // Still safe: the wall clock keeps seq above anything sent before, and hosts are heard again.
      (ports.log ?? silentLogger).warn('relay state unreadable; starting afresh', {
        error: describeError(error),
      });
    }
    return new Relay(config, ports, saved);
  }

  /** Handles one message from the LAN: an agent's heartbeat or its answer to a start request. */
  receive(message: LanMessage): void {
    if (message.kind === 'heartbeat') this.heard(message);
    else if (message.kind === 'start-result') this.answered(message);
  }

  /** Does what is due now (command steps and the report, side by side) and awaits it. */
  async tick(): Promise<void> {
    const now = this.ports.clock.now();
    this.noticeSilence(now);
    const steps = this.stepDueCommands(now);
    const report = this.reportIfDue();
    await Promise.all(steps);
    await report;
    // Commands the report's response brought take their first step now, not a tick later: a fence's
    // power-off is on every failover's critical path.
    await Promise.all(this.stepDueCommands(this.ports.clock.now()));
    // A command that finished during this tick is reported at once, not at the next interval.
    await this.reportIfDue();
    this.forgetDone(this.ports.clock.now());
  }

  /** The real program's loop: a tick every `loopMs`, not awaited, so a slow BMC cannot hold reports back. */
  async run(signal?: AbortSignal): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const loopMs = this.config.loopMs ?? 100;
    while (signal?.aborted !== true) {
      const tick = this.tick().catch((error: unknown) => {
        this.log.warn('relay tick failed', { error: describeError(error) });
      });
      inFlight.add(tick);
      void tick.finally(() => inFlight.delete(tick));
      // The next tick comes early for a result that arrives between ticks (an agent's start answer, the
      // start's last hop to the control plane) and at the instant a host crosses the silence threshold,
      // so neither waits out loopMs.
      await Promise.race([
        this.ports.clock.sleep(Math.min(loopMs, this.untilNextSilence(this.ports.clock.now()))),
        new Promise<void>((resolve) => {
          this.wake = resolve;
        }),
      ]);
      this.wake = null;
    }
    await Promise.all(inFlight);
  }

  // ------------------------------------------------------------------ hosts

  private heard(message: Heartbeat): void {
    // The report is the site's only voice: one malformed heartbeat must not get it refused as a whole.
    const parsed = HeartbeatSchema.safeParse(message);
    if (!parsed.success) {
      this.log.warn('malformed heartbeat dropped', { issues: parsed.error.issues.length });
      return;
    }
    const hb = parsed.data;
    const previous = this.hosts.get(hb.hostId);
    const host: HeardHost = {
      hostId: hb.hostId,
      cluster: hb.cluster,
      bootId: hb.bootId,
      cpus: hb.cpus,
      memoryMiB: hb.memoryMiB,
      vms: hb.vms,
      heardAt: this.ports.clock.now(),
    };
    this.hosts.set(hb.hostId, host);
    const cameBack = this.reportedSilent.has(hb.hostId);
    if (cameBack) this.urgent = true;
    if (previous === undefined || cameBack || inventoryKey(previous) !== inventoryKey(host))
      this.changed = true;
  }

  private isSilent(host: HeardHost, now: number): boolean {
    // Strictly above, as the control plane judges lastHeardMsAgo.
    return now - host.heardAt > this.silentAfterMs;
  }

  /** Time until the next heard host would cross the silence threshold (strictly above it). */
  private untilNextSilence(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const host of this.hosts.values()) {
      const until = host.heardAt + this.silentAfterMs + 1 - now;
      // Already past it: the tick that saw it has made the report urgent, so no wake-up is owed.
      if (until > 0) next = Math.min(next, until);
    }
    return next;
  }

  private noticeSilence(now: number): void {
    for (const host of this.hosts.values()) {
      if (this.isSilent(host, now) !== this.reportedSilent.has(host.hostId)) {
        this.changed = true;
        this.urgent = true;
      }
    }
  }

  private seenRunning(hostId: string, vmId: string): boolean {
    const host = this.hosts.get(hostId);
    return host?.vms.some((vm) => vm.id === vmId && vm.state === 'running') ?? false;
  }

  // ------------------------------------------------------------------ report

  private reportIfDue(): Promise<void> | null {
    const now = this.ports.clock.now();
    if (this.sending || now < this.quietUntil) return null;
    // After a failure the backoff decides: changes ride on the retry, which carries the latest state.
    // Urgent changes skip the gap: results come one per command and a host crosses the threshold at most
    // once per silence, so they cannot flood the API, and each is the cue for a failover's next step.
    const early =
      this.failures === 0 &&
      (this.urgent || (this.changed && now >= this.lastReportAt + (this.config.minReportGapMs ?? 250)));
    return now >= this.nextReportAt || early ? this.report(now) : null;
  }

  private async report(now: number): Promise<void> {
    this.sending = true;
    const report = this.buildReport(now);
    try {
      await this.ports.state.save({ seq: report.seq, hosts: [...this.hosts.values()] });
    } catch (error) {
      // Sent anyway: a seq reused after a restart is only refused (409); the wall clock makes it unlikely.
      this.log.warn('relay state not saved', { error: describeError(error) });
    }
    try {
      const response = await this.ports.uplink.send(report, this.config.credential);
      this.failures = 0;
      this.staleJump = 1000;
      this.nextReportAt =
        this.ports.clock.now() + Math.min(response.nextReportInMs, this.policy.relayReportMs);
      this.accepted(report, response);
    } catch (error) {
      this.refused(error);
    } finally {
      this.sending = false;
    }
  }

  private buildReport(now: number): RelayReport {
    const hosts: HostObservation[] = [];
    const silent = new Set<string>();
    for (const h of this.hosts.values()) {
      if (this.isSilent(h, now)) silent.add(h.hostId);
      hosts.push({
        hostId: h.hostId,
        cluster: h.cluster,
        bootId: h.bootId,
        lastHeardMsAgo: Math.max(0, Math.round(now - h.heardAt)),
        cpus: h.cpus,
        memoryMiB: h.memoryMiB,
        vms: [...h.vms],
      });
    }
    this.reportedSilent = silent;
    this.changed = false;
    this.urgent = false;
    this.lastReportAt = now;
    const seq = this.nextSeq;
    // Every attempt takes a new seq, sent or not: a retry is a new report with the latest state.
    this.nextSeq += 1;
    return {
      protocol: PROTOCOL_VERSION,
      siteId: this.config.siteId,
      relayId: this.config.relayId,
      seq,
      sentAt: now,
      hosts,
      results: [...this.unsent.values()],
    };
  }

  /** A response: the results its report carried are done unless still listed; new commands start. */
  private accepted(report: RelayReport, response: ReportResponse): void {
    const listed = new Set(response.commands.map((c) => c.commandId));
    for (const result of report.results) {
      if (!listed.has(result.commandId)) this.unsent.delete(result.commandId);
    }
    for (const command of response.commands) this.take(command);
  }

  private refused(error: unknown): void {
    this.failures += 1;
    const base = Math.min(1000, this.policy.relayReportMs);
    const backoff = Math.min(this.policy.relayReportMs, base * 2 ** (this.failures - 1));
    this.nextReportAt = this.ports.clock.now() + backoff;
    const status = error instanceof UplinkError ? error.status : null;
    if (status === 409) {
      // The control plane accepted a higher seq than we know of (state lost, clock behind): leap past it.
      this.nextSeq = Math.max(this.nextSeq + this.staleJump, this.ports.clock.now());
      this.staleJump *= 2;
    }
    this.log.warn('report not accepted; retrying', {
      status,
      code: error instanceof UplinkError ? error.code : null,
      error: describeError(error),
      failures: this.failures,
      retryInMs: backoff,
    });
  }

  // ------------------------------------------------------------------ commands

  /**
   * A command from a response. One already taken is never carried out again (safety rule 4): its result
   * is queued again for as long as the control plane keeps sending it. One past notAfter is not started.
   */
  private take(command: RelayCommand): void {
    const known = this.jobs.get(command.commandId);
    if (known !== undefined) {
      if (known.result !== null && !this.unsent.has(command.commandId)) {
        this.unsent.set(command.commandId, known.result);
      }
      return;
    }
    const job: Job = { command, run: null, busy: false, finished: false, result: null };
    this.jobs.set(command.commandId, job);
    const now = this.ports.clock.now();
    if (now > command.notAfter) {
      this.finish(
        job,
        notStarted(command, now, `received after its notAfter (${command.notAfter}); not started`),
      );
      return;
    }
    if (command.kind === 'fence') {
      const endpoint = this.bmc.get(command.hostId);
      if (endpoint === undefined) {
        this.finish(job, {
          ...notStarted(
            command,
            now,
            `no BMC configured for ${command.hostId} on relay ${this.config.relayId}`,
          ),
          powerState: 'unknown',
        });
        return;
      }
      job.run = new FenceRun(
        command,
        { hostId: command.hostId, ...endpoint },
        { bmc: this.ports.bmc, clock: this.ports.clock, pollMs: this.config.bmcPollMs ?? 1000 },
      );
    } else {
      job.run = new StartRun(command, {
        relayId: this.config.relayId,
        lan: this.ports.lan,
        clock: this.ports.clock,
        resendMs: this.config.startResendMs ?? this.policy.hostHeartbeatMs,
        seenRunning: (hostId, vmId) => this.seenRunning(hostId, vmId),
      });
    }
    this.log.info('command taken', {
      commandId: command.commandId,
      kind: command.kind,
      hostId: command.hostId,
    });
  }

  private stepDueCommands(now: number): Promise<void>[] {
    const steps: Promise<void>[] = [];
    for (const job of this.jobs.values()) {
      const run = job.run;
      if (run === null || job.finished || job.busy || run.dueAt > now) continue;
      steps.push(this.step(job, run));
    }
    return steps;
  }

  private async step(job: Job, run: CommandRun): Promise<void> {
    job.busy = true;
    try {
      const outcome = await run.step();
      if (outcome.finished && !job.finished) this.finish(job, outcome.result);
    } catch (error) {
      this.log.warn('command step failed; retried at the next tick', {
        commandId: job.command.commandId,
        error: describeError(error),
      });
    } finally {
      job.busy = false;
    }
  }

  private answered(reply: StartVmReply): void {
    const job = this.jobs.get(reply.commandId);
    if (job === undefined || job.finished || !(job.run instanceof StartRun)) return;
    const result = job.run.answered(reply);
    if (result !== null) this.finish(job, result);
  }

  private finish(job: Job, result: CommandResult | null): void {
    job.finished = true;
    job.run = null;
    const commandId = job.command.commandId;
    if (result === null) {
      this.log.warn('command ended without a result; the control plane times it out', { commandId });
      return;
    }
    const clean: CommandResult =
      result.detail === undefined ? result : { ...result, detail: this.redact(result.detail) };
    job.result = clean;
    this.unsent.set(commandId, clean);
    this.changed = true;
    this.urgent = true;
    this.wake?.();
    this.log.info('command finished', { commandId, outcome: clean.outcome, powerState: clean.powerState });
  }

  private forgetDone(now: number): void {
    for (const [commandId, job] of this.jobs) {
      if (!job.finished || this.unsent.has(commandId)) continue;
      if (now > job.command.notAfter + REMEMBER_DONE_MS) this.jobs.delete(commandId);
    }
  }
}

/** A failed result for a command never started. */
function notStarted(command: RelayCommand, now: number, detail: string): CommandResult {
  return {
    commandId: command.commandId,
    incidentId: command.incidentId,
    outcome: 'failed',
    detail,
    finishedAt: now,
  };
}

/** What makes a heartbeat worth reporting at once when it changes: boot, capacity, VMs and their states. */
function inventoryKey(host: HeardHost): string {
  const vms = [...host.vms].sort((a, b) => a.id.localeCompare(b.id));
  return JSON.stringify([host.cluster, host.bootId, host.cpus, host.memoryMiB, vms]);
}
