import { defineConfig } from 'vitest/config';

/**
 * The simulator runs on virtual time (test/sim): its files run beside the others. The one real-time smoke
 * run (local mode on dynalite and the wall clock) asserts outcomes only, but its heartbeats and timeouts
 * are a few hundred milliseconds: it runs after everything else, alone, so that other files do not starve
 * it of CPU into a different outcome.
 */
const REAL_TIME = ['test/sim/realtime-smoke.test.ts'];

export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: REAL_TIME,
          sequence: { groupOrder: 0 },
          // No test may depend on how fast the machine is: what takes real time (a synth, dynalite, a
          // child process, a socket) gets deadlines a loaded machine meets, and durations are asserted in
          // virtual time or measured in bench/. A test that hangs fails, later.
          testTimeout: 120_000,
          hookTimeout: 120_000,
          expect: { poll: { timeout: 30_000 } },
        },
      },
      {
        extends: true,
        test: { name: 'real-time', include: REAL_TIME, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
