import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IdSchema,
  type ObservedVm,
  ObservedVmSchema,
  type VmPowerState,
} from '../../contracts/relay-protocol';
import type { HostCapacity, Hypervisor, SiteLogger, VmSpec } from '../ports';
import { silentLogger } from '../ports';

// ---------------------------------------------------------------------------------------------------------
// State mapping
// ---------------------------------------------------------------------------------------------------------

/** A VM's power state as the control plane knows it, and why, as `mapDomainState` derives it. */
export interface MappedDomainState {
  readonly state: VmPowerState;
  readonly reason?: string;
}

/** libvirt's pause reasons (virsh's words) in Halo's words: libvirt's own enum names, hyphenated. */
const PAUSED_REASONS: Readonly<Record<string, string>> = {
  unknown: 'unknown',
  user: 'user',
  migrating: 'migration',
  saving: 'save',
  dumping: 'dump',
  'i/o error': 'io-error',
  watchdog: 'watchdog',
  'from snapshot': 'from-snapshot',
  'shutting down': 'shutting-down',
  'creating snapshot': 'snapshot',
  crashed: 'crashed',
  'starting up': 'starting-up',
  'post-copy': 'post-copy',
  'post-copy failed': 'post-copy-failed',
  'api error': 'api-error',
};

/** Why a domain is shut off (virsh's words) in Halo's words. */
const SHUTOFF_REASONS: Readonly<Record<string, string>> = {
  unknown: 'unknown',
  shutdown: 'shutdown',
  destroyed: 'destroyed',
  crashed: 'crashed',
  migrated: 'migrated',
  saved: 'saved',
  failed: 'failed',
  'from snapshot': 'from-snapshot',
  daemon: 'daemon',
};

const CRASHED_REASONS: Readonly<Record<string, string>> = { unknown: 'unknown', panicked: 'panicked' };

/**
 * Maps a libvirt domain state and its reason, in virsh's words (`virsh domstate --reason` prints
 * `shut off (destroyed)`), to the VM state Halo reports. Explicit per state: a state that still holds the
 * host's resources (idle, in shutdown, pmsuspended) is never reported as stopped, and a state this code
 * does not know is reported as running for the same reason: taking a VM for stopped when it is not could
 * start a second copy elsewhere.
 */
export function mapDomainState(state: string, reason: string): MappedDomainState {
  const why = reason.trim().toLowerCase();
  switch (state.trim().toLowerCase()) {
    case 'running':
      // How it came to run (booted, unpaused, restored…) changes nothing for the control plane.
      return { state: 'running' };
    case 'idle':
    case 'blocked':
      // A vCPU waiting on I/O is running for the control plane; a reason here would flap with the guest's
      // load and change the inventory (and its digest) at every heartbeat.
      return { state: 'running' };
    case 'paused':
      return { state: 'paused', reason: PAUSED_REASONS[why] ?? normaliseReason(why) };
    case 'in shutdown':
    case 'shutdown':
      // The guest is shutting down but still holds its memory and CPUs until it is off.
      return { state: 'running', reason: 'in-shutdown' };
    case 'shut off':
    case 'shutoff':
      return { state: 'shut-off', reason: SHUTOFF_REASONS[why] ?? normaliseReason(why) };
    case 'crashed':
      return { state: 'crashed', reason: CRASHED_REASONS[why] ?? normaliseReason(why) };
    case 'pmsuspended':
      // Suspended to RAM by its guest: its memory stays allocated on this host.
      return { state: 'paused', reason: 'pmsuspended' };
    case 'dying':
      return { state: 'shut-off', reason: 'dying' };
    default:
      // `no state` and anything newer than this code.
      return { state: 'running', reason: 'unknown' };
  }
}

