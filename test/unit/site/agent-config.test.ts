import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../../site/agent/main';
import { loadAgentConfig } from '../../../site/config/agent-config';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function folder(keyMode = 0o600) {
  const dir = mkdtempSync(join(tmpdir(), 'halo-agent-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'lan.key'), `${Buffer.alloc(32, 3).toString('base64')}\n`);
  chmodSync(join(dir, 'lan.key'), keyMode);
  const write = (config: unknown) => {
    const path = join(dir, 'agent.yaml');
    writeFileSync(path, stringify(config));
    return path;
  };
  return { dir, write };
}

const example = () => ({
  site: 'dc1',
  host: 'node01',
  cluster: 'prod',
  relays: { 'relay-a': '10.0.0.5:7400', 'relay-b': '10.0.0.6:7400' },
  lan: { listen: '0.0.0.0:7400', keyFile: './lan.key' },
  hypervisor: { uri: 'qemu:///system' },
});

async function run(argv: string[]) {
  let stderr = '';
  const code = await main(argv, {
    stdout: () => undefined,
    stderr: (t) => {
      stderr += t;
    },
    stopSignal: AbortSignal.abort(),
  });
  return { code, stderr };
}

describe('agent configuration', () => {
  it('loads: relays with their addresses, the LAN key, production defaults', () => {
    const { write } = folder();
    const settings = loadAgentConfig(write(example()));
    expect(settings).toMatchObject({
      siteId: 'dc1',
      hostId: 'node01',
      cluster: 'prod',
      relays: { 'relay-a': { host: '10.0.0.5', port: 7400 }, 'relay-b': { host: '10.0.0.6', port: 7400 } },
      lan: { host: '0.0.0.0', port: 7400 },
      hypervisor: { uri: 'qemu:///system', events: true },
      hostHeartbeatMs: 2000,
    });
  });

  it('exits 2 naming the field, or the LAN key file readable by others', async () => {
    const bad = folder();
    const path = bad.write({ ...example(), relays: { 'relay-a': 'nowhere' } });
    const field = await run(['--config', path]);
    expect(field.code).toBe(2);
    expect(field.stderr).toContain('relays.relay-a: expected host:port');

    const open = folder(0o644);
    const key = await run(['--config', open.write(example())]);
    expect(key.code).toBe(2);
    expect(key.stderr).toContain(join(open.dir, 'lan.key'));

    expect((await run([])).code).toBe(2);
  });
});
