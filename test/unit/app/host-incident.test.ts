import { beforeEach, describe, expect, it } from 'vitest';
import { HostRebootedError } from '../../../app/errors';
import { runStep } from '../../../app/failover/steps';
import { confirmPowerOff } from '../../../app/operator/confirm-power-off';
import type { CommandResult, HostObservation } from '../../../contracts/relay-protocol';
import type {
  ConfirmSilenceOutput,
  IncidentInput,
  OperatorDecision,
  PlanOutput,
  StartResult,
  VmAttempt,
} from '../../../contracts/workflow';
import {
  createWorld,
  GiB,
  h1Silent,
  openH1Incident,
  relayOf,
  SITE,
  type StandardSite,
  standardSite,
  step,
  vm,
  type World,
} from './world';

let world: World;
let site: StandardSite;
let incident: IncidentInput;
/** What the relays hear while the waves run (the hosts they report with each start result). */
let heard: () => HostObservation[];

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
  incident = await openH1Incident(world, site);
  heard = () => h1Rebooted();
});

/** The hosts as heard now, with h1 back in a new boot that runs none of its old VMs. */
function h1Rebooted(extra: Partial<HostObservation> = {}): HostObservation[] {
  return site.hosts({ h1: { bootId: 'h1-boot-2', vms: [], ...extra } });
}

async function kinds(): Promise<string[]> {
  return (await world.stores.incidents.listEvents(incident.incidentId)).map((e) => e.kind);
}

async function lifecycleOfH1() {
  return (await world.stores.hosts.getHost(SITE, 'h1'))?.lifecycle;
}

/** Starts every VM of the plan, each through its relay, the ones in `fail` failing; returns what started. */
async function runWaves(plan: PlanOutput, fail: readonly string[] = []): Promise<string[]> {
  const started: string[] = [];
  for (const wave of plan.waves) {
    for (const planned of wave.vms) {
      const attempt: VmAttempt = {
        incidentId: incident.incidentId,
        siteId: SITE,
        hostId: 'h1',
        vm: planned,
        targetHostId: planned.hostId,
        attempt: 1,
        triedHosts: [],
      };
      const token = `tok-start-${planned.vmId}`;
      await step(world, { step: 'dispatch-start', attempt, taskToken: token });
      const record = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).find(
        (c) => c.taskToken === token,
      );
      if (record === undefined || record.command.kind !== 'start-vm') throw new Error('no start command');
      const result: CommandResult = {
        commandId: record.command.commandId,
        incidentId: incident.incidentId,
        outcome: fail.includes(planned.vmId) ? 'failed' : 'succeeded',
        finishedAt: world.clock.now(),
      };
      await relayOf(site, record.relayId).report(heard(), [result]);
      const completion = world.workflow.completionOf(token);
      if (completion?.kind === 'success') {
        await step(world, { step: 'vm-started', attempt, result: completion.output as StartResult });
        started.push(`${planned.vmId}@${record.command.hostId}`);
      }
    }
  }
  return started;
}

