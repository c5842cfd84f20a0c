import { cpus } from 'node:os';
import { bundleSuite } from './bundle.bench';
import { clusterSuite } from './cluster.bench';
import { failoverSuite } from './failover.bench';
import type { BenchSuite } from './harness';
import { printTable, resultRows } from './harness';
import { ingestScaleSuite, ingestSuite } from './ingest.bench';
import { placementSuite } from './placement.bench';
import type { ReportSuite } from './report-suite';
import { simulationSuite } from './simulation.bench';
import { workflowLimitsSuite } from './workflow-limits.bench';

// A new bench is one module exporting a BenchSuite (one timing table) or a ReportSuite (async, several
// tables), added here.
// The failover suite goes first: it measures latency in real time, which the other suites' leftovers in
// this process (a dynalite server, esbuild's service, large heaps) slowed by about 100 ms at p99.
const SUITES: readonly (BenchSuite | ReportSuite)[] = [
  failoverSuite,
  placementSuite,
  ingestSuite,
  ingestScaleSuite,
  clusterSuite,
  workflowLimitsSuite,
  bundleSuite,
  simulationSuite,
];

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`Node ${process.version} on ${process.platform}/${process.arch}, ${cpus().length} × ${cpu}`);
for (const suite of SUITES) {
  if ('report' in suite) {
    console.log(`\n== ${suite.title} ==`);
    for (const table of await suite.report()) {
      printTable(table.title, table.rows);
      if (table.footnote !== undefined) console.log(`\n  ${table.footnote}`);
    }
  } else {
    printTable(suite.title, resultRows(suite.run()));
  }
}
console.log('\nPASS: p99 under the target. p99 is nearest-rank: with 20 runs it is the slowest run.');
