import { Worker } from 'node:worker_threads';
import type { AslDefinition } from '../../infra/definition';
import { synthesizedDefinition } from '../definition';
import { workerExecArgv } from '../local-threads';

/**
 * Generated schedules run on simulator threads (./sim-worker.ts): virtual time has one clock per thread,
 * so throughput comes from threads, one per CPU. Each thread takes the next seed when it posts a result.
 *
 * The definition is synthesized once, here, while the threads load, and handed to each: a thread then
 * never loads aws-cdk-lib nor synthesizes (seconds of start-up each).
 */

/** The first message to a thread: the definition its runs use. */
export interface DefinitionJob {
  readonly definition: AslDefinition;
}

/** A seed for a thread to generate and run. */
export interface SeedJob {
  readonly seed: number;
}

/** What a thread posts back for a seed. */
export type SeedOutcome<R = unknown> =
  | { readonly seed: number; readonly ok: true; readonly run: R }
  | { readonly seed: number; readonly ok: false; readonly error: string; readonly wallMs: number };

/** Runs every seed on `threads` simulator threads; `onOutcome` as each ends; resolves in seed order. */
export async function runSeedsOnThreads<R>(
  seeds: readonly number[],
  threads: number,
  onOutcome: (outcome: SeedOutcome<R>, done: number) => void,
): Promise<SeedOutcome<R>[]> {
  const outcomes = new Map<number, SeedOutcome<R>>();
  let next = 0;
  let done = 0;
  const definition = synthesizedDefinition();
  const thread = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (next >= seeds.length) {
        resolve();
        return;
      }
      const worker = new Worker(new URL('./sim-worker.ts', import.meta.url), {
        execArgv: workerExecArgv(),
      });
      let current: number | undefined;
      const feed = () => {
        if (next >= seeds.length) {
          current = undefined;
          void worker.terminate().then(() => resolve());
          return;
        }
        current = seeds[next++] as number;
        worker.postMessage({ seed: current } satisfies SeedJob);
      };
      worker.on('message', (outcome: SeedOutcome<R>) => {
        outcomes.set(outcome.seed, outcome);
        done += 1;
        onOutcome(outcome, done);
        feed();
      });
      worker.on('error', (error) => {
        // The thread died (a crash of the simulator itself): the seed it held is a harness error.
        if (current !== undefined) {
          const outcome: SeedOutcome<R> = { seed: current, ok: false, error: String(error), wallMs: 0 };
          outcomes.set(current, outcome);
          done += 1;
          onOutcome(outcome, done);
        }
        reject(error);
      });
      definition.then(
        (d) => {
          worker.postMessage({ definition: d } satisfies DefinitionJob);
          feed();
        },
        (error: unknown) => {
          void worker.terminate();
          reject(error);
        },
      );
    });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(threads, seeds.length)) }, thread));
  return seeds.map((s) => outcomes.get(s) ?? { seed: s, ok: false, error: 'never run', wallMs: 0 });
}
