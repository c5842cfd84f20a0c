import { ConcurrentUpdateError } from '../errors';

/** A lost optimistic-lock race is re-read and retried this many times before it surfaces. */
const MAX_ATTEMPTS = 4;

/**
 * Runs a read-decide-write attempt again when its conditional write lost a race (ConcurrentUpdateError):
 * each attempt re-reads, so the decision is always taken on the current record.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof ConcurrentUpdateError) || n >= MAX_ATTEMPTS) throw error;
    }
  }
}
