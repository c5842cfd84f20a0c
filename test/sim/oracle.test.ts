import { describe, expect, it } from 'vitest';
import type { Scenario } from '../../contracts/scenario';
import { Oracle } from '../../local/sim/oracle';
import { World } from '../../local/sim/world';

/** A hand-built world on a hand-driven clock: each rule must be able to fail, and stay quiet when kept. */

const scenario: Pick<Scenario, 'sites' | 'hosts' | 'vms'> = {
  sites: [{ id: 's', relays: ['r1'] }],
  hosts: ['h1', 'h2', 'h3'].map((id) => ({
    id,
    site: 's',
    cluster: 'c',
    cpus: 4,
    memoryMiB: 8192,
    maintenance: false,
  })),
  vms: [
    { id: 'hi', host: 'h1', cpus: 1, memoryMiB: 1024, ha: true, priority: 'high' },
    { id: 'lo', host: 'h1', cpus: 1, memoryMiB: 1024, ha: true, priority: 'low' },
    { id: 'plain', host: 'h1', cpus: 1, memoryMiB: 1024, ha: false, priority: 'medium' },
    { id: 'big', host: 'h2', cpus: 2, memoryMiB: 6144, ha: true, priority: 'medium' },
  ],
};

function setup() {
  let now = 0;
  const world = new World(scenario, () => now);
  const oracle = new Oracle(world, { vms: scenario.vms, cpuOvercommit: 1, startTimeoutMs: 1000 });
  const at = (ms: number) => {
    now = ms;
  };
  const rules = () => oracle.violations.map((v) => v.rule);
  return { world, oracle, at, rules };
}

describe('Oracle', () => {
  it('accepts a clean failover: fence, then high before low, on hosts with room', () => {
    const { world, at, rules } = setup();
    world.crash('h1', 'crashed');
    at(100);
    world.powerOff('h1', 'fenced');
    at(200);
    world.startVm('hi', 'h3');
    at(300);
    world.startVm('lo', 'h3');
    expect(rules()).toEqual([]);
  });

  it('accepts restarts after the fenced host was powered back on: its VMs died with the power-off', () => {
    const { world, at, rules } = setup();
    world.crash('h1', 'crashed');
    at(100);
    world.powerOff('h1', 'fenced');
    at(200);
    world.recover('h1');
    at(300);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual([]);
  });

  it('restart-before-fence: a VM restarted elsewhere, then moved again while that host had power', () => {
    const { world, at, rules } = setup();
    world.crash('h1', 'crashed');
    at(100);
    world.powerOff('h1', 'fenced');
    at(200);
    world.startVm('hi', 'h3');
    at(300);
    world.startVm('hi', 'h2');
    expect(rules()).toContain('restart-before-fence');
  });

  it('split-brain: a VM running on two hosts at once', () => {
    const { world, rules } = setup();
    world.setLan('h1', false);
    world.startVm('hi', 'h3');
    expect(rules()).toContain('split-brain');
  });

  it('restart-before-fence: started elsewhere while its host still has power', () => {
    const { world, rules } = setup();
    world.crash('h1', 'crashed');
    world.startVm('hi', 'h3');
    expect(rules()).toEqual(['restart-before-fence']);
  });

  it('restart-before-fence is kept by an operator confirmation', () => {
    const { world, rules } = setup();
    world.crash('h1', 'crashed');
    world.inject({ atMs: 0, type: 'operator-confirms-off', host: 'h1' });
    world.startVm('hi', 'h3');
    expect(rules()).toEqual([]);
  });

  it('over-capacity: memory past the host or vCPUs past cores × overcommit', () => {
    const { world, rules } = setup();
    world.powerOff('h1', 'fenced');
    world.startVm('hi', 'h2');
    world.startVm('lo', 'h2');
    expect(rules()).toEqual([]); // exactly full is not over
    world.startVm('plain', 'h2');
    expect(rules()).toContain('over-capacity');
    expect(rules()).toContain('non-ha-restarted');
  });

  it('over-capacity counts CPUs too', () => {
    let now = 0;
    const world = new World(scenario, () => now);
    const oracle = new Oracle(world, { vms: scenario.vms, cpuOvercommit: 0.5, startTimeoutMs: 1000 });
    world.powerOff('h1', 'fenced');
    now = 10;
    world.startVm('hi', 'h2'); // 3 vCPUs on 4 cores × 0.5
    expect(oracle.violations.map((v) => v.rule)).toEqual(['over-capacity']);
  });

  it('priority-order: a low VM started before a high one of the same incident', () => {
    const { world, at, rules } = setup();
    world.powerOff('h1', 'fenced');
    at(200);
    world.startVm('lo', 'h3');
    at(300);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual(['priority-order']);
  });

  it('priority-order allows the flip once a wave timeout has passed since the fence', () => {
    const { world, at, rules } = setup();
    world.powerOff('h1', 'fenced');
    at(1500);
    world.startVm('lo', 'h3');
    at(1600);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual([]);
  });

  it('non-ha-restarted: a non-HA VM started away from its host', () => {
    const { world, rules } = setup();
    world.powerOff('h1', 'fenced');
    world.startVm('plain', 'h3');
    expect(rules()).toEqual(['non-ha-restarted']);
  });

  it('a non-HA VM started again on its own host is fine', () => {
    const { world, rules } = setup();
    world.crash('h1', 'crashed');
    world.recover('h1');
    world.startVm('plain', 'h1');
    expect(rules()).toEqual([]);
  });
});
