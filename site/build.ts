import { chmodSync, copyFileSync, mkdirSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * `npm run build:site`: dist/site/, the folder a site install copies to /opt/halo (docs/site-install.md):
 * one self-contained ES module per site program (halo-relay.mjs…), the Node.js 22 binary the project
 * brings (its `node` dev dependency), the systemd units and the install guide. Nothing else is needed on
 * the site's machines.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'site');
const PROGRAMS = { 'halo-relay': 'site/relay/main.ts', 'halo-agent': 'site/agent/main.ts' } as const;

mkdirSync(outdir, { recursive: true });
for (const [name, entry] of Object.entries(PROGRAMS)) {
  const result = await build({
    entryPoints: [join(root, entry)],
    outfile: join(outdir, `${name}.mjs`),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    minify: false,
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    // Some bundled CommonJS packages call require(); an ES module has none of its own.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __haloCreateRequire } from 'node:module';\nconst require = __haloCreateRequire(import.meta.url);",
    },
  });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
  process.stdout.write(`${name}: dist/site/${name}.mjs (${Math.round(bytes / 1024)} KiB)\n`);
}

const extras: Record<string, string> = {
  node: realpathSync(join(root, 'node_modules', '.bin', 'node')),
  'halo-relay.service': join(root, 'site', 'systemd', 'halo-relay.service'),
  'halo-agent.service': join(root, 'site', 'systemd', 'halo-agent.service'),
  'site-install.md': join(root, 'docs', 'site-install.md'),
};
for (const [name, source] of Object.entries(extras)) {
  copyFileSync(source, join(outdir, name));
  process.stdout.write(`${name}: dist/site/${name}\n`);
}
chmodSync(join(outdir, 'node'), 0o755);
