import { describe, expect, it } from 'vitest';
import {
  type DetectorFigures,
  detectorTicks,
  type Fleet,
  type IngestFigures,
  monthlyCost,
  reportsPerMonth,
  summarizeCost,
} from '../../../bench/cost-model';
import { makeDetectorHandler } from '../../../functions/detector/detector';
import { type FakeClock, memoryContext, quietLogger } from '../../functions/support';

const DETECTOR: DetectorFigures = {
  memoryMb: 128,
  tickSeconds: 10,
  runSeconds: 55,
  tickMsPerSite: 0,
  siteItemBytes: 0,
  controlRruPerSite: 0,
  capacityRruPerSite: 0,
  capacityEveryMinutes: 5,
  logBytesPerTick: 0,
  logBytesPerInvocation: 0,
};

describe('cost model', () => {
  it('a 10 s report is 262,800 reports a relay a month (research §3)', () => {
    expect(
      reportsPerMonth({ hosts: 50, hostsPerSite: 50, relaysPerSite: 1, reportIntervalSeconds: 10 }),
    ).toBe(262_800);
  });

  it('reproduces the research design (c) figure with its assumptions: ~$0.0097 per host', () => {
    // One relay per site, 10 ms at 128 MB, 1 WRU, nothing read, no logs; X-Ray left out.
    const fleet: Fleet = { hosts: 10_000, hostsPerSite: 50, relaysPerSite: 1, reportIntervalSeconds: 10 };
    const ingest: IngestFigures = {
      memoryMb: 128,
      billedMs: 10,
      wru: 1,
      rru: 0,
      reportBodyBytes: 100_000,
      functionLogBytes: 0,
      accessLogBytes: 0,
    };
    const s = summarizeCost(fleet, monthlyCost(fleet, ingest, DETECTOR));
    expect(s.liveness / fleet.hosts).toBeCloseTo(0.0097, 4);
  });

  it('meters an API request per started 512 KB of body', () => {
    const fleet: Fleet = { hosts: 50, hostsPerSite: 50, relaysPerSite: 1, reportIntervalSeconds: 10 };
    const base: IngestFigures = {
      memoryMb: 128,
      billedMs: 1,
      wru: 0,
      rru: 0,
      reportBodyBytes: 512 * 1024,
      functionLogBytes: 0,
      accessLogBytes: 0,
    };
    const api = (bytes: number) =>
      monthlyCost(fleet, { ...base, reportBodyBytes: bytes }, DETECTOR).find((l) => l.item.startsWith('API'))
        ?.dollars;
    expect(api(512 * 1024 + 1)).toBeCloseTo(2 * (api(512 * 1024) ?? 0), 10);
  });
});

describe('detector ticks', () => {
  it('match the real detector loop: ticks, and the last one starting at (ticks − 1) · tick', async () => {
    for (const [tickSeconds, runSeconds] of [
      [10, 55],
      [10, 60],
      [15, 55],
      [60, 55],
    ] as const) {
      const { ctx, clock } = memoryContext();
      const fake = clock as FakeClock;
      const start = fake.now();
      const handler = makeDetectorHandler(ctx, {
        tickSeconds,
        runSeconds,
        logger: quietLogger(),
        sleep: async (ms) => fake.advance(ms),
      });
      const summary = await handler(
        { time: '2026-11-25T14:31:00Z' },
        { getRemainingTimeInMillis: () => 600_000 },
      );
      expect(summary.ticks).toBe(detectorTicks(tickSeconds, runSeconds));
      expect(fake.now() - start).toBe((summary.ticks - 1) * tickSeconds * 1000);
    }
  });
});
