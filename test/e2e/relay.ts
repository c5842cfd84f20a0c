import {
  type CommandResult,
  type FenceCommand,
  PREVIOUS_PROTOCOL_VERSION,
  type RelayCommand,
  type RelayReport,
  ReportResponseSchema,
  type StartVmCommand,
} from '../../contracts/relay-protocol';
import type { HttpResponse } from '../../functions/shared/http';
import type { World } from './world';

/**
 * A scripted site relay: it reports the world as it hears it through the real ingest handler, carries out
 * the commands the responses bring as its script says, and reports their results at once, as the relay
 * protocol asks (docs/protocol.md). It acts on a command id once, however often it is delivered.
 */

/** How a relay answers a fence: a result to report, or `ignore` (no result ever), or `hold` (answer later). */
export type FenceAnswer =
  | {
      readonly outcome: 'succeeded' | 'failed';
      readonly powerState?: 'off' | 'on' | 'unknown';
      readonly detail?: string;
    }
  | 'ignore'
  | 'hold';

/** How a relay answers a start: carry it out, fail it, or never answer. */
export type StartAnswer = 'start' | 'fail' | 'ignore';

/** A relay's behaviour; the defaults are a healthy site (the BMC powers off, VMs start). */
export interface RelayScript {
  fence?(command: FenceCommand, relay: ScriptedRelay): FenceAnswer;
  start?(command: StartVmCommand, relay: ScriptedRelay): StartAnswer;
}

/** One line of what every relay received and reported, in one order across relays. */
export type JournalEntry =
  | {
      readonly seq: number;
      readonly at: number;
      readonly kind: 'command';
      readonly relayId: string;
      readonly command: RelayCommand;
    }
  | {
      readonly seq: number;
      readonly at: number;
      readonly kind: 'result';
      readonly relayId: string;
      readonly result: CommandResult;
    };

/** Appends in the order things happened; `seq` orders entries that share a millisecond. */
export class Journal {
  readonly entries: JournalEntry[] = [];
  private seq = 0;

  add(entry: Omit<Extract<JournalEntry, { kind: 'command' }>, 'seq' | 'at'>): void;
  add(entry: Omit<Extract<JournalEntry, { kind: 'result' }>, 'seq' | 'at'>): void;
  add(entry: Omit<JournalEntry, 'seq' | 'at'>): void {
    this.seq += 1;
    this.entries.push({ ...entry, seq: this.seq, at: Date.now() } as JournalEntry);
  }

  commands(): Extract<JournalEntry, { kind: 'command' }>[] {
    return this.entries.filter((e) => e.kind === 'command');
  }

  results(): Extract<JournalEntry, { kind: 'result' }>[] {
    return this.entries.filter((e) => e.kind === 'result');
  }
}

/** What a relay needs from the test: the world it hears, the ingest endpoint and the shared journal. */
export interface RelayEnv {
  readonly siteId: string;
  readonly world: World;
  readonly journal: Journal;
  ingest(body: string, authorization: string | undefined): Promise<HttpResponse>;
}

const MAX_SLEEP_MS = 1000;