/** Any reason text as lower-case words joined by '-' (VmStateReasonSchema), `unknown` when nothing is left. */
function normaliseReason(text: string): string {
  const words = text
    .toLowerCase()
    .replace(/[^a-z]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const cut = words.slice(0, 32).replace(/-+$/, '');
  return cut.length > 0 ? cut : 'unknown';
}

/** virsh's words for libvirt's `virDomainState` values (libvirt-domain.h), by number. */
const STATE_WORDS = [
  'no state',
  'running',
  'idle',
  'paused',
  'in shutdown',
  'shut off',
  'crashed',
  'pmsuspended',
];

/** virsh's words for each state's reason enum (virDomainRunningReason…), by state number then reason. */
const REASON_WORDS: readonly (readonly string[])[] = [
  ['unknown'],
  [
    'unknown',
    'booted',
    'migrated',
    'restored',
    'from snapshot',
    'unpaused',
    'migration canceled',
    'save canceled',
    'event wakeup',
    'crashed',
    'post-copy',
    'post-copy failed',
  ],
  ['unknown'],
  [
    'unknown',
    'user',
    'migrating',
    'saving',
    'dumping',
    'I/O error',
    'watchdog',
    'from snapshot',
    'shutting down',
    'creating snapshot',
    'crashed',
    'starting up',
    'post-copy',
    'post-copy failed',
    'api error',
  ],
  ['unknown', 'user'],
  ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from snapshot', 'daemon'],
  ['unknown', 'panicked'],
  ['unknown'],
];

/**
 * The words `virsh domstate --reason` would print for the numbers `virsh domstats --state` gives
 * (`state.state`, `state.reason`): one bulk command reads every domain's state, where domstate reads one.
 */
export function libvirtStateWords(state: number, reason: number): { state: string; reason: string } {
  return {
    state: STATE_WORDS[state] ?? `state ${state}`,
    reason: REASON_WORDS[state]?.[reason] ?? 'unknown',
  };
}

// ---------------------------------------------------------------------------------------------------------
// The virsh session
// ---------------------------------------------------------------------------------------------------------

/** How to run the long-lived virsh. */
export interface VirshSessionOptions {
  /** libvirt connection URI (`qemu:///system`; `test:///default` in tests). */
  readonly uri: string;
  readonly virshPath?: string;
  /** A command with no complete answer after this long kills the session; 30 s by default. */
  readonly commandTimeoutMs?: number;
  readonly log?: SiteLogger;
}

/** What one virsh command printed. A failed command is an answer (`ok` false), not an exception. */
export interface VirshReply {
  /** Its standard output, exactly (no prompt, no echo of the command line). */
  readonly stdout: string;
  /** Its standard error: virsh's `error: …` lines when it failed. */
  readonly stderr: string;
  readonly ok: boolean;
}

/** More than any answer the adapter asks for (a dumpxml, domstats of 1,000 domains): a runaway is killed. */
const MAX_BUFFER_CHARS = 16 * 1024 * 1024;

/** After closing virsh's input, how long it gets to close its connection before it is killed. */
const CLOSE_GRACE_MS = 1000;

/** After the kill, how long close() waits for virsh to be gone before it returns anyway. */
const KILL_GRACE_MS = 2000;

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Arguments virsh's own parser reads back unchanged without quotes. */
const PLAIN_ARG = /^[A-Za-z0-9._/:@=+,-]+$/;

interface Pending {
  readonly what: string;
  /** Per command: `begin` is printed before it runs (its output follows), `end` after it. */
  readonly markers: readonly { readonly begin: string; readonly end: string }[];
  /** Printed by a second command line, on both streams: everything of the request has arrived. */
  readonly done: string;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (replies: VirshReply[]) => void;
  readonly reject: (error: Error) => void;
}

/**
 * One long-lived interactive `virsh -c URI`, fed on its standard input, one request at a time. One
 * connection for every call: the test driver keeps its state per connection, and a real libvirtd is
 * spared a connection (and virsh's start-up) every 2 seconds.
 *
 * Framing. Interactive virsh prints a prompt and, through readline, an echo of each input line (garbled
 * with `\r<` when the line is long), and its `echo` command adds no newline. So a request of commands
 * C1…Cn goes as two lines,
 *
 *     echo --err B1; echo B1; C1; echo E1; … echo --err Bn; echo Bn; Cn; echo En
 *     echo --err D; echo D
 *
 * Command i's output is what stdout has between Bi and Ei; its errors are what stderr has between
 * `error: Bi` and the next `error: B…` or `error: D` (`echo --err` writes to stderr, prefixed with
 * `error: `); D on both streams says everything has arrived, as virsh runs the second line after the
 * first. The second line is what survives a line virsh refuses to parse (an unknown option makes it drop
 * the whole line): B1 then never shows and the parse error is all stderr has before `error: D`. Markers
 * carry a random per-session token and are sent split by quotes (`'HALO'tok…`), so neither the echoed
 * input nor a domain name can fake one. Several commands in one request (the adapter's `dominfo`s) save
 * most of the ~1 ms each round trip costs.
 *
 * A request without a complete answer within the timeout kills virsh; virsh dying fails the request in
 * flight. The next request starts a new virsh.
 */
export class VirshSession {
  private readonly virshPath: string;
  private readonly timeoutMs: number;
  private readonly log: SiteLogger;
  private readonly token = randomBytes(6).toString('hex');
  private child: ChildProcessWithoutNullStreams | null = null;
  private stdout = '';
  private stderr = '';
  private pending: Pending | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private closed = false;

  constructor(private readonly options: VirshSessionOptions) {
    if (options.uri.length === 0 || options.uri.startsWith('-')) {
      throw new Error('virsh session: uri must be non-empty and not start with "-"');
    }
    this.virshPath = options.virshPath ?? 'virsh';
    this.timeoutMs = options.commandTimeoutMs ?? 30_000;
    this.log = options.log ?? silentLogger;
  }

  /** The running virsh's process id, null while none runs (diagnostics and tests). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Runs one virsh command (its words; quoted here as virsh's parser needs) after those queued before it.
   * Resolves with its output whether it succeeded or not; throws when virsh could not answer: it could not
   * be started, it died, it timed out (and was killed), or the session is closed.
   */
  async run(args: readonly string[]): Promise<VirshReply> {
    const [reply] = await this.runAll([args]);
    if (reply === undefined) throw new Error(`virsh ${args.join(' ')}: no reply`);
    return reply;
  }

  /** Runs several commands in one request, in order; one reply each, as `run` gives. */
  runAll(commands: readonly (readonly string[])[]): Promise<VirshReply[]> {
    const replies = this.tail.then(() => this.execute(commands));
    this.tail = replies.catch(() => undefined);
    return replies;
  }

  /** Ends virsh (its input closed, then killed if it lingers); later calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.fail(new Error('virsh session closed'));
    if (child === null) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.stdin.end();
    const timers: NodeJS.Timeout[] = [];
    const kill = new Promise<void>((resolve) => {
      timers.push(setTimeout(() => killGroup(child.pid), CLOSE_GRACE_MS));
      // A process stuck in the kernel never dies: the caller's shutdown matters more than its last words.
      timers.push(setTimeout(resolve, CLOSE_GRACE_MS + KILL_GRACE_MS));
    });
    await Promise.race([exited, kill]);
    for (const timer of timers) clearTimeout(timer);
  }

  private execute(commands: readonly (readonly string[])[]): Promise<VirshReply[]> {
    if (this.closed) return Promise.reject(new Error('virsh session closed'));
    if (commands.length === 0) return Promise.resolve([]);
    const lines = commands.map((args) => args.map(quoteArg).join(' '));
    const more = commands.length > 1 ? ` (and ${commands.length - 1} more)` : '';
    const what = `virsh ${commands[0]?.join(' ')}${more}`;
    const child = this.child ?? this.start();
    this.seq += 1;
    const marker = (kind: string) => ({
      printed: `HALO${this.token}${kind}${this.seq}.`,
      sent: `'HALO'${this.token}${kind}${this.seq}.`,
    });
    const markers = lines.map((line, i) => ({ line, begin: marker(`B${i}-`), end: marker(`E${i}-`) }));
    const done = marker('D');
    const first = markers
      .map(
        ({ line, begin, end }) => `echo --err ${begin.sent}; echo ${begin.sent}; ${line}; echo ${end.sent}`,
      )
      .join('; ');
    return new Promise<VirshReply[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`${what}: no answer within ${this.timeoutMs} ms; the virsh session was killed`));
        this.kill();
      }, this.timeoutMs);
      this.pending = {
        what,
        markers: markers.map(({ begin, end }) => ({ begin: begin.printed, end: end.printed })),
        done: done.printed,
        timer,
        resolve,
        reject,
      };
      child.stdin.write(`${first}\necho --err ${done.sent}; echo ${done.sent}\n`);
      // Output that arrived before the request was sent (a notice from virsh) is looked at now.
      this.settle();
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? DEFAULT_PATH,
      // Messages in English, which the adapter reads ("Domain is already active").
      LANG: 'C',
      LC_ALL: 'C',
      // No user readline configuration, and no history file of what the agent typed.
      INPUTRC: '/dev/null',
      VIRSH_HISTSIZE: '0',
    };
    // Where libvirt looks for its client configuration and session sockets.
    for (const name of ['HOME', 'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME']) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
    const child = spawn(this.virshPath, ['-q', '-c', this.options.uri], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group: a remote URI makes it start ssh, which a kill must take down too.
      detached: true,
      windowsHide: true,
    });
    this.child = child;
    this.stdout = '';
    this.stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (this.child !== child) return;
      this.stdout += chunk;
      this.settle();
    });
    child.stderr.on('data', (chunk: string) => {
      if (this.child !== child) return;
      this.stderr += chunk;
      this.settle();
    });
    // virsh gone: its end of the pipe is closed, and 'close' below says why.
    child.stdin.on('error', () => {});
    child.on('error', (error: NodeJS.ErrnoException) => {
      // After a successful spawn this comes from a failed kill; 'close' still follows.
      if (child.pid !== undefined || this.child !== child) return;
      this.child = null;
      const why = error.code === 'ENOENT' ? 'not found' : (error.code ?? error.message);
      this.fail(new Error(`cannot run ${this.virshPath}: ${why}`));
    });
    child.on('close', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      const how = code !== null ? `exit code ${code}` : `signal ${signal ?? 'unknown'}`;
      const said = errorText(this.stderr);
      const pending = this.pending;
      if (pending !== null) {
        this.fail(new Error(`${pending.what}: virsh exited (${how})${said.length > 0 ? `: ${said}` : ''}`));
      } else {
        this.log.warn('virsh exited; the next command starts it again', { how, stderr: said });
      }
    });
    return child;
  }

  /** Completes the request in flight once both streams have its last marker. */
  private settle(): void {
    const pending = this.pending;
    const overflow = this.stdout.length > MAX_BUFFER_CHARS || this.stderr.length > MAX_BUFFER_CHARS;
    if (pending === null) {
      if (overflow) this.kill();
      return;
    }
    const doneOut = this.stdout.indexOf(pending.done);
    const doneErrLine = `error: ${pending.done}\n`;
    const doneErr = this.stderr.indexOf(doneErrLine);
    if (doneOut < 0 || doneErr < 0) {
      if (overflow) {
        this.fail(new Error(`${pending.what}: more output than ${MAX_BUFFER_CHARS} characters`));
        this.kill();
      }
      return;
    }
    const out = this.stdout.slice(0, doneOut);
    const err = this.stderr.slice(0, doneErr);
    this.stdout = this.stdout.slice(doneOut + pending.done.length);
    this.stderr = this.stderr.slice(doneErr + doneErrLine.length);
    this.pending = null;
    clearTimeout(pending.timer);

    const errStarts = pending.markers.map(({ begin }) => {
      const line = `error: ${begin}\n`;
      const at = err.indexOf(line);
      return { at, after: at + line.length };
    });
    const firstErr = errStarts[0]?.at ?? -1;
    // A disconnection notice, say, printed while no command ran: no command's error.
    const stray = firstErr > 0 ? err.slice(0, firstErr) : '';
    if (stray.trim().length > 0) this.log.warn('virsh said, between commands', { stderr: errorText(stray) });
    if (firstErr < 0 || !out.includes(pending.markers[0]?.begin ?? '')) {
      // The line was refused whole (a parse error): every command failed with what stderr says.
      if (err.trim().length === 0) {
        pending.reject(new Error(`${pending.what}: virsh did not run it`));
        return;
      }
      pending.resolve(pending.markers.map(() => ({ stdout: '', stderr: err, ok: false })));
      return;
    }
    let from = 0;
    const replies = pending.markers.map(({ begin, end }, i) => {
      const beginAt = out.indexOf(begin, from);
      const endAt = beginAt < 0 ? -1 : out.indexOf(end, beginAt);
      if (endAt >= 0) from = endAt + end.length;
      const stdout = beginAt >= 0 && endAt >= 0 ? out.slice(beginAt + begin.length, endAt) : '';
      const start = errStarts[i]?.after ?? err.length;
      const next = errStarts[i + 1]?.at ?? -1;
      const stderr = err.slice(start, next >= 0 ? next : err.length);
      return { stdout, stderr, ok: beginAt >= 0 && endAt >= 0 && !/^error:/m.test(stderr) };
    });
    pending.resolve(replies);
  }

  private fail(error: Error): void {
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  private kill(): void {
    const child = this.child;
    this.child = null;
    if (child !== null) killGroup(child.pid);
  }
}

/** An argument as virsh's command parser reads it back: bare when plain, else single-quoted. */
function quoteArg(arg: string): string {
  if (PLAIN_ARG.test(arg)) return arg;
  // No quote, backslash or control character (a tab would make readline complete).
  if (arg.length === 0 || /['\\\p{Cc}]/u.test(arg)) {
    throw new Error(`cannot pass ${JSON.stringify(arg)} to virsh`);
  }
  return `'${arg}'`;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Longest part of virsh's errors quoted in an exception: its errors are one or two short lines. */
const MAX_MESSAGE = 300;

/** virsh's error lines without their `error: ` prefixes, on one line. */
function errorText(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.replace(/^error:\s*/, '').trim())
    .filter((line) => line.length > 0)
    .join('; ')
    .slice(0, MAX_MESSAGE);
}

// ---------------------------------------------------------------------------------------------------------
// The hypervisor
// ---------------------------------------------------------------------------------------------------------

/** Settings of the production hypervisor port. */
export interface VirshHypervisorOptions {
  /** libvirt connection URI: `qemu:///system` on a KVM host. */
  readonly uri: string;
  /** Where the kernel's boot id is read; /proc/sys/kernel/random/boot_id by default. */
  readonly bootIdFile?: string;
  readonly virshPath?: string;
  /** A virsh command with no answer after this long kills the session; 30 s by default. */
  readonly commandTimeoutMs?: number;
  readonly log?: SiteLogger;
}

/**
 * Every domain's sizes and autostart flag are re-read (one `dominfo` each) at least once every this many
 * inventory reads (about a minute at the 2 s heartbeat), spread over the reads; a domain whose state
 * changes is re-read at once. Between, a vCPU hot-plug or an autostart toggle is reported late.
 */
const DOMINFO_REFRESH_READS = 30;

/** `dominfo`s sent in one request: fewer round trips, and still a short wait for a start queued behind. */
const DOMINFO_BATCH = 50;

/** A domain as the adapter last read it. */
interface Domain {
  readonly name: string;
  readonly uuid: string;
  readonly cpus: number;
  /** Max memory (the most the guest can have; the control plane reserves capacity by it). */
  readonly memoryMiB: number;
  readonly autostart: boolean;
  readonly mapped: MappedDomainState;
}

interface CachedInfo {
  readonly name: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly autostart: boolean;
  /** libvirt's state and reason when it was read: a change re-reads it. */
  readonly stateKey: string;
  /** The inventory read (counter) it was read at. */
  readonly readAt: number;
}

/**
 * The production Hypervisor: libvirt through one long-lived virsh session (see VirshSession). It never
 * stops, undefines or changes the autostart of a domain: the agent only reports and starts.
 */
export class VirshHypervisor implements Hypervisor {
  private readonly bootIdFile: string;
  private readonly log: SiteLogger;
  private readonly info = new Map<string, CachedInfo>();
  private readonly warned = new Set<string>();
  private reads = 0;

  private constructor(
    private readonly session: VirshSession,
    options: { readonly bootIdFile?: string; readonly log?: SiteLogger },
  ) {
    this.bootIdFile = options.bootIdFile ?? '/proc/sys/kernel/random/boot_id';
    this.log = options.log ?? silentLogger;
  }

  /** Starts virsh on `uri` and checks the connection; throws, with virsh's words, when it cannot. */
  static async open(options: VirshHypervisorOptions): Promise<VirshHypervisor> {
    const session = new VirshSession(options);
    const hypervisor = new VirshHypervisor(session, options);
    try {
      await hypervisor.virsh(['uri']);
    } catch (error) {
      await session.close();
      throw error;
    }
    return hypervisor;
  }

  /**
   * Over a session the caller also drives (tests: the test driver's state lives in one connection, so a
   * test destroys or suspends domains through the very session the adapter reads). close() closes it.
   */
  static withSession(
    session: VirshSession,
    options: { readonly bootIdFile?: string; readonly log?: SiteLogger } = {},
  ): VirshHypervisor {
    return new VirshHypervisor(session, options);
  }

  /** Ends the virsh session. */
  close(): Promise<void> {
    return this.session.close();
  }

  async bootId(): Promise<string> {
    const id = (await readFile(this.bootIdFile, 'utf8')).trim();
    if (id.length === 0) throw new Error(`${this.bootIdFile} is empty`);
    return id;
  }

  async capacity(): Promise<HostCapacity> {
    const fields = keyValues(await this.virsh(['nodeinfo']));
    const cpus = Number.parseInt(fields.get('CPU(s)') ?? '', 10);
    const memoryKiB = kib(fields.get('Memory size'));
    if (!(cpus > 0) || memoryKiB === null) throw new Error('virsh nodeinfo: no CPU(s) or Memory size');
    return { cpus, memoryMiB: Math.floor(memoryKiB / 1024) };
  }

  async listVms(): Promise<ObservedVm[]> {
    const vms: ObservedVm[] = [];
    for (const domain of await this.readDomains()) {
      const vm: ObservedVm = {
        id: domain.name,
        cpus: domain.cpus,
        memoryMiB: domain.memoryMiB,
        state: domain.mapped.state,
        ...(domain.mapped.reason === undefined ? {} : { reason: domain.mapped.reason }),
        autostart: domain.autostart,
      };
      // One VM the protocol would refuse must not make the whole inventory refused.
      if (!IdSchema.safeParse(domain.name).success) {
        this.warnOnce(domain.name, 'domain left out of the inventory: its name is not a valid VM id', {
          name: domain.name,
        });
        continue;
      }
      const checked = ObservedVmSchema.safeParse(vm);
      if (!checked.success) {
        this.warnOnce(domain.name, 'domain left out of the inventory: the protocol refuses it', {
          name: domain.name,
          cpus: vm.cpus,
          memoryMiB: vm.memoryMiB,
        });
        continue;
      }
      vms.push(vm);
    }
    return vms.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async startVm(vm: VmSpec, definition?: string): Promise<void> {
    if (!IdSchema.safeParse(vm.id).success) throw new Error(`start ${vm.id}: not a valid VM id`);
    const domains = await this.readDomains();
    const current = domains.find((domain) => domain.name === vm.id);
    if (current === undefined && definition === undefined) {
      throw new Error(`start ${vm.id}: not defined on this host and no definition given`);
    }
    if (current === undefined && definition !== undefined) checkDefinition(vm.id, definition, domains);
    if (current?.mapped.state === 'crashed') {
      // libvirt keeps a crashed domain (for a dump) until someone destroys it, which the agent never does.
      throw new Error(`start ${vm.id}: crashed on this host; an operator must destroy it first`);
    }
    const active = current !== undefined && current.mapped.state !== 'shut-off';
    // Checked before defining, so a refused start leaves nothing behind. An active domain holds its memory.
    if (!active) await this.checkMemory(vm, domains);
    let uuid = current?.uuid;
    if (uuid === undefined && definition !== undefined) {
      await this.define(definition);
      uuid = await this.uuidOf(vm.id);
      if (uuid === undefined) throw new Error(`start ${vm.id}: not defined after virsh define`);
    }
    if (uuid === undefined) throw new Error(`start ${vm.id}: not defined on this host`);
    const reply = await this.session.run(['start', '--domain', uuid]);
    if (reply.ok) return;
    const error = errorText(reply.stderr);
    // Idempotent: the start of a VM that runs already (or a second start racing the first) succeeds.
    if (/already (active|running)/i.test(error)) {
      if (current?.mapped.state === 'paused') {
        this.log.warn('start of a paused VM: it stays paused', {
          vmId: vm.id,
          reason: current.mapped.reason,
        });
      }
      return;
    }
    throw new Error(`virsh start ${vm.id}: ${error || 'failed'}`);
  }

  async definitionOf(vmId: string): Promise<string | null> {
    if (!IdSchema.safeParse(vmId).success) return null;
    const uuid = await this.uuidOf(vmId);
    if (uuid === undefined) return null;
    // --migratable: the form libvirt itself sends to another host when it migrates a domain, without what
    // this host's libvirt added on its own (implicit default controllers and the like), so another libvirt
    // version can define it. The test driver accepts it and prints the same XML as --inactive alone.
    const reply = await this.session.run(['dumpxml', '--inactive', '--migratable', '--domain', uuid]);
    if (reply.ok) return reply.stdout.trim();
    const error = errorText(reply.stderr);
    // Undefined since it was listed.
    if (/failed to get domain|domain not found/i.test(error)) return null;
    throw new Error(`virsh dumpxml ${vmId}: ${error || 'failed'}`);
  }

  /**
   * The UUID of the domain named exactly `name`. Commands address domains by UUID: virsh looks a domain
   * argument up as an id first, so `start 5` would start the domain whose id is 5, not the one named 5.
   */
  private async uuidOf(name: string): Promise<string | undefined> {
    const listed = parseUuidNames(await this.virsh(['list', '--all', '--uuid', '--name']));
    return listed.find((domain) => domain.name === name)?.uuid;
  }

  /** Runs a command that must succeed; its standard output. */
  private async virsh(args: readonly string[]): Promise<string> {
    const reply = await this.session.run(args);
    if (!reply.ok) throw new Error(`virsh ${args.join(' ')}: ${errorText(reply.stderr) || 'failed'}`);
    return reply.stdout;
  }

  /**
   * Every domain with its size and state: two bulk commands (`list --all --uuid --name`, `domstats
   * --state`) and a `dominfo` for each domain new or changed since the last read, plus a share of the
   * others so that each is re-read every DOMINFO_REFRESH_READS reads.
   */
  private async readDomains(): Promise<Domain[]> {
    this.reads += 1;
    const listed = parseUuidNames(await this.virsh(['list', '--all', '--uuid', '--name']));
    const states = parseDomstats(await this.virsh(['domstats', '--state']));
    const present: {
      uuid: string;
      name: string;
      stateKey: string;
      words: { state: string; reason: string };
    }[] = [];
    for (const { uuid, name } of listed) {
      const state = states.get(name);
      // Defined or undefined between the two reads: it is seen as it is at the next read.
      if (state === undefined) continue;
      const words = libvirtStateWords(state.state, state.reason);
      present.push({ uuid, name, stateKey: `${state.state}:${state.reason}`, words });
    }
    const due = new Set<string>();
    for (const domain of present) {
      const cached = this.info.get(domain.uuid);
      if (cached === undefined || cached.name !== domain.name || cached.stateKey !== domain.stateKey) {
        due.add(domain.uuid);
      }
    }
    const share = Math.ceil(present.length / DOMINFO_REFRESH_READS);
    const oldest = present
      .filter((domain) => !due.has(domain.uuid))
      .sort((a, b) => (this.info.get(a.uuid)?.readAt ?? 0) - (this.info.get(b.uuid)?.readAt ?? 0))
      .slice(0, share);
    for (const domain of oldest) due.add(domain.uuid);

    const seen = new Set(present.map((domain) => domain.uuid));
    for (const uuid of this.info.keys()) if (!seen.has(uuid)) this.info.delete(uuid);

    const reread = present.filter((domain) => due.has(domain.uuid));
    for (let i = 0; i < reread.length; i += DOMINFO_BATCH) {
      const batch = reread.slice(i, i + DOMINFO_BATCH);
      const replies = await this.session.runAll(batch.map((domain) => ['dominfo', '--domain', domain.uuid]));
      batch.forEach((domain, j) => {
        const read = this.parseInfo(domain.name, domain.stateKey, replies[j]);
        if (read === 'gone') this.info.delete(domain.uuid);
        // Unreadable this time: a known domain keeps its last sizes rather than vanish from the inventory
        // (which the control plane would take for a VM no longer here).
        else if (read !== null) this.info.set(domain.uuid, read);
      });
    }

    const domains: Domain[] = [];
    for (const domain of present) {
      const info = this.info.get(domain.uuid);
      // Gone or unreadable since it was listed: it is seen again at the next read.
      if (info === undefined) continue;
      domains.push({
        name: domain.name,
        uuid: domain.uuid,
        cpus: info.cpus,
        memoryMiB: info.memoryMiB,
        autostart: info.autostart,
        mapped: mapDomainState(domain.words.state, domain.words.reason),
      });
    }
    return domains;
  }

  /**
   * One domain's sizes and autostart from its dominfo; `gone` when it was undefined since it was listed,
   * null (and a warning, once) when it cannot be read.
   */
  private parseInfo(
    name: string,
    stateKey: string,
    reply: VirshReply | undefined,
  ): CachedInfo | 'gone' | null {
    if (reply === undefined) return null;
    if (!reply.ok) {
      const error = errorText(reply.stderr);
      if (/failed to get domain|domain not found/i.test(error)) return 'gone';
      this.warnOnce(name, 'virsh dominfo failed', { name, error });
      return null;
    }
    const fields = keyValues(reply.stdout);
    const cpus = Number.parseInt(fields.get('CPU(s)') ?? '', 10);
    // "Max memory" reads "no limit" on drivers without one: the current size is the best there is.
    const memoryKiB = kib(fields.get('Max memory')) ?? kib(fields.get('Used memory'));
    if (!(cpus > 0) || memoryKiB === null) {
      this.warnOnce(name, 'virsh dominfo without CPU(s) or memory', { name });
      return null;
    }
    return {
      name,
      cpus,
      memoryMiB: Math.floor(memoryKiB / 1024),
      autostart: fields.get('Autostart') === 'enable',
      stateKey,
      readAt: this.reads,
    };
  }

  private async checkMemory(vm: VmSpec, domains: readonly Domain[]): Promise<void> {
    const host = await this.capacity();
    // Running and paused domains hold their memory, and so does a crashed one libvirt keeps for a dump.
    const holding = domains.filter((domain) => domain.name !== vm.id && domain.mapped.state !== 'shut-off');
    const held = holding.reduce((sum, domain) => sum + domain.memoryMiB, 0);
    if (vm.memoryMiB + held > host.memoryMiB) {
      throw new Error(
        `start ${vm.id}: not enough memory on this host: it needs ${vm.memoryMiB} MiB, ` +
          `${holding.length} active domains hold ${held} MiB of the host's ${host.memoryMiB} MiB ` +
          `(${Math.max(0, host.memoryMiB - held)} MiB free)`,
      );
    }
  }

  /** `virsh define` from a private file: mode 600 in a mode 700 directory, removed at once. */
  private async define(definition: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'halo-virsh-'));
    try {
      const file = join(dir, 'domain.xml');
      await writeFile(file, definition, { mode: 0o600, flag: 'wx' });
      await this.virsh(['define', '--file', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Logs a warning about a domain once, not every 2 seconds. */
  private warnOnce(name: string, message: string, data: Readonly<Record<string, unknown>>): void {
    const key = `${message}\u0000${name}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message, data);
  }
}

/** Refuses a definition for another VM, or for a VM this host has under another name. */
function checkDefinition(vmId: string, definition: string, domains: readonly Domain[]): void {
  const top = domainTopLevel(definition);
  if (top === null) throw new Error(`start ${vmId}: the definition is not a libvirt <domain> document`);
  if (top.name !== vmId) {
    throw new Error(`start ${vmId}: the definition is for ${JSON.stringify(top.name ?? '')}, not ${vmId}`);
  }
  if (top.uuid === null) return;
  const uuid = normaliseUuid(top.uuid);
  const twin = domains.find((domain) => normaliseUuid(domain.uuid) === uuid);
  if (twin !== undefined) {
    throw new Error(`start ${vmId}: its UUID ${top.uuid} runs here already under another id (${twin.name})`);
  }
}

function normaliseUuid(uuid: string): string {
  return uuid.replace(/-/g, '').toLowerCase();
}

/**
 * The `<name>` and `<uuid>` children of a domain XML's root `<domain>` (not those nested deeper, as in
 * `<metadata>`); null when the root is not `<domain>`. A small scanner: the adapter needs two fields.
 */
export function domainTopLevel(xml: string): { name: string | null; uuid: string | null } | null {
  const text = xml
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<\?[\s\S]*?\?>/g, '')
    .replace(/<!DOCTYPE[^>]*>/gi, '');
  const tag = /<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  const found: { name: string | null; uuid: string | null } = { name: null, uuid: null };
  let depth = 0;
  let root: string | null = null;
  let capture: { field: 'name' | 'uuid'; from: number } | null = null;
  for (let match = tag.exec(text); match !== null; match = tag.exec(text)) {
    const [whole, closing, element, , selfClosing] = match;
    if (closing === '/') {
      depth -= 1;
      if (capture !== null && depth === 1) {
        const value = decodeEntities(text.slice(capture.from, match.index)).trim();
        if (found[capture.field] === null) found[capture.field] = value;
        capture = null;
      }
      continue;
    }
    if (depth === 0) {
      if (root !== null) break;
      root = element ?? null;
    } else if (depth === 1 && (element === 'name' || element === 'uuid') && selfClosing !== '/') {
      capture = { field: element, from: match.index + whole.length };
    }
    if (selfClosing !== '/') depth += 1;
  }
  return root === 'domain' ? found : null;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** `Key: value` lines (dominfo, nodeinfo). */
function keyValues(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}

function kib(value: string | undefined): number | null {
  const match = /^(\d+) KiB$/.exec(value ?? '');
  return match?.[1] === undefined ? null : Number(match[1]);
}

/** `list --all --uuid --name`: one `UUID NAME` line per domain. */
function parseUuidNames(text: string): { uuid: string; name: string }[] {
  const domains: { uuid: string; name: string }[] = [];
  for (const line of text.split('\n')) {
    const match = /^([0-9a-fA-F-]{32,36}) (.+)$/.exec(line.trimEnd());
    if (match?.[1] !== undefined && match[2] !== undefined) domains.push({ uuid: match[1], name: match[2] });
  }
  return domains;
}

/** `domstats --state`: `Domain: 'NAME'` then `state.state=N` and `state.reason=N` lines. */
function parseDomstats(text: string): Map<string, { state: number; reason: number }> {
  const states = new Map<string, { state: number; reason: number }>();
  let name: string | null = null;
  for (const line of text.split('\n')) {
    const domain = /^Domain: '(.*)'$/.exec(line.trimEnd());
    if (domain?.[1] !== undefined) {
      name = domain[1];
      states.set(name, { state: -1, reason: 0 });
      continue;
    }
    const field = /^\s+state\.(state|reason)=(\d+)$/.exec(line.trimEnd());
    const current = name === null ? undefined : states.get(name);
    if (name === null || current === undefined || field?.[2] === undefined) continue;
    const value = Number(field[2]);
    states.set(name, field[1] === 'state' ? { ...current, state: value } : { ...current, reason: value });
  }
  return states;
}
