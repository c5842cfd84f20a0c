import { HaPolicyInputSchema } from '../../contracts/policy';
import { type HaPolicyInput, resolvePolicy } from '../../core/policy';

// No SDK imports here: functions/env.ts (and through it the CDK app) can check HALO_POLICY at synth time.

/**
 * The deployment's default policy from HALO_POLICY (JSON). Throws on bad JSON, unknown keys or values the
 * core refuses, so a broken deployment fails at cold start, not in the middle of an incident.
 */
export function parsePolicy(text: string): HaPolicyInput {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`HALO_POLICY is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = HaPolicyInputSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`HALO_POLICY is invalid: ${issues.join('; ')}`);
  }
  // Drop keys zod materialised as undefined so that the input reads as what the operator wrote.
  const input: HaPolicyInput = Object.fromEntries(
    Object.entries(parsed.data).filter(([, value]) => value !== undefined),
  );
  resolvePolicy(input); // throws InvalidInputError for values the core refuses (e.g. negative durations)
  return input;
}
