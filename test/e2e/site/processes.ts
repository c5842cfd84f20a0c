import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

/**
 * Real processes for the site end-to-end tests: the local control plane (`npm start -- --serve`), the
 * `halo-relay` program through its npm bin, and the folders and secret files their configurations need.
 * Every process started here is killed by `stopAll()` (call it in afterAll/afterEach).
 */

export const ROOT = resolve(import.meta.dirname, '../../..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

const started = new Set<ChildProcess>();
const folders: string[] = [];

/** A child process with its output kept line by line. */
export class Program {
  readonly lines: string[] = [];
  private exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    started.add(child);
    let buffer = '';
    const take = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const line of parts) this.lines.push(line);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((done) => {
      child.on('exit', (code) => {
        started.delete(child);
        done(code);
      });
    });
  }

  /** Resolves with the exit code once the process ended. */
  exit(): Promise<number | null> {
    return this.exited;
  }

  /** JSON-lines log entries (the site programs' logs), skipping anything else. */
  entries(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        const value: unknown = JSON.parse(line);
        return typeof value === 'object' && value !== null ? [value as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  }

  /** Waits (polling) until a line matches; fails with the output after `limitMs`. */
  async waitFor(match: (line: string) => boolean, limitMs = 60_000): Promise<string> {
    const until = Date.now() + limitMs;
    while (Date.now() < until) {
      const found = this.lines.find(match);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${this.name}: no matching line; output:\n${this.lines.slice(-40).join('\n')}`);
  }

  /** SIGKILL: the process dies mid-step, with no chance to save anything. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exit();
  }
}

/** Processes that run the program as a child of their own (`tsx`): stopped with SIGTERM, which they relay. */
const relaying = new Set<ChildProcess>();

/** Resolves once the child has exited, or after `ms`. */
function exitedWithin(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Kills every process still running and removes the folders made. The control plane runs under `tsx`,
 * whose server is a child of its own: SIGKILL to `tsx` left that server running after the test, so it gets
 * SIGTERM, which `tsx` relays (SIGKILL after 10 s if it is still there).
 */
export async function stopAll(): Promise<void> {
  const graceful: ChildProcess[] = [];
  for (const child of started) {
    if (relaying.has(child)) {
      child.kill('SIGTERM');
      graceful.push(child);
    } else {
      child.kill('SIGKILL');
    }
  }
  await Promise.all(
    graceful.map(async (child) => {
      await exitedWithin(child, 10_000);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }),
  );
  started.clear();
  relaying.clear();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A fresh folder, removed by stopAll(). */
export function tempFolder(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.push(dir);
  return dir;
}

/** Writes a file only its owner can read (a secret, or a config that holds one). */
export function writePrivate(path: string, content: string): string {
  writeFileSync(path, content);
  chmodSync(path, 0o600);
  return path;
}

/** A UDP+TCP port number free right now on 127.0.0.1 (the LAN transport binds both). */
export async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((done) => socket.bind(0, '127.0.0.1', done));
  const { port } = socket.address();
  await new Promise<void>((done) => socket.close(() => done()));
  return port;
}

/** A new random LAN key, as `openssl rand -base64 32` makes one. */
export function newLanKey(): string {
  return randomBytes(32).toString('base64');
}

/** The local control plane as an operator reaches it. */
export interface ControlPlane {
  readonly url: string;
  readonly program: Program;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

/**
 * Starts `npm start -- --serve --port 0` (through tsx, as the npm script does) and waits for its URL. Its
 * local operator token goes to a file of the test's own (HALO_LOCAL_TOKEN_FILE), never the user's.
 */
export async function startControlPlane(): Promise<ControlPlane> {
  const tokenDir = mkdtempSync(join(tmpdir(), 'halo-cp-'));
  folders.push(tokenDir);
  const tokenFile = join(tokenDir, 'local-token');
  const child = spawn(TSX, ['local/start.ts', '--serve', '--port', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HALO_LOCAL_TOKEN_FILE: tokenFile },
  });
  relaying.add(child);
  const program = new Program('control plane', child);
  const line = await program.waitFor((l) => l.startsWith('Halo local control plane on '), 120_000);
  const url = /on (http:\/\/\S+)/.exec(line)?.[1];
  if (url === undefined) throw new Error(`no URL in ${line}`);
  const token = readFileSync(tokenFile, 'utf8').trim();
  return {
    url,
    program,
    async call(method, path, body) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? null : JSON.parse(text) };
    },
  };
}

/** Enrols a relay through the operator API; returns its credential. */
export async function enrolRelay(cp: ControlPlane, siteId: string, relayId: string): Promise<string> {
  const { status, body } = await cp.call('POST', `/v1/sites/${siteId}/relays`, { relayId });
  if (status !== 200 && status !== 201) throw new Error(`enrolment: ${status} ${JSON.stringify(body)}`);
  const credential = (body as { credential?: unknown }).credential;
  if (typeof credential !== 'string') throw new Error(`enrolment: no credential in ${JSON.stringify(body)}`);
  return credential;
}

/** A relay's folder: config, credential, LAN key and state, as docs/site-install.md lays them out. */
export interface RelayFolder {
  readonly dir: string;
  readonly configPath: string;
}

/** Writes a relay configuration (0600, so inline secrets are allowed) with its secret files beside it. */
export function relayFolder(opts: {
  siteId: string;
  relayId: string;
  url: string;
  credential: string;
  lanKey: string;
  lanPort: number;
  hosts: Record<string, { fence: Record<string, unknown>[] }>;
  extra?: Record<string, unknown>;
  dir?: string;
}): RelayFolder {
  const dir = opts.dir ?? tempFolder('halo-relay-');
  mkdirSync(dir, { recursive: true });
  writePrivate(join(dir, 'relay.credential'), `${opts.credential}\n`);
  writePrivate(join(dir, 'lan.key'), `${opts.lanKey}\n`);
  const config = {
    site: opts.siteId,
    relay: opts.relayId,
    controlPlane: { url: opts.url, credentialFile: './relay.credential', timeoutMs: 5000 },
    lan: { listen: `127.0.0.1:${opts.lanPort}`, keyFile: './lan.key' },
    stateDir: './state',
    hosts: opts.hosts,
    ...opts.extra,
  };
  const configPath = writePrivate(join(dir, 'relay.yaml'), stringify(config));
  return { dir, configPath };
}

/** Runs a site program (`halo-relay`, `halo-agent`) through its npm bin on the project's Node.js. */
export function startSiteProgram(
  program: 'halo-relay' | 'halo-agent',
  args: readonly string[],
  name: string,
): Program {
  const child = spawn(process.execPath, [join(ROOT, 'bin', `${program}.mjs`), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Program(name, child);
}

/** Runs `halo-relay ARGS` through its npm bin (bin/halo-relay.mjs) on the project's Node.js. */
export function startRelay(args: readonly string[], name = 'relay'): Program {
  return startSiteProgram('halo-relay', args, name);
}

/** Polls `probe` until it returns a value other than undefined; fails after `limitMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  limitMs = 90_000,
): Promise<T> {
  const until = Date.now() + limitMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `${what}: not reached within ${limitMs} ms${last === undefined ? '' : ` (${String(last)})`}`,
  );
}
