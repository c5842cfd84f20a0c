import { cpus } from 'node:os';
import type { BenchSuite } from './harness';
import { printTable, resultRows } from './harness';
import { placementSuite } from './placement.bench';

// A new bench is one module exporting a BenchSuite, added here.
const SUITES: readonly BenchSuite[] = [placementSuite];

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`Node ${process.version} on ${process.platform}/${process.arch}, ${cpus().length} × ${cpu}`);
for (const suite of SUITES) printTable(suite.title, resultRows(suite.run()));
console.log('\nPASS: p99 under the target. p99 is nearest-rank: with 20 runs it is the slowest run.');
