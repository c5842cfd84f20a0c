import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { FenceCommand } from '../../../contracts/relay-protocol';
import { FenceAgentDevice } from '../../../site/adapters/fence-agent-fence';
import { IpmitoolFenceDevice } from '../../../site/adapters/ipmitool-fence';
import type { Clock } from '../../../site/ports';
import { FenceRun } from '../../../site/relay/fence-run';
import { deadBmcPort, type IpmiSim, startIpmiSim } from '../../support/ipmi-sim';

/**
 * The relay's fencing against real BMCs: fence levels through ipmitool and fence_ipmilan against
 * OpenIPMI's ipmi_sim (a second ipmi_sim stands in for a PDU), and `halo-relay check-bmc` as a program,
 * both through the npm bin and from the esbuild site bundle.
 */

const ROOT = join(import.meta.dirname, '../../..');
const run = promisify(execFile);
const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

let bmc: IpmiSim;
let pdu: IpmiSim;
let dead: number;
const dirs: string[] = [];

beforeAll(async () => {
  bmc = await startIpmiSim({ power: 'on' });
  pdu = await startIpmiSim({ power: 'on' });
  dead = await deadBmcPort();
}, 60_000);

afterAll(async () => {
  await bmc?.stop();
  await pdu?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function ipmitool(sim: IpmiSim, port = sim.port): IpmitoolFenceDevice {
  return new IpmitoolFenceDevice({
    address: sim.address,
    port,
    username: sim.username,
    password: sim.password,
  });
}

function fenceIpmilan(sim: IpmiSim): FenceAgentDevice {
  return new FenceAgentDevice({
    agent: 'fence_ipmilan',
    options: {
      ip: sim.address,
      ipport: String(sim.port),
      username: sim.username,
      password: sim.password,
      lanplus: '1',
      cipher: '3',
      power_wait: '0',
      power_timeout: '5',
      shell_timeout: '3',
      login_timeout: '3',
    },
  });
}

function command(validMs: number): FenceCommand {
  const now = Date.now();
  return {
    kind: 'fence',
    commandId: `dc1:node01:1:fence:${now}`,
    incidentId: 'dc1:node01:1',
    hostId: 'node01',
    issuedAt: now,
    notAfter: now + validMs,
  };
}

/** Steps a fence the way the relay's loop does, until it finishes. */
async function fence(run: FenceRun) {
  for (;;) {
    const outcome = await run.step();
    if (outcome.finished) return outcome.result;
    await systemClock.sleep(Math.max(0, run.dueAt - Date.now()));
  }
}

describe('fence levels on real BMCs', () => {
  it('level 1 (ipmitool) does not answer: level 2 (fence_ipmilan on the PDU) powers off and reads it back', async () => {
    pdu.setPower('on');
    const result = await fence(
      new FenceRun(command(60_000), [{ device: ipmitool(bmc, dead) }, { device: fenceIpmilan(pdu) }], {
        clock: systemClock,
        pollMs: 200,
      }),
    );
    expect(result).toMatchObject({
      outcome: 'succeeded',
      powerState: 'off',
      level: 2,
      driver: 'fence_ipmilan',
    });
    expect(result?.detail).toContain('level 1 ipmitool');
    expect(pdu.power()).toBe('off');
  }, 60_000);

  it('level 1 acknowledges but stays on: after its timeout level 2 (ipmitool) confirms', async () => {
    bmc.setPower('on');
    bmc.setMode('ignore-off');
    pdu.setPower('on');
    try {
      const result = await fence(
        new FenceRun(
          command(60_000),
          [{ device: ipmitool(bmc), timeoutMs: 2000 }, { device: ipmitool(pdu) }],
          { clock: systemClock, pollMs: 200 },
        ),
      );
      expect(result).toMatchObject({ outcome: 'succeeded', level: 2, driver: 'ipmitool' });
      expect(result?.detail).toContain('power-off acknowledged but still read on');
      expect(bmc.power()).toBe('on');
      expect(pdu.power()).toBe('off');
    } finally {
      bmc.setMode('normal');
    }
  }, 60_000);
});

/** A relay folder whose config fences node01 through bmc, node02 through bmc then a dead level. */
function relayConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'halo-check-bmc-'));
  dirs.push(dir);
  const secret = (name: string, value: string) => {
    writeFileSync(join(dir, name), `${value}\n`);
    chmodSync(join(dir, name), 0o600);
  };
  secret('relay.credential', 'hrc1.dc1.relay-a.c2VjcmV0');
  secret('lan.key', Buffer.alloc(32, 1).toString('base64'));
  secret('bmc.pass', bmc.password);
  const level = (port: number) => ({
    driver: 'ipmitool',
    address: bmc.address,
    port,
    username: bmc.username,
    passwordFile: './bmc.pass',
    cipherSuite: 3,
  });
  const config = {
    site: 'dc1',
    relay: 'relay-a',
    controlPlane: { url: 'http://127.0.0.1:9/', credentialFile: './relay.credential' },
    lan: { listen: '127.0.0.1:0', keyFile: './lan.key' },
    stateDir: './state',
    hosts: {
      node01: { fence: [level(bmc.port)] },
      node02: { fence: [level(bmc.port), level(dead)] },
    },
  };
  const path = join(dir, 'relay.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

async function checkBmc(program: readonly string[], args: readonly string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [...program, 'check-bmc', ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('halo-relay check-bmc', () => {
  const bin = [join(ROOT, 'bin', 'halo-relay.mjs')];

  it('--json: one entry per level; exit 0 when every level answers, 1 when one does not', async () => {
    bmc.setPower('on');
    const config = relayConfig();
    const good = await checkBmc(bin, ['--config', config, '--json', 'node01']);
    expect(good.code).toBe(0);
    const entries = JSON.parse(good.stdout) as Record<string, unknown>[];
    expect(entries).toEqual([
      {
        host: 'node01',
        level: 1,
        driver: 'ipmitool',
        ok: true,
        power: 'on',
        ms: expect.any(Number),
        error: null,
      },
    ]);

    const all = await checkBmc(bin, ['--config', config, '--json']);
    expect(all.code).toBe(1);
    const rows = JSON.parse(all.stdout) as {
      host: string;
      level: number;
      ok: boolean;
      error: string | null;
    }[];
    expect(rows.map((r) => [r.host, r.level, r.ok])).toEqual([
      ['node01', 1, true],
      ['node02', 1, true],
      ['node02', 2, false],
    ]);
    expect(rows[2]?.error).toContain('ipmitool chassis power status');
    // the error names neither the password nor the BMC's address
    expect(all.stdout).not.toContain(bmc.password);
    expect(rows[2]?.error).not.toContain(bmc.address);
  }, 60_000);

  it('prints a table by default, and changes nothing', async () => {
    bmc.setPower('on');
    const offBefore = bmc.offCalls();
    const { code, stdout } = await checkBmc(bin, ['--config', relayConfig()]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^host\s+level\s+driver\s+answer\s+power\s+ms\s+error/);
    expect(stdout).toContain('FAILED');
    expect(stdout).toContain('1 level(s) did not answer; 0 host(s) cannot be fenced by any level');
    expect(bmc.offCalls()).toBe(offBefore);
    expect(bmc.power()).toBe('on');
  }, 60_000);

  it('works from the site bundle (npm run build:site) with nothing but its Node.js', async () => {
    await run(process.execPath, [join(ROOT, 'node_modules', '.bin', 'tsx'), 'site/build.ts'], { cwd: ROOT });
    const dist = join(ROOT, 'dist', 'site');
    const config = relayConfig();
    // run from an empty folder, by the bundled node binary: no node_modules within reach
    const empty = mkdtempSync(join(tmpdir(), 'halo-bundle-'));
    dirs.push(empty);
    const { stdout } = await run(
      join(dist, 'node'),
      [join(dist, 'halo-relay.mjs'), 'check-bmc', '--config', config, '--json', 'node01'],
      {
        cwd: empty,
      },
    );
    expect(JSON.parse(stdout)).toMatchObject([{ host: 'node01', ok: true, power: 'on' }]);
  }, 120_000);
});
