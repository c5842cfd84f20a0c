import { describe, expect, it } from 'vitest';
import type { FenceCommand, RelayCommand } from '../../../contracts/relay-protocol';
import type { FenceDevice } from '../../../site/ports';
import { FenceRun } from '../../../site/relay/fence-run';
import { FakeHypervisor } from './fakes';
import { fenceCommand, SILENT_MS, TestSite, vm } from './site-harness';

/** A site past its first report, with h1 dead (silent) and the control plane at the incident pace. */
async function siteWithH1Dead(): Promise<TestSite> {
  const site = await TestSite.open();
  site.uplink.nextReportInMs = 1000;
  await site.run(SILENT_MS);
  site.kill('h1');
  await site.run(SILENT_MS + 1000);
  return site;
}

/** h1 boots again: a new boot id, none of its old VMs running. */
function reboot(site: TestSite, bootId = 'h1-boot-2'): void {
  site.addHost('h1', new FakeHypervisor(bootId, { cpus: 16, memoryMiB: 32_768 }, [vm('h1-vm', 'shut-off')]));
}

/** A fence of h1 aimed at the boot that went silent. */
function fenceOfBoot(site: TestSite, bootId = 'h1-boot-1', validMs = 20_000): FenceCommand {
  const command = fenceCommand(site, 'h1', validMs);
  if (command.kind !== 'fence') throw new Error('not a fence');
  return { ...command, bootId };
}

async function deliver(site: TestSite, command: RelayCommand): Promise<void> {
  site.uplink.commands = [command];
  const before = site.uplink.accepted.length;
  await site.runUntil(() => site.uplink.accepted.length > before);
}

describe('relay fence of a boot that has ended (stale-boot)', () => {
  it('refuses at once, touching no BMC, a fence whose boot is not the one it hears alive', async () => {
    // given h1 died and came back in a new boot, which the relay hears
    const site = await siteWithH1Dead();
    reboot(site);
    await site.run(3000);

    // when a fence of the old boot arrives
    const command = fenceOfBoot(site);
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0, 2000);

    // then it is refused as stale-boot, and nothing was asked of h1's BMC
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({
      outcome: 'failed',
      refused: 'stale-boot',
      detail: expect.stringContaining('alive in boot h1-boot-2, not boot h1-boot-1'),
    });
    expect(site.bmc.opsFor('h1')).toEqual([]);
  });

  it('stops before powering off a new boot heard while its BMC did not answer', async () => {
    // given h1's BMC does not answer at first (it died with the host), then answers
    const site = await siteWithH1Dead();
    site.bmc.script('h1', [...Array<'no-answer'>(8).fill('no-answer'), 'on']);
    const command = fenceOfBoot(site);
    await deliver(site, command);
    await site.run(1500);
    expect(site.resultsFor(command.commandId)).toEqual([]);

    // when the host boots again before the BMC answers
    reboot(site);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0, 10_000);

    // then the fence ends refused, and no power-off ever reached the BMC
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'failed', refused: 'stale-boot' });
    expect(site.bmc.opsFor('h1')).not.toContain('off');
  });

  it('fences the boot it was ordered for when that same boot is heard again (a half-dead host)', async () => {
    // given h1 is heard again in the boot that went silent
    const site = await siteWithH1Dead();
    site.revive('h1');
    await site.run(3000);
    site.bmc.offAfterReads.set('h1', 1);

    // when its fence arrives
    const command = fenceOfBoot(site);
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then it is powered off and read back off, as before
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
    expect(site.bmc.opsFor('h1')).toContain('off');
  });

  it('carries out a fence that names no boot (from a control plane before it) whatever boot runs', async () => {
    const site = await siteWithH1Dead();
    reboot(site);
    await site.run(3000);
    site.bmc.offAfterReads.set('h1', 1);

    const command = fenceCommand(site, 'h1');
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
    expect(site.resultsFor(command.commandId)[0]?.refused).toBeUndefined();
  });

  it('fences a host it does not hear at all, whatever boot the command names', async () => {
    const site = await siteWithH1Dead();
    site.bmc.offAfterReads.set('h1', 1);

    const command = fenceOfBoot(site);
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
  });
  it('stops before powering off a new boot heard while a slow BMC was reading the power status', async () => {
    // given a BMC that takes its time to answer, and h1 heard in a new boot while it does
    let alive: string | null = null;
    const ops: string[] = [];
    const device: FenceDevice = {
      driver: 'slow-ipmi',
      powerStatus: async () => {
        ops.push('status');
        alive = 'h1-boot-2';
        return 'on';
      },
      powerOff: async () => {
        ops.push('off');
      },
    };
    const clock = { now: () => 10_000, sleep: async () => undefined };
    const run = new FenceRun(
      {
        kind: 'fence',
        commandId: 'i1:fence:1',
        incidentId: 'i1',
        hostId: 'h1',
        bootId: 'h1-boot-1',
        issuedAt: 9_000,
        notAfter: 30_000,
      },
      [{ device }],
      { clock, pollMs: 100, aliveBoot: () => alive },
    );

    // when the step that read the status `on` would send the power-off
    const outcome = await run.step();

    // then it refuses instead: the new boot keeps running
    expect(outcome).toMatchObject({ finished: true, result: { outcome: 'failed', refused: 'stale-boot' } });
    expect(ops).toEqual(['status']);
  });
});
