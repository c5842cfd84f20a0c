import { afterEach, describe, expect, it } from 'vitest';
import {
  type CommandResult,
  type HostObservation,
  type RelayCommand,
  ReportResponseSchema,
} from '../../contracts/relay-protocol';
import { STATE } from '../../contracts/workflow';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane';
import { credentialOf, HOSTS, HttpRelay, observed, SITE, TEST_POLICY, waitFor } from './support';

/**
 * The host-incident path end to end on the local control plane (HTTP ingest, dynalite, the synthesized
 * definition on LocalWorkflow), with a relay played by hand: a host that boots again during its incident,
 * and an operator who confirms after the failover stopped waiting.
 */

let plane: LocalControlPlane | undefined;

afterEach(async () => {
  await plane?.stop();
  plane = undefined;
});

/** A plane with one relay that has reported every host once, node01's VM registered as HA. */
async function start(policy: typeof TEST_POLICY) {
  const cp = await startLocalControlPlane({
    policy,
    detectorTickMs: 200,
    waitOverridesMs: { [STATE.WaitBeforeConfirm]: 50 },
    retryIntervalMs: 100,
  });
  plane = cp;
  const enrolled = await cp.operator('enrollRelay', { params: { siteId: SITE }, body: { relayId: 'r1' } });
  const relay = new HttpRelay(cp.url, 'r1', credentialOf(enrolled.body));
  await relay.report(HOSTS.map((h) => observed(h)));
  const meta = await cp.operator('setVmMetadata', {
    params: { siteId: SITE, vmId: 'node01-vm1' },
    body: { ha: true, priority: 'high' },
  });
  expect(meta.status).toBe(200);
  return { cp, relay };
}

/** Reports `world()` with the results given; returns the commands the response carries. */
async function report(
  relay: HttpRelay,
  world: () => HostObservation[],
  results: CommandResult[] = [],
): Promise<RelayCommand[]> {
  const answer = await relay.report(world(), results);
  expect(answer.status).toBe(200);
  return ReportResponseSchema.parse(answer.body).commands;
}

/** Reports until every start command is out, answering each as started; returns the starts. */
async function startEverything(relay: HttpRelay, world: () => HostObservation[], count: number) {
  const done = new Map<string, RelayCommand>();
  await waitFor(`${count} start(s) answered`, async () => {
    const commands = await report(relay, world);
    for (const command of commands) {
      if (command.kind !== 'start-vm' || done.has(command.commandId)) continue;
      done.set(command.commandId, command);
      await report(relay, world, [
        {
          commandId: command.commandId,
          incidentId: command.incidentId,
          outcome: 'succeeded',
          finishedAt: Date.now(),
        },
      ]);
    }
    return done.size >= count ? [...done.values()] : undefined;
  });
  return [...done.values()];
}

function pathOf(cp: LocalControlPlane, executionArn: string): string[] {
  const execution = cp.workflow.executions().find((e) => e.executionArn === executionArn);
  return execution?.events.flatMap((e) => (e.type === 'StateEntered' ? [e.state.name] : [])) ?? [];
}

