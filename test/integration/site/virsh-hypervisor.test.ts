import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObservedVmSchema } from '../../../contracts/relay-protocol';
import {
  domainTopLevel,
  libvirtStateWords,
  mapDomainState,
  VirshHypervisor,
  VirshSession,
} from '../../../site/adapters/virsh-hypervisor';
import type { SiteLogger } from '../../../site/ports';

/**
 * The adapter against libvirt's test driver (`test:///…`), which runs inside virsh with no daemon and keeps
 * its state in the connection: every test opens its own session, so each starts from the node XML.
 */

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

interface TestDomain {
  readonly name: string;
  readonly uuid: string;
  readonly memoryMiB: number;
  readonly currentMiB?: number;
  readonly vcpus: number;
  /** libvirt state number: 1 running, 2 blocked, 3 paused, 4 shutdown, 5 shutoff, 6 crashed, 7 pmsuspended. */
  readonly runstate?: number;
}

function domainXml(domain: TestDomain): string {
  return [
    `<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>`,
    `<name>${domain.name}</name><uuid>${domain.uuid}</uuid>`,
    `<memory unit='KiB'>${domain.memoryMiB * 1024}</memory>`,
    `<currentMemory unit='KiB'>${(domain.currentMiB ?? domain.memoryMiB) * 1024}</currentMemory>`,
    `<vcpu>${domain.vcpus}</vcpu><os><type>hvm</type></os>`,
    domain.runstate === undefined ? '' : `<test:runstate>${domain.runstate}</test:runstate>`,
    `</domain>`,
  ].join('');
}

function nodeXml(cpus: number, memoryMiB: number, domains: readonly TestDomain[]): string {
  return [
    '<node>',
    `<cpu><mhz>2000</mhz><model>x86_64</model><active>${cpus}</active><nodes>1</nodes>`,
    `<sockets>1</sockets><cores>${cpus}</cores><threads>1</threads></cpu>`,
    `<memory>${memoryMiB * 1024}</memory>`,
    ...domains.map(domainXml),
    '</node>',
  ].join('\n');
}

