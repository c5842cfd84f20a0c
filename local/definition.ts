import { type AslDefinition, adaptForLocalRunner } from '../infra/definition';

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
  cached ??= import('./definition-synth').then(({ synthesizeDefinition }) => {
    const started = performance.now();
    try {
      return deepFreeze(adaptForLocalRunner(synthesizeDefinition()));
    } finally {
      synthMs = performance.now() - started;
    }
  });
  // A failed synth is not cached: the next caller gets a fresh attempt and its own error.
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}

/**
 * Takes the definition another thread of this process synthesized (`synthesizedDefinition` there, sent
 * over a worker's message port): later calls here share it, and this thread neither loads aws-cdk-lib
 * nor synthesizes. The simulator's threads are given it so; a thread that has synthesized keeps its own.
 */
export function adoptSynthesizedDefinition(definition: AslDefinition): void {
  cached ??= Promise.resolve(deepFreeze(definition));
}
