import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Io } from '../../../cli/format';
import { planCommand } from '../../../cli/plan';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const seed = join(root, 'examples/seed-inventory.json');
const seedAllHa = join(root, 'examples/seed-inventory-all-ha.json');

/** Runs `halo plan` in-process and returns what it wrote and its exit code. */
async function plan(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  };
  const code = await planCommand(args, io);
  return { code, stdout, stderr };
}

const scratch = mkdtempSync(join(tmpdir(), 'halo-plan-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('halo plan', () => {
  describe('given the seed example, where 9 GiB of each host is not HA', () => {
    it('then it reports N+1 OK and exits 0', async () => {
      const { code, stdout, stderr } = await plan(seed);
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toContain('prod: N+1 OK — survives the loss of any one of 3 hosts');
    });

    it('then it prints a host table and every host failover plan, high wave first', async () => {
      const { stdout } = await plan(seed);
      expect(stdout).toMatch(/node01 +25 \/ 48 +52% +45\.0 GiB \/ 64\.0 GiB +70% +36\.0 GiB, 20 vCPU +OK/);
      for (const id of ['node01', 'node02', 'node03']) expect(stdout).toContain(`If ${id} fails:`);
      expect(stdout).toMatch(/ 1 +high +node01-db-1 +4096 MiB +3 +→ node03 /);
      expect(stdout).toContain('Not HA, not restarted: node01-dev-1');
      expect(stdout).not.toContain('Stays down');
    });
  });

  describe('given every VM is HA', () => {
    it('then N+1 fails 7168 MiB short, names the VMs that stay down, and exits 1', async () => {
      const { code, stdout } = await plan(seedAllHa);
      expect(code).toBe(1);
      expect(stdout).toContain(
        'prod: N+1 FAILS — losing node01 leaves 4 VMs down; 7168 MiB (7.0 GiB) and 0 vCPU short',
      );
      const node01 = stdout.slice(stdout.indexOf('If node01 fails:'), stdout.indexOf('If node02 fails:'));
      const down = node01.slice(node01.indexOf('Stays down (4 VMs):'));
      for (const id of ['node01-dev-1', 'node01-dev-2', 'node01-dev-3', 'node01-dev-4']) {
        expect(down).toMatch(new RegExp(`${id} +low +2048 MiB +1 +memory `));
      }
      expect(down).not.toContain('node01-scratch-1');
    });

    it('then --json prints each cluster report as JSON, with the same exit code', async () => {
      const { code, stdout } = await plan('--json', seedAllHa);
      expect(code).toBe(1);
      const parsed = JSON.parse(stdout) as {
        clusters: { id: string; report: { survivesAnyOneHostFailure: boolean; worstShortfall: unknown } }[];
      };
      expect(parsed.clusters.map((c) => c.id)).toEqual(['prod']);
      expect(parsed.clusters[0]?.report.survivesAnyOneHostFailure).toBe(false);
      expect(parsed.clusters[0]?.report.worstShortfall).toEqual({ cpus: 0, memoryMiB: 7168 });
    });
  });

  describe('given enough room in total but anti-affinity in the way', () => {
    it('then the verdict says placement, not capacity, keeps the VM down', async () => {
      const file = join(scratch, 'anti-affinity.json');
      const db = (id: string) => ({
        id,
        cpus: 2,
        memoryMiB: 4096,
        ha: true,
        priority: 'high',
        antiAffinity: 'db',
      });
      const hosts = ['a', 'b'].map((id) => ({ id, cpus: 16, memoryMiB: 65536, vms: [db(`${id}-db`)] }));
      writeFileSync(file, JSON.stringify({ clusters: [{ id: 'lab', hosts }] }));
      const { code, stdout } = await plan(file);
      expect(code).toBe(1);
      expect(stdout).toContain(
        'lab: N+1 FAILS — losing a leaves 1 VM down; the other hosts have enough room in total, ' +
          'but anti-affinity blocks placement; losing b also leaves VMs down',
      );
    });
  });

  describe('given a host that no fence level can power off', () => {
    const file = join(scratch, 'not-fenceable.json');
    const vm = (id: string) => ({ id, cpus: 2, memoryMiB: 4096, ha: true, priority: 'high' });
    const reason = 'relay r1: level 1 ipmitool: timed out, level 2 fence_apc_snmp: authentication failed';
    const hosts = ['a', 'b', 'c'].map((id) => ({
      id,
      cpus: 16,
      memoryMiB: 65536,
      vms: [vm(`${id}-vm`)],
      ...(id === 'b' ? { fencing: { fenceable: false, reason } } : {}),
      ...(id === 'c' ? { fencing: { fenceable: null } } : {}),
    }));
    writeFileSync(file, JSON.stringify({ clusters: [{ id: 'lab', hosts }] }));

    it('then N+1 holds but automatic failover does not: it names the host and why, and exits 1', async () => {
      const { code, stdout } = await plan(file);
      expect(code).toBe(1);
      expect(stdout).toContain('lab: N+1 OK — survives the loss of any one of 3 hosts');
      expect(stdout).toContain(
        'lab: NO AUTOMATIC FAILOVER for b — cannot be fenced; its failover waits for an operator to confirm the power off',
      );
      expect(stdout).toMatch(/\n {2}b +.*OK: all 1 HA VM restart, after an operator \(cannot be fenced\)\n/);
      // An unknown verdict (an older relay) is not a problem.
      expect(stdout).toMatch(/\n {2}c +.*OK: all 1 HA VM restart\n/);
      const b = stdout.slice(stdout.indexOf('If b fails:'), stdout.indexOf('If c fails:'));
      expect(b).toContain(`Needs an operator first: cannot be fenced: ${reason}`);
    });

    it('then --json carries the verdict per cluster and per plan, with the same exit code', async () => {
      const { code, stdout } = await plan('--json', file);
      expect(code).toBe(1);
      const parsed = JSON.parse(stdout) as {
        clusters: {
          report: {
            automaticFailover: boolean;
            notFenceable: unknown[];
            plans: { failedHostId: string; needsOperator: boolean }[];
          };
        }[];
      };
      const report = parsed.clusters[0]?.report;
      expect(report?.automaticFailover).toBe(false);
      expect(report?.notFenceable).toEqual([{ hostId: 'b', reason: `cannot be fenced: ${reason}` }]);
      expect(report?.plans.map((p) => [p.failedHostId, p.needsOperator])).toEqual([
        ['a', false],
        ['b', true],
        ['c', false],
      ]);
    });
  });

  describe('given HA VMs with libvirt autostart on', () => {
    const file = join(scratch, 'autostart.json');
    const vm = (id: string, over: Record<string, unknown> = {}) => ({
      id,
      cpus: 2,
      memoryMiB: 4096,
      ha: true,
      priority: 'high',
      ...over,
    });
    const hosts = ['a', 'b', 'c'].map((id) => ({
      id,
      cpus: 16,
      memoryMiB: 65536,
      vms:
        id === 'a'
          ? [
              vm('web-1', { autostart: true }),
              vm('db-1', { autostart: true }),
              vm('dev-1', { ha: false, autostart: true }),
            ]
          : [vm(`${id}-vm`, { autostart: false })],
    }));
    writeFileSync(file, JSON.stringify({ clusters: [{ id: 'lab', hosts }] }));

    it('then a warning line names them and where they run; N+1 still holds and the exit code stays 0', async () => {
      const { code, stdout } = await plan(file);
      expect(code).toBe(0);
      expect(stdout).toContain('lab: N+1 OK — survives the loss of any one of 3 hosts');
      expect(stdout).toContain(
        'lab: WARNING — libvirt autostart is on for HA VMs web-1 (on a) and db-1 (on a): a fenced host ' +
          'that boots again would start a second copy; turn it off (virsh autostart --disable)',
      );
      // Not HA: nothing restarts it elsewhere, so its autostart is no second copy.
      expect(stdout).not.toMatch(/WARNING.*dev-1/);
    });

    it('then --json lists them under haVmsWithAutostart', async () => {
      const { code, stdout } = await plan('--json', file);
      expect(code).toBe(0);
      const parsed = JSON.parse(stdout) as { clusters: { report: { haVmsWithAutostart: unknown[] } }[] };
      expect(parsed.clusters[0]?.report.haVmsWithAutostart).toEqual([
        { vmId: 'web-1', hostId: 'a' },
        { vmId: 'db-1', hostId: 'a' },
      ]);
    });

    it('then the seed example, without autostart, prints no warning', async () => {
      expect((await plan(seed)).stdout).not.toContain('WARNING');
    });
  });

  describe('given bad input or usage, it writes to stderr only and exits 2', () => {
    it.each([
      ['no inventory file', [], 'halo plan: missing the inventory file'],
      ['two files', ['a.json', 'b.json'], 'halo plan: unexpected argument b.json'],
      ['an unknown option', ['--nope', 'a.json'], "halo plan: Unknown option '--nope'"],
      ['a missing file', [join(scratch, 'missing.json')], 'missing.json: no such file'],
    ])('%s', async (_, args, message) => {
      const { code, stdout, stderr } = await plan(...args);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(message);
    });

    it('an invalid inventory: the InventoryError message, naming the file and the field', async () => {
      const file = join(scratch, 'bad.json');
      writeFileSync(
        file,
        JSON.stringify({ clusters: [{ id: 'prod', hosts: [{ id: 'a', cpus: 0, memoryMiB: 1, vms: [] }] }] }),
      );
      const { code, stdout, stderr } = await plan(file);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toBe(`${file}: clusters[0].hosts[0].cpus: must be a positive integer (got 0)\n`);
    });

    it('malformed JSON: the line and column', async () => {
      const file = join(scratch, 'broken.json');
      writeFileSync(file, '{\n  "clusters": [\n');
      const { code, stderr } = await plan(file);
      expect(code).toBe(2);
      expect(stderr).toContain(`${file}: invalid JSON at line 3, column 1`);
    });
  });

  it('--help prints usage with the exit codes and exits 0', async () => {
    const { code, stdout } = await plan('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: halo plan <inventory.json> [--json]');
    expect(stdout).toMatch(/0 when every cluster survives/);
  });
});

