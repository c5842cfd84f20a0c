import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryState } from '../../adapters/memory/memory-state';
import { setFencing } from '../../app/operator';
import type { RelayReport } from '../../contracts/relay-protocol';
import { MAX_REPORT_BYTES } from '../../contracts/relay-protocol';
import { STATE } from '../../contracts/workflow';
import { synthesizedDefinition } from '../../local/definition';
import {
  CLUSTER,
  createHarness,
  fencesReceived,
  type Harness,
  mainPath,
  onVirtualTimeScenario,
  SITE,
  startsReceived,
  waitFor,
} from './harness';

/**
 * Scenarios in which the control plane must hold back: the host came back, policy forbids the fence, a
 * report arrives twice, or requests are malformed or hostile. Each runs the synthesized definition.
 */

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

/** Nothing fenced and nothing started: no command ever went out, and node01 still has power and its VMs. */
function expectUntouched(harness: Harness, hostIds: readonly string[] = ['node01']): void {
  expect(harness.journal.commands()).toEqual([]);
  for (const hostId of hostIds) {
    const host = harness.world.host(hostId);
    expect(host.powered, `${hostId} powered`).toBe(true);
    for (const vmId of host.vms.keys()) expect(harness.world.runningOn(vmId)).toEqual([hostId]);
  }
}

