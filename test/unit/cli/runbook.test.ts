import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../../../cli/errors';
import { haloRunner } from './support';

/**
 * Every `halo` command docs/runbook.md tells an operator to run parses, with its options and arguments
 * checked, up to the point where it would call the control plane (what each command then does is tested
 * against a local control plane in test/local/cli.test.ts).
 */

const root = fileURLToPath(new URL('../../../', import.meta.url));
const runbook = readFileSync(join(root, 'docs/runbook.md'), 'utf8');

/** The `halo …` lines of the runbook's shell blocks, comments stripped. */
function haloLines(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  return blocks
    .flatMap((block) => block.split('\n'))
    .map((line) => line.trim())
    .filter((line) => line.startsWith('halo '))
    .map((line) => line.replace(/\s+#.*$/, ''));
}

/** Splits a command line as the shell would, for what the runbook uses: spaces and double quotes. */
function argv(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

const scratch = mkdtempSync(join(tmpdir(), 'halo-runbook-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const vmsFile = join(scratch, 'vms.yaml');
writeFileSync(vmsFile, '- vm: web-1\n  priority: low\n- vm: web-2\n  ha: false\n');

class TargetReached extends CliError {
  constructor() {
    super('target reached', 3);
  }
}

const lines = haloLines(runbook);

describe('docs/runbook.md', () => {
  it('has the commands of every situation', () => {
    expect(lines.length).toBeGreaterThan(25);
    for (const command of [
      'status',
      'incident',
      'confirm-off',
      'relays',
      'plan',
      'maintenance',
      'events',
      'sla',
    ])
      expect(lines.some((l) => l.startsWith(`halo ${command}`))).toBe(true);
  });

  const halo = haloRunner({
    resolveTarget: async () => {
      throw new TargetReached();
    },
  });

  it.each(lines)('%s', async (line) => {
    const args = argv(line)
      .slice(1)
      .map((a) => (a === 'vms.yaml' ? vmsFile : a));
    const run = await halo(...args);
    expect(run.stderr).toBe('halo: target reached\n');
    expect(run.code).toBe(3);
  });

  it('(a misspelt command or option would fail here: exit 2 before the control plane)', async () => {
    for (const line of [
      'halo confirm-of node02',
      'halo hosts --clusters prod',
      'halo maintenance node02 yes',
      'halo sla --month 3',
    ])
      expect((await halo(...argv(line).slice(1))).code).toBe(2);
  });
});
