/**
 * Runs `fn` over `items` with at most `limit` calls in flight, and resolves once all have; the first
 * rejection rejects the whole (the calls already started still finish). Independent single-item writes
 * of one step go out side by side this way instead of one round trip after another.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`limit must be ≥ 1, got ${limit}`);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Writes a step issues side by side; DynamoDB takes far more, and a Lambda's sockets stay few. */
export const STEP_WRITE_CONCURRENCY = 16;

/**
 * Awaits independent tasks side by side and settles only once every one has: their results in order, or
 * the first rejection (by position) once the others are done, so that no task is still writing when the
 * caller reports the failure.
 */
export async function allSettledOrThrow<T extends readonly unknown[]>(
  tasks: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const settled: PromiseSettledResult<unknown>[] = await Promise.allSettled(tasks);
  const values: unknown[] = [];
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    values.push(s.value);
  }
  return values as unknown as T;
}
