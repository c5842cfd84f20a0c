import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * The one place logger, metrics and tracer are configured; every handler reuses these instances.
 * Service name and namespace come from the environment (each function's env schema requires them in
 * Lambda); the fallbacks only serve tests and the local endpoint.
 */
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'halo';
const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Halo';

/** Structured JSON logger shared by all handlers. */
export const logger = new Logger({ serviceName });

/**
 * EMF metrics, flushed by the logMetrics middleware at the end of each invocation. Its own warnings (e.g. an
 * invocation that published nothing, like a refused report) go through the logger: structured, levelled.
 */
export const metrics = new Metrics({ serviceName, namespace, logger });

/** X-Ray tracer; a no-op outside Lambda. */
export const tracer = new Tracer({ serviceName });

/** The three Powertools utilities, as handed to the middleware bundle. */
export interface Powertools {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
}

/** The shared instances as one bundle. */
export const powertools: Powertools = { logger, metrics, tracer };

/** The logging a handler needs; the Powertools Logger in Lambda and in the local endpoint. */
export type HandlerLogger = Pick<Logger, 'info' | 'warn' | 'error'>;
