import { mkdir, rm, writeFile } from 'node:fs/promises';
import { builtinModules, createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type BuildResult, build } from 'esbuild';
import { FUNCTION_ENTRIES } from '../functions/env';
import { HALO_BUNDLING, HALO_RUNTIME, REPO_ROOT } from '../infra/constructs/halo-function';
import { contributors, esbuildOptions } from './lambda-bundle';
import { kb, type ReportSuite, type Table } from './report-suite';

/** Budget per function (research/performance-and-cost.md §5.4: minified esbuild bundle ≤ 300 KB). */
export const BUNDLE_TARGET_BYTES = 300 * 1024;

/** Inside the repository, so the written bundles resolve their external packages from its node_modules. */
const SCRATCH = join(REPO_ROOT, 'node_modules', '.cache', 'halo-bundle-bench');

type FunctionName = keyof typeof FUNCTION_ENTRIES;

interface Bundle {
  readonly fn: FunctionName;
  readonly code: Uint8Array;
  readonly mapBytes: number;
  readonly result: BuildResult<{ metafile: true }>;
  /** Packages the bundle imports at run time (the runtime must provide them). */
  readonly externals: readonly string[];
}

const BUILTINS = new Set(builtinModules);
const isBuiltin = (path: string): boolean => path.startsWith('node:') || BUILTINS.has(path);

async function bundle(fn: FunctionName, bundling: Readonly<BundlingOptions>) {
  const options = esbuildOptions(bundling, {
    entry: FUNCTION_ENTRIES[fn],
    projectRoot: REPO_ROOT,
    runtime: HALO_RUNTIME,
  });
  const result = await build({ ...options, write: false, metafile: true });
  const code = result.outputFiles.find((f) => /\.m?js$/.test(f.path));
  const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
  if (code === undefined) throw new Error(`${fn}: esbuild wrote no code`);
  const externals = new Set<string>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imported of output.imports) {
      if (imported.external && !isBuiltin(imported.path)) externals.add(imported.path);
    }
  }
  return {
    fn,
    code: code.contents,
    mapBytes: map?.contents.length ?? 0,
    result,
    externals: [...externals].sort(),
  } satisfies Bundle;
}

/** Imports each written bundle under node 22 with the SDK from node_modules; ingest also answers a request. */
async function importsCleanly(bundles: readonly Bundle[]): Promise<Map<FunctionName, string>> {
  const verdicts = new Map<FunctionName, string>();
  const saved = { ...process.env };
  Object.assign(process.env, {
    TABLE_NAME: 'halo-bench',
    POWERTOOLS_SERVICE_NAME: 'halo-bench',
    POWERTOOLS_METRICS_NAMESPACE: 'HaloBench',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_TRACE_ENABLED: 'false',
    AWS_REGION: 'us-east-1',
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:HaloFailover',
  });
  try {
    for (const b of bundles) {
      const dir = join(SCRATCH, b.fn);
      await mkdir(dir, { recursive: true });
      const file = join(dir, 'index.mjs');
      await writeFile(file, b.code);
      try {
        // Every external must resolve from the bundle's folder (require() calls of bundled CommonJS too).
        const resolve = createRequire(file).resolve;
        for (const spec of b.externals) resolve(spec);
        const mod: { handler?: unknown } = await import(pathToFileURL(file).href);
        if (typeof mod.handler !== 'function') throw new Error('no handler export');
        verdicts.set(b.fn, b.fn === 'ingest' ? await refusesBadJson(mod.handler) : 'yes');
      } catch (error) {
        verdicts.set(b.fn, `NO: ${error instanceof Error ? error.message : String(error)}`.slice(0, 80));
      }
    }
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
    await rm(SCRATCH, { recursive: true, force: true });
  }
  return verdicts;
}

/** The bundled ingest handler, middleware and all, answering a malformed report: 400 without any AWS call. */
async function refusesBadJson(handler: unknown): Promise<string> {
  const invoke = handler as (event: unknown, context: unknown) => Promise<{ statusCode?: number }>;
  const response = await invoke(
    {
      version: '2.0',
      routeKey: 'POST /v1/reports',
      rawPath: '/v1/reports',
      headers: { authorization: 'Bearer x' },
      body: '{',
      isBase64Encoded: false,
      requestContext: { requestId: 'bench', http: { method: 'POST', path: '/v1/reports' } },
    },
    {
      functionName: 'halo-ingest',
      awsRequestId: 'bench',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:halo-ingest',
      memoryLimitInMB: '256',
      getRemainingTimeInMillis: () => 10_000,
    },
  );
  return response.statusCode === 400 ? 'yes, and answers 400' : `NO: status ${response.statusCode}`;
}

function sizeRow(label: string, b: Bundle): Record<string, string | number> {
  const bytes = b.code.length;
  return {
    function: b.fn,
    bundling: label,
    bytes,
    KB: kb(bytes),
    'gzip KB': kb(gzipSync(b.code).length),
    'map KB': kb(b.mapBytes),
    target: `≤ ${kb(BUNDLE_TARGET_BYTES)} KB`,
    result: bytes <= BUNDLE_TARGET_BYTES ? 'PASS' : 'MISS',
  };
}

/** Minified size of every Lambda bundle, what fills it, and what the bundling choices cost. */
export const bundleSuite: ReportSuite = {
  title: 'Lambda bundles (esbuild with HALO_BUNDLING, infra/constructs/halo-function.ts)',
  report: async () => {
    const names = Object.keys(FUNCTION_ENTRIES) as FunctionName[];
    const deployed = await Promise.all(names.map((fn) => bundle(fn, HALO_BUNDLING)));
    const sdkBundled = await Promise.all(
      names.map((fn) => bundle(fn, { ...HALO_BUNDLING, externalModules: [], bundleAwsSDK: true })),
    );
    const clean = await importsCleanly(deployed);

    const sizes: Table = {
      title: 'Bundle size per function (index.mjs, minified; the target applies to "as deployed")',
      rows: names.flatMap((_, i) => {
        const rows = [
          {
            ...sizeRow(
              'as deployed: AWS SDK (runtime) and Powertools (layer) external',
              deployed[i] as Bundle,
            ),
          },
          {
            ...sizeRow('for comparison: AWS SDK and Powertools bundled', sdkBundled[i] as Bundle),
            target: '',
            result: '',
          },
        ];
        return rows;
      }),
    };
    const top: Table = {
      title: 'Top 5 contributors per bundle, as deployed (esbuild metafile, bytes in output)',
      rows: deployed.flatMap((b) =>
        contributors(b.result.metafile, 'index.mjs')
          .slice(0, 5)
          .map((c, rank) => ({
            function: rank === 0 ? b.fn : '',
            rank: rank + 1,
            contributor: c.name,
            bytes: c.bytes,
            KB: kb(c.bytes),
            share: `${((100 * c.bytes) / b.code.length).toFixed(0)} %`,
          })),
      ),
    };
    const runtime: Table = {
      title: 'Imports the Lambda runtime must provide, and the import check (node 22, SDK from node_modules)',
      rows: deployed.map((b) => ({
        function: b.fn,
        'external imports': b.externals.join(', '),
        'imports cleanly': clean.get(b.fn) ?? 'not checked',
      })),
    };
    return [sizes, top, runtime];
  },
};
