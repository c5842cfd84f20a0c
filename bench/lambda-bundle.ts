import { join } from 'node:path';
import type { Runtime } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { BuildOptions, Metafile } from 'esbuild';

/**
 * The esbuild options NodejsFunction derives from a {@link BundlingOptions} (aws-cdk-lib's
 * `Bundling.buildEsbuildArgs`, translated from its CLI flags to the JS API), so the bench bundles exactly
 * what `cdk synth` does. Options this translation does not cover are refused rather than ignored; the
 * unit test compares the result with CDK's own flag list.
 */

/** BundlingOptions keys the translation understands (everything else throws). */
const SUPPORTED = new Set<string>([
  'forceDockerBundling',
  'target',
  'format',
  'mainFields',
  'banner',
  'footer',
  'minify',
  'keepNames',
  'sourceMap',
  'sourceMapMode',
  'sourcesContent',
  'externalModules',
  'bundleAwsSDK',
  'logLevel',
  'define',
  'loader',
]);

/** What the bundle is built from. */
export interface BundleTarget {
  /** Entry file relative to `projectRoot` (functions/env.ts FUNCTION_ENTRIES). */
  readonly entry: string;
  readonly projectRoot: string;
  readonly runtime: Runtime;
  /** Where to write the bundle (`index.mjs` / `index.js` as CDK names it); omitted: kept in memory. */
  readonly outdir?: string;
}

/** The modules CDK leaves out of the bundle for these options. */
export function externalsOf(bundling: Readonly<BundlingOptions>): string[] {
  if (bundling.externalModules !== undefined) return [...bundling.externalModules];
  if (bundling.bundleAwsSDK === true) return [];
  // CDK's default depends on a feature flag (sdkV3ExcludeSmithyPackages); guessing it here could drift.
  throw new Error(
    'set externalModules (or bundleAwsSDK: true) explicitly: the CDK default depends on a flag',
  );
}

function target(bundling: Readonly<BundlingOptions>, runtime: Runtime): string {
  if (bundling.target !== undefined) return bundling.target;
  const match = /nodejs(\d+)/.exec(runtime.name);
  if (match === null) throw new Error(`cannot derive an esbuild target from runtime ${runtime.name}`);
  return `node${match[1]}`;
}

function sourcemap(bundling: Readonly<BundlingOptions>): BuildOptions['sourcemap'] {
  const enabled = bundling.sourceMapMode ?? bundling.sourceMap;
  if (enabled === undefined || enabled === false) return false;
  const mode = bundling.sourceMapMode ?? SourceMapMode.DEFAULT;
  // CDK passes a bare --sourcemap for DEFAULT: a linked .map file.
  return mode === SourceMapMode.DEFAULT ? true : mode;
}

/** esbuild JS-API options equivalent to the flags NodejsFunction passes for `bundling`. */
export function esbuildOptions(bundling: Readonly<BundlingOptions>, at: BundleTarget): BuildOptions {
  for (const key of Object.keys(bundling)) {
    if (!SUPPORTED.has(key)) throw new Error(`bundling option ${key} is not translated for the bench`);
  }
  if (bundling.forceDockerBundling === true)
    throw new Error('Docker bundling is not reproduced by the bench');
  const esm = bundling.format === OutputFormat.ESM;
  const outfile = join(
    at.outdir ?? join(at.projectRoot, 'cdk.out', 'bench-bundle'),
    esm ? 'index.mjs' : 'index.js',
  );
  return {
    absWorkingDir: at.projectRoot,
    entryPoints: [join(at.projectRoot, at.entry)],
    bundle: true,
    target: target(bundling, at.runtime),
    platform: 'node',
    ...(bundling.format === undefined
      ? {}
      : { format: bundling.format === OutputFormat.ESM ? 'esm' : 'cjs' }),
    outfile,
    minify: bundling.minify === true,
    sourcemap: sourcemap(bundling),
    ...(bundling.sourcesContent === false ? { sourcesContent: false } : {}),
    external: externalsOf(bundling),
    ...(bundling.loader === undefined ? {} : { loader: { ...bundling.loader } as BuildOptions['loader'] }),
    ...(bundling.define === undefined ? {} : { define: { ...bundling.define } }),
    ...(bundling.logLevel === undefined ? {} : { logLevel: bundling.logLevel }),
    keepNames: bundling.keepNames === true,
    ...(bundling.banner === undefined ? {} : { banner: { js: bundling.banner } }),
    ...(bundling.footer === undefined ? {} : { footer: { js: bundling.footer } }),
    ...(bundling.mainFields === undefined ? {} : { mainFields: [...bundling.mainFields] }),
    metafile: true,
    write: at.outdir !== undefined,
  };
}

/** Bytes of the bundle's output that each package (or first-party folder) contributes. */
export function contributors(metafile: Metafile, outfile: string): { name: string; bytes: number }[] {
  const output = Object.entries(metafile.outputs).find(([path]) => path.endsWith(outfile));
  if (output === undefined) throw new Error(`no output ${outfile} in the metafile`);
  const totals = new Map<string, number>();
  for (const [path, { bytesInOutput }] of Object.entries(output[1].inputs)) {
    const name = packageOf(path);
    totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
  }
  return [...totals.entries()]
    .map(([name, bytes]) => ({ name, bytes }))
    .sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name));
}

/** `node_modules/@scope/pkg/…` → `@scope/pkg`; first-party `app/ingest/x.ts` → `app/`. */
export function packageOf(path: string): string {
  const marker = 'node_modules/';
  const at = path.lastIndexOf(marker);
  if (at === -1) {
    const folder = path.split('/')[0] ?? path;
    return path.includes('/') ? `${folder}/` : path;
  }
  const parts = path.slice(at + marker.length).split('/');
  const scoped = parts[0]?.startsWith('@') === true;
  return (scoped ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}
