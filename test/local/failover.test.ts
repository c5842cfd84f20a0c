import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CommandResult,
  type FenceCommand,
  type HostObservation,
  ReportResponseSchema,
} from '../../contracts/relay-protocol';
import { STATE } from '../../contracts/workflow';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane';
import { credentialOf, HOSTS, HttpRelay, observed, SITE, TEST_POLICY, waitFor } from './support';

/**
 * A host goes silent at both relays of a site: ingest (over HTTP) opens the incident in dynalite and starts
 * its execution on LocalWorkflow; the fence command reaches a relay in a report response, the relay reports
 * the power-off read back, and the execution goes on past PlanPlacement to the end.
 */

let plane: LocalControlPlane;

beforeAll(async () => {
  plane = await startLocalControlPlane({
    policy: TEST_POLICY,
    detectorTickMs: 200,
    // The 1 s confirmation wait (the definition's unit) is not what this test is about.
    waitOverridesMs: { [STATE.WaitBeforeConfirm]: 50 },
    retryIntervalMs: 100,
  });
});

afterAll(async () => {
  await plane.stop();
});

describe('failover through the local control plane', () => {
  it('silent host → incident in dynalite → fence via report response → power-off-confirmed → placement', async () => {
    const relays: HttpRelay[] = [];
    for (const relayId of ['relay-a', 'relay-b']) {
      const enrolled = await plane.operator('enrollRelay', { params: { siteId: SITE }, body: { relayId } });
      expect(enrolled.status).toBe(201);
      relays.push(new HttpRelay(plane.url, relayId, credentialOf(enrolled.body)));
    }
    for (const relay of relays) expect((await relay.report(HOSTS.map((h) => observed(h)))).status).toBe(200);

    // node01 stops answering: both relays call it silent from now on.
    const crashedAt = Date.now() - 1000;
    const world = (): HostObservation[] =>
      HOSTS.map((h) => (h === 'node01' ? observed(h, Date.now() - crashedAt) : observed(h)));

    let fence: { command: FenceCommand; relay: HttpRelay } | undefined;
    const reportAll = async (): Promise<void> => {
      for (const relay of relays) {
        const answer = await relay.report(world());
        expect(answer.status).toBe(200);
        const command = ReportResponseSchema.parse(answer.body).commands.find((c) => c.kind === 'fence');
        if (command?.kind === 'fence' && fence === undefined) fence = { command, relay };
      }
    };
    await reportAll();

    const incident = await waitFor('the incident in dynalite with its execution', async () => {
      const [found] = await plane.ctx.ports.incidents.list({ siteId: SITE });
      return found?.executionArn ? found : undefined;
    });
    expect(incident.hostId).toBe('node01');
    const execution = plane.workflow.executions().find((e) => e.executionArn === incident.executionArn);
    expect(execution?.input.incident.incidentId).toBe(incident.incidentId);

    // Relays keep reporting (and stay live); the Fence task waits until a response carries its command.
    const ordered = await waitFor('a fence command in a report response', async () => {
      await reportAll();
      return fence;
    });
    expect(ordered.command).toMatchObject({ incidentId: incident.incidentId, hostId: 'node01' });
    expect(plane.workflow.executions()[0]?.status).toBe('running');

    const result: CommandResult = {
      commandId: ordered.command.commandId,
      incidentId: ordered.command.incidentId,
      outcome: 'succeeded',
      powerState: 'off',
      finishedAt: Date.now(),
    };
    expect((await ordered.relay.report(world(), [result])).status).toBe(200);

    const finished = await waitFor('the execution to finish', () => {
      const [only] = plane.workflow.executions();
      return only !== undefined && only.status !== 'running' ? only : undefined;
    });
    expect(finished.status).toBe('succeeded');
    const path = finished.events.flatMap((e) => (e.type === 'StateEntered' ? [e.state.name] : []));
    expect(path).toEqual(
      expect.arrayContaining([STATE.Fence, STATE.VerifyPowerOff, STATE.MarkFenced, STATE.PlanPlacement]),
    );
    expect(path.indexOf(STATE.PlanPlacement)).toBeGreaterThan(path.indexOf(STATE.VerifyPowerOff));

    const kinds = (await plane.ctx.ports.incidents.listEvents(incident.incidentId)).map((e) => e.kind);
    expect(kinds).toContain('power-off-confirmed');
    // Read back as an operator would (GET /v1/incidents/{incidentId} refuses ids with ':' today, see the report).
    const listed = await plane.operator('listIncidents', { query: { siteId: SITE } });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(incident.incidentId);
    expect(plane.metrics.total('IncidentOpened')).toBe(1);
    // Published by MarkFenced on the steps thread, recorded by this control plane.
    expect(plane.metrics.records('SecondsToFence')).toHaveLength(1);
  });

  it('runs the detector on its timer, and once on demand with capacity', async () => {
    // The 200 ms timer ticks by itself: its gauges are published on every pass.
    await waitFor('a tick of the detector timer', () =>
      plane.metrics.records('HostsSilent').length > 0 ? true : undefined,
    );
    const report = await plane.runDetectorOnce({ evaluateCapacity: true });
    expect(report.sitesChecked).toBe(1);
    expect(report.partitionedSites).toEqual([]);
    expect(plane.metrics.records('NPlusOneBroken').length).toBeGreaterThan(0);
  });
});

describe('stop during an incident', () => {
  it('aborts the execution waiting at Fence and stops cleanly', async () => {
    const other = await startLocalControlPlane({
      // The fence attempt would wait far longer than this test may run: a stop() that waited for it,
      // rather than aborting the execution, makes the test time out. No wall-clock bound needed.
      policy: { ...TEST_POLICY, fenceAttemptTimeoutMs: 3_600_000, fenceDeadlineMs: 7_200_000 },
      detectorTickMs: 0,
      waitOverridesMs: { [STATE.WaitBeforeConfirm]: 50 },
    });
    try {
      const enrolled = await other.operator('enrollRelay', {
        params: { siteId: SITE },
        body: { relayId: 'r1' },
      });
      const relay = new HttpRelay(other.url, 'r1', credentialOf(enrolled.body));
      await relay.report(HOSTS.map((h) => observed(h)));
      const silent = () => HOSTS.map((h) => (h === 'node02' ? observed(h, 5000) : observed(h)));
      await waitFor('the execution to reach Fence', async () => {
        await relay.report(silent());
        const [execution] = other.workflow.executions();
        const atFence = execution?.events.some(
          (e) => e.type === 'StateEntered' && e.state.name === STATE.Fence,
        );
        return atFence === true ? execution : undefined;
      });
    } finally {
      const started = performance.now();
      await other.stop();
      console.info(`stop() during an incident took ${Math.round(performance.now() - started)} ms`);
    }
    expect(other.workflow.executions().map((e) => e.status)).toEqual(['aborted']);
  });
});
