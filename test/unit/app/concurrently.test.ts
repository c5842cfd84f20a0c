import { describe, expect, it } from 'vitest';
import { allSettledOrThrow, forEachConcurrently } from '../../../app/shared/concurrently';

/** A call that stays in flight until released, recording how many run at once. */
function gate() {
  let inFlight = 0;
  let most = 0;
  const waiting: (() => void)[] = [];
  const fn = async () => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    await new Promise<void>((resolve) => waiting.push(resolve));
    inFlight -= 1;
  };
  const releaseAll = async () => {
    while (waiting.length > 0 || inFlight > 0) {
      waiting.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { fn, releaseAll, most: () => most, inFlight: () => inFlight };
}

describe('forEachConcurrently', () => {
  it('calls every item once with at most `limit` in flight', async () => {
    const seen: number[] = [];
    const g = gate();
    const done = forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      seen.push(n);
      await g.fn();
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(g.inFlight()).toBe(3);
    await g.releaseAll();
    await done;
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(g.most()).toBe(3);
  });

  it('rejects with the first failure', async () => {
    await expect(
      forEachConcurrently([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error('two failed');
      }),
    ).rejects.toThrow('two failed');
  });

  it('refuses a limit below one and does nothing for no items', async () => {
    await expect(forEachConcurrently([1], 0, async () => {})).rejects.toThrow(RangeError);
    await expect(forEachConcurrently([], 4, async () => {})).resolves.toBeUndefined();
  });
});

describe('allSettledOrThrow', () => {
  it('resolves to every result in order', async () => {
    await expect(
      allSettledOrThrow<[number, string]>([Promise.resolve(1), Promise.resolve('two')]),
    ).resolves.toEqual([1, 'two']);
  });

  it('rejects with the first failure only once every task has settled', async () => {
    let slowDone = false;
    const slow = new Promise<undefined>((resolve) =>
      setTimeout(() => {
        slowDone = true;
        resolve(undefined);
      }, 20),
    );
    const failed = Promise.reject(new Error('first'));
    const later = Promise.reject(new Error('second'));
    await expect(allSettledOrThrow<[undefined, never, never]>([slow, failed, later])).rejects.toThrow(
      'first',
    );
    expect(slowDone).toBe(true);
  });
});
