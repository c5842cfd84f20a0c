import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve';
import { runScenario } from './sim/runner';
import { parseScenario } from './sim/scenario-file';
import { summaryTable } from './sim/timeline';

/**
 * `npm start`: the seed site (three hosts, about 25 VMs each, two relays) on the local control plane;
 * node01 crashes, and the live timeline shows its HA VMs restarted on the survivors. Ends by itself.
 * `npm start -- --serve` keeps a control plane up for real agents and relays instead (local/serve.ts).
 */

const here = dirname(fileURLToPath(import.meta.url));

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--serve')) {
    // Serves until SIGINT/SIGTERM, then stops gracefully.
    await serve(argv.filter((arg) => arg !== '--serve'));
    return 0;
  }
  const file = join(here, '..', 'scenarios', 'seed.json');
  const scenario = parseScenario(readFileSync(file, 'utf8'), 'scenarios/seed.json');
  process.stdout.write(`Halo local simulator: ${scenario.name}\n\n`);
  // The live demo runs on the wall clock, on dynalite and the HTTP endpoint, as real relays would see it.
  const result = await runScenario(scenario, {
    seed: 1,
    time: 'real-time',
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
