import { DetectorEnvSchema } from '../env';
import { createAppContext } from '../shared/context';
import { withHaloMiddleware } from '../shared/middleware';
import { tracedPowertools as powertools } from '../shared/tracer';
import { makeDetectorHandler } from './detector';

// Cold start: a missing variable or a bad HALO_POLICY fails here, loudly; clients live as long as the container.
const env = DetectorEnvSchema.parse(process.env);
const ctx = createAppContext(env, powertools);

/** Lambda entry of the silence detector (EventBridge schedule, once a minute). */
export const handler = withHaloMiddleware(
  makeDetectorHandler(ctx, {
    tickSeconds: env.DETECTOR_TICK_SECONDS,
    runSeconds: env.DETECTOR_RUN_SECONDS,
    logger: powertools.logger,
  }),
  powertools,
);
