import { ConcurrentUpdateError } from '../errors';

/** A lost optimistic-lock race is re-read and retried this many times before it surfaces. */
const MAX_ATTEMPTS = 4;

/**
 * Runs a read-decide-write attempt again when its conditional write lost a race (ConcurrentUpdateError):
 * each attempt re-reads, so the decision is always taken on the current record.
 */
export async function retryOnConflict<T>(
  attempt: () => Promise<T>,
  maxAttempts: number = MAX_ATTEMPTS,
): Promise<T> {
  for (let n = 1; ; n += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof ConcurrentUpdateError) || n >= maxAttempts) throw error;
    }
  }
}

/** What a read-decide-write attempt decided: nothing to write (its result), or the conditional write. */
export type Decision<T> = { readonly done: T } | { readonly write: () => Promise<T> };

/**
 * retryOnConflict over read → decide → conditional write, which may start from `seen` (the record as the
 * caller just read it) to save the first read. Only a write may rest on `seen`, since the write is
 * conditional on the version seen and a stale one only costs a re-read: a decision to write nothing, or a
 * refusal (decide throws), is taken again on a fresh read.
 */
export async function readDecideWrite<R, T>(
  read: () => Promise<R>,
  decide: (record: R) => Decision<T> | Promise<Decision<T>>,
  seen?: R,
  maxAttempts?: number,
): Promise<T> {
  let optimistic = seen;
  return retryOnConflict(async () => {
    for (;;) {
      const guess = optimistic;
      optimistic = undefined;
      const record = guess ?? (await read());
      let decision: Decision<T>;
      try {
        decision = await decide(record);
      } catch (error) {
        if (guess !== undefined) continue;
        throw error;
      }
      if ('write' in decision) return decision.write();
      if (guess !== undefined) continue;
      return decision.done;
    }
  }, maxAttempts);
}
