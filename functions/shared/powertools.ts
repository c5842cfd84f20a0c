import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';

/**
 * The one place logger and metrics are configured (the tracer is in ./tracer, which only the functions
 * that trace import: ingest runs on every report and stays small); every handler reuses these instances.
 * Service name and namespace come from the environment (each function's env schema requires them in
 * Lambda); the fallbacks only serve tests and the local endpoint.
 */
/** Service name of every Halo function's logs, metrics and traces. */
export const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'halo';
const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Halo';

/** Structured JSON logger shared by all handlers. */
export const logger = new Logger({ serviceName });

/**
 * EMF metrics, flushed by the logMetrics middleware at the end of each invocation. Its own warnings (e.g. an
 * invocation that published nothing, like a refused report) go through the logger: structured, levelled.
 */
export const metrics = new Metrics({ serviceName, namespace, logger });

/** The Powertools utilities, as handed to the middleware bundle; tracing only where it is on (./tracer). */
export interface Powertools {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracing?: MiddlewareObj;
}

/** Logger and metrics, shared by every handler. */
export const powertools: Powertools = { logger, metrics };

/** The logging a handler needs; the Powertools Logger in Lambda and in the local endpoint. */
export type HandlerLogger = Pick<Logger, 'info' | 'warn' | 'error'>;
