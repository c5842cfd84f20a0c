import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { readConfig } from '../infra/config';
import { REPO_ROOT } from '../infra/constructs/halo-function';
import { type AslDefinition, extractDefinition } from '../infra/definition';
import { HaloStack } from '../infra/halo-stack';

/**
 * The synth behind local/definition.ts: the real HaloStack, with cdk.json's context. A module of its own,
 * imported only when a process synthesizes, so that one handed the definition (a simulator thread, see
 * `adoptSynthesizedDefinition`) never loads aws-cdk-lib (seconds of start-up per thread).
 */

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
  }
}
