import { IngestEnvSchema } from '../env';
import { createAppContext } from '../shared/context';
import { withHaloMiddleware } from '../shared/middleware';
import { powertools } from '../shared/powertools';
import { makeIngestHandler } from './ingest';

// Cold start: a missing variable or a bad HALO_POLICY fails here, loudly; clients live as long as the container.
const env = IngestEnvSchema.parse(process.env);
const ctx = createAppContext(env, powertools);

/** Lambda entry of the relay ingest API (POST /v1/reports). */
export const handler = withHaloMiddleware(makeIngestHandler(ctx, powertools.logger), powertools);