describe("an incident's HA set", () => {
  it('is recorded when the incident opens, from the failed boot, before the execution starts', async () => {
    const [event] = (await world.stores.incidents.listEvents(incident.incidentId)).filter(
      (e) => e.kind === 'ha-vms',
    );
    expect(event?.at).toBe(incident.openedAt);
    expect(event?.data).toEqual({
      bootId: 'h1-boot-1',
      vms: [
        { vmId: 'batch-1', cpus: 1, memoryMiB: 2 * GiB, priority: 'low', antiAffinity: null },
        { vmId: 'db-1', cpus: 4, memoryMiB: 8 * GiB, priority: 'high', antiAffinity: null },
        { vmId: 'web-1', cpus: 2, memoryMiB: 4 * GiB, priority: 'medium', antiAffinity: null },
      ],
    });
    expect(event?.detail).toContain('ran 3 HA VM(s) when the incident opened: batch-1, db-1, web-1');
  });

  it('is what placement plans, not the empty inventory of the boot that came after it', async () => {
    // given h1 comes back in a new boot before anything was fenced (its VMs died with the old boot)
    await site.r1.report(h1Rebooted());
    await site.r2.report(h1Rebooted());
    expect(await lifecycleOfH1()).toEqual({ status: 'up', bootId: 'h1-boot-2' });

    // when the failover looks again, it finds the new boot instead of a false alarm
    await expect(runStep(world.ctx, { step: 'confirm-silence', incident })).rejects.toBeInstanceOf(
      HostRebootedError,
    );
    const rebooted = await step(world, { step: 'host-rebooted', incident });
    expect(rebooted).toMatchObject({ bootId: 'h1-boot-2', fencedAt: expect.any(Number) });

    // then the plan restarts the three HA VMs of the old boot, the rebooted host among the candidates
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    expect(plan.waves.flatMap((w) => w.vms.map((v) => v.vmId)).sort()).toEqual(['batch-1', 'db-1', 'web-1']);
    expect(plan.running).toEqual([]);
    const event = (await world.stores.incidents.listEvents(incident.incidentId)).find(
      (e) => e.kind === 'placement-planned',
    );
    expect(event?.data?.candidates).toEqual(expect.arrayContaining(['h1', 'h2', 'h3']));
    expect(await kinds()).toEqual(expect.arrayContaining(['host-came-back', 'boot-ended']));
    expect(await kinds()).not.toContain('fenced');
  });

  it('leaves out a VM of the set that runs somewhere already, and counts it as running at Close', async () => {
    // given an operator started web-1 on h2 by hand while h1 rebooted
    heard = () =>
      h1Rebooted().map((h) =>
        h.hostId === 'h2' ? { ...h, vms: [vm('app-2', 16 * GiB, 8), vm('web-1', 4 * GiB, 2)] } : h,
      );
    await site.r1.report(heard());
    await step(world, { step: 'host-rebooted', incident });

    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;

    expect(plan.running).toEqual([{ vmId: 'web-1', hostId: 'h2' }]);
    expect(plan.waves.flatMap((w) => w.vms.map((v) => v.vmId)).sort()).toEqual(['batch-1', 'db-1']);
    await runWaves(plan);
    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'recovered' });
  });
});

describe('a host heard in a new boot during its incident, before the fence', () => {
  it('is not fenced: the fence carries the boot, a new boot ends fencing, and its old VMs restart', async () => {
    // given h1's fence is out (its BMC died with it) and names the boot it is for
    await step(world, { step: 'check-fencing-policy', incident });
    await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok-fence-1' });
    const [fence] = await world.stores.commands.listForIncident(SITE, incident.incidentId);
    expect(fence?.command).toMatchObject({ kind: 'fence', bootId: 'h1-boot-1' });
    expect((await lifecycleOfH1())?.status).toBe('fencing');

    // when h1 boots again and the relay, hearing the new boot, refuses the fence
    const refused: CommandResult = {
      commandId: fence?.command.commandId ?? '',
      incidentId: incident.incidentId,
      outcome: 'failed',
      refused: 'stale-boot',
      detail: 'h1 is alive in boot h1-boot-2, not boot h1-boot-1 the fence was for',
      finishedAt: world.clock.now(),
    };
    await relayOf(site, fence?.relayId ?? 'r1').report(h1Rebooted(), [refused]);

    // then the host is up in its new boot, the fence attempt failed, and the retry goes to HostRebooted
    expect(await lifecycleOfH1()).toEqual({ status: 'up', bootId: 'h1-boot-2' });
    expect(world.workflow.completionOf('tok-fence-1')).toMatchObject({
      kind: 'failure',
      error: 'FenceNotConfirmedError',
    });
    await expect(
      runStep(world.ctx, { step: 'dispatch-fence', incident, taskToken: 'tok-fence-2' }),
    ).rejects.toBeInstanceOf(HostRebootedError);
    expect(await world.stores.commands.listForIncident(SITE, incident.incidentId)).toHaveLength(1);

    // and the failed boot's three HA VMs restart; Close says recovered only once all three run
    await step(world, { step: 'host-rebooted', incident });
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    expect(plan.waves.flatMap((w) => w.vms)).toHaveLength(3);
    const started = await runWaves(plan, ['batch-1']);
    expect(started).toHaveLength(2);
    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'partially-recovered' });
    const closed = (await world.stores.incidents.listEvents(incident.incidentId)).find(
      (e) => e.kind === 'closed',
    );
    expect(closed?.detail).toContain('2 of 3 HA VM(s) run again; down: batch-1');
    expect(closed?.data).toMatchObject({ down: ['batch-1'], haVms: ['db-1', 'web-1', 'batch-1'] });
  });

  it('does not mark down what the new boot runs, at Close', async () => {
    heard = () => h1Rebooted({ vms: [vm('fresh-1', 1 * GiB, 1)] });
    await site.r1.report(heard());
    await step(world, { step: 'host-rebooted', incident });
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    await runWaves(plan);

    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'recovered' });
    expect(await world.stores.vms.getVm(SITE, 'fresh-1')).toMatchObject({ hostId: 'h1', state: 'running' });
  });

  it('restarts nothing without evidence: HostRebooted refuses while the stored inventory is the failed boot', async () => {
    await expect(runStep(world.ctx, { step: 'host-rebooted', incident })).rejects.toThrow(
      /nothing restarts without a fence/,
    );
    expect((await world.stores.incidents.get(incident.incidentId))?.fencedAt).toBeNull();
  });
});

