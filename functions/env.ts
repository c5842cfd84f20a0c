import * as z from 'zod';

/**
 * Environment of each Lambda, as a zod schema: the handler parses it at cold start (a missing variable
 * fails loudly at init, not mid-incident) and the CDK construct types its env map against it.
 */
const common = {
  TABLE_NAME: z.string().min(1),
  POWERTOOLS_SERVICE_NAME: z.string().min(1),
  POWERTOOLS_METRICS_NAMESPACE: z.string().min(1),
  /** JSON of HaPolicyInput: the deployment's default policy (cdk.json context `policy`). */
  HALO_POLICY: z.string().default('{}'),
};

export const IngestEnvSchema = z.object({ ...common, STATE_MACHINE_ARN: z.string().min(1) });
export const OperatorApiEnvSchema = z.object({ ...common, STATE_MACHINE_ARN: z.string().min(1) });
export const FailoverStepsEnvSchema = z.object({ ...common });
export const DetectorEnvSchema = z.object({
  ...common,
  STATE_MACHINE_ARN: z.string().min(1),
  /** The detector loops inside one invocation at this resolution (schedules run at most once a minute). */
  DETECTOR_TICK_SECONDS: z.coerce.number().int().positive().default(10),
  /** Stop looping this long before the next scheduled invocation starts. */
  DETECTOR_RUN_SECONDS: z.coerce.number().int().positive().default(55),
});

export type IngestEnv = z.infer<typeof IngestEnvSchema>;
export type OperatorApiEnv = z.infer<typeof OperatorApiEnvSchema>;
export type FailoverStepsEnv = z.infer<typeof FailoverStepsEnvSchema>;
export type DetectorEnv = z.infer<typeof DetectorEnvSchema>;

/** Entry file of each Lambda, relative to the repository root; the CDK constructs bundle these. */
export const FUNCTION_ENTRIES = {
  ingest: 'functions/ingest/handler.ts',
  operatorApi: 'functions/operator-api/handler.ts',
  failoverSteps: 'functions/failover-steps/handler.ts',
  detector: 'functions/detector/handler.ts',
} as const;
