import { describe, expect, it } from 'vitest';
import type { RelayCommand } from '../../../contracts/relay-protocol';
import type {
  ConfirmSilenceOutput,
  FenceResult,
  FencingPolicyOutput,
  PlanOutput,
  StartResult,
  VmAttempt,
} from '../../../contracts/workflow';
import type { TaskCompletion } from './fakes';
import { createWorld, GiB, h1Silent, openH1Incident, relayOf, SITE, standardSite, step, vm } from './world';

describe('the failover chain, step by step in workflow order', () => {
  it('given h1 dies, then it is fenced through a second relay and its HA VMs restart, high first, one retried elsewhere', async () => {
    const world = createWorld();
    const site = await standardSite(world);

    // The relay holding a command gets it with its next report, carries it out, and reports the result.
    async function relayCarriesOut(
      token: string,
      outcome: 'succeeded' | 'failed',
      powerState?: 'off' | 'on',
    ): Promise<TaskCompletion> {
      const record = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).find(
        (c) => c.taskToken === token,
      );
      if (record === undefined) throw new Error(`no command for ${token}`);
      const relay = relayOf(site, record.relayId);
      const delivered: RelayCommand[] = (await relay.report(h1Silent(site))).commands;
      expect(delivered.map((c) => c.commandId)).toContain(record.command.commandId);
      world.clock.advance(500);
      const result = {
        commandId: record.command.commandId,
        incidentId: incident.incidentId,
        outcome,
        finishedAt: world.clock.now(),
        ...(powerState === undefined ? {} : { powerState }),
      };
      await relay.report(h1Silent(site), [result]);
      const completion = world.workflow.completionOf(token);
      if (completion === undefined) throw new Error(`task ${token} was not completed`);
      return completion;
    }

    // Suspect → ConfirmSilence
    const incident = await openH1Incident(world, site);
    expect(world.workflow.executions.size).toBe(1);
    await step(world, { step: 'suspect', incident });
    world.clock.advance(incident.timing.confirmSilenceSeconds * 1000);
    await site.r1.report(h1Silent(site));
    await site.r2.report(h1Silent(site));
    const silence = (await step(world, { step: 'confirm-silence', incident })) as ConfirmSilenceOutput;
    expect(silence.stillSilent).toBe(true);

    // CheckFencingPolicy → Fence: the first relay acknowledges but reads the power back on; the retry goes
    // through the other relay, which reads it back off.
    const policy = (await step(world, { step: 'check-fencing-policy', incident })) as FencingPolicyOutput;
    expect(policy.action).toBe('fence');
    await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok-fence-1' });
    const firstFence = await relayCarriesOut('tok-fence-1', 'succeeded', 'on');
    expect(firstFence).toMatchObject({ kind: 'failure', error: 'FenceNotConfirmedError' });
    await step(world, { step: 'dispatch-fence', incident, taskToken: 'tok-fence-2' });
    const secondFence = await relayCarriesOut('tok-fence-2', 'succeeded', 'off');
    if (secondFence.kind !== 'success') throw new Error('fence not confirmed');
    const fences = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).map(
      (c) => c.relayId,
    );
    expect(new Set(fences).size).toBe(2);

    // VerifyPowerOff → MarkFenced
    const confirmation = (await step(world, {
      step: 'verify-power-off',
      incident,
      fence: secondFence.output as FenceResult,
    })) as { by: 'ipmi-read-back'; detail: string };
    await step(world, { step: 'mark-fenced', incident, confirmation });
    const fencedAt = (await world.stores.incidents.get(incident.incidentId))?.fencedAt;
    expect(fencedAt).toEqual(expect.any(Number));

    // PlanPlacement: high wave first.
    const plan = (await step(world, { step: 'plan-placement', incident })) as PlanOutput;
    expect(plan.waves.map((w) => [w.priority, w.vms.map((v) => `${v.vmId}→${v.hostId}`)])).toEqual([
      ['high', ['db-1→h3']],
      ['medium', ['web-1→h2']],
      ['low', ['batch-1→h3']],
    ]);

    // StartPriorityWaves: db-1's start fails on h3; its capacity is released and it restarts on h2.
    const reservationsOf = async (hostId: string) =>
      Object.keys((await world.stores.hosts.getHost(SITE, hostId))?.reservations ?? {});
    for (const wave of plan.waves) {
      for (const planned of wave.vms) {
        let attempt: VmAttempt = {
          incidentId: incident.incidentId,
          siteId: SITE,
          hostId: 'h1',
          vm: planned,
          targetHostId: planned.hostId,
          attempt: 1,
          triedHosts: [],
        };
        for (;;) {
          attempt = (await step(world, { step: 'reserve-capacity', attempt })) as VmAttempt;
          expect(await reservationsOf(attempt.targetHostId)).toContain(attempt.reservationId);
          const token = `tok-start-${planned.vmId}-${attempt.attempt}`;
          await step(world, { step: 'dispatch-start', attempt, taskToken: token });
          const failFirst = planned.vmId === 'db-1' && attempt.attempt === 1;
          const completion = await relayCarriesOut(token, failFirst ? 'failed' : 'succeeded');
          if (completion.kind === 'success') {
            await step(world, { step: 'vm-started', attempt, result: completion.output as StartResult });
            break;
          }
          expect(completion.error).toBe('VmStartFailedError');
          await step(world, {
            step: 'release-capacity',
            attempt,
            error: { Error: completion.error, Cause: completion.cause },
          });
          expect(await reservationsOf(attempt.targetHostId)).not.toContain(attempt.reservationId);
          attempt = (await step(world, { step: 'pick-next-host', attempt })) as VmAttempt;
        }
      }
    }

    // The survivors report the restarted VMs: their reservations turn into usage.
    await site.r1.report(
      site.hosts({
        h1: { lastHeardMsAgo: 60_000 },
        h2: { vms: [vm('app-2', 16 * GiB, 8), vm('web-1', 4 * GiB, 2), vm('db-1', 8 * GiB, 4)] },
        h3: { vms: [vm('app-3', 8 * GiB, 4), vm('batch-1', 2 * GiB, 1)] },
      }),
    );
    expect(await reservationsOf('h2')).toEqual([]);
    expect(await reservationsOf('h3')).toEqual([]);

    // Close
    expect(await step(world, { step: 'close', incident })).toEqual({ outcome: 'recovered' });

    const record = await world.stores.incidents.get(incident.incidentId);
    expect(record).toMatchObject({ outcome: 'recovered', closedAt: expect.any(Number) });
    const events = await world.stores.incidents.listEvents(incident.incidentId);
    const started = events
      .filter((e) => e.kind === 'vm-started')
      .map((e) => `${e.data?.vmId}@${e.data?.hostId}`);
    expect(started).toEqual(['db-1@h2', 'web-1@h2', 'batch-1@h3']);
    expect(events.map((e) => e.kind)).toEqual([
      'ha-vms',
      'suspected',
      'silence-confirmed',
      'fence-ordered',
      'fence-failed',
      'fence-ordered',
      'power-off-confirmed',
      'fenced',
      'placement-planned',
      'capacity-reserved',
      'start-ordered',
      'start-failed',
      'capacity-reserved',
      'start-ordered',
      'vm-started',
      'capacity-reserved',
      'start-ordered',
      'vm-started',
      'capacity-reserved',
      'start-ordered',
      'vm-started',
      'closed',
    ]);
    // Safety rule 1: no start command exists from before the power-off was confirmed.
    const starts = (await world.stores.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.kind === 'start-vm',
    );
    expect(starts.every((c) => c.createdAt >= (fencedAt ?? Number.POSITIVE_INFINITY))).toBe(true);
    expect(world.metrics.of('IncidentClosed').map((p) => p.dimensions)).toEqual([{ outcome: 'recovered' }]);
    expect((await world.stores.sites.loadControl(SITE))?.openIncidents).toEqual([]);
  });
});
