import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runScenario } from './sim/runner';
import { parseScenario } from './sim/scenario-file';
import { summaryTable } from './sim/timeline';

/**
 * `npm start`: the seed site (three hosts, about 25 VMs each, two relays) on the local control plane;
 * node01 crashes, and the live timeline shows its HA VMs restarted on the survivors. Ends by itself.
 * `npm start -- --serve` keeps a control plane up for real agents and relays instead (local/serve.ts).
 */

const here = dirname(fileURLToPath(import.meta.url));

async function serve(): Promise<number> {
  const file = ['serve.ts', 'serve.js'].map((f) => join(here, f)).find((f) => existsSync(f));
  if (file === undefined) {
    process.stderr.write('--serve needs local/serve.ts, which is not there yet\n');
    return 2;
  }
  // serve.ts runs its entry when imported as a program; it keeps the process alive itself.
  await import(pathToFileURL(file).href);
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--serve')) return serve();
  const file = join(here, '..', 'scenarios', 'seed.json');
  const scenario = parseScenario(readFileSync(file, 'utf8'), 'scenarios/seed.json');
  process.stdout.write(`Halo local simulator: ${scenario.name}\n\n`);
  const result = await runScenario(scenario, {
    seed: 1,
    onEvent: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${summaryTable(result.report)}\n`);
  return result.exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
  },
);
