import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { SiteLogger } from '../ports';

/** Events closer together than this make one change: a VM start emits several lifecycle events. */
const COALESCE_MS = 50;

/**
 * Watches libvirt's domain events through `virsh event --all --loop` (one long-lived process) and calls
 * `onChange` when any domain changes, so that the agent heartbeats with the new inventory at once instead
 * of up to a heartbeat later. A watcher that dies is started again after a pause; `stop()` ends it.
 *
 * libvirt's test driver without a daemon (`test:///…`) keeps state per connection, so a watcher there
 * would see nothing: the agent polls instead (site/agent/main.ts).
 */
export class VirshEventWatcher {
  private child: ChildProcess | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly uri: string,
    private readonly onChange: () => void,
    private readonly log: SiteLogger,
    private readonly virshPath = 'virsh',
  ) {}

  /** Starts watching. */
  start(): void {
    if (this.stopped || this.child !== null) return;
    const child = spawn(this.virshPath, ['-c', this.uri, 'event', '--all', '--loop'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    });
    this.child = child;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line.startsWith('event ')) this.changed();
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-500);
    });
    child.on('error', (error) =>
      this.log.warn('virsh event watcher failed to start', { error: error.message }),
    );
    child.on('exit', (code) => {
      this.child = null;
      if (this.stopped) return;
      this.log.warn('virsh event watcher ended; restarting it in 5 s', { code, stderr: stderr.trim() });
      this.restartTimer = setTimeout(() => this.start(), 5000);
    });
  }

  /** Stops watching. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.child?.kill('SIGTERM');
  }

  private changed(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onChange();
    }, COALESCE_MS);
  }
}
