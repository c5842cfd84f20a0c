import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { readConfig } from '../../infra/config';
import { REPO_ROOT } from '../../infra/constructs/halo-function';
import { HaloStack } from '../../infra/halo-stack';
import { addNagChecks } from '../../infra/nag';

/** The context of cdk.json (halo:* keys and feature flags), so tests synthesize what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || !('context' in parsed)) {
    throw new Error('cdk.json has no context');
  }
  const { context } = parsed;
  if (typeof context !== 'object' || context === null) throw new Error('cdk.json context is not an object');
  return { ...context };
}

/** A Halo app as infra/app.ts builds it (bundling is real: keep to one per test file). */
export function buildHaloApp(options: { nag?: boolean; context?: Record<string, unknown> } = {}): {
  app: App;
  stack: HaloStack;
} {
  const app = new App({
    context: { ...cdkJsonContext(), ...options.context },
    // CDK's built-in CloudFormation schema validation costs ~7 s per synth; `cdk synth` keeps it on.
    builtinCloudFormationValidation: false,
  });
  const stack = new HaloStack(app, 'Halo', { config: readConfig(app.node) });
  if (options.nag === true) addNagChecks(app);
  return { app, stack };
}

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** Narrows `value` to a JSON object, failing the test otherwise. */
export function asObject(value: unknown, what = 'value'): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${what} is not an object: ${JSON.stringify(value)}`);
  }
  return value as JsonObject;
}

/** Narrows `value` to an array, failing the test otherwise. */
export function asArray(value: unknown, what = 'value'): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not an array: ${JSON.stringify(value)}`);
  return value;
}
