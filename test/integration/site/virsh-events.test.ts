import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirshEventWatcher } from '../../../site/adapters/virsh-events';
import { silentLogger } from '../../../site/ports';

/**
 * The libvirt event watcher, over a stand-in `virsh` that prints what `virsh event --all --loop` prints
 * (libvirt's test driver has no events without a daemon): each burst of events is one change.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function fakeVirsh(script: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'halo-virsh-events-'));
  dirs.push(dir);
  const path = join(dir, 'virsh');
  writeFileSync(path, `#!/bin/sh\necho "$@" > "${dir}/args"\n${script}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('VirshEventWatcher', () => {
  it('runs `virsh -c URI event --all --loop` and reports each burst of lifecycle events as one change', async () => {
    const virsh = fakeVirsh(
      [
        `echo "event 'lifecycle' for domain 'web01': Started Booted"`,
        `echo "event 'lifecycle' for domain 'web01': Resumed Unpaused"`,
        'sleep 0.5',
        `echo "event 'lifecycle' for domain 'db01': Stopped Crashed"`,
        'sleep 30',
      ].join('\n'),
    );
    let changes = 0;
    const watcher = new VirshEventWatcher('qemu:///system', () => (changes += 1), silentLogger, virsh);
    watcher.start();
    try {
      await expect.poll(() => changes, { timeout: 20_000 }).toBe(2);
    } finally {
      watcher.stop();
    }
  });

  it('a watcher whose virsh ends is started again', async () => {
    const virsh = fakeVirsh(`echo "event 'lifecycle' for domain 'web01': Started Booted"`);
    let changes = 0;
    const logged: string[] = [];
    const watcher = new VirshEventWatcher(
      'qemu:///system',
      () => (changes += 1),
      { info: () => undefined, warn: (m) => void logged.push(m) },
      virsh,
    );
    watcher.start();
    try {
      await expect.poll(() => changes, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
      expect(logged).toContain('virsh event watcher ended; restarting it in 5 s');
    } finally {
      watcher.stop();
    }
  }, 30_000);
});
