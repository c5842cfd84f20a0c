import { describe, expect, it } from 'vitest';
import type { RelayCommand } from '../../../contracts/relay-protocol';
import { networkDown } from './fakes';
import { fenceCommand, SILENT_MS, TestSite } from './site-harness';

/** A site past its first report, with the control plane asking for a report every second (incident open). */
async function incidentSite(): Promise<TestSite> {
  const site = await TestSite.open();
  site.uplink.nextReportInMs = 1000;
  await site.run(SILENT_MS);
  return site;
}

/** Hands the command to the relay in the next response and runs until the relay has taken it. */
async function deliver(site: TestSite, command: RelayCommand): Promise<void> {
  site.uplink.commands = [command];
  const before = site.uplink.accepted.length;
  await site.runUntil(() => site.uplink.accepted.length > before);
}

describe('relay fence', () => {
  it('a host already off is fenced without a power-off: the status is read first', async () => {
    // given h1's BMC reads off
    const site = await incidentSite();
    site.bmc.script('h1', ['off']);

    // when the control plane orders h1 fenced
    const command = fenceCommand(site, 'h1');
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then the result is a confirmed off, and no power-off was ever sent
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({
      commandId: command.commandId,
      incidentId: command.incidentId,
      outcome: 'succeeded',
      powerState: 'off',
    });
    expect(site.bmc.opsFor('h1')).toEqual(['status']);
  });

  it('powers off, polls the status, and reports success only once it reads off', async () => {
    // given h1 is on and goes off on the fourth read after its power-off is acknowledged
    const site = await incidentSite();
    site.bmc.offAfterReads.set('h1', 4);

    // when it is fenced
    const command = fenceCommand(site, 'h1');
    await deliver(site, command);
    await site.run(2500);

    // then, while the status still reads on, nothing is reported
    expect(site.resultsFor(command.commandId)).toEqual([]);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then the success carries the status read back, after one power-off, a read straight after it and
    // then one per second
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
    expect(site.bmc.opsFor('h1')).toEqual(['status', 'off', 'status', 'status', 'status', 'status']);
    // and the BMC is left alone afterwards
    await site.run(5000);
    expect(site.bmc.opsFor('h1')).toHaveLength(6);
  });

  it('reads the status back straight after the power-off is acknowledged, not a poll interval later', async () => {
    // given h1 reads off from the first read after its power-off is acknowledged, and a 1 s poll interval
    const site = await incidentSite();
    site.bmc.offAfterReads.set('h1', 1);

    // when it is fenced
    const command = fenceCommand(site, 'h1');
    await deliver(site, command);
    const taken = site.clock.now();
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // then status, off, status ran in one step: the result finished before any poll interval passed
    expect(site.bmc.opsFor('h1')).toEqual(['status', 'off', 'status']);
    const result = site.resultsFor(command.commandId)[0];
    expect(result).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
    expect((result?.finishedAt ?? Number.POSITIVE_INFINITY) - taken).toBeLessThan(1000);
  });

  it('a fence runs in the tick its command arrives and its result goes out in it, whatever the report gap', async () => {
    // given a relay whose early reports are at least 5 s apart, polling the BMC every second
    const site = await TestSite.open({ config: { minReportGapMs: 5000, bmcPollMs: 1000 } });
    site.uplink.nextReportInMs = 1000;
    await site.run(SILENT_MS);
    site.bmc.offAfterReads.set('h1', 1);

    // when a response brings a fence of h1
    const command = fenceCommand(site, 'h1');
    await deliver(site, command);
    const arrivedAt = site.clock.now();

    // then power-off and read-back ran in that tick, and a second report carried the result at once
    expect(site.bmc.opsFor('h1')).toEqual(['status', 'off', 'status']);
    const first = site.uplink.accepted.find((r) => r.results.some((x) => x.commandId === command.commandId));
    expect(first?.sentAt).toBe(arrivedAt);
  });

  it('an acknowledged power-off whose status stays on fails at notAfter with powerState on', async () => {
    // given h1's BMC acknowledges the power-off but always reads on
    const site = await incidentSite();
    site.bmc.script('h1', ['on']);
    const command = fenceCommand(site, 'h1', 8000);

    // when the fence runs up to its notAfter
    await deliver(site, command);
    await site.runUntil(() => site.clock.now() >= command.notAfter);

    // then no result was reported: an acknowledged off is not a confirmation (safety rule 1)
    expect(site.resultsFor(command.commandId)).toEqual([]);
    expect(site.bmc.opsFor('h1').filter((op) => op === 'off')).toHaveLength(1);

    // when notAfter has passed, then the failure says what was read: on
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0, 2000);
    const result = site.resultsFor(command.commandId)[0];
    expect(result).toMatchObject({ outcome: 'failed', powerState: 'on' });
    expect(result?.detail).toContain('power-off acknowledged but status still read on');
    expect(result?.finishedAt).toBeGreaterThan(command.notAfter);
  });

  it('a BMC that does not answer fails the fence at notAfter with powerState unknown', async () => {
    const site = await incidentSite();
    site.bmc.script('h1', ['no-answer']);
    const command = fenceCommand(site, 'h1', 5000);

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'failed', powerState: 'unknown' });
    // Never read on: no power-off was sent blind, and the reads were retried until notAfter.
    const ops = site.bmc.opsFor('h1');
    expect(ops.every((op) => op === 'status')).toBe(true);
    expect(ops.length).toBeGreaterThanOrEqual(3);
  });

  it('a BMC that answers again within notAfter still gets the host fenced', async () => {
    const site = await incidentSite();
    site.bmc.script('h1', ['no-answer', 'no-answer', 'on']);
    site.bmc.offAfterReads.set('h1', 1);
    const command = fenceCommand(site, 'h1');

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });
  });

  it('a repeated fence command is carried out once; its result is re-reported while the cloud lists it', async () => {
    // given a fence carried out while the control plane keeps listing the command
    const site = await incidentSite();
    site.bmc.script('h1', ['off']);
    const command = fenceCommand(site, 'h1');
    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    // when the command keeps coming in every response
    await site.run(5000);

    // then the BMC was asked once, and every report since carries the same result
    expect(site.bmc.opsFor('h1')).toEqual(['status']);
    const results = site.resultsFor(command.commandId);
    expect(results.length).toBeGreaterThanOrEqual(5);
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);

    // when a response no longer lists it, then the result is dropped after that report
    site.uplink.commands = [];
    await site.run(3000);
    const last = site.uplink.accepted.at(-1);
    expect(last?.results).toEqual([]);

    // when the cloud sends it once more (a late repeat), then the result is re-reported, still without acting
    const reported = site.resultsFor(command.commandId).length;
    site.uplink.commands = [command];
    await site.run(3000);
    expect(site.resultsFor(command.commandId).length).toBeGreaterThan(reported);
    expect(site.bmc.opsFor('h1')).toEqual(['status']);
  });

  it('a command past its notAfter is not started: no BMC call, a failed result', async () => {
    const site = await incidentSite();
    const command = { ...fenceCommand(site, 'h1'), notAfter: site.clock.now() - 1 };

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.bmc.calls).toEqual([]);
    const result = site.resultsFor(command.commandId)[0];
    expect(result).toMatchObject({ outcome: 'failed' });
    expect(result?.powerState).toBeUndefined();
    expect(result?.detail).toContain('not started');
  });

  it('a host without BMC configuration fails at once with powerState unknown', async () => {
    const site = await incidentSite();
    const command = fenceCommand(site, 'h3');

    await deliver(site, command);
    await site.runUntil(() => site.resultsFor(command.commandId).length > 0);

    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'failed', powerState: 'unknown' });
    expect(site.bmc.calls).toEqual([]);
  });

  it('keeps reporting while a fence polls a slow BMC', async () => {
    const site = await incidentSite();
    site.bmc.script('h1', ['on']);
    const command = fenceCommand(site, 'h1', 10_000);
    await deliver(site, command);
    const before = site.uplink.accepted.length;

    await site.run(5000);

    expect(site.uplink.accepted.length - before).toBeGreaterThanOrEqual(4);
  });
});

describe('relay results when the uplink is down', () => {
  it('are kept and sent with the next accepted report; seq keeps increasing', async () => {
    // given a fence under way (h1 reads off two polls after the power-off)
    const site = await incidentSite();
    site.bmc.offAfterReads.set('h1', 2);
    const command = fenceCommand(site, 'h1');
    await deliver(site, command);

    // when the uplink goes down before the fence finishes
    site.uplink.failure = networkDown();
    await site.run(10_000);

    // then the fence finished and its result went into every failed attempt, but nothing was accepted
    expect(site.resultsFor(command.commandId)).toEqual([]);
    const failed = site.uplink.attempts.filter((a) => !a.accepted);
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed.at(-1)?.report.results.map((r) => r.commandId)).toEqual([command.commandId]);

    // when the uplink is back, then the next report delivers it
    site.uplink.failure = null;
    site.uplink.commands = [];
    await site.run(10_000);
    expect(site.resultsFor(command.commandId)[0]).toMatchObject({ outcome: 'succeeded', powerState: 'off' });

    // and every attempt, failed or not, took a higher seq than the one before
    const seqs = site.uplink.reports.map((r) => r.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1] ?? 0) + 1);
  });
});
