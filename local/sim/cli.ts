import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runScenario } from './runner';
import { parseScenario, ScenarioFileError } from './scenario-file';
import { summaryTable } from './timeline';

/**
 * `npm run sim -- <scenario.json|.yaml> [--out report.json] [--seed N]`: runs one scenario, prints its live
 * timeline and the summary, writes the report. Exit 0: completed without violations; 1: a safety rule was
 * broken; 2: the scenario file cannot be run. `--random N --seed S` is served by local/sim/random.ts
 * (`runRandom(n, seed)`) when that module exists.
 */

const USAGE =
  'usage: npm run sim -- <scenario.json|.yaml> [--out report.json] [--seed N] | --random N [--seed S]';

/** The random-scenario runner's module, if present; loaded by path so this CLI works without it. */
async function runRandomIfPresent(n: number, seed: number): Promise<number> {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = ['random.ts', 'random.js'].map((f) => join(here, f));
  const file = candidates.find((f) => existsSync(f));
  if (file === undefined) {
    process.stderr.write('--random needs local/sim/random.ts, which is not there yet\n');
    return 2;
  }
  const mod: unknown = await import(pathToFileURL(file).href);
  if (
    typeof mod !== 'object' ||
    mod === null ||
    !('runRandom' in mod) ||
    typeof mod.runRandom !== 'function'
  ) {
    process.stderr.write('local/sim/random.ts does not export runRandom(n, seed)\n');
    return 2;
  }
  const code: unknown = await mod.runRandom(n, seed);
  return typeof code === 'number' ? code : 0;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isInteger(seed)) {
    process.stderr.write(`--seed must be an integer\n${USAGE}\n`);
    return 2;
  }
  if (values.random !== undefined) {
    const n = Number(values.random);
    if (!(Number.isInteger(n) && n > 0)) {
      process.stderr.write(`--random must be a positive integer\n${USAGE}\n`);
      return 2;
    }
    return runRandomIfPresent(n, seed);
  }
  const [file] = positionals;
  if (file === undefined || positionals.length > 1) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    process.stderr.write(`${file}: cannot read: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  let scenario: ReturnType<typeof parseScenario>;
  try {
    scenario = parseScenario(text, file);
  } catch (error) {
    if (error instanceof ScenarioFileError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const result = await runScenario(scenario, { seed, onEvent: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${summaryTable(result.report)}\n`);
  if (values.out !== undefined) {
    writeFileSync(values.out, `${JSON.stringify(result.report, null, 2)}\n`);
    process.stdout.write(`report written to ${values.out}\n`);
  }
  return result.exitCode;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { out: { type: 'string' }, seed: { type: 'string' }, random: { type: 'string' } },
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `simulator failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 2;
  },
);
