import { describe, expect, it } from 'vitest';
import type { RelayCommand } from '../../../contracts/relay-protocol';
import type { FenceConfig } from '../../../site/relay/config';
import { LEVEL_ERRORS_BEFORE_NEXT } from '../../../site/relay/fence-run';
import { type FakeBmc, MemoryStateStore, networkDown } from './fakes';
import { BMC, BMC_SECRETS, fenceCommand, SILENT_MS, TestSite } from './site-harness';

/** h1 with a BMC (level 1, key `h1`) and a PDU outlet (level 2, key `h1#2`); h2 with its BMC only. */
function twoLevels(levelTimeoutMs = 5000) {
  return (bmc: FakeBmc): FenceConfig => {
    const h1 = BMC.h1;
    const h2 = BMC.h2;
    if (h1 === undefined || h2 === undefined) throw new Error('fixture');
    return {
      h1: [
        { device: bmc.device('h1', h1, 'ipmitool'), timeoutMs: levelTimeoutMs },
        { device: bmc.device('h1#2', { ...h1, address: '10.77.0.50' }, 'fence_apc_snmp') },
      ],
      h2: [{ device: bmc.device('h2', h2, 'ipmitool') }],
    };
  };
}

async function incidentSite(opts: Parameters<typeof TestSite.open>[0] = {}): Promise<TestSite> {
  const site = await TestSite.open({ fence: twoLevels(), ...opts });
  site.uplink.nextReportInMs = 1000;
  await site.run(SILENT_MS);
  return site;
}

async function fence(site: TestSite, command: RelayCommand): Promise<void> {
  site.uplink.commands = [command];
  await site.runUntil(() => site.resultsFor(command.commandId).length > 0);
  site.uplink.commands = [];
}

describe('fence levels', () => {
  it('level 1 confirms: the result names the level and its driver; level 2 is never touched', async () => {
    const site = await incidentSite();
    site.bmc.offAfterReads.set('h1', 1);
    const command = fenceCommand(site, 'h1');
    await fence(site, command);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({
      outcome: 'succeeded',
      powerState: 'off',
      level: 1,
      driver: 'ipmitool',
    });
    expect(site.bmc.opsFor('h1#2')).toEqual([]);
  });

  it('a BMC that died with its host hands over to the PDU in the same command, which confirms', async () => {
    // given h1's BMC does not answer, and its PDU outlet powers off when told
    const site = await incidentSite();
    site.bmc.script('h1', ['no-answer']);
    site.bmc.offAfterReads.set('h1#2', 1);

    // when h1 is fenced
    const command = fenceCommand(site, 'h1');
    await fence(site, command);

    // then level 1 was given up after its errors in a row and level 2 read off back
    const result = site.resultsFor(command.commandId)[0];
    expect(result).toMatchObject({
      outcome: 'succeeded',
      powerState: 'off',
      level: 2,
      driver: 'fence_apc_snmp',
    });
    expect(result?.detail).toContain('level 1 ipmitool');
    expect(site.bmc.opsFor('h1')).toEqual(Array(LEVEL_ERRORS_BEFORE_NEXT).fill('status'));
    expect(site.bmc.opsFor('h1#2')).toEqual(['status', 'off', 'status']);
  });

  it('an acknowledged power-off that still reads on is a level failure once the level’s time is up', async () => {
    // given h1's BMC acknowledges the power-off but the host stays on (level timeout 5 s)
    const site = await incidentSite();
    site.bmc.script('h1', ['on']);
    site.bmc.offAfterReads.set('h1#2', 1);

    // when h1 is fenced
    const command = fenceCommand(site, 'h1');
    const issued = site.clock.now();
    await fence(site, command);

    // then level 1 polled on until its timeout, never counted as off, and level 2 confirmed
    const result = site.resultsFor(command.commandId)[0];
    expect(result).toMatchObject({ outcome: 'succeeded', level: 2 });
    expect(result?.detail).toContain('level 1 ipmitool: power-off acknowledged but still read on');
    expect(site.bmc.opsFor('h1').filter((op) => op === 'off')).toEqual(['off']);
    expect((result?.finishedAt ?? 0) - issued).toBeGreaterThanOrEqual(5000);
  });

  it('no level confirming is a failure naming every level, `on` when one read the host on', async () => {
    const site = await incidentSite();
    site.bmc.script('h1', ['on']);
    site.bmc.script('h1#2', ['no-answer']);
    const command = fenceCommand(site, 'h1', 12_000);
    await fence(site, command);
    const result = site.resultsFor(command.commandId)[0];
    expect(result).toMatchObject({ outcome: 'failed', powerState: 'on' });
    expect(result?.level).toBeUndefined();
    expect(result?.detail).toContain('level 1 ipmitool');
    expect(result?.detail).toContain('level 2 fence_apc_snmp');
    // after the last level the first was tried again within notAfter
    expect(site.bmc.opsFor('h1').filter((op) => op === 'off').length).toBeGreaterThanOrEqual(2);
  });

  it('a host with no fence level configured fails at once, saying so', async () => {
    const site = await incidentSite();
    const command = fenceCommand(site, 'h9');
    await fence(site, command);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({
      outcome: 'failed',
      powerState: 'unknown',
      detail: 'no fence level configured for h9 on relay r1',
    });
  });
});