const uuid = (n: number) => `6a1e0000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/**
 * Host A: 32 CPUs, 16 GiB, a domain in each state the test driver can be told to start in. Active domains
 * get ids 1.. in this order, so `crashed-1` has id 5 while the shut-off domain is *named* 5.
 */
const HOST_A: readonly TestDomain[] = [
  { name: 'web-1', uuid: uuid(1), memoryMiB: 1024, currentMiB: 512, vcpus: 2, runstate: 1 },
  { name: 'idle-1', uuid: uuid(2), memoryMiB: 1024, vcpus: 1, runstate: 2 },
  { name: 'paused-1', uuid: uuid(3), memoryMiB: 1024, vcpus: 1, runstate: 3 },
  { name: 'stopping-1', uuid: uuid(4), memoryMiB: 1024, vcpus: 1, runstate: 4 },
  { name: 'off-1', uuid: uuid(5), memoryMiB: 2048, vcpus: 4, runstate: 5 },
  { name: 'crashed-1', uuid: uuid(6), memoryMiB: 1024, vcpus: 1, runstate: 6 },
  { name: 'suspended-1', uuid: uuid(7), memoryMiB: 1024, vcpus: 1, runstate: 7 },
  { name: 'bad name', uuid: uuid(8), memoryMiB: 512, vcpus: 1, runstate: 5 },
  { name: '5', uuid: uuid(9), memoryMiB: 512, vcpus: 1, runstate: 5 },
  { name: 'app-1', uuid: uuid(10), memoryMiB: 768, vcpus: 2, runstate: 5 },
];
/** What the active domains of host A hold (crashed-1 included: libvirt keeps it until destroyed). */
const HOST_A_HELD_MIB = 6 * 1024;

/** Host B: 8 CPUs, 4 GiB, one running domain whose UUID is app-1's on host A, and one under 1 MiB. */
const HOST_B: readonly TestDomain[] = [
  { name: 'other-1', uuid: uuid(10), memoryMiB: 1024, vcpus: 1, runstate: 1 },
  { name: 'tiny-1', uuid: uuid(11), memoryMiB: 0.5, vcpus: 1, runstate: 5 },
];

/** Host C: empty but for one running domain. */
const HOST_C: readonly TestDomain[] = [
  { name: 'db-1', uuid: uuid(20), memoryMiB: 2048, vcpus: 2, runstate: 1 },
];

interface Recorder extends SiteLogger {
  readonly warnings: { message: string; data?: Readonly<Record<string, unknown>> }[];
}

function recorder(): Recorder {
  const warnings: Recorder['warnings'] = [];
  return { warnings, info: () => undefined, warn: (message, data) => warnings.push({ message, data }) };
}

/** Whether a process still runs: a killed one whose parent died too lingers as a zombie until reaped. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('mapDomainState: every libvirt state and reason virsh prints', () => {
  const cases: [string, string, { state: string; reason?: string }][] = [
    // running: how it came to run is not reported
    ...[
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
    ].map((reason): [string, string, { state: string }] => ['running', reason, { state: 'running' }]),
    ['idle', 'unknown', { state: 'running' }],
    ['blocked', 'unknown', { state: 'running' }],
    ['paused', 'unknown', { state: 'paused', reason: 'unknown' }],
    ['paused', 'user', { state: 'paused', reason: 'user' }],
    ['paused', 'migrating', { state: 'paused', reason: 'migration' }],
    ['paused', 'saving', { state: 'paused', reason: 'save' }],
    ['paused', 'dumping', { state: 'paused', reason: 'dump' }],
    ['paused', 'I/O error', { state: 'paused', reason: 'io-error' }],
    ['paused', 'watchdog', { state: 'paused', reason: 'watchdog' }],
    ['paused', 'from snapshot', { state: 'paused', reason: 'from-snapshot' }],
    ['paused', 'shutting down', { state: 'paused', reason: 'shutting-down' }],
    ['paused', 'creating snapshot', { state: 'paused', reason: 'snapshot' }],
    ['paused', 'crashed', { state: 'paused', reason: 'crashed' }],
    ['paused', 'starting up', { state: 'paused', reason: 'starting-up' }],
    ['paused', 'post-copy', { state: 'paused', reason: 'post-copy' }],
    ['paused', 'post-copy failed', { state: 'paused', reason: 'post-copy-failed' }],
    ['paused', 'api error', { state: 'paused', reason: 'api-error' }],
    ['in shutdown', 'unknown', { state: 'running', reason: 'in-shutdown' }],
    ['in shutdown', 'user', { state: 'running', reason: 'in-shutdown' }],
    ['shut off', 'unknown', { state: 'shut-off', reason: 'unknown' }],
    ['shut off', 'shutdown', { state: 'shut-off', reason: 'shutdown' }],
    ['shut off', 'destroyed', { state: 'shut-off', reason: 'destroyed' }],
    ['shut off', 'crashed', { state: 'shut-off', reason: 'crashed' }],
    ['shut off', 'migrated', { state: 'shut-off', reason: 'migrated' }],
    ['shut off', 'saved', { state: 'shut-off', reason: 'saved' }],
    ['shut off', 'failed', { state: 'shut-off', reason: 'failed' }],
    ['shut off', 'from snapshot', { state: 'shut-off', reason: 'from-snapshot' }],
    ['shut off', 'daemon', { state: 'shut-off', reason: 'daemon' }],
    ['crashed', 'unknown', { state: 'crashed', reason: 'unknown' }],
    ['crashed', 'panicked', { state: 'crashed', reason: 'panicked' }],
    ['pmsuspended', 'unknown', { state: 'paused', reason: 'pmsuspended' }],
    ['dying', 'unknown', { state: 'shut-off', reason: 'dying' }],
    // Not knowing is never taken for stopped: it might still hold its resources (or run).
    ['no state', 'unknown', { state: 'running', reason: 'unknown' }],
    ['some future state', 'whatever', { state: 'running', reason: 'unknown' }],
    // Reasons newer than this code are normalised, never dropped
    ['paused', 'Some New/Reason 2', { state: 'paused', reason: 'some-new-reason' }],
    ['shut off', '', { state: 'shut-off', reason: 'unknown' }],
    ['crashed', '42', { state: 'crashed', reason: 'unknown' }],
    // virsh's casing and spacing are not relied on
    [' Shut Off ', ' Destroyed ', { state: 'shut-off', reason: 'destroyed' }],
  ];

  it.each(cases)('%s (%s)', (state, reason, expected) => {
    const mapped = mapDomainState(state, reason);
    expect(mapped).toEqual(expected);
    // Whatever comes out fits the protocol.
    const vm = { id: 'vm-1', cpus: 1, memoryMiB: 1, ...mapped };
    expect(ObservedVmSchema.safeParse(vm).success).toBe(true);
  });

  it('cuts a long unknown reason to the protocol’s 32 characters', () => {
    const { reason } = mapDomainState('paused', 'a very long reason that libvirt might add one day');
    expect(reason).toBe('a-very-long-reason-that-libvirt');
    expect(
      ObservedVmSchema.safeParse({ id: 'v', cpus: 1, memoryMiB: 1, state: 'paused', reason }).success,
    ).toBe(true);
  });
});

describe('libvirtStateWords: domstats numbers to virsh words', () => {
  it.each([
    [0, 0, 'no state', 'unknown'],
    [1, 1, 'running', 'booted'],
    [1, 5, 'running', 'unpaused'],
    [1, 11, 'running', 'post-copy failed'],
    [2, 0, 'idle', 'unknown'],
    [3, 1, 'paused', 'user'],
    [3, 5, 'paused', 'I/O error'],
    [3, 14, 'paused', 'api error'],
    [4, 1, 'in shutdown', 'user'],
    [5, 2, 'shut off', 'destroyed'],
    [5, 8, 'shut off', 'daemon'],
    [6, 1, 'crashed', 'panicked'],
    [7, 0, 'pmsuspended', 'unknown'],
    [5, 99, 'shut off', 'unknown'],
    [9, 0, 'state 9', 'unknown'],
  ])('%i/%i is %s (%s)', (state, reason, words, why) => {
    expect(libvirtStateWords(state, reason)).toEqual({ state: words, reason: why });
  });
});

describe('domainTopLevel: the name and uuid of a domain XML', () => {
  it('reads the root’s children only, past comments, metadata and attributes holding ">"', () => {
    const xml = `<?xml version="1.0"?>