describe('the real entry point (npx tsx cli/main.ts)', () => {
  const run = promisify(execFile);

  it('runs plan on the seed example and exits 0', async () => {
    const { stdout } = await run('npx', ['tsx', 'cli/main.ts', 'plan', 'examples/seed-inventory.json'], {
      cwd: root,
    });
    expect(stdout).toContain('prod: N+1 OK — survives the loss of any one of 3 hosts');
  });

  it('runs plan on the all-HA example and exits 1; --json before or after the command', async () => {
    for (const args of [
      ['plan', 'examples/seed-inventory-all-ha.json'],
      ['--json', 'plan', 'examples/seed-inventory-all-ha.json'],
      ['plan', 'examples/seed-inventory-all-ha.json', '--json'],
    ]) {
      const failure = await run('npx', ['tsx', 'cli/main.ts', ...args], { cwd: root }).then(
        () => null,
        (error: unknown) => error as { code: number; stdout: string },
      );
      expect(failure?.code).toBe(1);
      if (args.includes('--json')) expect(JSON.parse(failure?.stdout ?? '')).toHaveProperty('clusters');
      else expect(failure?.stdout).toContain('prod: N+1 FAILS');
    }
  });

  it('the npm bin (bin/halo.mjs) prints the help with the exit codes, exit 0', async () => {
    const { stdout } = await run('node', ['bin/halo.mjs', '--help'], { cwd: root });
    expect(stdout).toContain('Usage: halo [options] [command]');
    expect(stdout).toContain('3  cannot reach the control plane');
  });

  it('exits 2 with usage on stderr for an unknown command', async () => {
    const failure = await run('npx', ['tsx', 'cli/main.ts', 'frobnicate'], { cwd: root }).then(
      () => null,
      (error: unknown) => error as { code: number; stdout: string; stderr: string },
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain("halo: unknown command 'frobnicate'");
    expect(failure?.stderr).toContain('halo --help lists the commands');
    expect(failure?.stdout).toBe('');
  });
});
