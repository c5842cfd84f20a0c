import { parentPort } from 'node:worker_threads';
import { adoptSynthesizedDefinition } from '../definition';
import { generateScenario } from './generate';
import type { RandomRun } from './random';
import { runScenario } from './runner';
import type { DefinitionJob, SeedJob, SeedOutcome } from './seed-pool';

/**
 * A simulator thread: takes one seed at a time, generates its scenario, runs it on virtual time, and posts
 * back what the summary needs. Runs are sequential here (one virtual clock per thread). The first message
 * is the definition the parent synthesized, so this thread never synthesizes.
 */

const PROGRAM_ERROR = 'site program error: ';

const port = parentPort;
if (port === null) throw new Error('sim-worker runs as a worker thread');

port.on('message', (job: SeedJob | DefinitionJob) => {
  if ('definition' in job) {
    adoptSynthesizedDefinition(job.definition);
    return;
  }
  void (async (): Promise<SeedOutcome<RandomRun>> => {
    const started = performance.now();
    try {
      const scenario = generateScenario(job.seed);
      const programErrors: string[] = [];
      const { report } = await runScenario(scenario, {
        seed: job.seed,
        onEvent: (line) => {
          if (line.startsWith(PROGRAM_ERROR)) programErrors.push(line.slice(PROGRAM_ERROR.length));
        },
      });
      return {
        seed: job.seed,
        ok: true,
        run: {
          seed: job.seed,
          scenario: scenario.name,
          outcomes: report.incidents.map((i) => i.outcome),
          violations: report.violations,
          programErrors,
          wallMs: performance.now() - started,
        },
      };
    } catch (error) {
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return { seed: job.seed, ok: false, error: text, wallMs: performance.now() - started };
    }
  })().then((outcome) => port.postMessage(outcome));
});
