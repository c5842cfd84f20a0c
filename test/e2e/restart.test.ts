import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../app/errors';
import { confirmPowerOff } from '../../app/operator';
import { STATE, WORKFLOW_ERROR } from '../../contracts/workflow';
import { synthesizedDefinition } from '../../local/definition';
import {
  createHarness,
  eventsOfType,
  fencesReceived,
  type Harness,
  mainPath,
  onVirtualTimeScenario,
  planOf,
  SITE,
  startsReceived,
  statesEntered,
  waitFor,
} from './harness';

/**
 * Scenarios in which the failed host's VMs are restarted elsewhere, or must not be: every one of them
 * runs the definition CDK synthesizes, the failover-steps handler, the ingest handler and scripted relays.
 */

const HA_VMS = ['vm-db', 'vm-web', 'vm-app', 'vm-batch'];
const PRIORITY_RANK = { high: 0, medium: 1, low: 2 } as const;

let h: Harness | undefined;

beforeAll(async () => {
  // In real time, once: the scenarios run on virtual time, where real I/O would never be waited for.
  await synthesizedDefinition();
});

/**
 * A scenario on virtual time (harness.ts onVirtualTimeScenario): the policy's real-time bounds (a
 * confirmation wait, a fence attempt's timeout, a relay's vote ageing) hold exactly, however busy the
 * machine. The harness is disposed before the run ends.
 */
function scenario(name: string, body: () => Promise<void>): void {
  it(name, () =>
    onVirtualTimeScenario(async () => {
      try {
        await body();
      } finally {
        await h?.dispose();
      }
    }),
  );
}

afterEach(async () => {
  await h?.dispose();
  // The oracle: whatever a scenario asserts, no safety rule was broken in the world.
  expect(h?.world.violations ?? []).toEqual([]);
  h = undefined;
});

/** Fails the test when the harness is missing (it is created first thing in every test). */
function harness(): Harness {
  if (h === undefined) throw new Error('no harness');
  return h;
}

/** Sequence number of the relay result that first read `off` back for the host: the confirmation. */
function offResultSeq(harness: Harness): number {
  const off = harness.journal
    .results()
    .find((e) => e.result.outcome === 'succeeded' && e.result.powerState === 'off');
  if (off === undefined) throw new Error('no fence result read back off');
  return off.seq;
}

/** Waits until relays report every restarted VM running where it went and every reservation is gone. */
async function waitForSteadyState(harness: Harness): Promise<void> {
  await waitFor('reservations released and VMs recorded on their new hosts', async () => {
    const hosts = await harness.ctx.ports.hosts.listHosts(SITE);
    const vms = await harness.ctx.ports.vms.listVms(SITE);
    const held = hosts.some((host) => Object.keys(host.reservations).length > 0);
    const moved = HA_VMS.every((id) => {
      const vm = vms.find((v) => v.vmId === id);
      return vm !== undefined && vm.state === 'running' && vm.hostId !== 'node01';
    });
    return !held && moved ? true : undefined;
  });
}

