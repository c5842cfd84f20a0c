import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IpmitoolFenceDevice, type IpmitoolFenceOptions } from '../../../site/adapters/ipmitool-fence';
import { deadBmcPort, type IpmiSim, startIpmiSim, watchCommandLines } from '../../support/ipmi-sim';

/** Calls chain several ipmitool runs, and a BMC that does not answer takes ~2 s per run by ipmitool's clock. */
const SLOW = 60_000;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('IpmitoolFenceDevice against a real IPMI v2 BMC (ipmi_sim)', () => {
  let sim: IpmiSim;
  const device = (overrides: Partial<IpmitoolFenceOptions> = {}) =>
    new IpmitoolFenceDevice({
      address: sim.address,
      port: sim.port,
      username: sim.username,
      password: sim.password,
      ...overrides,
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

  it('reads the power status: on, then off once the host is off', async () => {
    const bmc = device();
    expect(bmc.driver).toBe('ipmitool');
    expect(await bmc.powerStatus()).toBe('on');
    sim.setPower('off');
    expect(await bmc.powerStatus()).toBe('off');
  });

  it('powers the host off: acknowledged, then read back off', async () => {
    // given a host that is on
    const bmc = device();
    const offsBefore = sim.offCalls();
    // when the power-off is sent
    await bmc.powerOff();
    // then the BMC passed exactly one power-off to the host, and the status reads off
    expect(sim.offCalls() - offsBefore).toBe(1);
    expect(sim.power()).toBe('off');
    expect(await bmc.powerStatus()).toBe('off');
  });

  it('reads a host that is already off as off', async () => {
    sim.setPower('off');
    expect(await device().powerStatus()).toBe('off');
  });

  it('acknowledges a power-off the host ignores: only the status read tells', async () => {
    sim.setMode('ignore-off');
    const bmc = device();
    const offsBefore = sim.offCalls();
    await bmc.powerOff();
    expect(sim.offCalls() - offsBefore).toBe(1);
    expect(await bmc.powerStatus()).toBe('on');
  });

  it('fails on a wrong password with ipmitool’s own short message, and no password in it', async () => {
    const wrong = `Bad-Pw-${sim.password.slice(-8)}`;
    const error = await rejection(device({ password: wrong }).powerStatus());
    expect(error.message).toMatch(/^ipmitool chassis power status: .*Unable to establish IPMI v2/);
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(sim.password);
    expect(error.message.length).toBeLessThan(400);
    const off = await rejection(device({ password: wrong }).powerOff());
    expect(off.message).toMatch(/^ipmitool chassis power off: /);
    expect(sim.power()).toBe('on');
  });

  it(
    'fails when the BMC does not answer (ipmitool’s -N 1 -R 1 give up, not the hard kill)',
    async () => {
      const port = await deadBmcPort();
      const error = await rejection(device({ port }).powerStatus());
      expect(error.message).toMatch(/^ipmitool chassis power status: .*Unable to establish IPMI v2/);
      expect(error.message).not.toContain(sim.password);
    },
    SLOW,
  );

  it(
    'kills ipmitool at callTimeoutMs and says so',
    async () => {
      const port = await deadBmcPort();
      // ipmitool itself gives up after 10 s here: the 300 ms hard kill comes first whatever the load.
      const bmc = device({ port, timeoutS: 5, retries: 1, callTimeoutMs: 300 });
      const error = await rejection(bmc.powerStatus());
      expect(error.message).toBe('ipmitool chassis power status: no answer within 300 ms (killed)');
    },
    SLOW,
  );

  it(
    'never puts the password on a command line, nor in an error',
    async () => {
      // given a watcher reading every process's command line, as any local user can
      const live = watchCommandLines(sim.password, ['ipmitool']);
      const bmc = device();
      await bmc.powerStatus();
      await bmc.powerOff();
      await bmc.powerStatus();
      const liveReport = await live.stop();
      expect(liveReport.leaks).toEqual([]);

      // and against a BMC that does not answer, where ipmitool runs ~2 s and is surely seen running
      const dead = watchCommandLines(sim.password, ['ipmitool']);
      const error = await rejection(device({ port: await deadBmcPort() }).powerStatus());
      const deadReport = await dead.stop();
      expect(deadReport.seen.has('ipmitool')).toBe(true);
      expect(deadReport.leaks).toEqual([]);
      expect(error.message).not.toContain(sim.password);
    },
    SLOW,
  );
});

describe('IpmitoolFenceDevice, the command it runs', () => {
  let dir: string;

  /** A stand-in ipmitool that records its arguments and environment, then prints `answer`. */
  async function fakeIpmitool(answer: string, code = 0): Promise<string> {
    const path = join(dir, `ipmitool-${Math.random().toString(16).slice(2)}`);
    await writeFile(
      path,
      [
        '#!/bin/sh',
        `for arg in "$@"; do printf '%s\\n' "$arg"; done > '${path}.args'`,
        `env > '${path}.env'`,
        `printf '%s\\n' '${answer}'`,
        `exit ${code}`,
        '',
      ].join('\n'),
    );
    await chmod(path, 0o755);
    return path;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'halo-ipmitool-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes the password in IPMI_PASSWORD with -E, never -P, and no other inherited environment', async () => {
    // given a relay process whose own environment holds a secret
    process.env.HALO_TEST_RELAY_SECRET = 'relay-credential';
    try {
      const ipmitoolPath = await fakeIpmitool('Chassis Power is off');
      const bmc = new IpmitoolFenceDevice({
        address: '10.0.0.9',
        username: 'fence',
        password: 'Pw-7',
        ipmitoolPath,
      });
      expect(await bmc.powerStatus()).toBe('off');
      const args = (await readFile(`${ipmitoolPath}.args`, 'utf8')).trimEnd().split('\n');
      expect(args).toEqual(
        [
          '-I',
          'lanplus',
          '-H',
          '10.0.0.9',
          '-p',
          '623',
          '-U',
          'fence',
          '-C',
          '3',
          '-L',
          'ADMINISTRATOR',
        ].concat(['-N', '1', '-R', '1', '-E', 'chassis', 'power', 'status']),
      );
      const env = await readFile(`${ipmitoolPath}.env`, 'utf8');
      expect(env).toContain('IPMI_PASSWORD=Pw-7\n');
      expect(env).toContain('LANG=C\n');
      expect(env).not.toContain('relay-credential');
    } finally {
      delete process.env.HALO_TEST_RELAY_SECRET;
    }
  });

  it('refuses an answer that is not a power status', async () => {
    const ipmitoolPath = await fakeIpmitool('Chassis Power is lukewarm');
    const bmc = new IpmitoolFenceDevice({ address: 'bmc', username: 'u', password: 'p', ipmitoolPath });
    await expect(bmc.powerStatus()).rejects.toThrow(
      'ipmitool chassis power status: unexpected answer: Chassis Power is lukewarm',
    );
  });

  it('blanks the password should the output ever echo it, and keeps the message short', async () => {
    const ipmitoolPath = await fakeIpmitool(`Error: bad password Secret-Pw-1 ${'x'.repeat(1000)}`, 1);
    const bmc = new IpmitoolFenceDevice({
      address: 'bmc',
      username: 'u',
      password: 'Secret-Pw-1',
      ipmitoolPath,
    });
    const error = await rejection(bmc.powerOff());
    expect(error.message).toMatch(/^ipmitool chassis power off: Error: bad password \[redacted\] x+$/);
    expect(error.message.length).toBeLessThanOrEqual('ipmitool chassis power off: '.length + 300);
  });

  it('names the program when ipmitool is missing', async () => {
    const bmc = new IpmitoolFenceDevice({
      address: 'bmc',
      username: 'u',
      password: 'p',
      ipmitoolPath: join(dir, 'no-such-ipmitool'),
    });
    await expect(bmc.powerStatus()).rejects.toThrow(`cannot run ${join(dir, 'no-such-ipmitool')}: not found`);
  });

  it('rejects options that would change the command', () => {
    const base = { address: 'bmc', username: 'u', password: 'p' };
    expect(() => new IpmitoolFenceDevice({ ...base, address: '-oops' })).toThrow(/address/);
    expect(() => new IpmitoolFenceDevice({ ...base, port: 0 })).toThrow(/port/);
    expect(() => new IpmitoolFenceDevice({ ...base, timeoutS: 0.5 })).toThrow(/timeoutS/);
    expect(() => new IpmitoolFenceDevice({ ...base, password: 'a\nb' })).toThrow(/password must be one line/);
  });
});
