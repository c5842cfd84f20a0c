import { describe, expect, it } from 'vitest';
import type { RelayCommand } from '../../../contracts/relay-protocol';
import { SILENT_MS, startCommand, TestSite } from './site-harness';

async function incidentSite(): Promise<TestSite> {
  const site = await TestSite.open();
  site.uplink.nextReportInMs = 1000;
  await site.run(SILENT_MS);
  return site;
}

async function deliver(site: TestSite, command: RelayCommand): Promise<void> {
  site.uplink.commands = [command];
  const before = site.uplink.accepted.length;
  await site.runUntil(() => site.uplink.accepted.length > before);
}

describe('relay start-vm', () => {
  it("forwards the start to the host's agent and reports its answer", async () => {
    // given a command to start vm-9 on h2
    const site = await incidentSite();
    const command = startCommand(site, 'h2', 'vm-9');

    // when the relay takes it
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then h2's hypervisor started it once, and the agent's answer is the result
    expect(site.host('h2').hypervisor.started.map((v) => v.id)).toEqual(['vm-9']);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({
      commandId: command.commandId,
      incidentId: command.incidentId,
      outcome: 'succeeded',
    });
    expect(site.lan.sentTo('h2', 'start-vm')).toHaveLength(1);
  });

  it('sends a lost request again; the agent starts the VM once', async () => {
    const site = await incidentSite();
    let dropped = 0;
    site.lan.drop = (_to, message) => message.kind === 'start-vm' && dropped++ === 0;
    const command = startCommand(site, 'h2', 'vm-9');

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.lan.sentTo('h2', 'start-vm')).toHaveLength(2);
    expect(site.host('h2').hypervisor.started).toHaveLength(1);
    expect(site.resultsFor(command.commandId)[0]?.outcome).toBe('succeeded');
  });

  it("a lost answer: the host's heartbeat showing the VM running is the answer", async () => {
    const site = await incidentSite();
    site.lan.drop = (_to, message) => message.kind === 'start-result';
    const command = startCommand(site, 'h2', 'vm-9');

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.host('h2').hypervisor.started).toHaveLength(1);
    const result = site.resultsFor(command.commandId)[0];
    expect(result?.outcome).toBe('succeeded');
    expect(result?.detail).toContain('heartbeat shows vm-9 running');
  });

  it("an agent's failure is reported as failed, with its reason", async () => {
    const site = await incidentSite();
    site.host('h2').hypervisor.startFails = 'domain vm-9 has no disk';
    const command = startCommand(site, 'h2', 'vm-9');

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    const result = site.resultsFor(command.commandId)[0];
    expect(result?.outcome).toBe('failed');
    expect(result?.detail).toContain('domain vm-9 has no disk');
  });

  it('no answer by notAfter: nothing is reported (the VM may run), and the request is not sent again', async () => {
    // given the target host is dead
    const site = await incidentSite();
    site.kill('h2');
    const command = startCommand(site, 'h2', 'vm-9', 6000);

    // when the start runs to its notAfter and beyond
    await deliver(site, command);
    await site.run(10_000);

    // then it was offered every heartbeat interval until notAfter, and never reported failed
    const requests = site.lan.sentTo('h2', 'start-vm');
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(site.resultsFor(command.commandId)).toEqual([]);

    // and a repeat of the command does not send it again
    const sent = requests.length;
    await site.run(3000);
    expect(site.lan.sentTo('h2', 'start-vm')).toHaveLength(sent);
  });

  it('a start past its notAfter is not forwarded to the agent', async () => {
    const site = await incidentSite();
    const command = { ...startCommand(site, 'h2', 'vm-9'), notAfter: site.clock.now() - 1 };

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.lan.sentTo('h2', 'start-vm')).toEqual([]);
    expect(site.host('h2').hypervisor.started).toEqual([]);
    expect(site.resultsFor(command.commandId)[0]?.outcome).toBe('failed');
  });

  it('a host heard in a new boot before the start reached it: the start is over (failed), never sent to the new boot', async () => {
    // given h2 is dead when the relay takes the start (it last heard h2 in boot h2-boot-1)
    const site = await incidentSite();
    site.kill('h2');
    const command = startCommand(site, 'h2', 'vm-9', 20_000);
    await deliver(site, command);
    await site.run(500);
    const offered = site.lan.sentTo('h2', 'start-vm');
    expect(offered.every((r) => r.bootId === 'h2-boot-1')).toBe(true);

    // when h2 comes back in another boot (powered on after a fence, or rebooted)
    site.host('h2').hypervisor.boot = 'h2-boot-2';
    site.revive('h2');
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then the new boot never started it, and the control plane hears the start failed
    expect(site.host('h2').hypervisor.started).toEqual([]);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'failed' });
    expect(site.resultsFor(command.commandId)[0]?.detail).toMatch(/boot h2-boot-2, not h2-boot-1/);
  });
});
