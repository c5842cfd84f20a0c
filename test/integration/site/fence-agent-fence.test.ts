import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FenceAgentDevice } from '../../../site/adapters/fence-agent-fence';
import { deadBmcPort, type IpmiSim, startIpmiSim, watchCommandLines } from '../../support/ipmi-sim';

/** fence_ipmilan runs ipmitool once or more per call, and against a dead BMC waits out power_timeout. */
const SLOW = 60_000;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('FenceAgentDevice: fence_ipmilan against a real IPMI v2 BMC (ipmi_sim)', () => {
  let sim: IpmiSim;
  /**
   * The operator's options for fence_ipmilan: lanplus with cipher 3 (without it each call takes ~14 s),
   * no power_wait after off (the agent reads the status back itself), and 3 s timeouts so a dead BMC fails
   * in ~3 s rather than ~20 s.
   */
  const ipmilan = (overrides: Record<string, string> = {}) =>
    new FenceAgentDevice({
      agent: 'fence_ipmilan',
      options: {
        ip: sim.address,
        ipport: String(sim.port),
        username: sim.username,
        password: sim.password,
        lanplus: '1',
        cipher: '3',
        power_wait: '0',
        power_timeout: '3',
        shell_timeout: '3',
        login_timeout: '3',
        ...overrides,
      },
    });

  beforeAll(async () => {
    sim = await startIpmiSim();
  });
  afterAll(async () => {
    await sim?.stop();
  });
  beforeEach(() => {
    sim.setMode('normal');
    sim.setPower('on');
  });

  it('reads the power status: on (exit 0), then off (exit 2)', async () => {
    const device = ipmilan();
    expect(device.driver).toBe('fence_ipmilan');
    expect(await device.powerStatus()).toBe('on');
    sim.setPower('off');
    expect(await device.powerStatus()).toBe('off');
  });

  it('powers the host off: acknowledged, then read back off', async () => {
    const device = ipmilan();
    const offsBefore = sim.offCalls();
    await device.powerOff();
    expect(sim.offCalls() - offsBefore).toBe(1);
    expect(sim.power()).toBe('off');
    expect(await device.powerStatus()).toBe('off');
  });

  it('reads a host already off as off, and a power-off then sends nothing ("Already OFF")', async () => {
    sim.setPower('off');
    const device = ipmilan();
    expect(await device.powerStatus()).toBe('off');
    const offsBefore = sim.offCalls();
    await device.powerOff();
    expect(sim.offCalls() - offsBefore).toBe(0);
  });

  it(
    'fails a power-off the host ignores: fence_ipmilan reads the status back itself until power_timeout',
    async () => {
      // Unlike ipmitool, the agent does not stop at the acknowledgement: "Timed out waiting to power OFF".
      sim.setMode('ignore-off');
      const device = ipmilan();
      const offsBefore = sim.offCalls();
      const error = await rejection(device.powerOff());
      expect(error.message).toMatch(/^fence_ipmilan off: .*Timed out waiting to power OFF/);
      expect(sim.offCalls() - offsBefore).toBe(1);
      expect(await device.powerStatus()).toBe('on');
    },
    SLOW,
  );

  it('fails on a wrong password with the agent’s one-line error, and no password in it', async () => {
    const wrong = `Bad-Pw-${sim.password.slice(-8)}`;
    const error = await rejection(ipmilan({ password: wrong }).powerStatus());
    expect(error.message).toMatch(/^fence_ipmilan status: Failed: Unable to obtain correct plug status/);
    expect(error.message).not.toMatch(/DeprecationWarning|^\d{4}-/);
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(sim.password);
    expect(sim.power()).toBe('on');
  });

  it(
    'fails when the BMC does not answer',
    async () => {
      const port = await deadBmcPort();
      const error = await rejection(ipmilan({ ipport: String(port) }).powerStatus());
      expect(error.message).toMatch(/^fence_ipmilan status: .*timed out/i);
      expect(error.message).not.toContain(sim.password);
    },
    SLOW,
  );

  it(
    'keeps the password off the agent’s command line; only the ipmitool it runs ever carries it',
    async () => {
      // given a watcher reading every process's command line while the agent works
      const watch = watchCommandLines(sim.password, ['fence_ipmilan', 'ipmitool']);
      const device = ipmilan();
      await device.powerStatus();
      await device.powerOff();
      await device.powerStatus();
      const report = await watch.stop();
      // fence_ipmilan always runs `ipmitool … -P <password>` (any input form, password_script included);
      // ipmitool overwrites it with XXXX once running, so a scan catches it only in that first instant.
      const holders = report.leaks.map((argv) => basename(argv[0] ?? ''));
      expect(holders.filter((program) => program !== 'ipmitool')).toEqual([]);
      expect(report.seen.has('fence_ipmilan')).toBe(true);
    },
    SLOW,
  );
});

