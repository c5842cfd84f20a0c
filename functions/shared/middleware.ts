import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy, { type MiddyfiedHandler } from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Powertools } from './powertools';

/** A handler as the factories build it: plain async function, no middleware. */
export type RawHandler<TEvent, TResult> = (event: TEvent, context: Context) => Promise<TResult>;

/**
 * The one middleware bundle of every Halo Lambda: tracing where on, Lambda context in every log line, and metrics
 * flushed per invocation with a cold-start metric. Errors are not mapped here: HTTP handlers map them in
 * functions/shared/http.ts and failover-steps must re-throw them unchanged for Step Functions.
 */
export function withHaloMiddleware<TEvent, TResult>(
  handler: RawHandler<TEvent, TResult>,
  { logger, metrics, tracing }: Powertools,
): MiddyfiedHandler<TEvent, TResult> {
  const chain = middy<TEvent, TResult>();
  if (tracing !== undefined) chain.use(tracing);
  return chain
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }))
    .handler(handler);
}