describe('fence readiness', () => {
  it('reads every level at start and reports each host once, then only when it changes', async () => {
    // given a relay checking every minute, whose PDU level of h1 does not answer
    const site = await TestSite.open({
      fence: (bmc) => {
        bmc.script('h1#2', ['no-answer']);
        return twoLevels()(bmc);
      },
      config: { fenceCheckMs: 60_000, secrets: [...BMC_SECRETS, '10.77.0.50'] },
    });
    await site.run(SILENT_MS + 1000);

    // then the first report carries both hosts' readiness, level by level, secrets blanked
    const first = site.uplink.accepted.flatMap((r) => r.fenceReadiness ?? []);
    expect(first.map((r) => [r.hostId, r.ok, r.levels.map((l) => [l.driver, l.ok, l.power])])).toEqual([
      [
        'h1',
        true,
        [
          ['ipmitool', true, 'on'],
          ['fence_apc_snmp', false, null],
        ],
      ],
      ['h2', true, [['ipmitool', true, 'on']]],
    ]);
    const pdu = first[0]?.levels[1]?.error ?? '';
    expect(pdu).toContain('[redacted]');
    expect(pdu).not.toContain('10.77.0.50');

    // when checks repeat with nothing changed, nothing more is sent
    await site.run(130_000);
    expect(site.uplink.accepted.flatMap((r) => r.fenceReadiness ?? [])).toHaveLength(2);

    // when h2's BMC stops answering, the next check reports h2 alone, as not fenceable
    site.bmc.script('h2', ['no-answer']);
    await site.run(70_000);
    const later = site.uplink.accepted.flatMap((r) => r.fenceReadiness ?? []).slice(2);
    expect(later.map((r) => [r.hostId, r.ok])).toEqual([['h2', false]]);
    // and the checks never powered anything off
    expect(site.bmc.calls.filter((c) => c.op === 'off')).toEqual([]);
  });

  it('a readiness change the control plane did not take is sent again with the next report', async () => {
    const site = await TestSite.open({ fence: twoLevels(), config: { fenceCheckMs: 60_000 } });
    site.uplink.failure = networkDown();
    await site.run(SILENT_MS);
    await site.relay.checkFenceReadiness();
    await site.run(3000);
    expect(site.uplink.accepted).toEqual([]);
    site.uplink.failure = null;
    await site.run(11_000);
    expect(site.uplink.accepted.flatMap((r) => r.fenceReadiness ?? []).map((r) => r.hostId)).toEqual([
      'h1',
      'h2',
    ]);
  });
});

