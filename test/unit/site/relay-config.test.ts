import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../../site/config/config-file';
import { loadRelayConfig } from '../../../site/config/relay-config';
import { main } from '../../../site/relay/main';

const CREDENTIAL = 'hrc1.dc1.relay-a.c2VjcmV0LW9mLXRoZS1yZWxheQ';
const LAN_KEY = Buffer.alloc(32, 7).toString('base64');

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder with a credential, a LAN key and BMC password files (all 0600), and a config writer. */
function siteFolder() {
  const dir = mkdtempSync(join(tmpdir(), 'halo-relay-config-'));
  dirs.push(dir);
  const secret = (name: string, value: string, mode = 0o600) => {
    writeFileSync(join(dir, name), `${value}\n`);
    chmodSync(join(dir, name), mode);
  };
  secret('relay.credential', CREDENTIAL);
  secret('lan.key', LAN_KEY);
  secret('node01.pass', 'Bmc-Pw-node01');
  secret('pdu.pass', 'Pdu-Pw-3');
  const write = (config: unknown, name = 'relay.yaml', mode = 0o644) => {
    const path = join(dir, name);
    writeFileSync(path, typeof config === 'string' ? config : stringify(config));
    chmodSync(path, mode);
    return path;
  };
  return { dir, secret, write };
}

/** The example configuration. */
function example(): Record<string, unknown> {
  return {
    site: 'dc1',
    relay: 'relay-a',
    controlPlane: { url: 'https://halo.example/', credentialFile: './relay.credential' },
    lan: { listen: '0.0.0.0:7400', keyFile: './lan.key' },
    stateDir: './state',
    hosts: {
      node01: {
        fence: [
          {
            driver: 'ipmitool',
            address: '10.0.0.11',
            port: 623,
            username: 'admin',
            passwordFile: './node01.pass',
            cipherSuite: 3,
          },
          {
            driver: 'fence-agent',
            agent: 'fence_apc_snmp',
            options: { ip: '10.0.0.50', plug: '3', username: 'apc', passwordFile: './pdu.pass' },
          },
        ],
      },
    },
  };
}

function configError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('relay configuration', () => {
  it('loads the documented example: secrets read, relative paths against the file, agent options on stdin form', () => {
    const { dir, write } = siteFolder();
    const settings = loadRelayConfig(write(example()));
    expect(settings).toMatchObject({
      siteId: 'dc1',
      relayId: 'relay-a',
      credential: CREDENTIAL,
      stateDir: join(dir, 'state'),
      lan: { host: '0.0.0.0', port: 7400, key: Buffer.from(LAN_KEY, 'base64') },
    });
    expect(settings.hosts.node01).toEqual([
      {
        driver: 'ipmitool',
        address: '10.0.0.11',
        port: 623,
        username: 'admin',
        password: 'Bmc-Pw-node01',
        cipherSuite: 3,
      },
      {
        driver: 'fence-agent',
        agent: 'fence_apc_snmp',
        options: { ip: '10.0.0.50', plug: '3', username: 'apc', password: 'Pdu-Pw-3' },
      },
    ]);
    // every secret, address and user is handed to the redactor
    for (const value of ['Bmc-Pw-node01', 'Pdu-Pw-3', '10.0.0.11', '10.0.0.50', 'admin', 'apc', LAN_KEY]) {
      expect(settings.secrets).toContain(value);
    }
  });

  it('accepts JSON', () => {
    const { write } = siteFolder();
    expect(loadRelayConfig(write(JSON.stringify(example()), 'relay.json')).relayId).toBe('relay-a');
  });

  it('names the field at fault', () => {
    const { write } = siteFolder();
    const config = example();
    const hosts = config.hosts as { node01: { fence: Record<string, unknown>[] } };
    const level = hosts.node01.fence[0];
    if (level === undefined) throw new Error('fixture');
    level.port = 'six-two-three';
    const message = configError(() => loadRelayConfig(write(config)));
    expect(message).toContain('hosts.node01.fence.0.port: expected number');
  });

  it('names unknown fields, a bad listen address and an unknown driver', () => {
    const { write } = siteFolder();
    const config = {
      ...example(),
      lan: { listen: 'everywhere', keyFile: './lan.key' },
      colour: 'blue',
      hosts: { node02: { fence: [{ driver: 'telnet' }] } },
    };
    const message = configError(() => loadRelayConfig(write(config)));
    expect(message).toContain('lan.listen: expected host:port');
    expect(message).toContain('colour');
    expect(message).toContain('hosts.node02.fence.0.driver');
  });

  it('names the line of a YAML syntax error', () => {
    const { write } = siteFolder();
    const message = configError(() => loadRelayConfig(write('site: dc1\nrelay: [relay-a\nstateDir: x\n')));
    expect(message).toMatch(/relay\.yaml line \d+/);
  });

  it('refuses a secret file that group or others can read, naming the file', () => {
    const { dir, secret, write } = siteFolder();
    secret('node01.pass', 'Bmc-Pw-node01', 0o640);
    const message = configError(() => loadRelayConfig(write(example())));
    expect(message).toContain(join(dir, 'node01.pass'));
    expect(message).toContain('hosts.node01.fence.0.passwordFile');
    expect(message).not.toContain('Bmc-Pw-node01');
  });

  it('refuses a readable credential or LAN key file', () => {
    for (const name of ['relay.credential', 'lan.key']) {
      const { dir, secret, write } = siteFolder();
      secret(name, name === 'lan.key' ? LAN_KEY : CREDENTIAL, 0o604);
      expect(configError(() => loadRelayConfig(write(example())))).toContain(join(dir, name));
    }
  });

  it('refuses a configuration with an inline password unless only its owner can read it', () => {
    const { write } = siteFolder();
    const config = example();
    const hosts = config.hosts as { node01: { fence: Record<string, unknown>[] } };
    const level = hosts.node01.fence[0];
    if (level === undefined) throw new Error('fixture');
    delete level.passwordFile;
    level.password = 'Inline-Pw-1';
    const readable = write(config, 'inline.yaml', 0o644);
    const message = configError(() => loadRelayConfig(readable));
    expect(message).toContain(readable);
    expect(message).not.toContain('Inline-Pw-1');
    const settings = loadRelayConfig(write(config, 'inline-private.yaml', 0o600));
    expect(settings.hosts.node01?.[0]).toMatchObject({ password: 'Inline-Pw-1' });
  });

  it('refuses a LAN key shorter than 32 bytes at load time, without echoing it', () => {
    const { secret, write } = siteFolder();
    secret('lan.key', 'c2hvcnQta2V5');
    const message = configError(() => loadRelayConfig(write(example())));
    expect(message).toContain('lan.keyFile: LAN key: expected at least 32 bytes');
    expect(message).not.toContain('c2hvcnQta2V5');
  });

  it('wants exactly one of password and passwordFile', () => {
    const { write } = siteFolder();
    const config = example();
    const hosts = config.hosts as { node01: { fence: Record<string, unknown>[] } };
    const level = hosts.node01.fence[0];
    if (level === undefined) throw new Error('fixture');
    delete level.passwordFile;
    expect(configError(() => loadRelayConfig(write(config)))).toContain(
      'hosts.node01.fence.0: give exactly one of password and passwordFile',
    );
  });

  it('refuses a credential issued to another relay', () => {
    const { secret, write } = siteFolder();
    secret('relay.credential', 'hrc1.dc1.relay-b.c2VjcmV0');
    expect(configError(() => loadRelayConfig(write(example())))).toContain('another site or relay');
  });
});

