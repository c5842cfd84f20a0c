import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runRandomCommand } from './random';
import { parseScenario, ScenarioFileError } from './scenario-file';
import { summaryTable } from './timeline';

/**
 * `npm run sim -- <scenario.json|.yaml> [--out report.json] [--seed N]`: runs one scenario on virtual time
 * (the same seed gives the same bytes), prints its timeline and the summary, writes the report;
 * `--real-time` runs it on local mode's real-time control plane (dynalite, HTTP, the wall clock) instead.
 * Exit 0: completed without violations; 1: a safety rule was broken; 2: the scenario file cannot be run.
 * `--random N --seed S` runs generated schedules (./random), shrinking the first K failing ones
 * (`--shrink K`, 3 by default) into scenario files under `--failures DIR` (sim-failures/).
 */

const USAGE =
  'usage: npm run sim -- <scenario.json|.yaml> [--out report.json] [--seed N] [--real-time]\n' +
  '       npm run sim -- --random N [--seed S] [--concurrency THREADS] [--shrink K] [--failures DIR]';

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
    const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
    if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) {
      process.stderr.write(`--concurrency must be a positive integer\n${USAGE}\n`);
      return 2;
    }
    const shrink = values.shrink === undefined ? 3 : Number(values.shrink);
    if (!(Number.isInteger(shrink) && shrink >= 0)) {
      process.stderr.write(`--shrink must be an integer ≥ 0\n${USAGE}\n`);
      return 2;
    }
    return runRandomCommand({
      count: n,
      seed,
      shrink,
      ...(values.failures === undefined ? {} : { failuresDir: values.failures }),
      ...(concurrency === undefined ? {} : { concurrency }),
    });
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
  // Loaded only for a single scenario: `--random` runs its schedules on simulator threads.
  const { runScenario } = await import('./runner');
  const result = await runScenario(scenario, {
    seed,
    time: values['real-time'] === true ? 'real-time' : 'virtual',
    onEvent: (line) => process.stdout.write(`${line}\n`),
  });
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
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      random: { type: 'string' },
      concurrency: { type: 'string' },
      shrink: { type: 'string' },
      failures: { type: 'string' },
      'real-time': { type: 'boolean' },
    },
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