describe('FenceAgentDevice, how it runs an agent', () => {
  let dir: string;

  /**
   * A stand-in agent in `dir`: records its arguments, environment and input, then behaves as `script`
   * says (a shell fragment run last).
   */
  async function fakeAgent(name: string, script: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(
      path,
      [
        '#!/bin/sh',
        `printf '%s\\n' "$#" > '${path}.argc'`,
        `env > '${path}.env'`,
        `cat > '${path}.stdin'`,
        script,
        '',
      ].join('\n'),
    );
    await chmod(path, 0o755);
    return path;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'halo-fence-agent-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes every option on standard input with the action last, nothing on the command line', async () => {
    const path = await fakeAgent('fence_stdin', 'exit 2');
    const device = new FenceAgentDevice({
      agent: 'fence_stdin',
      options: { ip: '10.0.0.9', username: 'fence', password: 'Pw with spaces', lanplus: '1' },
      agentDir: dir,
    });
    expect(await device.powerStatus()).toBe('off');
    expect(await readFile(`${path}.argc`, 'utf8')).toBe('0\n');
    expect(await readFile(`${path}.stdin`, 'utf8')).toBe(
      'ip=10.0.0.9\nusername=fence\npassword=Pw with spaces\nlanplus=1\naction=status\n',
    );
    const env = await readFile(`${path}.env`, 'utf8');
    expect(env).not.toContain('Pw with spaces');
    expect(env).toContain('LANG=C\n');
  });

  it('maps the exit codes: status 0 on, 2 off, others an error; off 0 acknowledged', async () => {
    await fakeAgent('fence_codes', 'case "$(cat "$0.stdin")" in *action=off*) exit 0 ;; esac; exit 0');
    const device = new FenceAgentDevice({ agent: 'fence_codes', options: {}, agentDir: dir });
    expect(await device.powerStatus()).toBe('on');
    await expect(device.powerOff()).resolves.toBeUndefined();
    await fakeAgent('fence_broken', 'exit 1');
    const broken = new FenceAgentDevice({ agent: 'fence_broken', options: {}, agentDir: dir });
    await expect(broken.powerStatus()).rejects.toThrow('fence_broken status: exit code 1');
    await expect(broken.powerOff()).rejects.toThrow('fence_broken off: exit code 1');
  });

  it('quotes the agent’s ERROR line, not Python warnings, and blanks secret option values', async () => {
    await fakeAgent(
      'fence_noisy',
      [
        `echo "/usr/sbin/fence_noisy:5: DeprecationWarning: 'pipes' is deprecated" >&2`,
        'echo "  from pipes import quote" >&2',
        `echo "2026-01-01 10:00:00,123 WARNING: Parse error: Ignoring unknown option 'passwd=S3cret-Pw'" >&2`,
        'echo "2026-01-01 10:00:01,456 ERROR: Failed: login with S3cret-Pw refused" >&2',
        'exit 1',
      ].join('\n'),
    );
    const device = new FenceAgentDevice({
      agent: 'fence_noisy',
      options: { passwd: 'S3cret-Pw', snmp_priv_passwd: 'Priv-Pw-9' },
      agentDir: dir,
    });
    const error = await rejection(device.powerStatus());
    expect(error.message).toBe('fence_noisy status: Failed: login with [redacted] refused');
  });

  it(
    'kills the agent and what it started at callTimeoutMs',
    async () => {
      const path = await fakeAgent('fence_hangs', `sleep 60 & echo $! > "$0.child"; wait`);
      const device = new FenceAgentDevice({
        agent: 'fence_hangs',
        options: {},
        agentDir: dir,
        callTimeoutMs: 300,
      });
      const error = await rejection(device.powerStatus());
      expect(error.message).toBe('fence_hangs status: no answer within 300 ms (killed)');
      const child = (await readFile(`${path}.child`, 'utf8')).trim();
      // Gone, or a zombie waiting for a reaper: either way no longer running.
      const state = await readFile(`/proc/${child}/stat`, 'utf8').then(
        (stat) => stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3),
        () => 'gone',
      );
      expect(['gone', 'Z', 'X']).toContain(state);
    },
    SLOW,
  );

  it('says where it looked when the agent is missing', async () => {
    const device = new FenceAgentDevice({ agent: 'fence_absent', options: {}, agentDir: dir });
    await expect(device.powerStatus()).rejects.toThrow(`fence_absent: fence agent not found in ${dir}`);
  });

  it('rejects a bad agent name and options that would not reach the agent as written', () => {
    const make = (agent: string, options: Record<string, string>) => () =>
      new FenceAgentDevice({ agent, options, agentDir: dir });
    expect(make('ipmitool', {})).toThrow(/not a fence agent name/);
    expect(make('fence_x; rm -rf /', {})).toThrow(/not a fence agent name/);
    expect(make('../fence_x', {})).toThrow(/not a fence agent name/);
    expect(make('fence_x', { password: 'a\naction=reboot' })).toThrow(/password must be one line/);
    expect(make('fence_x', { 'ip\nx': '1' })).toThrow(/not a plain option name/);
    expect(make('fence_x', { action: 'reboot' })).toThrow(/set by the relay/);
    expect(make('fence_x', { password: ' padded ' })).toThrow(/blanks the agent would strip/);
    // The message names the option, never its value.
    expect(make('fence_x', { password: 'Secret-1\n' })).not.toThrow(/Secret-1/);
  });
});
