import { describe, expect, it, vi } from 'vitest';
import { makeDetectorHandler } from '../../functions/detector/detector';
import { memoryContext, quietLogger, seedSite } from './support';

const MINUTE = 60_000;
/** 2025-06-01T12:05:00Z: a capacity minute; 12:07 is not. */
const AT_05 = Date.UTC(2025, 5, 1, 12, 5, 0);
const AT_07 = Date.UTC(2025, 5, 1, 12, 7, 0);

async function setup(startAt: number, opts: { tickSeconds?: number; runSeconds?: number } = {}) {
  const env = memoryContext();
  env.clock.t = startAt;
  await seedSite(env.ctx);
  const logger = quietLogger();
  // Sleeping advances the fake clock, and each pass takes 200 ms of it.
  const sleep = vi.fn(async (ms: number) => env.clock.advance(ms));
  const listSites = env.ctx.ports.sites.listSites.bind(env.ctx.ports.sites);
  const passes = vi.spyOn(env.ctx.ports.sites, 'listSites').mockImplementation(async () => {
    env.clock.advance(200);
    return listSites();
  });
  const handler = makeDetectorHandler(env.ctx, {
    tickSeconds: opts.tickSeconds ?? 10,
    runSeconds: opts.runSeconds ?? 55,
    logger,
    sleep,
  });
  let remaining = 60_000;
  const lambdaContext = { getRemainingTimeInMillis: () => remaining - (env.clock.t - startAt) };
  const setRemaining = (ms: number) => {
    remaining = ms;
  };
  const tickLogs = () =>
    logger.info.mock.calls
      .filter(([message]) => message === 'detector tick')
      .map(([, attributes]) => attributes);
  return { ...env, handler, lambdaContext, setRemaining, logger, sleep, passes, tickLogs };
}

describe('detector handler', () => {
  it('runs one pass per tick until the run window ends, logging one summary line per tick', async () => {
    const env = await setup(AT_07);
    const summary = await env.handler({ time: new Date(AT_07).toISOString() }, env.lambdaContext);
    // Ticks start at 0, 10, 20, 30, 40 and 50 s; the next (60 s) would be past the 55 s window.
    expect(summary).toEqual({ ticks: 6, failedTicks: 0, capacityEvaluated: false });
    expect(env.passes).toHaveBeenCalledTimes(6);
    expect(env.sleep.mock.calls.map(([ms]) => ms)).toEqual([9800, 9800, 9800, 9800, 9800]);
    expect(env.tickLogs()).toHaveLength(6);
    expect(env.tickLogs()[0]).toMatchObject({
      tick: 0,
      evaluateCapacity: false,
      report: { sitesChecked: 1 },
    });
    expect(env.clock.t - AT_07).toBeLessThan(MINUTE);
  });

  it('evaluates capacity on the first tick of every 5th minute only', async () => {
    const env = await setup(AT_05 + 1500); // started 1.5 s late: the schedule's time still decides
    const summary = await env.handler({ time: new Date(AT_05).toISOString() }, env.lambdaContext);
    expect(summary.capacityEvaluated).toBe(true);
    expect(env.tickLogs().map((t) => t?.evaluateCapacity)).toEqual([true, false, false, false, false, false]);
  });

  it('falls back to the clock when the event carries no time (local runner)', async () => {
    const env = await setup(AT_05);
    expect((await env.handler({}, env.lambdaContext)).capacityEvaluated).toBe(true);
    const other = await setup(AT_07);
    expect((await other.handler(undefined, other.lambdaContext)).capacityEvaluated).toBe(false);
  });

  it("stops early when the Lambda's remaining time would not cover another tick", async () => {
    const env = await setup(AT_07);
    env.setRemaining(25_000);
    const summary = await env.handler({ time: new Date(AT_07).toISOString() }, env.lambdaContext);
    // After the tick at 10 s, 15 s remain: enough for the tick at 20 s; after it, 5 s remain: stop.
    expect(summary.ticks).toBe(3);
  });

  it('logs a failing tick and goes on; the invocation still succeeds', async () => {
    const env = await setup(AT_07);
    env.passes.mockRejectedValueOnce(new Error('throttled'));
    const summary = await env.handler({ time: new Date(AT_07).toISOString() }, env.lambdaContext);
    expect(summary).toMatchObject({ ticks: 6, failedTicks: 1 });
    expect(env.logger.error).toHaveBeenCalledTimes(1);
  });

  it('fails the invocation when every tick failed, so the error alarm sees the outage', async () => {
    const env = await setup(AT_07, { runSeconds: 25 });
    env.passes.mockRejectedValue(new Error('table gone'));
    await expect(env.handler({}, env.lambdaContext)).rejects.toThrow('table gone');
    expect(env.logger.error).toHaveBeenCalledTimes(3);
  });
});
