import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runProcess } from '../../site/adapters/child-process';

/**
 * A real BMC for tests: OpenIPMI's `ipmi_sim` serving IPMI v2 (RMCP+) on a UDP port of 127.0.0.1, with a
 * chassis-control hook that keeps the host's power in a file. ipmitool and fence agents talk to it exactly
 * as they talk to a server's BMC. What the configuration needs is in TOOLING-NOTES ("IPMI").
 */

/** How the simulated host reacts to a power-off: `ignore-off` acknowledges it and stays on. */
export type IpmiSimMode = 'normal' | 'ignore-off';

export interface IpmiSimOptions {
  /** The BMC user's password; a fresh `Sim-Pw-<hex>` by default. */
  readonly password?: string;
  /** Power at start; on by default. */
  readonly power?: 'on' | 'off';
  readonly mode?: IpmiSimMode;
}

/** One running simulated BMC. */
export interface IpmiSim {
  readonly address: '127.0.0.1';
  readonly port: number;
  readonly username: 'admin';
  readonly password: string;
  /** Its temporary folder: configuration, power and mode files, hook log. */
  readonly dir: string;
  /** The host's power as the hook last persisted it. */
  power(): 'on' | 'off';
  setPower(power: 'on' | 'off'): void;
  setMode(mode: IpmiSimMode): void;
  /** Power-offs the BMC passed to the host (`set power 0` hook calls), acknowledged or not. */
  offCalls(): number;
  /** Kills ipmi_sim, waits for it, removes its folder; safe to call twice. */
  stop(): Promise<void>;
}

/** Ports tried before giving up: a port can be taken between finding it free and ipmi_sim binding it. */
const START_ATTEMPTS = 5;
/** Checks that ipmi_sim has bound its port, 25 ms apart: counted, so a loaded machine only waits longer. */
const BIND_CHECKS = 400;
/** ipmitool status reads before ipmi_sim counts as not answering. */
const READY_READS = 10;

/** Every sim still running, killed when the test process exits however it exits. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts an ipmi_sim on a free port of 127.0.0.1 and resolves once ipmitool reads its power. */
export async function startIpmiSim(options: IpmiSimOptions = {}): Promise<IpmiSim> {
  const password = options.password ?? `Sim-Pw-${randomBytes(4).toString('hex')}`;
  const failures: string[] = [];
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freeUdpPort();
    const dir = await mkdtemp(join(tmpdir(), 'halo-ipmi-sim-'));
    await writeConfig(dir, port, password, options.power ?? 'on', options.mode ?? 'normal');
    const sim = launch(dir, port, password);
    const problem = await sim.ready();
    if (problem === null) return sim.api;
    failures.push(`port ${port}: ${problem}`);
    await sim.api.stop();
  }
  throw new Error(`ipmi_sim did not start:\n${failures.join('\n')}`);
}

/**
 * A UDP port where a BMC does not answer: held by a socket that reads and drops every datagram, so no
 * other test's ipmi_sim can take it (ipmi_sim fails to bind it), and closed when the test process exits.
 */
export async function deadBmcPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  socket.on('error', () => {});
  socket.on('message', () => {});
  socket.unref();
  return socket.address().port;
}

/** Command lines seen while watching: every process whose command line held the secret. */
export interface CommandLineReport {
  /** Complete passes over /proc. */
  readonly scans: number;
  /** argv of each process seen with the secret in its command line. */
  readonly leaks: readonly (readonly string[])[];
  /** Basenames, among the programs asked about, of those seen running at least once. */
  readonly seen: ReadonlySet<string>;
}

/**
 * Reads every /proc/PID/cmdline over and over until stopped, as any local user can: a secret passed as an
 * argument shows there. `programs` are basenames to report as seen (e.g. `ipmitool`), so a test can tell
 * a clean pass from one that never saw the process run.
 */
export function watchCommandLines(
  secret: string,
  programs: readonly string[] = [],
): { stop(): Promise<CommandLineReport> } {
  const leaks: string[][] = [];
  const seen = new Set<string>();
  let scans = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
      await Promise.all(
        pids.map(async (pid) => {
          let argv: string[];
          try {
            argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
          } catch {
            return; // Gone since the listing.
          }
          if (argv.some((arg) => arg.includes(secret))) leaks.push(argv);
          for (const arg of argv) if (programs.includes(basename(arg))) seen.add(basename(arg));
        }),
      );
      scans++;
      await sleep(2);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { scans, leaks, seen };
    },
  };
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

