import type { AppContext } from '../context';
import { METRIC } from './metrics';

/**
 * Completes a callback task on behalf of a relay report. A failure is counted, not thrown: the report has
 * already recorded the result, and the rest of it (liveness, other hosts, incident opening) must not be
 * lost to one callback; the workflow's task timeout then retries through another attempt.
 */
export async function settleTask(
  ctx: AppContext,
  taskToken: string,
  outcome: { readonly output: unknown } | { readonly error: string; readonly cause: string },
): Promise<boolean> {
  const { workflow, metrics } = ctx.ports;
  try {
    if ('output' in outcome) await workflow.sendTaskSuccess(taskToken, outcome.output);
    else await workflow.sendTaskFailure(taskToken, outcome.error, outcome.cause);
    return true;
  } catch {
    metrics.count(METRIC.CallbackFailed);
    return false;
  }
}
