import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioFileError } from '../../../local/sim/scenario-file';

const example = `{
  "name": "node01 crashes",
  "timing":  { "hostHeartbeatMs": 200, "missedHeartbeats": 3, "relayReportMs": 500 },
  "policy":  { "cpuOvercommit": 1.0, "massSilenceShare": 0.5, "fencingEnabled": true },
  "sites":   [ { "id": "dc1", "relays": ["relay-a"] } ],
  "hosts":   [ { "id": "node01", "site": "dc1", "cluster": "prod", "cpus": 32, "memoryMiB": 65536 },
               { "id": "node02", "site": "dc1", "cluster": "prod", "cpus": 32, "memoryMiB": 65536 } ],
  "vms":     [ { "id": "vm-001", "host": "node01", "cpus": 2, "memoryMiB": 4096, "ha": true, "priority": "high", "antiAffinity": "web" } ],
  "faults":  [ { "atMs": 2000, "type": "host-crash", "host": "node01" } ],
  "durationMs": 15000
}`;

const yaml = `
name: node01 crashes
sites:
  - id: dc1
    relays: [relay-a]
hosts:
  - { id: node01, site: dc1, cluster: prod, cpus: 32, memoryMiB: 65536 }
vms:
  - id: vm-001
    host: node01
    cpus: 2
    memoryMiB: 4096
    ha: true
faults:
  - { atMs: 2000, type: host-crash, host: node01 }
durationMs: 15000
`;

function problemsOf(text: string, file: string): string {
  try {
    parseScenario(text, file);
  } catch (e) {
    if (e instanceof ScenarioFileError) return e.message;
    throw e;
  }
  throw new Error('expected the scenario to be refused');
}

describe('scenario files', () => {
  it('given the issue example as JSON, then it parses with its values', () => {
    const s = parseScenario(example, 'crash.json');
    expect(s.name).toBe('node01 crashes');
    expect(s.faults).toEqual([{ atMs: 2000, type: 'host-crash', host: 'node01' }]);
    expect(s.vms[0]).toMatchObject({ ha: true, priority: 'high', antiAffinity: 'web' });
  });

  it('given the same as YAML with optional parts left out, then defaults fill them', () => {
    const s = parseScenario(yaml, 'crash.yaml');
    expect(s.timing).toMatchObject({ hostHeartbeatMs: 200, missedHeartbeats: 3, relayReportMs: 500 });
    expect(s.policy).toMatchObject({ cpuOvercommit: 1, fencingEnabled: true, massSilenceShare: 0.5 });
    expect(s.vms[0]?.priority).toBe('medium');
  });

  it('given a bad value, then the message names the field and its line', () => {
    const bad = example.replace('"memoryMiB": 4096', '"memoryMiB": -4096');
    expect(problemsOf(bad, 'crash.json')).toMatch(/^crash\.json:8: vms\[0\]\.memoryMiB: /);
  });

  it('given an unknown field or fault type, then each is named', () => {
    expect(problemsOf(yaml.replace('ha: true', 'ha: true\n    colour: red'), 'x.yaml')).toMatch(
      /x\.yaml:\d+: vms\[0\]\.colour: unknown field/,
    );
    expect(problemsOf(yaml.replace('host-crash', 'host-explodes'), 'x.yaml')).toMatch(/faults\[0\]\.type/);
  });

  it('given references to things that do not exist, then each is named', () => {
    const msg = problemsOf(
      yaml.replace('host: node01 }', 'host: node09 }').replace('site: dc1,', 'site: dc2,'),
      'x.yaml',
    );
    expect(msg).toMatch(/faults\[0\]\.host: unknown host "node09"/);
    expect(msg).toMatch(/hosts\[0\]\.site: unknown site "dc2"/);
  });

  it('given a fault after the end or a duplicate id, then it is refused', () => {
    expect(problemsOf(yaml.replace('atMs: 2000', 'atMs: 20000'), 'x.yaml')).toMatch(
      /faults\[0\]\.atMs: after the scenario ends/,
    );
    const dup = example.replace('"id": "node02"', '"id": "node01"');
    expect(problemsOf(dup, 'x.json')).toMatch(/hosts\[1\]\.id: duplicate host id "node01"/);
  });

  it('given malformed JSON, then the line of the syntax error is named', () => {
    expect(problemsOf(example.replace('"durationMs": 15000', '"durationMs": 15000,,'), 'x.json')).toMatch(
      /^x\.json:10: not valid JSON/,
    );
  });

  it('given a required field missing, then it is named at its parent', () => {
    expect(problemsOf(yaml.replace('durationMs: 15000', ''), 'x.yaml')).toMatch(/durationMs: /);
  });
  it('given the widened conditions, then they parse, defaults filled, and a skew names a relay of its site', () => {
    const widened = yaml
      .replace(
        'relays: [relay-a]',
        'relays: [relay-a]\n    lan: { delayMs: 5, jitterMs: 20, lossPct: 2.5 }\n    relayClockSkewMs: { relay-a: -250 }',
      )
      .replace('memoryMiB: 65536 }', 'memoryMiB: 65536, bmcLatencyMs: 400 }')
      .replace('ha: true', 'ha: true\n    bootMs: 1500')
      .replace(
        '- { atMs: 2000, type: host-crash, host: node01 }',
        '- { atMs: 1000, type: lan-degrade, site: dc1, lossPct: 30 }\n  - { atMs: 2000, type: lan-heal, site: dc1 }',
      );
    const s = parseScenario(widened, 'widened.yaml');
    expect(s.sites[0]).toMatchObject({
      lan: { delayMs: 5, jitterMs: 20, lossPct: 2.5 },
      relayClockSkewMs: { 'relay-a': -250 },
    });
    expect(s.hosts[0]?.bmcLatencyMs).toBe(400);
    expect(s.vms[0]?.bootMs).toBe(1500);
    expect(s.faults).toEqual([
      { atMs: 1000, type: 'lan-degrade', site: 'dc1', delayMs: 0, jitterMs: 0, lossPct: 30 },
      { atMs: 2000, type: 'lan-heal', site: 'dc1' },
    ]);
    expect(problemsOf(widened.replace('relay-a: -250', 'relay-z: -250'), 'x.yaml')).toMatch(
      /sites\[0\]\.relayClockSkewMs\.relay-z: "relay-z" is not a relay of site "dc1"/,
    );
    expect(problemsOf(widened.replace('lossPct: 30', 'lossPct: 130'), 'x.yaml')).toMatch(
      /faults\[0\]\.lossPct/,
    );
    expect(problemsOf(widened.replace('site: dc1, lossPct', 'site: dc9, lossPct'), 'x.yaml')).toMatch(
      /faults\[0\]\.site: unknown site "dc9"/,
    );
  });
});
