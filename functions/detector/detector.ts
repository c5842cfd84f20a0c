import type { ScheduledEvent } from 'aws-lambda';
import type { AppContext } from '../../app/context';
import { detectOnce } from '../../app/detector/detect';
import { type HandlerLogger, logger as sharedLogger } from '../shared/powertools';

/** How the detector loops inside one scheduled invocation. */
export interface DetectorLoopOptions {
  /** Resolution of detection: one detectOnce per tick. */
  readonly tickSeconds: number;
  /** Length of the loop; stops before the next scheduled invocation starts. */
  readonly runSeconds: number;
  readonly logger?: HandlerLogger;
  /** Waits between ticks; injected by tests to advance a fake clock. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The scheduled event's `time` (when the schedule fired); optional so the local runner may send `{}`. */
export type DetectorEvent = Partial<Pick<ScheduledEvent, 'time'>> | null | undefined;

/** The part of the Lambda context the loop reads. */
export interface RemainingTime {
  getRemainingTimeInMillis(): number;
}

/** What one invocation did. */
export interface DetectorRunSummary {
  readonly ticks: number;
  readonly failedTicks: number;
  readonly capacityEvaluated: boolean;
}

/** Capacity is evaluated on the first tick of every 5th minute (N+1 is slow-moving and costs a full scan). */
const CAPACITY_EVERY_MINUTES = 5;
/** Time kept free at the end of the invocation for flushing metrics and logs. */
const SAFETY_MS = 2_000;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The detector without middleware: detectOnce every tick until the run window or the Lambda's remaining
 * time says stop. A failing tick is logged and the loop goes on (the next tick may succeed); only an
 * invocation in which every tick failed fails, so the function's error alarm sees a real outage.
 */
export function makeDetectorHandler(
  ctx: AppContext,
  options: DetectorLoopOptions,
): (event: DetectorEvent, context: RemainingTime) => Promise<DetectorRunSummary> {
  const logger = options.logger ?? sharedLogger;
  const sleep = options.sleep ?? defaultSleep;
  const tickMs = options.tickSeconds * 1000;
  return async (event, context) => {
    const clock = ctx.ports.clock;
    const startedAt = clock.now();
    // The schedule's own time decides the minute: an invocation started a second late is still "minute 5".
    const scheduled = event?.time === undefined ? Number.NaN : Date.parse(event.time);
    const minute = new Date(Number.isFinite(scheduled) ? scheduled : startedAt).getUTCMinutes();
    const capacityMinute = minute % CAPACITY_EVERY_MINUTES === 0;
    const stopAt = startedAt + options.runSeconds * 1000;

    let ticks = 0;
    let failedTicks = 0;
    let lastError: unknown;
    for (;;) {
      const tickStart = clock.now();
      const evaluateCapacity = ticks === 0 && capacityMinute;
      try {
        const report = await detectOnce(ctx, { evaluateCapacity });
        logger.info('detector tick', {
          tick: ticks,
          evaluateCapacity,
          durationMs: clock.now() - tickStart,
          report,
        });
      } catch (error) {
        failedTicks += 1;
        lastError = error;
        logger.error('detector tick failed', error instanceof Error ? error : String(error));
      }
      ticks += 1;

      const nextAt = tickStart + tickMs;
      const now = clock.now();
      const waitMs = Math.max(0, nextAt - now);
      if (nextAt >= stopAt) break;
      // Room for the wait, one more tick as long as this one, and the flush at the end.
      if (context.getRemainingTimeInMillis() < waitMs + (now - tickStart) + SAFETY_MS) break;
      await sleep(waitMs);
    }
    if (failedTicks === ticks) throw lastError;
    return { ticks, failedTicks, capacityEvaluated: capacityMinute };
  };
}
