import { OperatorApiEnvSchema } from '../env';
import { createAppContext } from '../shared/context';
import { withHaloMiddleware } from '../shared/middleware';
import { tracedPowertools as powertools } from '../shared/tracer';
import { makeOperatorApiHandler } from './operator-api';

// Cold start: a missing variable or a bad HALO_POLICY fails here, loudly; clients live as long as the container.
const env = OperatorApiEnvSchema.parse(process.env);
const ctx = createAppContext(env, powertools);

/** Lambda entry of the operator API (IAM-authorised HTTP API routes, contracts/operator-api.ts). */
export const handler = withHaloMiddleware(makeOperatorApiHandler(ctx, powertools.logger), powertools);
