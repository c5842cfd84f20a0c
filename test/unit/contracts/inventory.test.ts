import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { type InventoryCluster, InventoryError, parseInventory } from '../../../contracts/inventory';
import type { Host, PlacementPolicy, Vm } from '../../../core/model';

const seedText = readFileSync(new URL('../../../examples/seed-inventory.json', import.meta.url), 'utf8');

const vm = (over: Record<string, unknown> = {}) => ({
  id: 'vm-1',
  cpus: 2,
  memoryMiB: 4096,
  ha: true,
  ...over,
});
const host = (over: Record<string, unknown> = {}) => ({
  id: 'node01',
  cpus: 32,
  memoryMiB: 65536,
  vms: [vm()],
  ...over,
});
const inventory = (over: Record<string, unknown> = {}) => ({
  clusters: [{ id: 'prod', hosts: [host()] }],
  ...over,
});

/** Parses `data` and returns the error's message, failing the test when it parses. */
function errorOf(data: unknown): InventoryError {
  try {
    parseInventory(typeof data === 'string' ? data : JSON.stringify(data, null, 2), 'bad.json');
  } catch (error) {
    if (error instanceof InventoryError) return error;
    throw error;
  }
  throw new Error('expected an InventoryError');
}

describe('parseInventory', () => {
  it('parses the seed example into core shapes', () => {
    const parsed = parseInventory(seedText, 'seed-inventory.json');
    expect(parsed.policy).toEqual({ cpuOvercommit: 1.5, reserveMiB: 0, reserveCpus: 0 });
    const prod = parsed.clusters[0];
    expect(prod?.hosts.map((h) => h.id)).toEqual(['node01', 'node02', 'node03']);
    for (const h of prod?.hosts ?? []) {
      expect(h.vms).toHaveLength(19);
      expect(h.vms.reduce((sum, v) => sum + v.memoryMiB, 0)).toBe(46080);
      expect(h.vms.reduce((sum, v) => sum + v.cpus, 0)).toBe(25);
    }
  });

  it('gives outputs that are core types, with no mapping', () => {
    expectTypeOf<InventoryCluster['hosts'][number]>().toExtend<Host>();
    expectTypeOf<InventoryCluster['hosts'][number]['vms'][number]>().toExtend<Vm>();
    expectTypeOf<ReturnType<typeof parseInventory>['policy']>().toExtend<PlacementPolicy>();
  });

  it('fills in the defaults: policy, maintenance false, priority medium', () => {
    const parsed = parseInventory(JSON.stringify(inventory()), 'min.json');
    expect(parsed.policy).toEqual({ cpuOvercommit: 1, reserveMiB: 0, reserveCpus: 0 });
    const h = parsed.clusters[0]?.hosts[0];
    expect(h?.maintenance).toBe(false);
    expect(h?.vms[0]).toEqual({ id: 'vm-1', cpus: 2, memoryMiB: 4096, ha: true, priority: 'medium' });
  });

  it('fills in the policy fields left out', () => {
    const parsed = parseInventory(JSON.stringify(inventory({ policy: { cpuOvercommit: 4 } })), 'p.json');
    expect(parsed.policy).toEqual({ cpuOvercommit: 4, reserveMiB: 0, reserveCpus: 0 });
  });

  const secondHostWithVm = (v: Record<string, unknown>) =>
    inventory({
      clusters: [
        { id: 'prod', hosts: [host(), host({ id: 'node02', vms: [vm({ id: 'a' }), vm({ id: 'b' }), v] })] },
      ],
    });

  it.each([
    ['a negative size', vm({ id: 'c', memoryMiB: -5 }), 'memoryMiB: must be a positive integer (got -5)'],
    ['a zero size', vm({ id: 'c', cpus: 0 }), 'cpus: must be a positive integer (got 0)'],
    ['a fractional size', vm({ id: 'c', cpus: 1.5 }), 'cpus: must be a positive integer (got 1.5)'],
    [
      'a size given as text',
      vm({ id: 'c', memoryMiB: '4G' }),
      'memoryMiB: must be a positive integer (got "4G")',
    ],
    ['a missing ha flag', { id: 'c', cpus: 1, memoryMiB: 1 }, 'ha: is required'],
    ['a non-boolean ha flag', vm({ id: 'c', ha: 'yes' }), 'ha: must be true or false (got "yes")'],
    [
      'a non-boolean autostart flag',
      vm({ id: 'c', autostart: 'on' }),
      'autostart: must be true or false (got "on")',
    ],
    [
      'an unknown priority',
      vm({ id: 'c', priority: 'urgent' }),
      'priority: must be one of "high", "medium", "low" (got "urgent")',
    ],
    ['an empty id', vm({ id: '' }), 'id: must be a non-empty string (got "")'],
    [
      'an empty anti-affinity group',
      vm({ id: 'c', antiAffinity: '' }),
      'antiAffinity: must be a non-empty string',
    ],
    ['an unknown field', vm({ id: 'c', memoryMB: 4096 }), 'memoryMB: unknown field'],
  ])('names the path of %s', (_, badVm, message) => {
    const error = errorOf(secondHostWithVm(badVm));
    expect(error.message).toContain(`bad.json: clusters[0].hosts[1].vms[2].${message}`);
  });

  it.each([
    [
      'cpuOvercommit 0',
      { cpuOvercommit: 0 },
      'policy.cpuOvercommit: must be a number greater than 0 and at most 16',
    ],
    [
      'cpuOvercommit 17',
      { cpuOvercommit: 17 },
      'policy.cpuOvercommit: must be a number greater than 0 and at most 16',
    ],
    ['a negative reserve', { reserveMiB: -1 }, 'policy.reserveMiB: must be a non-negative integer (got -1)'],
    ['an unknown policy field', { overcommit: 2 }, 'policy.overcommit: unknown field'],
  ])('rejects %s', (_, policy, message) => {
    expect(errorOf(inventory({ policy })).message).toContain(`bad.json: ${message}`);
  });

  it('names host and cluster fields, and structural problems', () => {
    expect(
      errorOf(inventory({ clusters: [{ id: 'prod', hosts: [host({ maintenance: 'no' })] }] })).message,
    ).toContain('bad.json: clusters[0].hosts[0].maintenance: must be true or false (got "no")');
    expect(errorOf(inventory({ clusters: [{ id: 'prod', hosts: [] }] })).message).toContain(
      'bad.json: clusters[0].hosts: must be a non-empty array of hosts (got an empty array)',
    );
    expect(
      errorOf(inventory({ clusters: [{ id: 'prod', hosts: [host({ vms: undefined })] }] })).message,
    ).toContain('bad.json: clusters[0].hosts[0].vms: is required');
    expect(errorOf([]).message).toBe('bad.json: (top level): must be an object (got an empty array)');
  });

  it("reads a host's optional fencing as the operator API gives it; absent stays absent (unknown)", () => {
    const fencing = { fenceable: false, reason: 'relay r1: level 1 ipmitool: timed out' };
    const parsed = parseInventory(
      JSON.stringify(
        inventory({
          clusters: [
            {
              id: 'prod',
              hosts: [host({ fencing }), host({ id: 'node02', vms: [], fencing: { fenceable: null } })],
            },
          ],
        }),
      ),
      'f.json',
    );
    const [node01, node02] = parsed.clusters[0]?.hosts ?? [];
    expect(node01?.fencing).toEqual(fencing);
    expect(node02?.fencing).toEqual({ fenceable: null, reason: null });
    expect(parseInventory(JSON.stringify(inventory()), 'min.json').clusters[0]?.hosts[0]).not.toHaveProperty(
      'fencing',
    );
  });

  it('names a bad fencing field', () => {
    const bad = (fencing: unknown) =>
      errorOf(inventory({ clusters: [{ id: 'prod', hosts: [host({ fencing })] }] })).message;
    expect(bad({ fenceable: 'no' })).toContain(
      'bad.json: clusters[0].hosts[0].fencing.fenceable: must be true, false or null (got "no")',
    );
    expect(bad({ fenceable: false, reason: 3 })).toContain(
      'bad.json: clusters[0].hosts[0].fencing.reason: must be a string or null (got 3)',
    );
    expect(bad({ fenceable: false, why: 'x' })).toContain(
      'bad.json: clusters[0].hosts[0].fencing.why: unknown field',
    );
  });

  it('lists every problem, one per line', () => {
    const error = errorOf(
      inventory({ clusters: [{ id: 'prod', hosts: [host({ cpus: 0, vms: [vm({ memoryMiB: 0 })] })] }] }),
    );
    expect(error.issues.map((i) => i.path)).toEqual([
      'clusters[0].hosts[0].cpus',
      'clusters[0].hosts[0].vms[0].memoryMiB',
    ]);
    expect(error.message.split('\n')).toHaveLength(2);
    expect(error.sourceName).toBe('bad.json');
    expect(error.name).toBe('InventoryError');
  });

  it('rejects a host id used twice in a cluster, naming both places', () => {
    const error = errorOf(
      inventory({ clusters: [{ id: 'prod', hosts: [host(), host({ vms: [vm({ id: 'vm-2' })] })] }] }),
    );
    expect(error.message).toBe(
      'bad.json: clusters[0].hosts[1].id: duplicate host id "node01" (first at clusters[0].hosts[0].id)',
    );
  });

  it('accepts the same host id in two clusters but rejects a VM id used twice across the inventory', () => {
    const twoClusters = inventory({
      clusters: [
        { id: 'prod', hosts: [host()] },
        { id: 'dr', hosts: [host({ vms: [vm({ id: 'vm-2' }), vm({ id: 'vm-1' })] })] },
      ],
    });
    expect(errorOf(twoClusters).message).toBe(
      'bad.json: clusters[1].hosts[0].vms[1].id: duplicate VM id "vm-1" (first at clusters[0].hosts[0].vms[0].id)',
    );
  });

  it('rejects a cluster id used twice', () => {
    const error = errorOf(
      inventory({
        clusters: [
          { id: 'prod', hosts: [host()] },
          { id: 'prod', hosts: [host({ vms: [] })] },
        ],
      }),
    );
    expect(error.message).toContain('clusters[1].id: duplicate cluster id "prod"');
  });

  it.each([
    ['a missing comma', '{\n  "clusters": [\n    { "id": "prod" "hosts": [] }\n  ]\n}', 3, 20],
    ['a trailing comma in an array', '{\n  "clusters": [\n    1,\n  ]\n}', 4, 3],
    ['a misspelt literal', '{\n  "policy": tru\n}', 2, 16],
    ['a truncated file', '{\n  "clusters": [', 2, 16],
    ['an empty file', '', 1, 1],
    ['a long file with a stray token', `{"clusters": [${'1, '.repeat(40)}]}`, 1, 135],
  ])('names the line and column of %s', (_, text, line, column) => {
    const error = errorOf(text);
    expect(error.message).toMatch(
      new RegExp(`^bad\\.json: invalid JSON at line ${line}, column ${column}: \\S`),
    );
    expect(error.issues[0]).toMatchObject({ line, column });
    // V8's copy of the input is noise next to a line and column.
    expect(error.message).not.toContain('is not valid JSON');
    expect(error.message).not.toContain('position');
  });

  it('accepts a byte-order mark', () => {
    expect(parseInventory(`\uFEFF${JSON.stringify(inventory())}`, 'bom.json').clusters).toHaveLength(1);
  });
});
