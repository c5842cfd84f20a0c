#!/usr/bin/env node
// npm bin of the operator CLI, run from a checkout (TypeScript through tsx): `npx halo status`.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