describe('restarts on the synthesized definition', () => {
  scenario(
    '2. confirmed fence → MarkFenced → high, medium, low waves on planned hosts → recovered',
    async () => {
      h = await createHarness();
      h.startRelays();
      h.world.crash('node01');
      await h.incidentsStarted();
      await h.settle();

      const execution = h.execution();
      expect(execution.status).toBe('succeeded');
      expect(mainPath(execution)).toEqual([
        STATE.StartOrResume,
        STATE.Suspicion,
        STATE.Suspect,
        STATE.WaitBeforeConfirm,
        STATE.ConfirmSilence,
        STATE.StillSilent,
        STATE.CheckFencingPolicy,
        STATE.FenceOrSuppress,
        STATE.Fence,
        STATE.VerifyPowerOff,
        STATE.MarkFenced,
        STATE.PlanPlacement,
        STATE.StartPriorityWaves,
        STATE.Close,
        STATE.IncidentClosed,
      ]);
      const incident = await h.incident();
      expect(incident.outcome).toBe('recovered');
      expect(incident.fencedAt).not.toBeNull();

      // Safety rule 1: the fence was read back off before any start went out, and only then.
      const fences = fencesReceived(h);
      expect(fences).toHaveLength(1);
      const starts = startsReceived(h);
      expect(starts.map((s) => s.command.vm.id).sort()).toEqual([...HA_VMS].sort());
      expect(Math.min(...starts.map((s) => s.seq))).toBeGreaterThan(offResultSeq(h));
      const events = execution.events;
      const markFencedExit = events.findIndex(
        (e) => e.type === 'StateExited' && e.state.name === STATE.MarkFenced,
      );
      const firstStartVm = events.findIndex(
        (e) => e.type === 'StateEntered' && e.state.name === STATE.StartVm,
      );
      expect(markFencedExit).toBeGreaterThan(-1);
      expect(firstStartVm).toBeGreaterThan(markFencedExit);

      // Waves: high before medium before low; a wave starts only when the previous one's VMs run.
      const plan = planOf(execution);
      expect(plan.waves.map((w) => w.priority)).toEqual(['high', 'medium', 'low']);
      expect(plan.unplaced).toEqual([]);
      const ranks = starts.map(
        (s) =>
          PRIORITY_RANK[
            plan.waves.flatMap((w) => w.vms).find((v) => v.vmId === s.command.vm.id)?.priority ?? 'low'
          ],
      );
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
      for (const [i, wave] of plan.waves.entries()) {
        const next = plan.waves[i + 1];
        if (next === undefined) continue;
        const lastResult = Math.max(
          ...h.journal
            .results()
            .filter((r) => wave.vms.some((vm) => r.result.commandId.includes(`:start:${vm.vmId}:`)))
            .map((r) => r.seq),
        );
        const firstNext = Math.min(
          ...starts.filter((s) => next.vms.some((vm) => vm.vmId === s.command.vm.id)).map((s) => s.seq),
        );
        expect(firstNext, `${next.priority} wave after the ${wave.priority} wave ran`).toBeGreaterThan(
          lastResult,
        );
      }

      // Each VM went to its planned host, and runs there now (the world says so), once.
      for (const vm of plan.waves.flatMap((w) => w.vms)) {
        expect(vm.hostId).not.toBe('node01');
        expect(starts.find((s) => s.command.vm.id === vm.vmId)?.command.hostId).toBe(vm.hostId);
        expect(h.world.runningOn(vm.vmId)).toEqual([vm.hostId]);
      }
      // The unregistered VM is not HA: it died with its host and nobody restarted it.
      expect(h.world.runningOn('vm-scratch')).toEqual([]);
      expect(h.world.host('node01').powered).toBe(false);

      // The timeline tells the same story (events of one millisecond may sort either way: compare times).
      const timeline = await h.timeline(incident.incidentId);
      const at = (kind: string) => timeline.find((e) => e.kind === kind)?.at ?? Number.NaN;
      const ordered = ['suspected', 'silence-confirmed', 'fence-ordered', 'power-off-confirmed', 'fenced'];
      for (const [i, kind] of ordered.slice(1).entries()) {
        expect(at(ordered[i] ?? ''), `${ordered[i]} before ${kind}`).toBeLessThanOrEqual(at(kind));
      }
      expect(at('fenced')).toBeLessThanOrEqual(at('placement-planned'));
      const startedAt = timeline.filter((e) => e.kind === 'start-ordered').map((e) => e.at);
      expect(startedAt).toHaveLength(HA_VMS.length);
      expect(Math.min(...startedAt)).toBeGreaterThanOrEqual(at('fenced'));
      for (const kind of ['capacity-reserved', 'vm-started']) {
        expect(
          timeline.filter((e) => e.kind === kind),
          kind,
        ).toHaveLength(HA_VMS.length);
      }
      expect(at('closed')).toBeGreaterThanOrEqual(Math.max(...timeline.map((e) => e.at)));
      await waitForSteadyState(h);
      expect((await h.ctx.ports.hosts.getHost(SITE, 'node01'))?.lifecycle.status).toBe('fenced');
      expect(h.metrics.recorded.filter((m) => m.name === 'SplitBrainDetected')).toEqual([]);
    },
  );

  scenario(
    '3. relay A reads the power back `on` (acknowledged, not off) → retried through relay B, which reads `off`',
    async () => {
      h = await createHarness();
      h.relay('relay-a').script = {
        fence: () => ({ outcome: 'succeeded', powerState: 'on', detail: 'chassis power status: on' }),
      };
      h.startRelays();
      h.world.crash('node01');
      await h.incidentsStarted();
      await h.settle();

      const execution = h.execution();
      const fences = fencesReceived(h);
      expect(fences.map((f) => f.relayId)).toEqual(['relay-a', 'relay-b']);
      // The Fence task failed with FenceNotConfirmedError (relay A's `on`) and its retrier sent it again.
      const failed = eventsOfType(execution, 'StateFailed').filter((e) => e.state.name === STATE.Fence);
      expect(failed.map((e) => e.Error)).toEqual([WORKFLOW_ERROR.FenceNotConfirmed]);
      expect(eventsOfType(execution, 'StateRetried').map((e) => e.state.name)).toEqual([STATE.Fence]);
      expect(mainPath(execution)).not.toContain(STATE.FenceFailed);

      // Rule 1: an acknowledged power-off is not a confirmation; nothing started before relay B read off.
      const offSeq = offResultSeq(h);
      const off = h.journal.entries.find((e) => e.seq === offSeq);
      expect(off?.relayId).toBe('relay-b');
      const starts = startsReceived(h);
      expect(starts).toHaveLength(HA_VMS.length);
      expect(Math.min(...starts.map((s) => s.seq))).toBeGreaterThan(offSeq);

      const incident = await h.incident();
      expect(incident.outcome).toBe('recovered');
      const timeline = await h.timeline(incident.incidentId);
      const fenceFailed = timeline.filter((e) => e.kind === 'fence-failed');
      expect(fenceFailed).toHaveLength(1);
      expect(fenceFailed[0]?.data).toMatchObject({ relayId: 'relay-a', powerState: 'on' });
      expect(timeline.find((e) => e.kind === 'power-off-confirmed')?.data).toMatchObject({
        relayId: 'relay-b',
      });
    },
  );

  scenario(
    '4. BMC unreachable: no confirmed power-off → FenceFailed → AwaitOperator, nothing started until the operator confirms',
    async () => {
      h = await createHarness();
      const unreachable = () => ({
        outcome: 'failed' as const,
        detail: 'BMC unreachable: no response from 10.0.0.11',
      });
      h.relay('relay-a').script = { fence: unreachable };
      h.relay('relay-b').script = { fence: unreachable };
      h.startRelays();
      h.world.crash('node01');
      const waiting = await waitFor('the incident to await the operator', async () => {
        const incident = (await harness().incidents())[0];
        return incident?.outcome === 'awaiting-operator' && incident.operatorTaskToken !== null
          ? incident
          : undefined;
      });

      // Five attempts (the first and four retries), alternating relays, then the operator.
      const fences = fencesReceived(h);
      expect(fences.map((f) => f.relayId)).toEqual(['relay-a', 'relay-b', 'relay-a', 'relay-b', 'relay-a']);
      const execution = h.execution();
      expect(execution.status).toBe('running');
      expect(mainPath(execution).slice(-3)).toEqual([STATE.Fence, STATE.FenceFailed, STATE.AwaitOperator]);
      expect(startsReceived(h)).toEqual([]);
      expect((await h.ctx.ports.hosts.getHost(SITE, 'node01'))?.lifecycle.status).toBe('awaiting-operator');

      // Waiting changes nothing by itself: still no start, host untouched.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(startsReceived(h)).toEqual([]);
      expect(h.world.runningOn('vm-db')).toEqual(['node01']);

      // A confirmation for another host is refused; the operator then pulls the plug and confirms.
      await expect(
        confirmPowerOff(h.ctx, { incidentId: waiting.incidentId, hostId: 'node02', operator: 'alice' }),
      ).rejects.toBeInstanceOf(ConflictError);
      h.world.powerOff('node01');
      const confirmedAt = h.journal.entries.length;
      await confirmPowerOff(h.ctx, {
        incidentId: waiting.incidentId,
        hostId: 'node01',
        operator: 'alice@ops',
      });
      await h.settle();

      const done = h.execution();
      expect(done.status).toBe('succeeded');
      expect(mainPath(done)).toEqual(
        expect.arrayContaining([
          STATE.AwaitOperator,
          STATE.OperatorOutcome,
          STATE.OperatorConfirmedOff,
          STATE.MarkFenced,
        ]),
      );
      const starts = startsReceived(h);
      expect(starts).toHaveLength(HA_VMS.length);
      expect(starts.every((s) => s.seq > confirmedAt)).toBe(true);
      const incident = await h.incident();
      expect(incident.outcome).toBe('recovered');
      const timeline = await h.timeline(incident.incidentId);
      expect(timeline.find((e) => e.kind === 'fenced')?.data).toMatchObject({ by: 'operator' });
      expect(timeline.filter((e) => e.kind === 'fence-failed').length).toBeGreaterThanOrEqual(5);
    },
  );

  scenario(
    '4b. fence results never come (timeouts) → the fence deadline passes → AwaitOperator; the host comes back → false alarm, nothing started',
    async () => {
      h = await createHarness({ policy: { fenceDeadlineMs: 3000 } });
      h.relay('relay-a').script = { fence: () => 'ignore' };
      h.relay('relay-b').script = { fence: () => 'ignore' };
      h.startRelays();
      h.world.crash('node01');
      await waitFor('the incident to await the operator', async () => {
        const incident = (await harness().incidents())[0];
        return incident?.operatorTaskToken ? incident : undefined;
      });
      const execution = h.execution();
      const fenceFailed = eventsOfType(execution, 'StateFailed').filter((e) => e.state.name === STATE.Fence);
      // Each attempt timed out; the last dispatch found the deadline passed and gave up.
      expect(fenceFailed.slice(0, -1).every((e) => e.Error === 'States.Timeout')).toBe(true);
      expect(fenceFailed.at(-1)?.Error).toBe(WORKFLOW_ERROR.FenceDeadlinePassed);
      expect(fencesReceived(h).length).toBeGreaterThanOrEqual(2);

      h.world.revive('node01');
      await h.settle();
      const done = h.execution();
      expect(done.status).toBe('succeeded');
      expect(mainPath(done).slice(-3)).toEqual([
        STATE.AwaitOperator,
        STATE.OperatorOutcome,
        STATE.HostCameBack,
      ]);
      expect((await h.incident()).outcome).toBe('false-alarm');
      expect(startsReceived(h)).toEqual([]);
      expect(h.world.runningOn('vm-db')).toEqual(['node01']);
      expect((await h.ctx.ports.hosts.getHost(SITE, 'node01'))?.lifecycle.status).toBe('up');
    },
  );

  scenario(
    '6. a VM start fails on its planned host → its capacity is released → started on another host',
    async () => {
      h = await createHarness();
      let failed = false;
      const failDbOnce = {
        start: (command: { vm: { id: string } }) => {
          if (command.vm.id !== 'vm-db' || failed) return 'start' as const;
          failed = true;
          return 'fail' as const;
        },
      };
      h.relay('relay-a').script = failDbOnce;
      h.relay('relay-b').script = failDbOnce;
      h.startRelays();
      h.world.crash('node01');
      await h.incidentsStarted();
      await h.settle();

      const execution = h.execution();
      const planned = planOf(execution)
        .waves.flatMap((w) => w.vms)
        .find((vm) => vm.vmId === 'vm-db');
      const dbStarts = startsReceived(h).filter((s) => s.command.vm.id === 'vm-db');
      expect(dbStarts).toHaveLength(2);
      const [first, second] = dbStarts;
      expect(first?.command.hostId).toBe(planned?.hostId);
      expect(second?.command.hostId).not.toBe(first?.command.hostId);
      expect(h.world.runningOn('vm-db')).toEqual([second?.command.hostId]);

      // In the iteration: StartVm failed (VmStartFailedError) → ReleaseCapacity → PickNextHost → reserve, start.
      const caught = eventsOfType(execution, 'StateCaught').filter((e) => e.state.name === STATE.StartVm);
      expect(caught).toHaveLength(1);
      expect(
        statesEntered(execution).filter((s) => s === STATE.ReleaseCapacity || s === STATE.PickNextHost),
      ).toEqual([STATE.ReleaseCapacity, STATE.PickNextHost]);

      const incident = await h.incident();
      expect(incident.outcome).toBe('recovered');
      const timeline = await h.timeline(incident.incidentId);
      const dbEvents = timeline
        .filter((e) => e.data?.vmId === 'vm-db')
        .map((e) => ({ label: `${e.kind}@${String(e.data?.hostId)}`, at: e.at }));
      const story = [
        `capacity-reserved@${first?.command.hostId}`,
        `start-ordered@${first?.command.hostId}`,
        `start-failed@${first?.command.hostId}`,
        `capacity-reserved@${second?.command.hostId}`,
        `start-ordered@${second?.command.hostId}`,
        `vm-started@${second?.command.hostId}`,
      ];
      expect(dbEvents.map((e) => e.label).sort()).toEqual([...story].sort());
      // In this order in time. Steps that run within one millisecond (virtual time stands still while
      // they run) share it, and the timeline lists lines of one millisecond by kind.
      const times = story.map((label) => dbEvents.find((e) => e.label === label)?.at ?? Number.NaN);
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(timeline.find((e) => e.kind === 'start-failed')?.detail).toContain(
        'its reservation is released',
      );
      // Rule 5: the failed attempt's hold is gone from the first host right away (not only once VMs report).
      const firstHost = await h.ctx.ports.hosts.getHost(SITE, first?.command.hostId ?? '');
      expect(Object.keys(firstHost?.reservations ?? {}).filter((id) => id.endsWith('.vm-db.1'))).toEqual([]);
      await waitForSteadyState(h);
    },
  );
});
