import type { FenceLevelReadiness, FenceReadiness } from '../../contracts/relay-protocol';
import { describeError } from './command-run';
import type { FenceConfig, FenceLevel } from './config';

/** Longest error text a readiness entry carries (the protocol's limit). */
const MAX_ERROR = 500;

/** Hosts whose levels are read at the same time during a check: a site's BMCs answer in parallel. */
const CHECK_CONCURRENCY = 8;

/** Reads one level's power status, changing nothing; never throws. */
export async function readLevel(
  level: FenceLevel,
  index: number,
  redact: (text: string) => string,
): Promise<FenceLevelReadiness & { readonly ms: number }> {
  const started = performance.now();
  const base = { level: index + 1, driver: level.device.driver };
  try {
    const power = await level.device.powerStatus();
    return { ...base, ok: true, power, error: null, ms: Math.round(performance.now() - started) };
  } catch (error) {
    return {
      ...base,
      ok: false,
      power: null,
      error: redact(describeError(error)).slice(0, MAX_ERROR),
      ms: Math.round(performance.now() - started),
    };
  }
}

/** Reads every level of one host: its readiness at `checkedAt`. No level configured is not ready. */
export async function checkHost(
  hostId: string,
  levels: readonly FenceLevel[],
  redact: (text: string) => string,
  now: () => number,
): Promise<FenceReadiness> {
  const read = await Promise.all(levels.map((level, i) => readLevel(level, i, redact)));
  const entries = read.map(({ ms: _ms, ...entry }) => entry);
  return { hostId, checkedAt: now(), ok: entries.some((l) => l.ok), levels: entries };
}

/** Reads every configured host (or those named), a few at a time. */
export async function checkHosts(
  fence: FenceConfig,
  hostIds: readonly string[],
  redact: (text: string) => string,
  now: () => number,
): Promise<FenceReadiness[]> {
  const results: FenceReadiness[] = [];
  const queue = [...hostIds];
  const worker = async () => {
    for (let hostId = queue.shift(); hostId !== undefined; hostId = queue.shift()) {
      results.push(await checkHost(hostId, fence[hostId] ?? [], redact, now));
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHECK_CONCURRENCY, queue.length) }, worker));
  return results.sort((a, b) => a.hostId.localeCompare(b.hostId));
}

/** Whether two readiness reads say the same thing (the time of the check aside). */
export function sameReadiness(a: FenceReadiness, b: FenceReadiness): boolean {
  return a.ok === b.ok && JSON.stringify(a.levels) === JSON.stringify(b.levels);
}