describe('relay state across a restart', () => {
  it('a fence in flight when the relay dies is resumed, reading first, and finished once', async () => {
    // given a fence of h1 under way: power-off acknowledged, the host not yet off
    const state = new MemoryStateStore();
    const site = await incidentSite({ state });
    site.bmc.offAfterReads.set('h1', 4);
    const command = fenceCommand(site, 'h1', 60_000);
    site.uplink.commands = [command];
    await site.run(1500);
    expect(site.bmc.opsFor('h1').slice(0, 2)).toEqual(['status', 'off']);
    expect(state.saved?.commands?.map((c) => [c.command.commandId, c.result])).toEqual([
      [command.commandId, null],
    ]);

    // when the relay restarts and the control plane still lists the command
    await site.restartRelay();
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then the restarted relay read the host still on and sent the (idempotent) power-off once more,
    // then read off: one result, and the next level never touched
    expect(site.bmc.opsFor('h1').filter((op) => op === 'off')).toEqual(['off', 'off']);
    expect(site.bmc.opsFor('h1#2')).toEqual([]);
    expect(site.resultsFor(command.commandId)).toHaveLength(1);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
  });

  it('a finished command is never carried out again; its unsent result is sent after the restart', async () => {
    // given a fence finished while the uplink was down
    const state = new MemoryStateStore();
    const site = await incidentSite({ state });
    site.bmc.offAfterReads.set('h1', 1);
    const command = fenceCommand(site, 'h1', 60_000);
    site.uplink.commands = [command];
    await site.runUntil(() => site.bmc.opsFor('h1').length >= 3);
    site.uplink.failure = networkDown();
    await site.run(2000);
    expect(state.saved?.commands?.[0]).toMatchObject({ unsent: true, result: { outcome: 'succeeded' } });

    // when the relay restarts and the uplink comes back, still listing the command
    await site.restartRelay();
    site.uplink.failure = null;
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then the saved result went out, and the BMC saw nothing more
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', level: 1 });
    expect(site.bmc.opsFor('h1')).toEqual(['status', 'off', 'status']);
  });
});

describe('relay inventories', () => {
  it('asks an agent for its inventory when a heartbeat’s digest differs from what it holds', async () => {
    const site = await TestSite.open({ hostIds: ['h1'] });
    await site.run(SILENT_MS + 1000);
    // when the relay's copy is lost (the agent pushed a change the LAN dropped)
    site.lan.drop = (_to, message) => message.kind === 'inventory';
    site.host('h1').hypervisor.vms.push({ id: 'vm-new', cpus: 1, memoryMiB: 512, state: 'running' });
    await site.run(2000);
    expect(site.lan.sentTo('h1', 'inventory-request').length).toBeGreaterThan(0);
    // then once the LAN carries it again, the change is reported
    site.lan.drop = () => false;
    await site.run(4000);
    expect(site.uplink.vmIdsOf('h1')).toEqual(['h1-vm', 'vm-new']);
  });

  it('drops an inventory whose digest does not match its content', async () => {
    const site = await TestSite.open({ hostIds: ['h1'] });
    await site.run(SILENT_MS + 1000);
    site.relay.receive({
      kind: 'inventory',
      hostId: 'h1',
      cluster: 'c1',
      bootId: 'h1-boot-1',
      cpus: 16,
      memoryMiB: 32_768,
      vms: [],
      digest: '0'.repeat(64),
      sentAt: site.clock.now(),
    });
    await site.run(10_000);
    expect(site.uplink.vmIdsOf('h1')).toEqual(['h1-vm']);
    // Nothing new went out for h1: the next report carries its digest alone.
    expect(site.uplink.reports.length).toBeGreaterThan(1);
    expect(site.uplink.last?.hosts.find((h) => h.hostId === 'h1')).not.toHaveProperty('inventory');
  });
});
