import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE } from '../../contracts/workflow';
import { type LocalDynamo, startDynalite } from '../support/dynalite';
import { createHarness, type Harness, mainPath, SITE, startsReceived, waitFor } from './harness';

/**
 * The main scenario once more on the DynamoDB stores (dynalite): single-item conditional writes all the way,
 * as in AWS. Slower than memory, so only the path that writes the most.
 */

let dynamo: LocalDynamo;
let h: Harness | undefined;

beforeAll(async () => {
  dynamo = await startDynalite();
});

afterAll(async () => {
  await h?.dispose();
  await dynamo.stop();
});

describe('failover on dynalite', () => {
  it('fence confirmed off → restarts in priority waves → recovered, with no start before the read-back', async () => {
    // Real time (dynalite is real I/O): the fence and the starts are answered at once, and get all the time
    // a loaded machine may need to carry that answer, so that no timeout can change the path.
    h = await createHarness({
      dynamo,
      policy: {
        fenceAttemptTimeoutMs: 60_000,
        fenceDeadlineMs: 120_000,
        startTimeoutMs: 60_000,
        relaySilentAfterMs: 60_000,
      },
    });
    const harness = h;
    expect(h.state).toBeNull();
    h.startRelays();
    h.world.crash('node01');
    await h.incidentsStarted();
    await h.settle(90_000);

    const execution = h.execution();
    expect(execution.status).toBe('succeeded');
    expect(mainPath(execution)).toContain(STATE.MarkFenced);
    expect((await h.incident()).outcome).toBe('recovered');
    const off = h.journal.results().find((r) => r.result.powerState === 'off');
    const starts = startsReceived(h);
    expect(starts.map((s) => s.command.vm.id).sort()).toEqual(['vm-app', 'vm-batch', 'vm-db', 'vm-web']);
    expect(Math.min(...starts.map((s) => s.seq))).toBeGreaterThan(off?.seq ?? Number.POSITIVE_INFINITY);
    await waitFor('every reservation released', async () => {
      const hosts = await harness.ctx.ports.hosts.listHosts(SITE);
      return hosts.every((host) => Object.keys(host.reservations).length === 0) ? true : undefined;
    });
    await h.dispose();
    expect(h.world.violations).toEqual([]);
  });
});