<!-- <name>commented</name> -->
<domain type='kvm' xmlns:x="urn:x">
  <metadata><x:app><name>nested</name></x:app><name>also nested</name></metadata>
  <description title="a > b">text with > in it</description>
  <name>web-1</name>
  <uuid>6a1e0000-0000-4000-8000-000000000001</uuid>
  <devices><disk><name/></disk></devices>
</domain>`;
    expect(domainTopLevel(xml)).toEqual({ name: 'web-1', uuid: '6a1e0000-0000-4000-8000-000000000001' });
  });

  it('has no uuid when the XML leaves it to libvirt, and is null for anything but a domain', () => {
    expect(domainTopLevel('<domain><name>a</name></domain>')).toEqual({ name: 'a', uuid: null });
    expect(domainTopLevel('<network><name>a</name></network>')).toBeNull();
    expect(domainTopLevel('not xml')).toBeNull();
  });
});

describe('VirshSession: one long-lived virsh', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'halo-virsh-session-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The pid a fake virsh wrote of the process it started, once it has. */
  async function childOf(script: string): Promise<number> {
    let child = Number.NaN;
    await until(() => {
      try {
        child = Number(readFileSync(`${script}.child`, 'utf8').trim());
      } catch {
        return false;
      }
      return child > 0;
    }, `${script} to start its child`);
    return child;
  }

  async function script(name: string, body: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }

  it('gives each command its own output and errors, and keeps state across commands', async () => {
    const session = new VirshSession({ uri: 'test:///default' });
    try {
      const [destroy, list, again, info] = await session.runAll([
        ['destroy', 'test'],
        ['list', '--all', '--name'],
        ['destroy', 'test'],
        ['dominfo', 'nosuch'],
      ]);
      expect(destroy).toMatchObject({ ok: true, stderr: '' });
      expect(list).toMatchObject({ ok: true, stderr: '' });
      expect(list?.stdout.trim()).toBe('test');
      expect(again?.ok).toBe(false);
      expect(again?.stderr).toMatch(/^error: .*not running/m);
      expect(again?.stdout).toBe('');
      expect(info?.ok).toBe(false);
      expect(info?.stderr).toContain("failed to get domain 'nosuch'");
      // The state lives in this connection: the destroy above is still seen.
      const start = await session.run(['start', 'test']);
      expect(start).toEqual({ stdout: '', stderr: '', ok: true });
      const already = await session.run(['start', 'test']);
      expect(already.ok).toBe(false);
      expect(already.stderr.trim()).toBe('error: Domain is already active');
    } finally {
      await session.close();
    }
  });

  it('survives a command virsh refuses to parse, which drops its whole line', async () => {
    const session = new VirshSession({ uri: 'test:///default' });
    try {
      const refused = await session.run(['dominfo', '--no-such-option', 'test']);
      expect(refused.ok).toBe(false);
      expect(refused.stderr).toContain("doesn't support option --no-such-option");
      const next = await session.run(['domstate', 'test']);
      expect(next).toMatchObject({ ok: true, stderr: '' });
      expect(next.stdout.trim()).toBe('running');
    } finally {
      await session.close();
    }
  });

  it('passes arguments with spaces quoted, refuses what virsh’s parser would mangle', async () => {
    const session = new VirshSession({ uri: 'test:///default' });
    try {
      const echoed = await session.run(['echo', 'two words;', 'and  more']);
      expect(echoed.stdout.trim()).toBe('two words; and  more');
      expect((await rejection(session.run(['echo', "it's"]))).message).toMatch(/cannot pass/);
      expect((await rejection(session.run(['echo', 'a\nb']))).message).toMatch(/cannot pass/);
      expect((await session.run(['echo', 'still here'])).stdout.trim()).toBe('still here');
    } finally {
      await session.close();
    }
  });

  it('serialises concurrent calls: each gets its own answer', async () => {
    const session = new VirshSession({ uri: 'test:///default' });
    try {
      const words = Array.from({ length: 20 }, (_, i) => `word-${i}`);
      const replies = await Promise.all(words.map((word) => session.run(['echo', word])));
      expect(replies.map((reply) => reply.stdout.trim())).toEqual(words);
    } finally {
      await session.close();
    }
  });

  it('kills a session whose command hangs, fails it, and starts a new virsh for the next one', async () => {
    // Long enough for virsh to start on a loaded machine.
    const session = new VirshSession({ uri: 'test:///default', commandTimeoutMs: 3000 });
    try {
      await session.run(['uri']);
      const first = session.pid;
      expect(first).not.toBeNull();
      // `event --loop` waits for events for ever.
      const error = await rejection(session.run(['event', '--all', '--loop']));
      expect(error.message).toBe(
        'virsh event --all --loop: no answer within 3000 ms; the virsh session was killed',
      );
      await until(() => first !== null && !processAlive(first), 'the hung virsh to die');
      const reply = await session.run(['domstate', 'test']);
      expect(reply.stdout.trim()).toBe('running');
      expect(session.pid).not.toBe(first);
    } finally {
      await session.close();
    }
  });

  it('starts virsh again after it died between commands (the test driver then starts afresh)', async () => {
    const log = recorder();
    const session = new VirshSession({ uri: 'test:///default', log });
    try {
      await session.run(['destroy', 'test']);
      const first = session.pid;
      if (first === null) throw new Error('no virsh');
      process.kill(first, 'SIGKILL');
      await until(() => session.pid === null, 'the session to see virsh die');
      expect(log.warnings.map((w) => w.message)).toContain('virsh exited; the next command starts it again');
      const reply = await session.run(['domstate', 'test']);
      expect(reply.stdout.trim()).toBe('running');
      expect(session.pid).not.toBe(first);
    } finally {
      await session.close();
    }
  });

  it('fails the command in flight when virsh dies, with what virsh said', async () => {
    const dies = await script(
      'dies',
      'read line\necho "error: failed to connect to the hypervisor" >&2\nexit 3',
    );
    const session = new VirshSession({ uri: 'test:///default', virshPath: dies });
    try {
      const error = await rejection(session.run(['list']));
      expect(error.message).toBe(
        'virsh list: virsh exited (exit code 3): failed to connect to the hypervisor',
      );
    } finally {
      await session.close();
    }
  });

  it('says when virsh cannot be found', async () => {
    const session = new VirshSession({ uri: 'test:///default', virshPath: join(dir, 'no-such-virsh') });
    try {
      const error = await rejection(session.run(['list']));
      expect(error.message).toMatch(/^cannot run .*no-such-virsh: not found$/);
    } finally {
      await session.close();
    }
  });

  it('kills virsh on close; calls after it fail', async () => {
    const session = new VirshSession({ uri: 'test:///default' });
    await session.run(['uri']);
    const pid = session.pid;
    if (pid === null) throw new Error('no virsh');
    await session.close();
    expect(processAlive(pid)).toBe(false);
    expect((await rejection(session.run(['uri']))).message).toBe('virsh session closed');
  });

  it('kills a virsh that hangs, and what it started, when its command times out', async () => {
    const hangs = await script('hangs', 'sleep 600 &\necho $! > "$0.child"\nwait');
    const session = new VirshSession({ uri: 'test:///default', virshPath: hangs, commandTimeoutMs: 3000 });
    try {
      const failed = rejection(session.run(['uri']));
      const child = await childOf(hangs);
      const error = await failed;
      expect(error.message).toBe('virsh uri: no answer within 3000 ms; the virsh session was killed');
      await until(() => !processAlive(child), 'the whole process group to die');
    } finally {
      await session.close();
    }
  });

  it('on close, fails the command in flight and kills a virsh that ignores its closed input', async () => {
    const stubborn = await script('stubborn', 'trap "" TERM HUP\nsleep 600 &\necho $! > "$0.child"\nwait');
    const session = new VirshSession({ uri: 'test:///default', virshPath: stubborn });
    const inFlight = rejection(session.run(['uri']));
    const child = await childOf(stubborn);
    await session.close();
    expect((await inFlight).message).toBe('virsh session closed');
    await until(() => !processAlive(child), 'the whole process group to die');
  });
});

describe('VirshHypervisor on test:///default', () => {
  it('reports the node, its one running domain, and starts it idempotently', async () => {
    const hypervisor = await VirshHypervisor.open({ uri: 'test:///default' });
    try {
      expect(await hypervisor.capacity()).toEqual({ cpus: 16, memoryMiB: 3072 });
      expect(await hypervisor.listVms()).toEqual([
        { id: 'test', cpus: 2, memoryMiB: 8192, state: 'running', autostart: false },
      ]);
      await hypervisor.startVm({ id: 'test', cpus: 2, memoryMiB: 8192 });
      expect((await hypervisor.listVms())[0]?.state).toBe('running');
    } finally {
      await hypervisor.close();
    }
  });

  it('fails to open, with virsh’s words, when it cannot connect', async () => {
    const error = await rejection(VirshHypervisor.open({ uri: 'test:///no/such/node.xml' }));
    expect(error.message).toMatch(
      /^virsh uri: virsh exited \(exit code 1\): .*failed to connect to the hypervisor/,
    );
  });
});

describe('VirshHypervisor on custom test nodes', () => {
  let dir: string;
  let hostA: string;
  let hostB: string;
  let hostC: string;
  let host200: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'halo-virsh-test-'));
    hostA = join(dir, 'host-a.xml');
    hostB = join(dir, 'host-b.xml');
    hostC = join(dir, 'host-c.xml');
    host200 = join(dir, 'host-200.xml');
    await writeFile(hostA, nodeXml(32, 16 * 1024, HOST_A));
    await writeFile(hostB, nodeXml(8, 4 * 1024, HOST_B));
    await writeFile(hostC, nodeXml(8, 4 * 1024, HOST_C));
    const many = Array.from(
      { length: 200 },
      (_, i): TestDomain => ({
        name: `vm-${String(i).padStart(3, '0')}`,
        uuid: uuid(1000 + i),
        memoryMiB: 1024 + (i % 4) * 512,
        vcpus: 1 + (i % 8),
        runstate: [1, 1, 5, 3, 2][i % 5],
      }),
    );
    await writeFile(host200, nodeXml(128, 1024 * 1024, many));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A hypervisor on its own connection, and the session under it for what only a test may do. */
  async function open(node: string, log: SiteLogger = recorder()) {
    const session = new VirshSession({ uri: `test://${node}` });
    const hypervisor = VirshHypervisor.withSession(session, { log });
    return { session, hypervisor };
  }

  async function virsh(session: VirshSession, ...args: string[]): Promise<void> {
    const reply = await session.run(args);
    if (!reply.ok) throw new Error(`test set-up: virsh ${args.join(' ')}: ${reply.stderr}`);
  }

  it('lists every domain with its size and state, skipping names that are not VM ids (one warning each)', async () => {
    const log = recorder();
    const { hypervisor } = await open(hostA, log);
    try {
      expect(await hypervisor.capacity()).toEqual({ cpus: 32, memoryMiB: 16384 });
      const vms = await hypervisor.listVms();
      expect(vms).toEqual([
        { id: '5', cpus: 1, memoryMiB: 512, state: 'shut-off', reason: 'unknown', autostart: false },
        { id: 'app-1', cpus: 2, memoryMiB: 768, state: 'shut-off', reason: 'unknown', autostart: false },
        { id: 'crashed-1', cpus: 1, memoryMiB: 1024, state: 'crashed', reason: 'unknown', autostart: false },
        { id: 'idle-1', cpus: 1, memoryMiB: 1024, state: 'running', autostart: false },
        { id: 'off-1', cpus: 4, memoryMiB: 2048, state: 'shut-off', reason: 'unknown', autostart: false },
        { id: 'paused-1', cpus: 1, memoryMiB: 1024, state: 'paused', reason: 'unknown', autostart: false },
        {
          id: 'stopping-1',
          cpus: 1,
          memoryMiB: 1024,
          state: 'running',
          reason: 'in-shutdown',
          autostart: false,
        },
        {
          id: 'suspended-1',
          cpus: 1,
          memoryMiB: 1024,
          state: 'paused',
          reason: 'pmsuspended',
          autostart: false,
        },
        // Max memory (1024), not the current balloon size (512): capacity is reserved by it.
        { id: 'web-1', cpus: 2, memoryMiB: 1024, state: 'running', autostart: false },
      ]);
      for (const vm of vms) expect(ObservedVmSchema.safeParse(vm).success).toBe(true);
      await hypervisor.listVms();
      expect(log.warnings).toEqual([
        {
          message: 'domain left out of the inventory: its name is not a valid VM id',
          data: { name: 'bad name' },
        },
      ]);
    } finally {
      await hypervisor.close();
    }
  });

  it('reports the reasons libvirt gives as domains are destroyed, shut down, suspended, saved and crash-dumped', async () => {
    const { session, hypervisor } = await open(hostA);
    try {
      await hypervisor.listVms();
      await virsh(session, 'destroy', 'web-1');
      await virsh(session, 'suspend', 'idle-1');
      await virsh(session, 'start', 'off-1');
      await virsh(session, 'shutdown', 'off-1');
      await virsh(session, 'managedsave', 'paused-1');
      await virsh(session, 'start', 'app-1');
      // The test driver's crash: a dump with --crash leaves the domain shut off, reason crashed (what
      // libvirt does with on_crash=destroy). It cannot make a domain `crashed (panicked)`.
      await virsh(session, 'dump', '--crash', 'app-1', join(dir, 'app-1.dump'));
      const byId = new Map((await hypervisor.listVms()).map((vm) => [vm.id, vm]));
      expect(byId.get('web-1')).toMatchObject({ state: 'shut-off', reason: 'destroyed' });
      expect(byId.get('idle-1')).toMatchObject({ state: 'paused', reason: 'user' });
      expect(byId.get('off-1')).toMatchObject({ state: 'shut-off', reason: 'shutdown' });
      expect(byId.get('paused-1')).toMatchObject({ state: 'shut-off', reason: 'saved' });
      expect(byId.get('app-1')).toMatchObject({ state: 'shut-off', reason: 'crashed' });
      await virsh(session, 'resume', 'idle-1');
      await virsh(session, 'start', 'web-1');
      const after = new Map((await hypervisor.listVms()).map((vm) => [vm.id, vm]));
      expect(after.get('idle-1')).toEqual({
        id: 'idle-1',
        cpus: 1,
        memoryMiB: 1024,
        state: 'running',
        autostart: false,
      });
      expect(after.get('web-1')).toEqual({
        id: 'web-1',
        cpus: 2,
        memoryMiB: 1024,
        state: 'running',
        autostart: false,
      });
    } finally {
      await hypervisor.close();
    }
  });

  it('reports autostart, read fresh for a new domain and within a refresh round for a known one', async () => {
    const { session, hypervisor } = await open(hostA);
    try {
      await virsh(session, 'autostart', 'web-1');
      let vms = await hypervisor.listVms();
      expect(vms.find((vm) => vm.id === 'web-1')?.autostart).toBe(true);
      expect(vms.find((vm) => vm.id === 'off-1')?.autostart).toBe(false);
      // Toggled while its state stays the same: seen once its dominfo is re-read (every 30 reads at most).
      await virsh(session, 'autostart', 'off-1');
      let reads = 0;
      while (vms.find((vm) => vm.id === 'off-1')?.autostart !== true && reads < 31) {
        vms = await hypervisor.listVms();
        reads += 1;
      }
      expect(vms.find((vm) => vm.id === 'off-1')?.autostart).toBe(true);
    } finally {
      await hypervisor.close();
    }
  });

  it('starts a shut-off VM; one already running is a success', async () => {
    const { hypervisor } = await open(hostA);
    try {
      await hypervisor.startVm({ id: 'off-1', cpus: 4, memoryMiB: 2048 });
      await hypervisor.startVm({ id: 'web-1', cpus: 2, memoryMiB: 1024 });
      await hypervisor.startVm({ id: 'off-1', cpus: 4, memoryMiB: 2048 });
      const byId = new Map((await hypervisor.listVms()).map((vm) => [vm.id, vm]));
      expect(byId.get('off-1')).toEqual({
        id: 'off-1',
        cpus: 4,
        memoryMiB: 2048,
        state: 'running',
        autostart: false,
      });
      expect(byId.get('web-1')?.state).toBe('running');
    } finally {
      await hypervisor.close();
    }
  });

  it('starts the domain named 5, not the domain whose id is 5 (domains are addressed by UUID)', async () => {
    const { hypervisor } = await open(hostA);
    try {
      await hypervisor.startVm({ id: '5', cpus: 1, memoryMiB: 512 });
      const byId = new Map((await hypervisor.listVms()).map((vm) => [vm.id, vm]));
      expect(byId.get('5')?.state).toBe('running');
      expect(byId.get('crashed-1')?.state).toBe('crashed');
    } finally {
      await hypervisor.close();
    }
  });

  it('refuses a VM that is not defined here when no definition is given', async () => {
    const { hypervisor } = await open(hostA);
    try {
      const error = await rejection(hypervisor.startVm({ id: 'ghost-1', cpus: 1, memoryMiB: 512 }));
      expect(error.message).toBe('start ghost-1: not defined on this host and no definition given');
      expect((await rejection(hypervisor.startVm({ id: 'bad name', cpus: 1, memoryMiB: 1 }))).message).toBe(
        'start bad name: not a valid VM id',
      );
    } finally {
      await hypervisor.close();
    }
  });

  it('refuses a VM crashed here: libvirt keeps it until an operator destroys it', async () => {
    const { hypervisor } = await open(hostA);
    try {
      const error = await rejection(hypervisor.startVm({ id: 'crashed-1', cpus: 1, memoryMiB: 1024 }));
      expect(error.message).toBe('start crashed-1: crashed on this host; an operator must destroy it first');
    } finally {
      await hypervisor.close();
    }
  });

  it('refuses a VM too big for the memory the active domains leave free, saying the numbers', async () => {
    const { hypervisor } = await open(hostA);
    try {
      const free = 16 * 1024 - HOST_A_HELD_MIB;
      const error = await rejection(hypervisor.startVm({ id: 'off-1', cpus: 4, memoryMiB: free + 1 }));
      expect(error.message).toBe(
        `start off-1: not enough memory on this host: it needs ${free + 1} MiB, ` +
          `6 active domains hold ${HOST_A_HELD_MIB} MiB of the host's 16384 MiB (${free} MiB free)`,
      );
      expect((await hypervisor.listVms()).find((vm) => vm.id === 'off-1')?.state).toBe('shut-off');
      // Exactly what is free fits.
      await hypervisor.startVm({ id: 'off-1', cpus: 4, memoryMiB: free });
    } finally {
      await hypervisor.close();
    }
  });

  it('hands out a definition, null for a VM it does not have', async () => {
    const { hypervisor } = await open(hostA);
    try {
      const xml = await hypervisor.definitionOf('app-1');
      expect(xml).not.toBeNull();
      expect(domainTopLevel(xml ?? '')).toEqual({ name: 'app-1', uuid: uuid(10) });
      expect(xml).not.toMatch(/<domain[^>]* id=/);
      expect(await hypervisor.definitionOf('ghost-1')).toBeNull();
      expect(await hypervisor.definitionOf('bad name')).toBeNull();
    } finally {
      await hypervisor.close();
    }
  });

  it('defines a VM from the definition another host gave, then starts it', async () => {
    const a = await open(hostA);
    const c = await open(hostC);
    try {
      const definition = await a.hypervisor.definitionOf('app-1');
      if (definition === null) throw new Error('no definition of app-1 on host A');
      expect(await c.hypervisor.definitionOf('app-1')).toBeNull();
      const leftBefore = (await readdir(tmpdir())).filter((name) => name.startsWith('halo-virsh-')).length;

      await c.hypervisor.startVm({ id: 'app-1', cpus: 2, memoryMiB: 768 }, definition);

      const vms = await c.hypervisor.listVms();
      expect(vms.find((vm) => vm.id === 'app-1')).toEqual({
        id: 'app-1',
        cpus: 2,
        memoryMiB: 768,
        state: 'running',
        autostart: false,
      });
      expect(domainTopLevel((await c.hypervisor.definitionOf('app-1')) ?? '')?.uuid).toBe(uuid(10));
      // The definition's temporary file and directory are gone.
      const leftAfter = (await readdir(tmpdir())).filter((name) => name.startsWith('halo-virsh-')).length;
      expect(leftAfter).toBeLessThanOrEqual(leftBefore);
      // Defined now: a second start needs no definition and is a success.
      await c.hypervisor.startVm({ id: 'app-1', cpus: 2, memoryMiB: 768 });
    } finally {
      await a.hypervisor.close();
      await c.hypervisor.close();
    }
  });

  it('leaves out a domain the protocol would refuse (0 MiB), with one warning', async () => {
    const log = recorder();
    const { hypervisor } = await open(hostB, log);
    try {
      expect((await hypervisor.listVms()).map((vm) => vm.id)).toEqual(['other-1']);
      expect((await hypervisor.listVms()).map((vm) => vm.id)).toEqual(['other-1']);
      expect(log.warnings).toEqual([
        {
          message: 'domain left out of the inventory: the protocol refuses it',
          data: { name: 'tiny-1', cpus: 1, memoryMiB: 0 },
        },
      ]);
    } finally {
      await hypervisor.close();
    }
  });

  it('refuses a definition whose UUID this host runs under another name, or that names another VM', async () => {
    const a = await open(hostA);
    const b = await open(hostB);
    try {
      const definition = (await a.hypervisor.definitionOf('app-1')) ?? '';
      const twin = await rejection(
        b.hypervisor.startVm({ id: 'app-1', cpus: 2, memoryMiB: 768 }, definition),
      );
      expect(twin.message).toBe(
        `start app-1: its UUID ${uuid(10)} runs here already under another id (other-1)`,
      );
      const renamed = await rejection(
        b.hypervisor.startVm({ id: 'app-2', cpus: 2, memoryMiB: 768 }, definition),
      );
      expect(renamed.message).toBe('start app-2: the definition is for "app-1", not app-2');
      const garbage = await rejection(
        b.hypervisor.startVm({ id: 'app-2', cpus: 1, memoryMiB: 1 }, 'garbage'),
      );
      expect(garbage.message).toBe('start app-2: the definition is not a libvirt <domain> document');
      expect((await b.hypervisor.listVms()).map((vm) => vm.id)).toEqual(['other-1']);
    } finally {
      await a.hypervisor.close();
      await b.hypervisor.close();
    }
  });

  it('refuses a definition too big for the host before defining it: nothing is left behind', async () => {
    const a = await open(hostA);
    const c = await open(hostC);
    try {
      const definition = (await a.hypervisor.definitionOf('off-1')) ?? '';
      const error = await rejection(
        c.hypervisor.startVm({ id: 'off-1', cpus: 4, memoryMiB: 3000 }, definition),
      );
      expect(error.message).toBe(
        "start off-1: not enough memory on this host: it needs 3000 MiB, 1 active domains hold 2048 MiB of the host's 4096 MiB (2048 MiB free)",
      );
      expect(await c.hypervisor.definitionOf('off-1')).toBeNull();
    } finally {
      await a.hypervisor.close();
      await c.hypervisor.close();
    }
  });

  it('says why libvirt refused a definition, in virsh’s words', async () => {
    const { hypervisor } = await open(hostC);
    try {
      const broken = "<domain type='test'><name>new-1</name><memory>oops</memory></domain>";
      const error = await rejection(hypervisor.startVm({ id: 'new-1', cpus: 1, memoryMiB: 1 }, broken));
      expect(error.message).toMatch(/^virsh define --file \S+domain\.xml: .+/);
      expect(error.message.length).toBeLessThan(500);
    } finally {
      await hypervisor.close();
    }
  });

  it('reads the boot id from its file, trimmed', async () => {
    const file = join(dir, 'boot_id');
    await writeFile(file, '  3f1c2d4e-0000-4000-8000-000000000001\n');
    const session = new VirshSession({ uri: 'test:///default' });
    const hypervisor = VirshHypervisor.withSession(session, { bootIdFile: file });
    try {
      expect(await hypervisor.bootId()).toBe('3f1c2d4e-0000-4000-8000-000000000001');
    } finally {
      await hypervisor.close();
    }
  });

  it('only reads and starts: never destroys, shuts down, undefines or sets autostart', async () => {
    // A virsh that copies everything it is told to a file, to see every command the adapter sent.
    const typed = join(dir, 'typed.log');
    const wrapper = join(dir, 'recording-virsh');
    await writeFile(wrapper, `#!/bin/sh\ntee -a '${typed}' | virsh "$@"\n`);
    await chmod(wrapper, 0o755);
    const a = await open(hostA);
    const hypervisor = await VirshHypervisor.open({ uri: `test://${hostC}`, virshPath: wrapper });
    try {
      const definition = (await a.hypervisor.definitionOf('app-1')) ?? '';
      await hypervisor.listVms();
      await hypervisor.capacity();
      await hypervisor.startVm({ id: 'app-1', cpus: 2, memoryMiB: 768 }, definition);
      await hypervisor.startVm({ id: 'db-1', cpus: 2, memoryMiB: 2048 });
      await rejection(hypervisor.startVm({ id: 'ghost-1', cpus: 1, memoryMiB: 1 }));
      await hypervisor.definitionOf('db-1');
      await hypervisor.listVms();
    } finally {
      await a.hypervisor.close();
      await hypervisor.close();
    }
    const commands = (await readFile(typed, 'utf8'))
      .split(/\n|;/)
      .map((command) => command.trim().split(/\s+/)[0] ?? '')
      .filter((verb) => verb.length > 0);
    expect(new Set(commands)).toEqual(
      new Set(['echo', 'uri', 'list', 'domstats', 'dominfo', 'nodeinfo', 'define', 'start', 'dumpxml']),
    );
  });

  it('lists 200 domains: timing on the test driver (printed, not asserted)', async () => {
    const { hypervisor } = await open(host200);
    try {
      let started = performance.now();
      const first = await hypervisor.listVms();
      const cold = performance.now() - started;
      expect(first).toHaveLength(200);
      const warm: number[] = [];
      for (let i = 0; i < 30; i++) {
        started = performance.now();
        const vms = await hypervisor.listVms();
        warm.push(performance.now() - started);
        expect(vms).toHaveLength(200);
      }
      warm.sort((x, y) => x - y);
      const at = (q: number) =>
        (warm[Math.min(warm.length - 1, Math.floor(q * warm.length))] ?? 0).toFixed(1);
      console.log(
        `listVms, 200 domains on the test driver: first read ${cold.toFixed(1)} ms (a dominfo each); ` +
          `then median ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms over 30 reads ` +
          '(list + domstats, and 7 dominfo a read as the refresh round)',
      );
    } finally {
      await hypervisor.close();
    }
  });
});
