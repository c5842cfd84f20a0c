import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatRandomSummary,
  progressLine,
  type RandomProgress,
  runRandom,
  runRandomCommand,
} from '../../local/sim/random';
import { parseScenario } from '../../local/sim/scenario-file';

/**
 * Generated scenarios through the deterministic simulator: each on virtual time on its own in-process
 * control plane (the synthesized state machine, the real handlers, relay and agent code), faults at
 * random, the oracle watching, on one simulator thread per CPU. Any violation or harness error fails the
 * test and is printed with the seed that reproduces it, exactly, on any machine.
 */

const SEED = 1000;
const COUNT = 300;
/** Vitest's timeout, not a claim on speed: the duration is printed, and benchmarked (npm run bench). */
const BUDGET_MS = 600_000;

describe('random scenarios', () => {
  it(
    `${COUNT} schedules from seed ${SEED} break no safety rule and all finish`,
    async () => {
      const lines: string[] = [];
      const started = performance.now();
      const summary = await runRandom({
        count: COUNT,
        seed: SEED,
        onProgress: (p: RandomProgress) => lines.push(progressLine(p)),
      });
      const wallMs = performance.now() - started;
      const text = [...lines, ...formatRandomSummary(summary)].join('\n');
      // Printed whatever the result: the outcome mix and the duration are the point of the test's log.
      console.log(`${text}\n\nrandom.test: ${COUNT} runs in ${(wallMs / 1000).toFixed(1)} s`);

      expect(summary.harnessErrors, text).toEqual([]);
      expect(summary.violations, text).toEqual([]);
      expect(summary.runs).toHaveLength(COUNT);
      expect(summary.exitCode).toBe(0);
      // The schedules must exercise the failover, not just sit there.
      expect(summary.outcomes.recovered + summary.outcomes['partially-recovered']).toBeGreaterThan(0);
    },
    BUDGET_MS,
  );
});

describe('runRandom bookkeeping (stubbed runner)', () => {
  it('uses seed + i, counts outcomes, reports throws and violations with their seeds', async () => {
    const progress: RandomProgress[] = [];
    const summary = await runRandom({
      count: 4,
      seed: 70,
      concurrency: 2,
      onProgress: (p) => progress.push(p),
      runner: async (scenario, options) => {
        const seed = options.seed ?? -1;
        expect(scenario.name).toContain(`random ${seed}:`);
        if (seed === 71) throw new Error('control plane did not start');
        if (seed === 73) options.onEvent?.('site program error: relay relay-a: boom');
        return {
          exitCode: seed === 72 ? 1 : 0,
          timeline: [],
          lastHeartbeatAtMs: {},
          report: {
            scenario: scenario.name,
            seed,
            hosts: {},
            vms: {},
            incidents:
              seed === 70
                ? []
                : [
                    {
                      host: 'node01',
                      outcome: 'recovered',
                      openedAtMs: 1,
                      fencedAtMs: 2,
                      settledAtMs: 3,
                      starts: [],
                      unplaced: [],
                    },
                    {
                      host: 'node02',
                      outcome: 'false-alarm',
                      openedAtMs: 1,
                      fencedAtMs: null,
                      settledAtMs: 2,
                      starts: [],
                      unplaced: [],
                    },
                  ],
            violations:
              seed === 72 ? [{ rule: 'split-brain', detail: 'vm-001 runs on node01 and node02' }] : [],
          },
        };
      },
    });
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4]);
    expect(summary.runs.map((r) => r.seed)).toEqual([70, 72, 73]);
    expect(summary.runsWithoutIncident).toBe(1);
    expect(summary.outcomes).toMatchObject({ recovered: 2, 'false-alarm': 2, 'in-progress': 0 });
    expect(summary.harnessErrors.map((e) => [e.seed, e.error])).toEqual([
      [71, 'Error: control plane did not start'],
      [73, 'relay relay-a: boom'],
    ]);
    expect(summary.violations).toEqual([
      expect.objectContaining({
        seed: 72,
        rule: 'split-brain',
        reproduce: 'npm run sim -- --random 1 --seed 72',
      }),
    ]);
    expect(summary.exitCode).toBe(1);
    const text = formatRandomSummary(summary).join('\n');
    expect(text).toContain('npm run sim -- --random 1 --seed 72');
    expect(text).toMatch(/71\s+Error: control plane did not start/);
    const failed = progress.filter((p) => p.seed === 71).map(progressLine);
    expect(failed).toEqual([
      expect.stringMatching(/^\[ *\d\/4\] seed 71 … HARNESS ERROR: Error: control plane/),
    ]);
  });
});

describe('runRandomCommand shrinking (stubbed runner)', () => {
  it('shrinks a failing seed into a scenario file that parses and still names the rule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halo-shrink-'));
    const lines: string[] = [];
    const code = await runRandomCommand(
      {
        count: 2,
        seed: 500,
        concurrency: 1,
        failuresDir: dir,
        runner: async (scenario, options) => {
          // The "bug": any scenario of seed 501 with a fault and at least two hosts.
          const broken = options.seed === 501 && scenario.faults.length > 0 && scenario.hosts.length >= 2;
          return {
            exitCode: broken ? 1 : 0,
            timeline: [],
            lastHeartbeatAtMs: {},
            report: {
              scenario: scenario.name,
              seed: options.seed ?? 0,
              hosts: {},
              vms: {},
              incidents: [],
              violations: broken ? [{ rule: 'false-recovered', detail: 'stub' }] : [],
            },
          };
        },
      },
      (line) => lines.push(line),
    );
    expect(code).toBe(1);
    const file = join(dir, 'seed-501-false-recovered.json');
    const shrunk = parseScenario(readFileSync(file, 'utf8'), file);
    expect(shrunk.faults).toHaveLength(1);
    expect(shrunk.hosts).toHaveLength(2);
    expect(shrunk.vms).toEqual([]);
    expect(lines.join('\n')).toContain(`replay: npm run sim -- ${file} --seed 501`);
  });
});
