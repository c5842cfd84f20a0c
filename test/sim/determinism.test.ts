import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateScenario } from '../../local/sim/generate';
import { runScenario } from '../../local/sim/runner';
import { parseScenario } from '../../local/sim/scenario-file';
import { onVirtualTime } from '../../local/sim/virtual-time';

/**
 * The deterministic simulator's promise: a seed is a run. The same scenario and seed give the same report
 * and timeline, byte for byte; a seed is all a failure report needs.
 */

const file = join(import.meta.dirname, '..', '..', 'scenarios', 'host-reboot-during-incident.json');

async function bytes(scenario: Parameters<typeof runScenario>[0], seed: number): Promise<string> {
  const lines: string[] = [];
  const result = await runScenario(scenario, { seed, onEvent: (line) => lines.push(line) });
  return JSON.stringify({ report: result.report, timeline: result.timeline, lines });
}

describe('deterministic simulation', () => {
  it('gives the same bytes for the same scenario and seed', async () => {
    const scenario = parseScenario(readFileSync(file, 'utf8'), file);
    const first = await bytes(scenario, 11);
    expect(await bytes(scenario, 11)).toBe(first);
    // The run did something worth comparing: incidents, starts, a timeline.
    expect(first).toContain('"incidents":[{');
    expect(first).toContain('VM started on');
  });

  it('gives the same bytes for a generated schedule, and other bytes for another seed', async () => {
    const a = await bytes(generateScenario(1000), 1000);
    expect(await bytes(generateScenario(1000), 1000)).toBe(a);
    expect(await bytes(generateScenario(1000), 1001)).not.toBe(a);
  });

  it('runs on virtual time: a minute of scenario passes without a minute of waiting', async () => {
    const started = Date.now();
    let seen = 0;
    await onVirtualTime(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 60_000));
        seen = Date.now();
      },
      { random: () => 0.5, startMs: 1_000 },
    );
    expect(seen).toBe(61_000);
    // Back on the real clock afterwards.
    expect(Date.now()).toBeGreaterThanOrEqual(started);
  });

  it('fails loudly when the run waits on something that is no timer', async () => {
    await expect(
      onVirtualTime(() => new Promise<void>(() => undefined), { random: () => 0.5 }),
    ).rejects.toThrow(/virtual time is stuck/);
  });

  it('restores Math.random and refuses a second run on the same thread at once', async () => {
    const real = Math.random;
    const inner = onVirtualTime(async () => Math.random(), { random: () => 0.25 });
    await expect(onVirtualTime(async () => 1, { random: () => 0.5 })).rejects.toThrow(/already in progress/);
    expect(await inner).toBe(0.25);
    expect(Math.random).toBe(real);
  });
});