/** A relay of the e2e site, driven by a script. */
export class ScriptedRelay {
  seq = 0;
  /** Results not yet accepted by the cloud. */
  readonly outbox: CommandResult[] = [];
  /** Fence commands held back by a `hold` answer, to be answered by the test. */
  readonly held: FenceCommand[] = [];
  private readonly done = new Map<string, CommandResult | null>();
  private nextReportInMs = 200;
  private loop: Promise<void> | null = null;
  private running = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly env: RelayEnv,
    readonly relayId: string,
    readonly credential: string,
    public script: RelayScript = {},
  ) {}

  /** The report this relay would send now (its next seq), with the results in its outbox: a v1 report. */
  nextReport(): RelayReport {
    this.seq += 1;
    return {
      protocol: PREVIOUS_PROTOCOL_VERSION,
      siteId: this.env.siteId,
      relayId: this.relayId,
      seq: this.seq,
      sentAt: Date.now(),
      hosts: this.env.world.observe(Date.now()),
      results: [...this.outbox],
    };
  }

  /**
   * Sends one report (this relay's next, or the body given) through ingest and carries out the commands
   * of an accepted response. Results count as delivered only when the cloud accepted the report.
   */
  async report(body?: string): Promise<HttpResponse> {
    const report = body === undefined ? this.nextReport() : undefined;
    const sent = report === undefined ? [] : report.results;
    const response = await this.env.ingest(body ?? JSON.stringify(report), `Bearer ${this.credential}`);
    if (response.statusCode !== 200) return response;
    for (const result of sent) {
      const at = this.outbox.indexOf(result);
      if (at >= 0) this.outbox.splice(at, 1);
      this.env.journal.add({ kind: 'result', relayId: this.relayId, result });
    }
    const parsed = ReportResponseSchema.parse(JSON.parse(response.body ?? ''));
    this.nextReportInMs = parsed.nextReportInMs;
    for (const command of parsed.commands) this.carryOut(command);
    return response;
  }

  /** Reports in a loop, every nextReportInMs, and at once when a result is waiting. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await this.report();
        if (!this.running) break;
        if (this.outbox.length > 0) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(this.nextReportInMs, MAX_SLEEP_MS));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    })();
  }

  /** Ends the loop after the report in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.loop = null;
  }

  /** Answers a held fence now. */
  answerHeld(commandId: string, answer: Exclude<FenceAnswer, 'hold' | 'ignore'>): void {
    const at = this.held.findIndex((c) => c.commandId === commandId);
    const command = this.held[at];
    if (command === undefined) throw new Error(`${this.relayId} holds no fence ${commandId}`);
    this.held.splice(at, 1);
    this.finishFence(command, answer);
  }

  private carryOut(command: RelayCommand): void {
    this.env.journal.add({ kind: 'command', relayId: this.relayId, command });
    // A command seen before is not acted on again (safety rule 4); its result goes out again if it had one.
    if (this.done.has(command.commandId)) {
      const result = this.done.get(command.commandId);
      if (result != null && !this.outbox.includes(result)) this.queue(result);
      return;
    }
    this.done.set(command.commandId, null);
    if (Date.now() > command.notAfter) return;
    if (command.kind === 'fence') {
      const answer = this.script.fence?.(command, this) ?? { outcome: 'succeeded', powerState: 'off' };
      if (answer === 'ignore') return;
      if (answer === 'hold') {
        this.held.push(command);
        return;
      }
      this.finishFence(command, answer);
      return;
    }
    const answer = this.script.start?.(command, this) ?? 'start';
    if (answer === 'ignore') return;
    const started = answer === 'start' && this.env.world.startVm(command.hostId, command.vm);
    this.finish(command, {
      outcome: started ? 'succeeded' : 'failed',
      ...(started ? {} : { detail: `virsh start ${command.vm.id} failed on ${command.hostId}` }),
    });
  }

  private finishFence(command: FenceCommand, answer: Exclude<FenceAnswer, 'hold' | 'ignore'>): void {
    // The BMC really powered the host off only when the relay reads `off` back and says it succeeded.
    if (answer.outcome === 'succeeded' && answer.powerState === 'off')
      this.env.world.powerOff(command.hostId);
    this.finish(command, answer);
  }

  private finish(
    command: RelayCommand,
    answer: { outcome: 'succeeded' | 'failed'; powerState?: 'off' | 'on' | 'unknown'; detail?: string },
  ): void {
    const result: CommandResult = {
      commandId: command.commandId,
      incidentId: command.incidentId,
      outcome: answer.outcome,
      ...(answer.powerState === undefined ? {} : { powerState: answer.powerState }),
      ...(answer.detail === undefined ? {} : { detail: answer.detail }),
      finishedAt: Date.now(),
    };
    this.done.set(command.commandId, result);
    this.queue(result);
  }

  private queue(result: CommandResult): void {
    this.outbox.push(result);
    this.wake?.();
  }
}