describe('close says the truth', () => {
  it('given the host was fenced and every HA VM of the set started, then recovered; with one left, partially', async () => {
    // The fenced path: the set is the same three VMs, whatever the records say later.
    await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok-fence' });
    const [fence] = await world.stores.commands.listForIncident(SITE, incident.incidentId);
    const off: CommandResult = {
      commandId: fence?.command.commandId ?? '',
      incidentId: incident.incidentId,
      outcome: 'succeeded',
      powerState: 'off',
      finishedAt: world.clock.now(),
    };
    await relayOf(site, fence?.relayId ?? 'r1').report(h1Silent(site), [off]);
    await step(world, {
      step: 'mark-fenced',
      incident,
      confirmation: { by: 'ipmi-read-back', detail: 'off' },
    });
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    await runWaves(plan, ['web-1']);

    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'partially-recovered' });
    const closed = (await world.stores.incidents.listEvents(incident.incidentId)).find(
      (e) => e.kind === 'closed',
    );
    expect(closed?.data).toMatchObject({ down: ['web-1'] });
  });
});

describe('the operator, whenever the confirmation comes', () => {
  /** Fencing gave up: the host awaits the operator and AwaitOperator stored its token. */
  async function awaitingOperator(): Promise<void> {
    await step(world, { step: 'fence-failed', incident, error: { Error: 'FenceDeadlinePassedError' } });
    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });
  }

  it('a confirmation after the wait ended resumes the failover in an execution of its own', async () => {
    // given the operator timeout passed: OperatorTimedOut ends the wait; the incident stays open
    await awaitingOperator();
    world.clock.advance(incident.timing.operatorTimeoutSeconds * 1000);
    const ended = (await step(world, { step: 'operator-timed-out', incident })) as OperatorDecision;
    expect(ended.decision).toBe('no-answer');
    expect(await world.stores.incidents.get(incident.incidentId)).toMatchObject({
      outcome: 'awaiting-operator',
      closedAt: null,
      operatorTaskToken: null,
      operatorWaitEndedAt: expect.any(Number),
    });
    expect(await kinds()).toContain('operator-timed-out');

    // when the operator confirms a day later
    world.clock.advance(24 * 3600_000);
    const decision = await confirmPowerOff(world.ctx, {
      incidentId: incident.incidentId,
      hostId: 'h1',
      operator: 'alice',
    });

    // then a resuming execution starts with the confirmation, and its MarkFenced finds the evidence
    expect(decision).toMatchObject({ decision: 'confirmed-off', by: 'alice' });
    expect([...world.workflow.resumes.values()]).toEqual([
      {
        input: incident,
        resume: {
          resume: 'operator-confirmed',
          operator: { decision: 'confirmed-off', by: 'alice', at: world.clock.now() },
        },
      },
    ]);
    expect(await kinds()).toContain('resumed');
    await step(world, { step: 'mark-fenced', incident, confirmation: { by: 'operator', detail: 'alice' } });
    expect((await lifecycleOfH1())?.status).toBe('fenced');
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    expect(plan.waves.flatMap((w) => w.vms)).toHaveLength(3);

    // and a repeated confirmation neither resumes again nor fails
    await confirmPowerOff(world.ctx, { incidentId: incident.incidentId, hostId: 'h1', operator: 'alice' });
    expect(world.workflow.resumes.size).toBe(1);
  });

  it('a confirmation racing the timeout is acted on once: OperatorTimedOut leads on with it', async () => {
    await awaitingOperator();
    // The task timed out but OperatorTimedOut has not run yet: the completion goes to a dead token.
    await confirmPowerOff(world.ctx, { incidentId: incident.incidentId, hostId: 'h1', operator: 'bob' });
    expect(world.workflow.completionOf('tok-op')).toMatchObject({ kind: 'success' });

    const decision = (await step(world, { step: 'operator-timed-out', incident })) as OperatorDecision;

    expect(decision).toMatchObject({ decision: 'confirmed-off', by: 'bob' });
    expect(world.workflow.resumes.size).toBe(0);
    expect(await kinds()).not.toContain('operator-timed-out');
  });

  it('a confirmation before the wait is stored completes the wait the moment it is', async () => {
    await step(world, { step: 'fence-failed', incident, error: { Error: 'FenceDeadlinePassedError' } });
    const decision = await confirmPowerOff(world.ctx, {
      incidentId: incident.incidentId,
      hostId: 'h1',
      operator: 'carol',
    });
    expect(world.workflow.completions).toEqual([]);

    await step(world, { step: 'await-operator', incident, taskToken: 'tok-op' });

    expect(world.workflow.completionOf('tok-op')).toEqual({
      kind: 'success',
      token: 'tok-op',
      output: { decision: 'confirmed-off', by: 'carol', at: decision.at },
    });
  });

  it('a new boot after the wait ended resumes at HostRebooted; the same boot closes a false alarm', async () => {
    await awaitingOperator();
    await step(world, { step: 'operator-timed-out', incident });

    await site.r1.report(h1Rebooted());

    expect([...world.workflow.resumes.values()].map((r) => r.resume)).toEqual([{ resume: 'host-rebooted' }]);

    // the same boot back after its wait ended: nothing moved, so the incident just closes
    const other = createWorld();
    const otherSite = await standardSite(other);
    const otherIncident = await openH1Incident(other, otherSite);
    await runStep(other.ctx, { step: 'fence-failed', incident: otherIncident, error: { Error: 'X' } });
    await runStep(other.ctx, { step: 'await-operator', incident: otherIncident, taskToken: 'tok' });
    await runStep(other.ctx, { step: 'operator-timed-out', incident: otherIncident });
    await otherSite.r1.report(otherSite.hosts());
    expect(await other.stores.incidents.get(otherIncident.incidentId)).toMatchObject({
      outcome: 'false-alarm',
      closedAt: expect.any(Number),
    });
    expect(other.workflow.resumes.size).toBe(0);
  });

  it('a new boot while the wait is on ends it with HostRebootedError, to HostRebooted', async () => {
    await awaitingOperator();
    await site.r1.report(h1Rebooted());
    expect(world.workflow.completionOf('tok-op')).toMatchObject({
      kind: 'failure',
      error: 'HostRebootedError',
    });
    await confirmPowerOff(world.ctx, {
      incidentId: incident.incidentId,
      hostId: 'h1',
      operator: 'late',
    }).then(
      () => {
        throw new Error('a confirmation after the host came back must be refused');
      },
      (error: unknown) => expect(String(error)).toMatch(/not waiting for an operator|not awaiting/),
    );
  });
});

describe('ConfirmSilence', () => {
  it('tells a new boot from a false alarm', async () => {
    await site.r1.report(site.hosts());
    const silence = (await step(world, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;
    expect(silence.stillSilent).toBe(false);
  });
});
