import { FailoverStepsEnvSchema } from '../env';
import { createAppContext } from '../shared/context';
import { withHaloMiddleware } from '../shared/middleware';
import { tracedPowertools as powertools } from '../shared/tracer';
import { makeFailoverStepsHandler } from './failover-steps';

// Cold start: a missing variable or a bad HALO_POLICY fails here, loudly; clients live as long as the container.
const env = FailoverStepsEnvSchema.parse(process.env);
const ctx = createAppContext(env, powertools);

/** Lambda entry of every failover state machine step (routed by `step`, contracts/workflow.ts). */
export const handler = withHaloMiddleware(makeFailoverStepsHandler(ctx), powertools);
