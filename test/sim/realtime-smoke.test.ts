import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../local/sim/runner';
import { parseScenario } from '../../local/sim/scenario-file';

/**
 * The one real-time run left in the suite: local mode as `npm start` runs it (dynalite in its thread, the
 * HTTP endpoint, the failover steps' thread, the wall clock), driven by the simulator. It asserts outcomes
 * only: how long anything took depends on the machine, and is the virtual-time suite's business.
 */

const file = join(import.meta.dirname, '..', '..', 'scenarios', 'host-crash.json');

describe('real-time smoke run on dynalite', () => {
  it("recovers a crashed host's HA VMs, once each, and leaves the non-HA VM down", async () => {
    const scenario = parseScenario(readFileSync(file, 'utf8'), file);
    const { report } = await runScenario(scenario, { seed: 3, time: 'real-time' });
    expect(report.violations).toEqual([]);
    const hostIncidents = report.incidents.filter((i) => i.kind !== 'vm');
    expect(hostIncidents.map((i) => [i.host, i.outcome])).toEqual([['node01', 'recovered']]);
    for (const vm of ['vm-db', 'vm-web', 'vm-batch']) {
      expect(report.vms[vm]?.runningOn).toHaveLength(1);
      expect(report.vms[vm]?.runningOn).not.toContain('node01');
    }
    expect(report.vms['vm-scratch']?.runningOn).toEqual([]);
    expect(report.hosts.node01?.power).toBe('off');
  }, 120_000);
});
