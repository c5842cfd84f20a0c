import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import * as z from 'zod';
import { type HaPolicy, type HaPolicyInput, resolvePolicy } from '../core/policy';

/**
 * Deployment settings, read from `cdk.json` context (or `-c key=value`). Every key is documented in
 * docs/deploy.md; a bad value fails `cdk synth`, never a Lambda at 3 a.m.
 */

/** Context keys this app reads. */
export const CONTEXT_KEY = {
  alertEmail: 'halo:alertEmail',
  policy: 'halo:policy',
  reportThrottle: 'halo:reportThrottle',
  logRetentionDays: 'halo:logRetentionDays',
  detectorTickSeconds: 'halo:detectorTickSeconds',
} as const;

/** Settings the stack is built from. */
export interface HaloConfig {
  /** Address subscribed to the alerts topic; none when absent. */
  readonly alertEmail: string | undefined;
  /** Deployment-wide default policy, handed to every Lambda as HALO_POLICY. */
  readonly policy: HaPolicyInput;
  /** Stage throttling of the HTTP API (requests per second, burst). */
  readonly reportThrottle: { readonly rateLimit: number; readonly burstLimit: number };
  /** Retention of every log group. */
  readonly logRetention: RetentionDays;
  /** Resolution at which the detector loops inside its one-minute invocation. */
  readonly detectorTickSeconds: number;
}

const RETENTION_VALUES = new Set<number>(
  Object.values(RetentionDays).filter((v): v is number => typeof v === 'number'),
);

// One entry per HaPolicy field, so a field added to the policy fails to compile here instead of being
// rejected by the strict schema; resolvePolicy does the range checks.
const policyNumber = z.number().optional();
const policyFields: { readonly [K in keyof HaPolicy]-?: typeof policyNumber } = {
  hostHeartbeatMs: policyNumber,
  missedHeartbeats: policyNumber,
  relayReportMs: policyNumber,
  incidentReportMs: policyNumber,
  relaySilentAfterMs: policyNumber,
  confirmSilenceMs: policyNumber,
  fenceAttemptTimeoutMs: policyNumber,
  fenceDeadlineMs: policyNumber,
  startTimeoutMs: policyNumber,
  maxStartAttempts: policyNumber,
  operatorTimeoutMs: policyNumber,
  vmRestartLimit: policyNumber,
  vmRestartWindowMs: policyNumber,
  vmRestartBackoffMs: policyNumber,
  vmRetryIntervalMs: policyNumber,
  massSilenceShare: policyNumber,
  maxClockSkewMs: policyNumber,
  cpuOvercommit: policyNumber,
  reserveMiB: policyNumber,
  reserveCpus: policyNumber,
};
// Strict: a misspelt key ("hostHeartBeatMs") would otherwise be ignored and the default used silently.
const PolicyInputSchema = z.strictObject(policyFields);

const ContextSchema = z.strictObject({
  alertEmail: z.email().optional(),
  policy: PolicyInputSchema.default({}),
  reportThrottle: z
    .strictObject({ rateLimit: z.number().positive(), burstLimit: z.number().int().positive() })
    .default({ rateLimit: 50, burstLimit: 100 }),
  logRetentionDays: z
    .number()
    .int()
    .refine(
      (d) => RETENTION_VALUES.has(d),
      'must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, …)',
    )
    .default(30),
  // Schedules fire at most once a minute; the tick must divide that minute to be useful.
  detectorTickSeconds: z.number().int().min(1).max(60).default(10),
});

/** `-c key=value` on the command line arrives as a string; cdk.json gives JSON values. */
function contextValue(node: Node, key: string): unknown {
  const raw: unknown = node.tryGetContext(key);
  if (typeof raw !== 'string') return raw;
  const trimmed = raw.trim();
  if (trimmed === '') return undefined;
  if (/^[[{0-9-]/.test(trimmed) || trimmed === 'true' || trimmed === 'false') {
    try {
      return JSON.parse(trimmed);
    } catch {
      return raw;
    }
  }
  return raw;
}

/** Reads and validates the `halo:*` context keys; throws with every problem listed. */
export function readConfig(node: Node): HaloConfig {
  const raw = Object.fromEntries(
    Object.entries(CONTEXT_KEY).map(([field, key]) => [field, contextValue(node, key)]),
  );
  const parsed = ContextSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const [field, ...rest] = i.path.map(String);
      const key =
        field !== undefined && field in CONTEXT_KEY ? CONTEXT_KEY[field as keyof typeof CONTEXT_KEY] : field;
      return `${[key, ...rest].join('.')}: ${i.message}`;
    });
    throw new Error(`Invalid cdk.json context:\n  ${problems.join('\n  ')}`);
  }
  const ctx = parsed.data;
  // Derived timings are checked too (e.g. fenceDeadlineMs >= fenceAttemptTimeoutMs): a policy the
  // handlers would reject at cold start must fail the synth instead.
  resolvePolicy(ctx.policy);
  return {
    alertEmail: ctx.alertEmail,
    policy: ctx.policy,
    reportThrottle: ctx.reportThrottle,
    logRetention: ctx.logRetentionDays as RetentionDays,
    detectorTickSeconds: ctx.detectorTickSeconds,
  };
}