describe('a host that boots again during its incident', () => {
  it('is not fenced: the fence names the failed boot, the relay refuses it, and the old boot’s HA VM restarts', async () => {
    const { cp, relay } = await start(TEST_POLICY);
    const crashedAt = Date.now() - 1000;
    let rebooted = false;
    const world = (): HostObservation[] =>
      HOSTS.map((h) =>
        h !== 'node01'
          ? observed(h)
          : rebooted
            ? { ...observed(h), bootId: 'boot-node01-2', vms: [] }
            : observed(h, Date.now() - crashedAt),
      );

    // node01 goes silent; the fence command comes, naming the boot that went silent
    const fence = await waitFor('a fence command', async () =>
      (await report(relay, world)).find((c) => c.kind === 'fence'),
    );
    expect(fence).toMatchObject({ kind: 'fence', hostId: 'node01', bootId: 'boot-node01' });

    // node01 boots again (its BMC never answered): the relay hears the new boot and refuses the fence
    rebooted = true;
    await report(relay, world, [
      {
        commandId: fence.commandId,
        incidentId: fence.incidentId,
        outcome: 'failed',
        refused: 'stale-boot',
        detail: 'node01 is alive in boot boot-node01-2, not boot boot-node01 the fence was for',
        finishedAt: Date.now(),
      },
    ]);

    // then its HA VM of the failed boot restarts, and the incident closes recovered, never fenced
    const starts = await startEverything(relay, world, 1);
    expect(starts.map((c) => (c.kind === 'start-vm' ? c.vm.id : ''))).toEqual(['node01-vm1']);
    const incident = await waitFor('the incident closed', async () => {
      const [found] = await cp.ctx.ports.incidents.list({ siteId: SITE });
      return found?.closedAt === null ? undefined : found;
    });
    expect(incident.outcome).toBe('recovered');
    const path = pathOf(cp, incident.executionArn ?? '');
    expect(path).toContain(STATE.HostRebooted);
    expect(path).not.toContain(STATE.MarkFenced);
    const fences = (await cp.ctx.ports.commands.listForIncident(SITE, incident.incidentId)).filter(
      (c) => c.command.kind === 'fence',
    );
    expect(fences).toHaveLength(1);
    expect((await cp.ctx.ports.hosts.getHost(SITE, 'node01'))?.lifecycle).toEqual({
      status: 'up',
      bootId: 'boot-node01-2',
    });
  });
});

describe('an operator who confirms after the failover stopped waiting', () => {
  it('still gets the VMs restarted, in an execution that resumes the incident', async () => {
    const { cp, relay } = await start({
      ...TEST_POLICY,
      fenceAttemptTimeoutMs: 1000,
      fenceDeadlineMs: 1000,
      operatorTimeoutMs: 1000,
    });
    const crashedAt = Date.now() - 1000;
    const world = (): HostObservation[] =>
      HOSTS.map((h) => (h === 'node01' ? observed(h, Date.now() - crashedAt) : observed(h)));

    // every fence fails (the BMC is dead), the operator is awaited, and nobody answers within 1 s
    const failed = new Set<string>();
    const incident = await waitFor(
      'the wait for an operator to end',
      async () => {
        for (const command of await report(relay, world)) {
          if (command.kind !== 'fence' || failed.has(command.commandId)) continue;
          failed.add(command.commandId);
          await report(relay, world, [
            {
              commandId: command.commandId,
              incidentId: command.incidentId,
              outcome: 'failed',
              powerState: 'unknown',
              finishedAt: Date.now(),
            },
          ]);
        }
        const [found] = await cp.ctx.ports.incidents.list({ siteId: SITE });
        return found?.operatorWaitEndedAt == null ? undefined : found;
      },
      20_000,
    );
    const first = await waitFor('the first execution to end', () =>
      cp.workflow
        .executions()
        .find((e) => e.executionArn === incident.executionArn && e.status !== 'running'),
    );
    expect(first.error?.error).toBe('OperatorNeverAnsweredError');
    expect(incident).toMatchObject({ outcome: 'awaiting-operator', closedAt: null });

    // when the operator confirms node01 off afterwards
    const answer = await cp.operator('confirmPowerOff', {
      params: { incidentId: incident.incidentId },
      body: { hostId: 'node01', operator: 'alice' },
    });
    expect(answer.status).toBe(200);

    // then a second execution resumes at the confirmation, restarts the HA VM, and the incident recovers
    await startEverything(relay, world, 1);
    const closed = await waitFor('the incident closed', async () => {
      const found = await cp.ctx.ports.incidents.get(incident.incidentId);
      return found?.closedAt === null ? undefined : found;
    });
    expect(closed?.outcome).toBe('recovered');
    const executions = cp.workflow.executions();
    expect(executions).toHaveLength(2);
    const resumed = executions.find((e) => e.executionArn !== incident.executionArn);
    expect(resumed?.input).toMatchObject({ resume: 'operator-confirmed' });
    expect(pathOf(cp, resumed?.executionArn ?? '').slice(0, 4)).toEqual([
      STATE.StartOrResume,
      STATE.OperatorOutcome,
      STATE.OperatorConfirmedOff,
      STATE.MarkFenced,
    ]);
  });
});
