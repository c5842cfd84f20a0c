import * as z from 'zod';
import type { HaPolicy } from '../core/policy';

const policyNumber = z.number().finite();

// Every key of HaPolicy, checked by the type: a misspelt key fails instead of being silently ignored.
const policyShape: { [K in keyof HaPolicy]-?: z.ZodOptional<z.ZodNumber> } = {
  hostHeartbeatMs: policyNumber.optional(),
  missedHeartbeats: policyNumber.optional(),
  relayReportMs: policyNumber.optional(),
  incidentReportMs: policyNumber.optional(),
  relaySilentAfterMs: policyNumber.optional(),
  confirmSilenceMs: policyNumber.optional(),
  fenceAttemptTimeoutMs: policyNumber.optional(),
  fenceDeadlineMs: policyNumber.optional(),
  startTimeoutMs: policyNumber.optional(),
  maxStartAttempts: policyNumber.optional(),
  operatorTimeoutMs: policyNumber.optional(),
  vmRestartLimit: policyNumber.optional(),
  vmRestartWindowMs: policyNumber.optional(),
  vmRestartBackoffMs: policyNumber.optional(),
  vmRetryIntervalMs: policyNumber.optional(),
  massSilenceShare: policyNumber.optional(),
  maxClockSkewMs: policyNumber.optional(),
  cpuOvercommit: policyNumber.optional(),
  reserveMiB: policyNumber.optional(),
  reserveCpus: policyNumber.optional(),
};

/**
 * A partial HA policy (core/policy.ts HaPolicyInput): the schema of `cdk.json`'s `halo:policy` (the
 * deployment's defaults, HALO_POLICY) and of a cluster's run-time override alike. Unknown keys are refused.
 * The values are checked further by core's resolvePolicy (positive durations, deadline ≥ attempt…).
 */
export const HaPolicyInputSchema = z.strictObject(policyShape);

/** Every key of the HA policy, in the schema's order. */
export const POLICY_KEYS = Object.keys(policyShape) as (keyof HaPolicy)[];

/**
 * Keys that apply deployment-wide and so cannot be overridden per cluster: a report's clock skew is judged
 * before the control plane knows which cluster's hosts it carries.
 */
export const DEPLOYMENT_WIDE_POLICY_KEYS: readonly (keyof HaPolicy)[] = ['maxClockSkewMs'];

/** A fully resolved policy (every key a number), as the control plane acts on it. */
export const HaPolicySchema = z.strictObject(
  Object.fromEntries(POLICY_KEYS.map((key) => [key, z.number()])) as {
    [K in keyof HaPolicy]-?: z.ZodNumber;
  },
);
