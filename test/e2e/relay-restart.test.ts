import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpmiSim } from '../support/ipmi-sim';
import { eventually } from './site/processes';
import {
  incidentEvents,
  incidents,
  makeWebHa,
  openRelaySite,
  type RelaySite,
  vmRecords,
} from './site/relay-site';

/**
 * The relay process dying and the control plane vanishing, for real: SIGKILL in the middle of a fence
 * (node01's BMC acknowledges the power-off but the host stays on), a restart that resumes the command and
 * finishes it once; the uplink cut and mended, with what changed meanwhile delivered; SIGTERM that saves.
 */

/** Every `command finished` line of every relay run, for one command. */
function finishedLines(site: RelaySite, commandId: string): Record<string, unknown>[] {
  return site.runs.flatMap((run) =>
    run.entries().filter((e) => e.msg === 'command finished' && e.commandId === commandId),
  );
}

function savedState(site: RelaySite): {
  seq: number;
  commands: { command: { commandId: string }; result: unknown }[];
} {
  return JSON.parse(readFileSync(join(site.folder.dir, 'state', 'relay-state.json'), 'utf8'));
}

describe('halo-relay killed, restarted, cut off', () => {
  let site: RelaySite;

  beforeAll(async () => {
    // Level 1 gets 60 s to read off: the relay keeps polling node01's BMC while the test kills it.
    site = await openRelaySite({ modes: { node01: 'ignore-off' }, level: { timeoutMs: 60_000 } });
    await eventually('web01 known', async () =>
      (await vmRecords(site.cp)).some((vm) => vm.vmId === 'web01') ? true : undefined,
    );
    await makeWebHa(site.cp);
  }, 180_000);

  afterAll(async () => {
    await site?.close();
  });

  it('SIGKILL during a fence: the restarted relay resumes the command and finishes it exactly once', async () => {
    // given node01 dies, and its fence is under way: power-off sent, acknowledged, the host still on
    await site.agents.get('node01')?.stop();
    const bmc = site.bmcs.get('node01') as IpmiSim;
    await eventually('power-off acknowledged', () => (bmc.offCalls() >= 1 ? true : undefined), 120_000);
    const taken = await eventually('fence in the state file', () =>
      savedState(site).commands.find((c) => c.command.commandId.includes(':fence:')),
    );
    expect(taken.result).toBeNull();
    const commandId = taken.command.commandId;
    expect(bmc.power()).toBe('on');

    // when the relay is killed with SIGKILL, the BMC mends, and the relay starts again
    await site.relay.kill('SIGKILL');
    bmc.setMode('normal');
    const second = site.restartRelay();
    await second.waitFor((l) => l.includes('command resumed after restart'));

    // then node01 is powered off, the incident recovers, and the fence finished once across both runs
    await eventually('node01 off', () => (bmc.power() === 'off' ? true : undefined), 120_000);
    const incident = await eventually('incident closed', async () =>
      (await incidents(site.cp)).find((i) => i.hostId === 'node01' && i.closedAt !== null),
    );
    expect(incident.outcome).toBe('recovered');
    expect(finishedLines(site, commandId)).toHaveLength(1);
    const events = await incidentEvents(site.cp, String(incident.incidentId));
    expect(events.filter((e) => e.kind === 'power-off-confirmed')).toHaveLength(1);
    // and the finished command stays on disk with its result, so a late repeat is not carried out again
    expect(savedState(site).commands.find((c) => c.command.commandId === commandId)?.result).toMatchObject({
      outcome: 'succeeded',
      powerState: 'off',
    });
  }, 240_000);

  it('control plane unreachable, then back: the relay retries, and what changed meanwhile arrives', async () => {
    // when the uplink is cut and a VM starts on node02 meanwhile
    site.proxy.cut = true;
    const failuresBefore = site.relay
      .entries()
      .filter((e) => e.msg === 'report not accepted; retrying').length;
    await eventually('reports failing', () =>
      site.relay.entries().filter((e) => e.msg === 'report not accepted; retrying').length >=
      failuresBefore + 2
        ? true
        : undefined,
    );
    site.agents
      .get('node02')
      ?.hypervisor.vms.push({ id: 'db02', cpus: 1, memoryMiB: 1024, state: 'running' });

    // then, once the cable is mended, db02 reaches the control plane
    site.proxy.cut = false;
    const db02 = await eventually('db02 reported', async () =>
      (await vmRecords(site.cp)).find((vm) => vm.vmId === 'db02'),
    );
    expect(db02).toMatchObject({ hostId: 'node02', state: 'running' });
  }, 120_000);

  it('SIGTERM: the relay stops cleanly (exit 0) with its state saved', async () => {
    const seqBefore = savedState(site).seq;
    site.relay.child.kill('SIGTERM');
    expect(await site.relay.exit()).toBe(0);
    expect(site.relay.entries().some((e) => e.msg === 'relay stopped; state saved')).toBe(true);
    expect(savedState(site).seq).toBeGreaterThanOrEqual(seqBefore);
    // and nothing the relay ever logged holds a secret
    const logs = site.runs.flatMap((r) => r.lines).join('\n');
    for (const secret of [site.lanKey, ...[...site.bmcs.values()].map((b) => b.password)]) {
      expect(logs).not.toContain(secret);
    }
  }, 60_000);
});
