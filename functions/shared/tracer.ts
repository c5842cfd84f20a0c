import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { type Powertools, powertools, serviceName } from './powertools';

/** X-Ray tracer, for the functions that trace (all but ingest); a no-op outside Lambda. */
export const tracer = new Tracer({ serviceName });

/**
 * Logger, metrics and tracing, as handed to the middleware bundle by the tracing functions. Responses
 * stay out of X-Ray: enrollRelay's carries a relay credential.
 */
export const tracedPowertools: Powertools = {
  ...powertools,
  tracing: captureLambdaHandler(tracer, { captureResponse: false }),
};
