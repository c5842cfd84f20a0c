import { defineConfig } from 'vitest/config';

/**
 * The simulator's scenario and randomized runs play failures out in real time, with heartbeats and
 * timeouts of a few hundred milliseconds: starved of CPU by other test files they would see healthy hosts
 * fall silent and starts time out. They run after everything else, one file at a time.
 */
const REAL_TIME = ['test/sim/scenarios.test.ts', 'test/sim/random.test.ts'];

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
        },
      },
      {
        extends: true,
        test: { name: 'real-time', include: REAL_TIME, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
