#!/usr/bin/env node
// npm bin of the host agent, run from a checkout (TypeScript through tsx). A site install runs the esbuild
// bundle instead (`npm run build:site`, docs/site-install.md), which needs nothing but Node.js 22+.
import { register } from 'tsx/esm/api';

register();
const { runProcess } = await import('../site/agent/main.ts');
await runProcess(process.argv.slice(2));