async function writeConfig(
  dir: string,
  port: number,
  password: string,
  power: 'on' | 'off',
  mode: IpmiSimMode,
): Promise<void> {
  const hook = join(dir, 'chassis-control.sh');
  // ipmi_sim calls `HOOK 0x20 get power` (expects `power:0|1`) and `HOOK 0x20 set power 0|1`.
  await writeFile(
    hook,
    [
      '#!/bin/sh',
      `dir='${dir}'`,
      'case "$2 $3" in',
      '  "get power") printf "power:%s\\n" "$(cat "$dir/power")" ;;',
      '  "set power")',
      '    echo "set power $4" >> "$dir/calls.log"',
      '    if [ "$4" = 0 ] && [ "$(cat "$dir/mode")" = ignore-off ]; then exit 0; fi',
      '    printf "%s\\n" "$4" > "$dir/power.tmp" && mv "$dir/power.tmp" "$dir/power" ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(hook, 0o755);
  const guid = randomBytes(16).toString('hex');
  await writeFile(
    join(dir, 'lan.conf'),
    [
      'name "halo-test-bmc"',
      'set_working_mc 0x20',
      'startlan 1',
      `  addr 127.0.0.1 ${port}`,
      '  priv_limit admin',
      // Without a guid, every lanplus session fails ("does not support IPMI v2 / RMCP+").
      `  guid ${guid}`,
      'endlan',
      `chassis_control "${hook} 0x20"`,
      `user 2 true "admin" "${password}" admin 10 none md2 md5 straight`,
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'sim.emu'),
    [
      'mc_setbmc 0x20',
      'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
      'mc_enable 0x20',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'power'), power === 'on' ? '1\n' : '0\n');
  await writeFile(join(dir, 'mode'), `${mode}\n`);
  await writeFile(join(dir, 'calls.log'), '');
  await mkdir(join(dir, 'state'));
}

function launch(
  dir: string,
  port: number,
  password: string,
): { api: IpmiSim; ready(): Promise<string | null> } {
  const child = spawn('ipmi_sim', ['-c', 'lan.conf', '-f', 'sim.emu', '-s', 'state', '-n'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
    // Not found or not executable: no 'exit' follows.
    child.once('error', (error) => {
      output += `${error.message}\n`;
      exited = true;
      running.delete(child);
      resolve();
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      output += chunk;
    });
    (stream as Socket | null)?.unref();
  }
  child.unref();
  // Kills ipmi_sim should this test process die without running its hooks (a crashed or killed worker).
  const watchdog =
    child.pid === undefined
      ? undefined
      : spawn('sh', ['-c', 'read _; kill -9 "$1" 2>/dev/null', 'ipmi-sim-watchdog', String(child.pid)], {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          stdio: ['pipe', 'ignore', 'ignore'],
        });
  if (watchdog !== undefined) {
    watchdog.unref();
    (watchdog.stdin as Socket | null)?.unref();
    watchdog.on('error', () => {});
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // The watchdog first: once ipmi_sim is reaped its pid may belong to someone else.
      watchdog?.kill('SIGKILL');
      if (!exited) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exit;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const file = (name: string) => join(dir, name);
  const api: IpmiSim = {
    address: '127.0.0.1',
    port,
    username: 'admin',
    password,
    dir,
    power: () => (readFileSync(file('power'), 'utf8').trim() === '0' ? 'off' : 'on'),
    setPower: (power) => replaceFile(file('power'), power === 'on' ? '1\n' : '0\n'),
    setMode: (mode) => replaceFile(file('mode'), `${mode}\n`),
    offCalls: () =>
      readFileSync(file('calls.log'), 'utf8')
        .split('\n')
        .filter((line) => line.trim() === 'set power 0').length,
    stop,
  };

  const ready = async (): Promise<string | null> => {
    let bound = false;
    for (let check = 0; check < BIND_CHECKS && !exited && !bound; check++) {
      const owners = await udpSocketInodes(port);
      const ours = child.pid === undefined ? new Set<string>() : await socketInodes(child.pid);
      if (owners.length > 1) return `port shared with another socket (${owners.length} bound)`;
      bound = owners.length === 1 && owners.every((inode) => ours.has(inode));
      if (!bound) await sleep(25);
    }
    if (exited) return `ipmi_sim exited: ${output.trim() || 'no output'}`;
    if (!bound) return 'ipmi_sim never bound its port';
    const session = `-I lanplus -H 127.0.0.1 -p ${port} -U admin -C 3 -N 1 -R 1 -E`;
    const args = `${session} chassis power status`.split(' ');
    let last = '';
    for (let read = 0; read < READY_READS && !exited; read++) {
      const result = await runProcess({
        file: 'ipmitool',
        args,
        env: { IPMI_PASSWORD: password },
        timeoutMs: 15_000,
      });
      if (result.code === 0 && /Chassis Power is/.test(result.stdout)) return null;
      last = (result.stderr || result.stdout).trim();
      await sleep(100);
    }
    return exited ? `ipmi_sim exited: ${output.trim() || 'no output'}` : `ipmitool never read power: ${last}`;
  };

  return { api, ready };
}

/** A reader never sees half a file: the hook may read power at any moment. */
function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

/**
 * Inodes of the UDP sockets bound to `port` on any address. ipmi_sim binds with SO_REUSEADDR, so a second
 * ipmi_sim on the same port starts without complaint and steals the first one's traffic: only counting
 * the sockets tells.
 */
async function udpSocketInodes(port: number): Promise<string[]> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes: string[] = [];
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[9] !== undefined) inodes.push(fields[9]);
    }
  }
  return inodes;
}

async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`));
      if (match?.[1] !== undefined) inodes.add(match[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}
