import { availableParallelism } from 'node:os';
import { runRandom } from '../local/sim/random';
import type { ReportSuite, Table } from './report-suite';

/**
 * Simulation throughput: generated fault schedules run on virtual time (local/sim), on one simulator
 * thread per CPU, as `npm run sim -- --random N` runs them. The target: 10,000 schedules in at
 * most 5 minutes on a 2-core machine, i.e. at least 33.3 schedules per second. CPU per schedule (every
 * thread of the process, start-up included) is the work itself: on a shared machine the rate also says
 * how many cores the threads got.
 */

const COUNT = 400;
const SEED = 20_000;
const TARGET_PER_S = 10_000 / 300;

async function report(): Promise<readonly Table[]> {
  const summary = await runRandom({ count: COUNT, seed: SEED });
  const perSecond = summary.count / (summary.wallMs / 1000);
  const walls = summary.runs.map((r) => r.wallMs).sort((a, b) => a - b);
  const at = (p: number) => walls[Math.max(0, Math.ceil(p * walls.length) - 1)] ?? Number.NaN;
  return [
    {
      title: `Simulation throughput (${COUNT} generated schedules from seed ${SEED}, virtual time)`,
      rows: [
        {
          threads: summary.concurrency,
          schedules: summary.count,
          'wall s': Number((summary.wallMs / 1000).toFixed(1)),
          'schedules/s': Number(perSecond.toFixed(1)),
          'CPU ms/schedule': Number((summary.cpuMs / summary.count).toFixed(1)),
          'run p50 ms': Math.round(at(0.5)),
          'run p99 ms': Math.round(at(0.99)),
          violations: summary.violations.length,
          target: `≥ ${TARGET_PER_S.toFixed(1)}/s on 2 cores`,
          result:
            availableParallelism() > 2 ? 'n/a (not 2 cores)' : perSecond >= TARGET_PER_S ? 'PASS' : 'MISS',
        },
      ],
      footnote:
        'Wall time and CPU include starting the threads and synthesizing the definition (once, on the ' +
        'main thread). ' +
        '10,000 schedules at this rate: ' +
        `${(10_000 / perSecond / 60).toFixed(1)} min; at this CPU per schedule on 2 idle cores: ` +
        `${((10_000 * summary.cpuMs) / summary.count / 2 / 60_000).toFixed(1)} min.`,
    },
  ];
}

export const simulationSuite: ReportSuite = { title: 'Deterministic simulation', report };
