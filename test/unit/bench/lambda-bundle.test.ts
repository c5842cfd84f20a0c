import { createRequire } from 'node:module';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Architecture } from 'aws-cdk-lib/aws-lambda';
import type { BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { describe, expect, it } from 'vitest';
import { contributors, esbuildOptions, packageOf } from '../../../bench/lambda-bundle';
import { FUNCTION_ENTRIES } from '../../../functions/env';
import { HALO_BUNDLING, HALO_RUNTIME, REPO_ROOT } from '../../../infra/constructs/halo-function';
import { cdkJsonContext } from '../../infra/helpers';

/**
 * The bench must bundle exactly what `cdk synth` bundles. CDK builds an esbuild command line in a private
 * method (aws-lambda-nodejs Bundling.buildEsbuildArgs); this asks it for that command line and checks the
 * bench's JS-API options flag by flag. A CDK upgrade that adds a flag fails here, not silently in the bench.
 */
type BundlingInternals = new (
  scope: Stack,
  props: Record<string, unknown>,
) => {
  buildEsbuildArgs(
    scope: Stack,
    inputDir: string,
    outputDir: string,
    join: typeof import('node:path').join,
  ): string[];
};

function cdkEsbuildFlags(bundling: Readonly<BundlingOptions>): string[] {
  const requireCdk = createRequire(join(REPO_ROOT, 'package.json'));
  const { Bundling } = requireCdk(
    join(REPO_ROOT, 'node_modules/aws-cdk-lib/aws-lambda-nodejs/lib/bundling.js'),
  ) as {
    Bundling: BundlingInternals;
  };
  const stack = new Stack(new App({ context: cdkJsonContext() }), 'Bundling');
  const bundler = new Bundling(stack, {
    ...bundling,
    entry: join(REPO_ROOT, FUNCTION_ENTRIES.ingest),
    runtime: HALO_RUNTIME,
    architecture: Architecture.ARM_64,
    depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
    projectRoot: REPO_ROOT,
  });
  return bundler.buildEsbuildArgs(stack, '/in', '/out', join);
}

/** The bench's options written as the esbuild CLI flags CDK would pass for them. */
function benchFlags(bundling: Readonly<BundlingOptions>): string[] {
  const o = esbuildOptions(bundling, {
    entry: FUNCTION_ENTRIES.ingest,
    projectRoot: REPO_ROOT,
    runtime: HALO_RUNTIME,
    outdir: '/out',
  });
  const flags = [`--target=${o.target}`, `--platform=${o.platform}`];
  if (o.format !== undefined) flags.push(`--format=${o.format}`);
  flags.push(`--outfile=${o.outfile}`);
  if (o.minify === true) flags.push('--minify');
  if (o.sourcemap === true) flags.push('--sourcemap');
  else if (typeof o.sourcemap === 'string') flags.push(`--sourcemap=${o.sourcemap}`);
  if (o.sourcesContent === false) flags.push('--sources-content=false');
  for (const external of o.external ?? []) flags.push(`--external:${external}`);
  for (const [ext, loader] of Object.entries(o.loader ?? {})) flags.push(`--loader:${ext}=${loader}`);
  for (const [key, value] of Object.entries(o.define ?? {})) flags.push(`--define:${key}=${value}`);
  if (o.logLevel !== undefined) flags.push(`--log-level=${o.logLevel}`);
  if (o.keepNames === true) flags.push('--keep-names');
  if (o.banner?.js !== undefined) flags.push(`--banner:js=${o.banner.js}`);
  if (o.footer?.js !== undefined) flags.push(`--footer:js=${o.footer.js}`);
  if (o.mainFields !== undefined) flags.push(`--main-fields=${o.mainFields.join(',')}`);
  return flags;
}

describe('bench bundling options', () => {
  it('are the esbuild flags CDK passes for HALO_BUNDLING', () => {
    expect(benchFlags(HALO_BUNDLING).sort()).toEqual(cdkEsbuildFlags(HALO_BUNDLING).sort());
  });

  it('also for the SDK-bundled comparison the bench prints', () => {
    const bundled = { ...HALO_BUNDLING, externalModules: [], bundleAwsSDK: true };
    expect(benchFlags(bundled).sort()).toEqual(cdkEsbuildFlags(bundled).sort());
  });

  it('refuses options it does not translate, instead of bundling something else', () => {
    expect(() =>
      esbuildOptions(
        { ...HALO_BUNDLING, nodeModules: ['zod'] },
        { entry: 'x.ts', projectRoot: REPO_ROOT, runtime: HALO_RUNTIME },
      ),
    ).toThrow(/nodeModules/);
    expect(() =>
      esbuildOptions(
        { ...HALO_BUNDLING, externalModules: undefined, bundleAwsSDK: false },
        { entry: 'x.ts', projectRoot: REPO_ROOT, runtime: HALO_RUNTIME },
      ),
    ).toThrow(/explicitly/);
  });
});

describe('bundle contributors', () => {
  it('groups metafile inputs by package, or by first-party folder', () => {
    expect(packageOf('node_modules/zod/v4/core/schemas.js')).toBe('zod');
    expect(packageOf('node_modules/@aws-lambda-powertools/logger/lib/esm/Logger.js')).toBe(
      '@aws-lambda-powertools/logger',
    );
    expect(packageOf('node_modules/a/node_modules/@s/b/index.js')).toBe('@s/b');
    expect(packageOf('app/ingest/record-report.ts')).toBe('app/');
    const metafile = {
      inputs: {},
      outputs: {
        'out/index.mjs': {
          bytes: 60,
          inputs: {
            'node_modules/zod/a.js': { bytesInOutput: 30 },
            'node_modules/zod/b.js': { bytesInOutput: 10 },
            'app/x.ts': { bytesInOutput: 20 },
          },
          imports: [],
          exports: [],
        },
      },
    };
    expect(contributors(metafile, 'index.mjs')).toEqual([
      { name: 'zod', bytes: 40 },
      { name: 'app/', bytes: 20 },
    ]);
  });
});
