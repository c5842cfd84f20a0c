import { describe, expect, it } from 'vitest';
import type { Scenario } from '../../contracts/scenario';
import type { AvailabilityConfig } from '../../local/sim/availability';
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

/** Round bounds so the tests read: 10 s after a host failure, 3 s after a VM's own crash. */
const availability = (overrides: Partial<AvailabilityConfig['policy']> = {}) => ({
  hosts: scenario.hosts,
  policy: {
    cpuOvercommit: 1,
    reserveMiB: 0,
    reserveCpus: 0,
    massSilenceShare: 0.5,
    fencingEnabled: true,
    ...overrides,
  },
  bounds: { hostFailureMs: 10_000, vmFailureMs: 3000, afterWaitMs: 8000 },
  restartBudget: { restarts: 3, windowMs: 3_600_000, backoffMs: () => 0 },
  reportLagMs: 500,
});

function setup(overrides: Partial<AvailabilityConfig['policy']> = {}) {
  let now = 0;
  const world = new World(scenario, () => now);
  const oracle = new Oracle(world, {
    vms: scenario.vms,
    cpuOvercommit: 1,
    startTimeoutMs: 1000,
    availability: availability(overrides),
  });
  const at = (ms: number) => {
    now = ms;
  };
  const rules = () => oracle.violations.map((v) => v.rule);
  /** Moves the clock and lets the oracle judge the time-bound rules, as the runner's poll does. */
  const tick = (ms: number) => {
    at(ms);
    oracle.tick(ms);
  };
  return { world, oracle, at, tick, rules };
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
    const oracle = new Oracle(world, {
      vms: scenario.vms,
      cpuOvercommit: 0.5,
      startTimeoutMs: 1000,
      availability: availability({ cpuOvercommit: 0.5 }),
    });
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

  it('priority-order allows a higher VM that no host could take started after a lower one, once room returned', () => {
    // A 6 GiB high VM beside the others on h1; h2 (big) and h3 full but for 2 GiB each.
    const tight: Pick<Scenario, 'sites' | 'hosts' | 'vms'> = {
      ...scenario,
      vms: [
        { id: 'hi', host: 'h1', cpus: 1, memoryMiB: 6144, ha: true, priority: 'high' },
        { id: 'lo', host: 'h1', cpus: 1, memoryMiB: 1024, ha: true, priority: 'low' },
        { id: 'big', host: 'h2', cpus: 1, memoryMiB: 6144, ha: true, priority: 'medium' },
        { id: 'fill', host: 'h3', cpus: 1, memoryMiB: 6144, ha: false, priority: 'medium' },
      ],
    };
    const run = () => {
      let now = 0;
      const world = new World(tight, () => now);
      const oracle = new Oracle(world, {
        vms: tight.vms,
        cpuOvercommit: 1,
        startTimeoutMs: 1000,
        availability: availability(),
      });
      world.powerOff('h1', 'fenced');
      now = 100;
      world.startVm('lo', 'h3'); // hi fits nowhere, with or without lo there
      now = 200;
      world.inject({ atMs: 200, type: 'vm-guest-shutdown', vm: 'fill' });
      world.startVm('hi', 'h3');
      return oracle.violations.map((v) => v.rule);
    };
    expect(run()).toEqual([]);
    // Contrast: with room for hi when lo started, lo first is an inversion.
    const { world, at, rules } = setup();
    world.powerOff('h1', 'fenced');
    at(100);
    world.startVm('lo', 'h3');
    at(200);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual(['priority-order']);
  });

  it('priority-order allows a higher VM that no host could take when its host was fenced, started after a lower one', () => {
    // h2 and h3 are down when h1 is fenced (the waves are planned then): neither hi nor lo fits anywhere.
    // The lower one's start, sent to h3 before its loss was noticed, lands once h3 boots again; hi, left
    // to the retry list by the plan, follows it.
    const { world, at, rules } = setup();
    world.crash('h2', 'crashed');
    world.crash('h3', 'crashed');
    at(100);
    world.powerOff('h1', 'fenced');
    at(300);
    world.recover('h3');
    world.startVm('lo', 'h3');
    at(400);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual([]);
  });

  it('priority-order judges the room at the fence as the control plane could know it, its reports lagging', () => {
    // h2 down; h3 boots again 100 ms before h1 is fenced, within the report lag (500 ms here): the plan
    // cannot know h3 yet, so hi is left to the retry list, and lo (sent to h3) may start first.
    const flip = (backBeforeFenceMs: number) => {
      const { world, at, rules } = setup();
      world.crash('h2', 'crashed');
      world.crash('h3', 'crashed');
      at(1000 - backBeforeFenceMs);
      world.recover('h3');
      at(1000);
      world.powerOff('h1', 'fenced');
      at(1100);
      world.startVm('lo', 'h3');
      at(1200);
      world.startVm('hi', 'h3');
      return rules();
    };
    expect(flip(100)).toEqual([]);
    // Back long enough before the fence for the control plane to know: hi had room, lo first is an inversion.
    expect(flip(900)).toEqual(['priority-order']);
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

  it('restart-before-fence is kept by a new boot of the old host: the old boot runs none of its VMs', () => {
    const { world, at, rules } = setup();
    world.crash('h1', 'crashed');
    at(100);
    world.recover('h1');
    at(200);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual([]);
  });

  it('a VM that crashed on a live host may start elsewhere without a fence', () => {
    const { world, at, rules } = setup();
    at(100);
    world.inject({ atMs: 100, type: 'vm-crash', vm: 'hi' });
    at(200);
    world.startVm('hi', 'h3');
    expect(rules()).toEqual([]);
  });
});

describe('Oracle: ha-vm-down', () => {
  const crash = (vm: string, atMs: number) => ({ atMs, type: 'vm-crash' as const, vm });

  it('fires when an HA VM that crashed on a healthy host is left down past its bound', () => {
    const { world, tick, rules, oracle } = setup();
    world.inject(crash('hi', 0));
    tick(3000);
    expect(rules()).toEqual([]);
    tick(3001);
    expect(rules()).toEqual(['ha-vm-down']);
    expect(oracle.violations[0]?.detail).toMatch(/hi \(HA, high\) down since \+0\.000s \(it crashed on h1\)/);
    expect(oracle.violations[0]?.detail).toMatch(/while h1 had room/);
    tick(9000);
    expect(rules()).toEqual(['ha-vm-down']);
  });

  it('does not fire when the crashed VM runs again in place within the bound', () => {
    const { world, at, tick, rules, oracle } = setup();
    world.inject(crash('hi', 0));
    expect(oracle.pending()).toBe(true);
    at(1500);
    world.startVm('hi', 'h1');
    expect(oracle.pending()).toBe(false);
    tick(60_000);
    expect(rules()).toEqual([]);
    expect(oracle.downMs('hi', 60_000)).toBe(1500);
  });

  it('never fires for a non-HA VM nor for one whose guest shut down, however long they stay down', () => {
    const { world, tick, rules, oracle } = setup();
    world.inject(crash('plain', 0));
    world.inject({ atMs: 0, type: 'vm-guest-shutdown', vm: 'hi' });
    expect(oracle.pending()).toBe(false);
    tick(600_000);
    expect(rules()).toEqual([]);
    // Down time counts whatever the reason.
    expect(oracle.downMs('hi', 600_000)).toBe(600_000);
    expect(oracle.downMs('plain', 600_000)).toBe(600_000);
    expect(oracle.downMs('big', 600_000)).toBe(0);
  });

  it('stays quiet once a crash loop spends the restart budget (3), and fires before it is spent', () => {
    const { world, at, tick, rules } = setup();
    for (const t of [0, 1000, 2000]) {
      at(t);
      world.inject(crash('hi', t));
      at(t + 500);
      world.startVm('hi', 'h1');
    }
    at(3000);
    world.inject(crash('hi', 3000)); // the fourth: left down by policy
    tick(600_000);
    expect(rules()).toEqual([]);

    const second = setup();
    for (const t of [0, 1000]) {
      second.at(t);
      second.world.inject(crash('hi', t));
      if (t === 0) {
        second.at(500);
        second.world.startVm('hi', 'h1');
      }
    }
    second.tick(4001);
    expect(second.rules()).toEqual(['ha-vm-down']);
  });

  it('fires when a fenced host’s HA VMs are never restarted; not for its non-HA VM', () => {
    const { world, at, tick, rules, oracle } = setup();
    world.crash('h1', 'crashed');
    at(2000);
    world.powerOff('h1', 'fenced');
    tick(10_000);
    expect(rules()).toEqual([]);
    tick(10_001);
    expect(rules()).toEqual(['ha-vm-down', 'ha-vm-down']);
    expect(oracle.violations.map((v) => v.detail.split(' ')[2])).toEqual(['hi', 'lo']);
  });

  it('does not fire when the failover restarts them within the bound', () => {
    const { world, at, tick, rules } = setup();
    world.crash('h1', 'crashed');
    at(2000);
    world.powerOff('h1', 'fenced');
    at(3000);
    world.startVm('hi', 'h3');
    at(4000);
    world.startVm('lo', 'h3');
    tick(60_000);
    expect(rules()).toEqual([]);
  });

  it('is excused while the host cannot be confirmed off, and owed from the operator’s confirmation', () => {
    const { world, tick, rules, oracle } = setup();
    world.setBmc('h1', 'unreachable');
    world.crash('h1', 'crashed');
    tick(60_000);
    expect(rules()).toEqual([]);
    world.inject({ atMs: 60_000, type: 'operator-confirms-off', host: 'h1' });
    // Injected only: no incident took the answer, which proves nothing to the control plane.
    tick(60_000);
    expect(rules()).toEqual([]);
    oracle.operatorConfirmed('h1', 60_000);
    tick(70_000);
    expect(rules()).toEqual([]);
    tick(70_001);
    expect(rules()).toEqual(['ha-vm-down', 'ha-vm-down']);
  });

  it('judges a crash on a host cut off the LAN by that host’s path: unheard, it waits for the fence', () => {
    const { world, tick, rules } = setup();
    world.setBmc('h1', 'ignores-off');
    world.setLan('h1', false);
    world.inject(crash('hi', 0));
    tick(60_000);
    expect(rules()).toEqual([]);
  });

  it('is excused while a start that got no answer went to a host lost since and not provably off', () => {
    // Two of three hosts down is no mass silence here: only the start's fate excuses hi.
    const { world, oracle, at, tick, rules } = setup({ massSilenceShare: 0.7 });
    world.crash('h1', 'crashed');
    at(1000);
    world.powerOff('h1', 'fenced');
    // The start goes to h2 just as h2 loses power with its BMC: it may have run there, nobody can tell.
    oracle.startOrdered('hi', 'h2', 1100);
    oracle.startOrdered('lo', 'h3', 1100);
    world.inject({ atMs: 1100, type: 'power-loss', host: 'h2' });
    at(1200);
    world.startVm('lo', 'h3');
    tick(60_000);
    expect(rules()).toEqual([]);
    // Once the operator's word is taken that h2 is off, hi is owed again (and big, which h2 ran).
    oracle.operatorConfirmed('h2', 60_000);
    tick(70_001);
    expect(oracle.violations.map((v) => v.detail.split(' ')[2])).toEqual(['hi', 'big']);
  });

  it('is owed from a new boot of the lost host: the boot proves its VMs gone', () => {
    const { world, at, tick, rules } = setup();
    world.setBmc('h1', 'unreachable');
    world.crash('h1', 'crashed');
    at(30_000);
    world.recover('h1');
    tick(40_000);
    expect(rules()).toEqual([]);
    tick(40_001);
    expect(rules()).toEqual(['ha-vm-down', 'ha-vm-down']);

    const restarted = setup();
    restarted.world.setBmc('h1', 'unreachable');
    restarted.world.crash('h1', 'crashed');
    restarted.at(30_000);
    restarted.world.recover('h1');
    restarted.at(31_000);
    restarted.world.startVm('hi', 'h1');
    restarted.world.startVm('lo', 'h1');
    restarted.tick(100_000);
    expect(restarted.rules()).toEqual([]);
  });

  it('is excused while the site is partitioned (uplink cut, or every relay down)', () => {
    const uplink = setup();
    uplink.world.inject({ atMs: 0, type: 'uplink-down', site: 's' });
    uplink.world.crash('h1', 'crashed');
    uplink.world.inject(crash('big', 0));
    uplink.tick(60_000);
    expect(uplink.rules()).toEqual([]);
    uplink.world.inject({ atMs: 60_000, type: 'uplink-up', site: 's' });
    uplink.tick(70_001);
    expect(uplink.rules()).toContain('ha-vm-down');

    const relays = setup();
    relays.world.inject({ atMs: 0, type: 'relay-down', relay: 'r1' });
    relays.world.inject(crash('big', 0));
    relays.tick(60_000);
    expect(relays.rules()).toEqual([]);
  });

  it('is excused during mass silence, with fencing disabled, and for a host in maintenance', () => {
    const mass = setup();
    mass.world.crash('h1', 'crashed');
    mass.world.crash('h2', 'crashed');
    mass.tick(60_000);
    expect(mass.rules()).toEqual([]);

    const disabled = setup({ fencingEnabled: false });
    disabled.world.crash('h1', 'crashed');
    disabled.tick(60_000);
    expect(disabled.rules()).toEqual([]);

    let now = 0;
    const world = new World(scenario, () => now);
    const oracle = new Oracle(world, {
      vms: scenario.vms,
      cpuOvercommit: 1,
      startTimeoutMs: 1000,
      availability: {
        ...availability(),
        hosts: scenario.hosts.map((h) => (h.id === 'h1' ? { ...h, maintenance: true } : h)),
      },
    });
    world.crash('h1', 'crashed');
    now = 60_000;
    oracle.tick(now);
    expect(oracle.violations).toEqual([]);
  });

  it('is excused while no host of the cluster has room, and owed once room returns', () => {
    const { world, at, tick, rules } = setup();
    // big (6 GiB) fits only on h3 once h2 is gone (h1 has 3 GiB of VMs on 8); its start there fails.
    world.inject({ atMs: 0, type: 'vm-start-fails', vm: 'big', host: 'h3' });
    world.crash('h2', 'crashed');
    at(1000);
    world.powerOff('h2', 'fenced');
    tick(60_000);
    expect(rules()).toEqual([]);
    // plain (non-HA, 1 GiB) shuts down on h1: 6 GiB free there now.
    world.inject({ atMs: 60_000, type: 'vm-guest-shutdown', vm: 'plain' });
    tick(70_000);
    expect(rules()).toEqual([]);
    tick(70_001);
    expect(rules()).toEqual(['ha-vm-down']);
  });
});

describe('Oracle: false-recovered', () => {
  const closed = (outcome: string, closedAtMs: number) => ({
    incidentId: 'inc-1',
    host: 'h1',
    outcome,
    openedAtMs: 1000,
    closedAtMs,
  });

  it('fires when an incident closes recovered while one of its HA VMs runs nowhere', () => {
    const { world, at, rules, oracle } = setup();
    world.crash('h1', 'crashed');
    at(2000);
    world.powerOff('h1', 'fenced');
    at(3000);
    world.startVm('hi', 'h3');
    oracle.incidentClosed(closed('recovered', 4000));
    expect(rules()).toEqual(['false-recovered']);
    expect(oracle.violations[0]?.detail).toMatch(
      /inc-1 \(h1\) closed recovered while lo \(down since \+0\.000s\)/,
    );
    oracle.incidentClosed(closed('recovered', 4000));
    expect(rules()).toEqual(['false-recovered']);
  });

  it('does not fire when all its HA VMs run, nor for partially-recovered, nor for a non-HA VM left down', () => {
    const { world, at, rules, oracle } = setup();
    world.crash('h1', 'crashed');
    at(2000);
    world.powerOff('h1', 'fenced');
    at(3000);
    world.startVm('hi', 'h3');
    oracle.incidentClosed({ ...closed('partially-recovered', 3500), incidentId: 'inc-0' });
    world.startVm('lo', 'h2');
    oracle.incidentClosed(closed('recovered', 4000));
    expect(rules()).toEqual([]);
  });

  it('does not hold a crash the control plane could not have heard yet against the close', () => {
    const { world, at, rules, oracle } = setup();
    world.crash('h1', 'crashed');
    at(2000);
    world.powerOff('h1', 'fenced');
    at(3000);
    world.startVm('hi', 'h1');
    world.startVm('lo', 'h1');
    at(3800);
    world.inject({ atMs: 3800, type: 'vm-crash', vm: 'lo' });
    oracle.incidentClosed(closed('recovered', 4000));
    expect(rules()).toEqual([]);
  });

  it('judges the VMs that went with the host, not those down before it was lost', () => {
    const { world, at, rules, oracle } = setup();
    world.inject({ atMs: 0, type: 'vm-guest-shutdown', vm: 'lo' });
    world.inject({ atMs: 0, type: 'vm-crash', vm: 'plain' });
    at(500);
    world.crash('h1', 'crashed');
    at(2000);
    world.powerOff('h1', 'fenced');
    at(3000);
    world.startVm('hi', 'h3');
    oracle.incidentClosed(closed('recovered', 4000));
    expect(rules()).toEqual([]);
  });
});