describe('halo-relay command line', () => {
  const run = async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      stopSignal: AbortSignal.abort(),
    });
    return { code, stdout, stderr };
  };

  it('exits 2 naming the field for a bad configuration, for the loop and for check-bmc', async () => {
    const { write } = siteFolder();
    const path = write({ ...example(), stateDir: 42 });
    for (const argv of [
      ['--config', path],
      ['check-bmc', '--config', path, '--json'],
    ]) {
      const { code, stderr } = await run(argv);
      expect(code).toBe(2);
      expect(stderr).toContain('stateDir: expected string');
    }
  });

  it('exits 2 naming the level when its driver refuses a value the schema let through', async () => {
    const { write } = siteFolder();
    const config = example();
    const hosts = config.hosts as { node01: { fence: Record<string, unknown>[] } };
    const level = hosts.node01.fence[0];
    if (level === undefined) throw new Error('fixture');
    // ipmitool would read it as an option
    level.address = '-oProxyCommand=x';
    const { code, stderr } = await run(['check-bmc', '--config', write(config)]);
    expect(code).toBe(2);
    expect(stderr).toContain('hosts.node01.fence.0: ipmitool fence device: address must be non-empty');
  });

  it('exits 2 for a host check-bmc does not know, and for no --config', async () => {
    const { write } = siteFolder();
    const path = write(example());
    const unknown = await run(['check-bmc', '--config', path, 'node09']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no host node09');
    expect((await run(['check-bmc'])).code).toBe(2);
    expect((await run([])).code).toBe(2);
  });
});

describe('the site’s other relays (lan.relays)', () => {
  it('reads each peer relay at its LAN address; the relay itself or a bad address is refused', () => {
    const site = siteFolder();
    const lan = (relays: Record<string, string>) => ({
      ...example(),
      lan: { listen: '0.0.0.0:7400', keyFile: './lan.key', relays },
    });
    const settings = loadRelayConfig(site.write(lan({ 'relay-b': '10.0.0.3:7400' })));
    expect(settings.lan.relays).toEqual({ 'relay-b': { host: '10.0.0.3', port: 7400 } });
    expect(loadRelayConfig(site.write(example())).lan.relays).toEqual({});
    expect(() => loadRelayConfig(site.write(lan({ 'relay-a': '10.0.0.2:7400' })))).toThrow(
      /lan\.relays\.relay-a: this relay itself/,
    );
    expect(() => loadRelayConfig(site.write(lan({ 'relay-b': 'nowhere' })))).toThrow(ConfigError);
  });
});
