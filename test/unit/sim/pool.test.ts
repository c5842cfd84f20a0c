import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultConcurrency, type PoolProgress, runPool } from '../../../local/sim/pool';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('runPool', () => {
  it('never runs more than `concurrency` jobs at once, and does reach it', async () => {
    let inFlight = 0;
    let peak = 0;
    await runPool(
      Array.from({ length: 12 }, (_, i) => i),
      async (i) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(5 + (i % 3) * 5);
        inFlight--;
        return i;
      },
      { concurrency: 3 },
    );
    expect(peak).toBe(3);
    expect(inFlight).toBe(0);
  });

  it('returns results in input order even when jobs finish out of order', async () => {
    const delays = [30, 5, 20, 1, 10];
    const results = await runPool(delays, async (ms, i) => {
      await sleep(ms);
      return `job ${i} after ${ms}`;
    });
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(results.map((r) => (r.ok ? r.value : null))).toEqual(
      delays.map((ms, i) => `job ${i} after ${ms}`),
    );
  });

  it('captures a failing job, rejected or thrown synchronously, and runs the rest', async () => {
    const results = await runPool(
      [1, 2, 3, 4],
      (n) => {
        if (n === 2) throw new Error('sync boom');
        if (n === 3) return Promise.reject(new Error('async boom'));
        return Promise.resolve(n * 10);
      },
      { concurrency: 2 },
    );
    expect(results.map((r) => r.ok)).toEqual([true, false, false, true]);
    const errors = results.flatMap((r) => (r.ok ? [] : [String(r.error)]));
    expect(errors).toEqual(['Error: sync boom', 'Error: async boom']);
    expect(results[3]).toMatchObject({ ok: true, value: 40 });
  });

  it('reports progress once per job, counting up to the total', async () => {
    const seen: PoolProgress<number>[] = [];
    await runPool([3, 1, 2], async (ms) => sleep(ms).then(() => ms), {
      concurrency: 3,
      onProgress: (p) => seen.push(p),
    });
    expect(seen.map((p) => p.done)).toEqual([1, 2, 3]);
    expect(seen.every((p) => p.total === 3)).toBe(true);
    expect(seen.map((p) => p.result.index).sort()).toEqual([0, 1, 2]);
  });

  it('handles no items, and refuses a concurrency below one', async () => {
    expect(await runPool([], async () => 1)).toEqual([]);
    await expect(runPool([1], async () => 1, { concurrency: 0 })).rejects.toThrow(RangeError);
  });

  it('defaults to four runs per CPU, at most 8', () => {
    expect(defaultConcurrency()).toBe(Math.min(8, 4 * availableParallelism()));
  });
});