describe('when the control plane must hold back', () => {
  scenario(
    '1. the host recovers during ConfirmSilence → FalseAlarm: nothing fenced, nothing started',
    async () => {
      h = await createHarness();
      h.startRelays();
      h.world.crash('node01');
      await h.incidentsStarted();
      // Heard again within the confirmation wait (1 s): a network blip, not a dead host.
      h.world.revive('node01');
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
        STATE.FalseAlarm,
      ]);
      const incident = await h.incident();
      expect(incident.outcome).toBe('false-alarm');
      expect(incident.fencedAt).toBeNull();
      expect(incident.closedAt).not.toBeNull();
      const timeline = await h.timeline(incident.incidentId);
      const at = (kind: string) => timeline.find((e) => e.kind === kind)?.at ?? Number.NaN;
      expect(timeline.map((e) => e.kind).sort()).toEqual([
        'closed',
        'false-alarm',
        'ha-vms',
        'host-came-back',
        'suspected',
      ]);
      // Ingest recorded the return before the confirmation looked (events of one millisecond may sort either way).
      expect(at('suspected')).toBeLessThanOrEqual(at('host-came-back'));
      expect(at('host-came-back')).toBeLessThanOrEqual(at('false-alarm'));
      expect(at('false-alarm')).toBeLessThanOrEqual(at('closed'));
      expect((await h.ctx.ports.hosts.getHost(SITE, 'node01'))?.lifecycle.status).toBe('up');
      expectUntouched(h);
    },
  );

  scenario(
    '5. fencing disabled on the cluster (setFencing) → FencingSuppressed: nothing fenced (rule 7)',
    async () => {
      h = await createHarness();
      await setFencing(h.ctx, { siteId: SITE, clusterId: CLUSTER, enabled: false, caller: 'alice@ops' });
      h.startRelays();
      h.world.crash('node01');
      await h.incidentsStarted();
      await h.settle();

      const execution = h.execution();
      expect(mainPath(execution)).toEqual([
        STATE.StartOrResume,
        STATE.Suspicion,
        STATE.Suspect,
        STATE.WaitBeforeConfirm,
        STATE.ConfirmSilence,
        STATE.StillSilent,
        STATE.CheckFencingPolicy,
        STATE.FenceOrSuppress,
        STATE.FencingSuppressed,
      ]);
      expect(execution.output).toMatchObject({ fencing: { action: 'suppress', reason: 'fencing-disabled' } });
      const incident = await h.incident();
      expect(incident.outcome).toBe('fencing-suppressed');
      const suppressed = (await h.timeline(incident.incidentId)).find((e) => e.kind === 'fencing-suppressed');
      expect(suppressed?.data).toMatchObject({ reason: 'fencing-disabled' });
      expectUntouched(h);
    },
  );

  scenario(
    '5b. more than half of the cluster silent at once (3 of 4) → every incident FencingSuppressed (rule 3)',
    async () => {
      h = await createHarness();
      h.startRelays();
      const at = Date.now();
      for (const hostId of ['node01', 'node02', 'node03']) h.world.crash(hostId, at);
      await h.incidentsStarted(3);
      await h.settle();

      const executions = h.workflow.executions();
      expect(executions).toHaveLength(3);
      for (const execution of executions) {
        expect(mainPath(execution).at(-1)).toBe(STATE.FencingSuppressed);
        expect(execution.output).toMatchObject({
          fencing: {
            action: 'suppress',
            reason: 'mass-silence',
            evidence: { silentHostsInCluster: 3, clusterHosts: 4 },
          },
        });
      }
      const incidents = await h.incidents();
      expect(incidents.map((i) => i.hostId).sort()).toEqual(['node01', 'node02', 'node03']);
      expect(incidents.every((i) => i.outcome === 'fencing-suppressed')).toBe(true);
      expectUntouched(h, ['node01', 'node02', 'node03']);
    },
  );

  scenario(
    '7. the same report twice, a replay (409) and the same facts under a new seq start ONE execution (rule 4)',
    async () => {
      h = await createHarness();
      const a = h.relay('relay-a');
      const b = h.relay('relay-b');
      h.world.crash('node01', Date.now() - 400);
      // relay-a alone calls node01 silent: relay-b still heard it at boot, so no incident yet.
      expect((await a.report()).statusCode).toBe(200);
      expect(await h.incidents()).toEqual([]);

      // relay-b's report completes the picture; it arrives twice at once, with relay-a's next one.
      const report = b.nextReport();
      const body = JSON.stringify(report);
      const responses = await Promise.all([b.report(body), b.report(body), a.report()]);
      expect(responses.map((r) => r.statusCode).sort()).toEqual([200, 200, 409]);
      // A late replay of the accepted report, and the same facts again with a new seq.
      const replay = await b.report(body);
      expect(replay.statusCode).toBe(409);
      expect(JSON.parse(replay.body ?? '{}')).toMatchObject({ error: 'stale-sequence' });
      expect((await b.report()).statusCode).toBe(200);
      expect((await a.report()).statusCode).toBe(200);

      expect(h.workflow.executions()).toHaveLength(1);
      expect(await h.incidents()).toHaveLength(1);
      expect(h.metrics.recorded.filter((m) => m.name === 'IncidentOpened')).toHaveLength(1);

      // The one execution runs to the end; nothing opens a second one meanwhile.
      h.startRelays();
      await h.settle();
      expect(h.workflow.executions()).toHaveLength(1);
      expect((await h.incident()).outcome).toBe('recovered');
      expect(fencesReceived(h)).toHaveLength(1);
      expect(new Set(startsReceived(h).map((s) => s.command.vm.id)).size).toBe(startsReceived(h).length);
    },
  );

  scenario(
    '8. bad and hostile bodies during an incident change nothing: stores and executions stay as they were',
    async () => {
      // relay-a holds the fence (its BMC is slow): the incident waits in Fence while the requests arrive.
      h = await createHarness({ policy: { fenceAttemptTimeoutMs: 30_000, fenceDeadlineMs: 60_000 } });
      const a = h.relay('relay-a');
      const b = h.relay('relay-b');
      a.script = { fence: () => 'hold' };
      h.startRelays();
      h.world.crash('node01');
      const fence = await waitFor('relay-a to hold the fence', () => a.held[0]);
      await h.stopRelays();
      const state = h.state;
      if (state === null) throw new Error('this scenario runs on the in-memory stores');

      const executionsBefore = h.workflow.executions();
      const stores = (): MemoryState => structuredClone(state);
      const withoutRelays = (s: MemoryState) => ({ ...s, relays: null });
      const valid = (overrides: Partial<RelayReport> = {}): RelayReport => ({
        ...a.nextReport(),
        ...overrides,
      });
      const auth = (relay = a) => `Bearer ${relay.credential}`;
      const forged = `Bearer hrc1.${SITE}.relay-a.${'A'.repeat(43)}`;
      const acceptedSeq = a.seq;

      // Refused outright: every store unchanged, relays' liveness included.
      const refused: [string, string, string | undefined, number][] = [
        ['malformed JSON', '{"protocol":1,"siteId":', auth(), 400],
        ['empty body', '', auth(), 400],
        ['oversized body', JSON.stringify({ pad: 'x'.repeat(MAX_REPORT_BYTES) }), auth(), 413],
        ['no credential', JSON.stringify(valid()), undefined, 401],
        ['forged secret', JSON.stringify(valid()), forged, 401],
        [
          "relay-a's credential on relay-b's report",
          JSON.stringify({ ...valid(), relayId: 'relay-b' }),
          auth(),
          403,
        ],
        [
          'unknown site',
          JSON.stringify({ ...valid(), siteId: 'site-x' }),
          `Bearer hrc1.site-x.relay-a.${'B'.repeat(43)}`,
          403,
        ],
        ['replayed seq', JSON.stringify(valid({ seq: acceptedSeq - 1 })), auth(), 409],
        ['clock an hour off', JSON.stringify(valid({ sentAt: Date.now() - 3_600_000 })), auth(), 400],
        ['unknown field', JSON.stringify({ ...valid(), admin: true }), auth(), 400],
        ['__proto__ key', `{"__proto__":{"polluted":1},${JSON.stringify(valid()).slice(1)}`, auth(), 400],
        ['negative seq', JSON.stringify(valid({ seq: -1 })), auth(), 400],
        ['hosts not a list', JSON.stringify({ ...valid(), hosts: { node01: {} } }), auth(), 400],
        [
          'host id with a path in it',
          JSON.stringify({ ...valid(), hosts: [{ ...valid().hosts[0], hostId: '../node01' }] }),
          auth(),
          400,
        ],
        [
          'fence result "off" under a forged credential',
          JSON.stringify(
            valid({
              results: [
                {
                  commandId: fence.commandId,
                  incidentId: fence.incidentId,
                  outcome: 'succeeded',
                  powerState: 'off',
                  finishedAt: Date.now(),
                },
              ],
            }),
          ),
          forged,
          401,
        ],
      ];
      for (const [what, body, authorization, status] of refused) {
        const before = stores();
        const response = await h.ingest(body, authorization);
        expect(response.statusCode, what).toBe(status);
        expect(stores(), what).toEqual(before);
        expect(({} as Record<string, unknown>).polluted, what).toBeUndefined();
      }

      // Accepted from an enrolled relay, but carrying results that are not its to give: its liveness write is
      // the only change; no command, incident, host or VM moves.
      const results: [string, () => RelayReport][] = [
        [
          "relay-b reports relay-a's fence as read back off",
          () => ({
            ...b.nextReport(),
            results: [
              {
                commandId: fence.commandId,
                incidentId: fence.incidentId,
                outcome: 'succeeded',
                powerState: 'off',
                finishedAt: Date.now(),
              },
            ],
          }),
        ],
        [
          'a fence result naming another incident',
          () => ({
            ...a.nextReport(),
            results: [
              {
                commandId: fence.commandId,
                incidentId: `${SITE}.node02.1`,
                outcome: 'succeeded',
                powerState: 'off',
                finishedAt: Date.now(),
              },
            ],
          }),
        ],
        [
          'a result for a command that was never issued',
          () => ({
            ...a.nextReport(),
            results: [
              {
                commandId: `${fence.incidentId}:fence:9`,
                incidentId: fence.incidentId,
                outcome: 'succeeded',
                powerState: 'off',
                finishedAt: Date.now(),
              },
            ],
          }),
        ],
      ];
      for (const [what, build] of results) {
        const report = build();
        const relay = report.relayId === 'relay-a' ? a : b;
        const before = withoutRelays(stores());
        const response = await h.ingest(JSON.stringify(report), auth(relay));
        expect(response.statusCode, what).toBe(200);
        expect(withoutRelays(stores()), what).toEqual(before);
      }

      // The executions saw none of it: same ones, same status, not one more event.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const executionsAfter = h.workflow.executions();
      expect(executionsAfter.map((e) => [e.name, e.status, e.events.length])).toEqual(
        executionsBefore.map((e) => [e.name, e.status, e.events.length]),
      );
      expect(mainPath(executionsAfter[0] ?? executionsBefore[0] ?? h.execution()).at(-1)).toBe(STATE.Fence);
      expect(startsReceived(h)).toEqual([]);
      expect(h.world.host('node01').powered).toBe(true);

      // The real answer still works: relay-a's BMC reads off, and the incident recovers.
      a.answerHeld(fence.commandId, { outcome: 'succeeded', powerState: 'off' });
      h.startRelays();
      await h.settle();
      expect((await h.incident()).outcome).toBe('recovered');
    },
  );
});
