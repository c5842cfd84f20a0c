import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { readConfig } from '../infra/config';
import { REPO_ROOT } from '../infra/constructs/halo-function';
import { type AslDefinition, adaptForLocalRunner, extractDefinition } from '../infra/definition';
import { HaloStack } from '../infra/halo-stack';

/**
 * The failover definition exactly as `cdk synth` produces it, synthesized in this process: the real
 * HaloStack, with cdk.json's context, and no Lambda bundling (the local runner invokes the handlers
 * in-process, so the assets are never used). There is no copy of the definition anywhere to drift.
 */

let synthMs: number | null = null;

/** How long the last in-process synth took, in milliseconds (null before the first). */
export function lastSynthMs(): number | null {
  return synthMs;
}

let cached: Promise<AslDefinition> | undefined;

/** The context of cdk.json (halo:* settings and feature flags), so the synth matches `cdk synth`. */
function cdkJsonContext(): Record<string, unknown> {
  const parsed: unknown = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8'));
  const context =
    typeof parsed === 'object' && parsed !== null && 'context' in parsed ? parsed.context : undefined;
  if (typeof context !== 'object' || context === null) throw new Error('cdk.json has no context object');
  return { ...context };
}

/** Synthesizes the stack and extracts the raw (unadapted) definition; synchronous, about a second. */
export function synthesizeDefinition(context: Record<string, unknown> = {}): AslDefinition {
  const started = performance.now();
  // Our own outdir, removed afterwards: App would otherwise leave one temporary directory per synth.
  const outdir = mkdtempSync(join(tmpdir(), 'halo-local-synth-'));
  try {
    const app = new App({
      outdir,
      context: {
        ...cdkJsonContext(),
        ...context,
        // No stack is bundled: NodejsFunction skips esbuild and stages a placeholder asset.
        'aws:cdk:bundling-stacks': [],
      },
      // CloudFormation schema validation costs seconds and checks nothing the definition depends on.
      builtinCloudFormationValidation: false,
    });
    const stack = new HaloStack(app, 'Halo', { config: readConfig(app.node) });
    const template: unknown = app.synth().getStackArtifact(stack.artifactId).template;
    return extractDefinition(template);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
    synthMs = performance.now() - started;
  }
}

/** Freezes a JSON value all the way down. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * The definition CDK synthesizes, adapted for aws-local-stepfunctions (infra/definition.ts
 * adaptForLocalRunner). Synthesized once per process; later calls share the result, frozen so that no
 * caller can turn it into a local variant of the definition.
 */
export function synthesizedDefinition(): Promise<AslDefinition> {
  cached ??= Promise.resolve().then(() => deepFreeze(adaptForLocalRunner(synthesizeDefinition())));
  // A failed synth is not cached: the next caller gets a fresh attempt and its own error.
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}
