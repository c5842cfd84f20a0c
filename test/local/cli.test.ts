import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CommandResult,
  type HostObservation,
  ReportResponseSchema,
} from '../../contracts/relay-protocol';
import { STATE } from '../../contracts/workflow';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane';
import { haloRunner } from '../unit/cli/support';
import { HOSTS, HttpRelay, observed, SITE, TEST_POLICY, waitFor } from './support';

/**
 * Every `halo` command against a local control plane over real HTTP (dynalite, the synthesized workflow),
 * human and --json, with their exit codes. Two relays, played by a loop in this file, report four hosts;
 * node01 falls silent, its BMC never answers, and the incident waits for an operator, whom the CLI plays.
 */

let plane: LocalControlPlane;
let scratch: string;
let halo: ReturnType<typeof haloRunner>;
let env: Record<string, string>;

/** The world the relays report: node01 silent once it crashed, and the VMs each start put somewhere. */
const world = {
  crashedAt: null as number | null,
  started: new Map<string, string>(),
};

function observations(): HostObservation[] {
  return HOSTS.map((hostId) => {
    const base = observed(
      hostId,
      world.crashedAt !== null && hostId === 'node01' ? Date.now() - world.crashedAt : 50,
    );
    const moved = [...world.started].filter(([, on]) => on === hostId).map(([vmId]) => vmId);
    return {
      ...base,
      vms: [...base.vms, ...moved.map((id) => ({ id, cpus: 2, memoryMiB: 4096, state: 'running' as const }))],
    };
  });
}

/** Each relay reports in a loop: fence orders fail (node01's BMC is dead), start orders succeed. */
function runRelays(relays: HttpRelay[]): () => Promise<void> {
  let stopped = false;
  const answered = new Set<string>();
  const loop = async (relay: HttpRelay): Promise<void> => {
    while (!stopped) {
      const answer = await relay.report(observations());
      if (answer.status === 200) {
        const results: CommandResult[] = [];
        for (const command of ReportResponseSchema.parse(answer.body).commands) {
          if (answered.has(command.commandId)) continue;
          answered.add(command.commandId);
          if (command.kind === 'fence') {
            results.push({
              commandId: command.commandId,
              incidentId: command.incidentId,
              outcome: 'failed',
              powerState: 'unknown',
              finishedAt: Date.now(),
            });
          } else if (command.kind === 'start-vm') {
            world.started.set(command.vm.id, command.hostId);
            results.push({
              commandId: command.commandId,
              incidentId: command.incidentId,
              outcome: 'succeeded',
              finishedAt: Date.now(),
            });
          }
        }
        if (results.length > 0) await relay.report(observations(), results);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const running = relays.map((r) => loop(r));
  return async () => {
    stopped = true;
    await Promise.all(running);
  };
}

let stopRelays: () => Promise<void> = async () => {};

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'halo-cli-local-'));
  plane = await startLocalControlPlane({
    policy: {
      ...TEST_POLICY,
      // A dead BMC is given up on within a second; relays not heard for 5 s make the site partitioned.
      fenceAttemptTimeoutMs: 1000,
      fenceDeadlineMs: 1000,
      relaySilentAfterMs: 5000,
      // The relays' loop reports every 100 ms, far inside a minute's pace: a relay shows late only when it
      // stops, never because a busy machine made one report 200 ms late (the VM-level HA paces this pace
      // would derive stay as they were).
      relayReportMs: 60_000,
      vmRestartBackoffMs: 500,
      vmRetryIntervalMs: 3000,
    },
    detectorTickMs: 200,
    waitOverridesMs: { [STATE.WaitBeforeConfirm]: 50 },
    retryIntervalMs: 100,
  });
  const tokenFile = join(scratch, 'local-token');
  // As `npm start -- --serve` stores it: the CLI reads it from the file HALO_LOCAL_TOKEN_FILE names.
  writeFileSync(tokenFile, `${plane.operatorToken}\n`, { mode: 0o600 });
  env = { HALO_URL: plane.url, HALO_LOCAL_TOKEN_FILE: tokenFile };
  halo = haloRunner({ env });
});

afterAll(async () => {
  await stopRelays();
  await plane?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** A loopback port nothing listens on (one just freed). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Parses a run's stdout as JSON. */
const json = <T>(run: { stdout: string }): T => JSON.parse(run.stdout) as T;

describe('setting a site up with halo', () => {
  it('relay enroll writes each credential to a new file (mode 600) or prints it once', async () => {
    const out = join(scratch, 'r1.credential');
    const enrolled = await halo('relay', 'enroll', 'r1', '--site', SITE, '--out', out);
    expect(enrolled.stderr).toBe('');
    expect(enrolled.code).toBe(0);
    expect(enrolled.stdout).toContain(`Its credential is in ${out} (mode 600)`);
    const r1 = readFileSync(out, 'utf8').trim();
    expect(r1).toMatch(/^hrc1\.site-local\.r1\./);

    const printed = await halo('--json', 'relay', 'enroll', 'r2', '--site', SITE);
    expect(printed.code).toBe(0);
    const r2 = json<{ relayId: string; credential: string }>(printed);
    expect(r2.relayId).toBe('r2');

    const again = await halo('relay', 'enroll', 'r1', '--site', SITE);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('409');

    stopRelays = runRelays([
      new HttpRelay(plane.url, 'r1', r1),
      new HttpRelay(plane.url, 'r2', r2.credential),
    ]);
    await waitFor('the hosts reported', async () => {
      const hosts = await halo('--json', 'hosts');
      return json<unknown[]>(hosts).length === HOSTS.length ? true : undefined;
    });
  });

  it('vm set registers HA, priority and anti-affinity, on the command line and from a file', async () => {
    const set = await halo('vm', 'set', 'node01-vm1', '--ha', '--priority', 'high', '--anti-affinity', 'db');
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/node01-vm1 +site-local +yes +high +db/);

    const file = join(scratch, 'vms.yaml');
    writeFileSync(
      file,
      'vms:\n  - vm: node02-vm1\n    ha: true\n    priority: low\n  - vm: node03-vm1\n    ha: true\n',
    );
    const bulk = await halo('--json', 'vm', 'set', '--file', file);
    expect(bulk.code).toBe(0);
    expect(
      json<{ vmId: string; ha: boolean; priority: string }[]>(bulk).map((v) => [v.vmId, v.ha, v.priority]),
    ).toEqual([
      ['node02-vm1', true, 'low'],
      ['node03-vm1', true, 'medium'],
    ]);

    // Unset fields keep their value: only the anti-affinity group goes.
    const cleared = await halo('--json', 'vm', 'set', 'node01-vm1', '--no-anti-affinity');
    expect(json<{ ha: boolean; priority: string; antiAffinity: string | null }[]>(cleared)[0]).toMatchObject({
      ha: true,
      priority: 'high',
      antiAffinity: null,
    });

    const bad = join(scratch, 'bad.yaml');
    writeFileSync(bad, '- vm: node04-vm1\n  priority: urgent\n');
    const refused = await halo('vm', 'set', '--file', bad);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${bad} [0].priority`);
    expect((await halo('vm', 'set', 'node04-vm1')).code).toBe(2);
  });
});

describe('a quiet site', () => {
  it('status: all well, exit 0; --json says ok', async () => {
    const status = await halo('status');
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`Site ${SITE}: 4 hosts (4 up), 4 VMs (3 HA), 0 open incidents`);
    expect(status.stdout).toContain('2 live relays of 2: redundant');
    expect(status.stdout).toContain('c1: OK — survives the loss of any one of 4 hosts');
    expect(status.stdout).toContain('All well.');
    const parsed = json<{ ok: boolean; sites: { siteId: string; problems: string[] }[] }>(
      await halo('status', '--json'),
    );
    expect(parsed).toMatchObject({ ok: true, sites: [{ siteId: SITE, problems: [] }] });
  });

  it('relays: both live, with their hosts; filters by state', async () => {
    const relays = await halo('relays');
    expect(relays.code).toBe(0);
    expect(relays.stdout).toMatch(/r1 +live +just now|r1 +live +\d/);
    expect(relays.stdout).toContain('site site-local: 2 relays; 2 live relays of 2: redundant');
    const listed = json<{ relayId: string; hostsHeard: string[] }[]>(await halo('relays', '--json'));
    expect(listed.map((r) => [r.relayId, r.hostsHeard.length])).toEqual([
      ['r1', 4],
      ['r2', 4],
    ]);
    expect(json<unknown[]>(await halo('relays', '--json', '--state', 'silent'))).toEqual([]);
    expect((await halo('relays', '--state', 'asleep')).code).toBe(2);
  });

  it('plan: the live N+1 report in the table of file mode, one cluster or all; exit 0 while it holds', async () => {
    const plan = await halo('plan', 'c1');
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('c1: N+1 OK — survives the loss of any one of 4 hosts');
    expect(plan.stdout).toMatch(
      /node01 +2 \/ 16 +13% +4\.0 GiB \/ 32\.0 GiB +13% +4\.0 GiB, 2 vCPU +OK: all 1 HA VM restart/,
    );
    expect(plan.stdout).toContain('If node01 fails:');
    const parsed = json<{ clusters: { id: string; report: { survivesAnyOneHostFailure: boolean } }[] }>(
      await halo('--json', 'plan'),
    );
    expect(parsed.clusters.map((c) => [c.id, c.report.survivesAnyOneHostFailure])).toEqual([['c1', true]]);
    expect((await halo('plan', 'nope')).code).toBe(2);
  });

  it('policy: every key with where it comes from; policy set overrides, validated by the halo:policy schema', async () => {
    const shown = await halo('policy', 'c1');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('Cluster c1 (site site-local): fencing on; no override');
    expect(shown.stdout).toMatch(/hostHeartbeatMs +100 \(100 ms\) +deployment/);

    const set = await halo('policy', 'set', 'c1', 'vmRestartLimit=5', 'vmRetryIntervalMs=4000');
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/vmRestartLimit +5 +cluster \(changed now\) +3\n/);
    const after = json<{ override: Record<string, number>; effective: { vmRestartLimit: number } }>(
      await halo('--json', 'policy', 'c1'),
    );
    expect(after.override).toEqual({ vmRestartLimit: 5, vmRetryIntervalMs: 4000 });

    // key= removes a key from the override
    await halo('policy', 'set', 'c1', 'vmRetryIntervalMs=');
    expect(json<{ override: Record<string, number> }>(await halo('--json', 'policy', 'c1')).override).toEqual(
      {
        vmRestartLimit: 5,
      },
    );

    const unknown = await halo('policy', 'set', 'c1', 'heartbeat=5');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown key heartbeat');
    const deploymentWide = await halo('policy', 'set', 'c1', 'maxClockSkewMs=1000');
    expect(deploymentWide.code).toBe(2);
    // The control plane checks the policy resolves: a deadline shorter than one attempt is refused (400).
    const unresolvable = await halo('policy', 'set', 'c1', 'fenceDeadlineMs=10');
    expect(unresolvable.code).toBe(2);
    expect(unresolvable.stderr).toContain('400');
  });

  it('maintenance and fencing switch on and off', async () => {
    const on = await halo('maintenance', 'node04', 'on');
    expect(on.code).toBe(0);
    expect(on.stdout).toContain('node04 (site site-local) is in maintenance');
    expect(
      json<{ hostId: string }[]>(await halo('--json', 'hosts', '--state', 'maintenance')).map(
        (h) => h.hostId,
      ),
    ).toEqual(['node04']);
    const off = await halo('--json', 'maintenance', 'node04', 'off');
    expect(json<{ status: string }>(off).status).toBe('up');

    const fencingOff = await halo('fencing', 'c1', 'off');
    expect(fencingOff.code).toBe(0);
    expect(fencingOff.stdout).toContain('Fencing is OFF for cluster c1');
    expect(
      json<{ cluster: { fencingEnabled: boolean } }>(await halo('--json', 'fencing', 'c1', 'on')).cluster
        .fencingEnabled,
    ).toBe(true);
    expect((await halo('maintenance', 'node04', 'maybe')).code).toBe(2);
    expect((await halo('maintenance', 'node99', 'on')).stderr).toContain('no host node99 in any site');
  });
});

describe('node01 dies and its BMC does not answer', () => {
  let incidentId: string;

  beforeAll(async () => {
    world.crashedAt = Date.now() - 1000;
    incidentId = await waitFor(
      'the incident waiting for an operator',
      async () => {
        const open = json<{ incidentId: string; outcome: string }[]>(
          await halo('--json', 'incidents', '--open'),
        );
        return open.find((i) => i.outcome === 'awaiting-operator')?.incidentId;
      },
      30_000,
    );
  });

  it('status says what is wrong and what to run: exit 1', async () => {
    const status = await halo('status');
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/node01 +c1 +awaiting-operator/);
    expect(status.stdout).toContain(`${incidentId}  host node01  awaiting-operator`);
    expect(status.stdout).toContain('halo confirm-off node01 --site site-local');
    expect(status.stdout).toContain('Needs attention: site-local: node01 awaiting an operator');
    const parsed = json<{ ok: boolean; sites: { problems: string[] }[] }>(await halo('--json', 'status'));
    expect(parsed.ok).toBe(false);
    expect(parsed.sites[0]?.problems).toContain('node01 awaiting an operator');
  });

  it('hosts, vms and relays show it, with their filters; hosts exits 1', async () => {
    const hosts = await halo('hosts', '--cluster', 'c1');
    expect(hosts.code).toBe(1);
    expect(hosts.stdout).toMatch(/node01 +c1 +awaiting-operator/);
    expect(hosts.stdout).toContain('4 hosts: 3 up, 1 awaiting-operator');
    expect((await halo('hosts', '--state', 'up')).code).toBe(0);
    expect((await halo('hosts', '--state', 'asleep')).stderr).toContain('host states are up, suspect');

    const vms = await halo('--json', 'vms', '--ha', '--cluster', 'c1');
    expect(json<{ vmId: string }[]>(vms).map((v) => v.vmId)).toEqual([
      'node01-vm1',
      'node02-vm1',
      'node03-vm1',
    ]);
    const human = await halo('vms', '--state', 'running');
    expect(human.stdout).toMatch(/node01-vm1 +node01 +c1 +running +high/);

    const relays = json<{ relayId: string; hostsSilent: { hostId: string }[] }[]>(
      await halo('--json', 'relays'),
    );
    expect(relays.every((r) => r.hostsSilent.some((h) => h.hostId === 'node01'))).toBe(true);
    expect((await halo('relays', '--cluster', 'c1')).stdout).toMatch(/node01 \(/);
  });

  it('incidents lists it with its duration; exit 1 while it waits', async () => {
    const incidents = await halo('incidents', '--since', '1h');
    expect(incidents.code).toBe(1);
    expect(incidents.stdout).toMatch(new RegExp(`${incidentId} +host node01 +awaiting-operator +open `));
    expect(incidents.stdout).toContain('1 waiting for an operator');
    expect((await halo('incidents', '--since', 'forever')).code).toBe(2);
  });

  it('incident shows the timeline, why fencing failed and what to run next; exit 1', async () => {
    const incident = await halo('incident', incidentId);
    expect(incident.code).toBe(1);
    expect(incident.stdout).toContain(`Incident ${incidentId} — host node01, site site-local, cluster c1`);
    expect(incident.stdout).toMatch(/\+\d[\d.]* m?s +[\d.]+ m?s +suspected +node01/);
    expect(incident.stdout).toMatch(/last heard: r[12] \d/);
    expect(incident.stdout).toContain('(local control plane: no Step Functions console)');
    expect(incident.stdout).toContain('halo confirm-off node01 --site site-local');
    const parsed = json<{
      incident: { outcome: string };
      events: { kind: string }[];
      consoleUrl: string | null;
    }>(await halo('--json', 'incident', incidentId));
    expect(parsed.incident.outcome).toBe('awaiting-operator');
    expect(parsed.events.map((e) => e.kind)).toContain('awaiting-operator');
    expect(parsed.consoleUrl).toBeNull();
    const missing = await halo('incident', 'site-local:node09:1');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('404');
  });

  it('events shows the feed of the last hour', async () => {
    const events = await halo('events', '--since', '1h');
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(new RegExp(`${incidentId} +awaiting-operator`));
    const parsed = json<{ incidentId: string; kind: string }[]>(await halo('--json', 'events'));
    expect(parsed.some((e) => e.incidentId === incidentId && e.kind === 'suspected')).toBe(true);
  });

  it('confirm-off refuses a host heard alive, a script without --yes, and a "no"', async () => {
    const alive = await halo('confirm-off', 'node02', '--yes');
    expect(alive.code).toBe(2);
    expect(alive.stderr).toContain('refused: node02 is heard alive');

    const script = await halo('confirm-off', 'node01');
    expect(script.code).toBe(2);
    expect(script.stderr).toContain('no terminal to ask on: pass --yes');

    const declined = await haloRunner({ env, answers: ['n'] })('confirm-off', 'node01');
    expect(declined.code).toBe(2);
    expect(declined.prompts).toEqual(['Is node01 powered off? [y/N] ']);
    expect(declined.stderr).toContain(`Incident ${incidentId}`);
    expect(declined.stderr).toContain('If node01 is in fact still running, those VMs will run twice.');
    expect(declined.stderr).toContain('Not confirmed');
    expect(
      json<{ outcome: string }>({
        stdout: JSON.stringify((await plane.ctx.ports.incidents.get(incidentId)) ?? {}),
      }).outcome,
    ).toBe('awaiting-operator');
  });

  it('confirm-off, answered yes, records who confirmed and the failover restarts node01’s HA VM', async () => {
    const confirmed = await haloRunner({ env, answers: ['y'] })('confirm-off', 'node01');
    expect(confirmed.stderr).toContain('Recorded as confirmed by alice.');
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toContain(`Confirmed: node01 is powered off (incident ${incidentId}), by alice`);

    const closed = await waitFor(
      'the incident closed',
      async () => {
        const detail = json<{ incident: { closedAt: number | null; outcome: string } }>(
          await halo('--json', 'incident', incidentId),
        );
        return detail.incident.closedAt === null ? undefined : detail;
      },
      30_000,
    );
    expect(closed.incident.outcome).toBe('recovered');
    const incident = await halo('incident', incidentId);
    expect(incident.code).toBe(0);
    expect(incident.stdout).toContain('confirmed off by operator alice');
    expect(incident.stdout).toMatch(/node01-vm1 +high +started +→ node0[234] +1 /);

    // A second confirmation finds nothing waiting.
    const again = await halo('confirm-off', 'node01', '--yes');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('node01 has no open incident');
  });

  it('sla counts the VM’s minutes down in this month against the SLO; a strict SLO is breached (exit 1)', async () => {
    await waitFor('node01-vm1 running again', async () => {
      const vms = json<{ vmId: string; state: string }[]>(await halo('--json', 'vms'));
      return vms.find((v) => v.vmId === 'node01-vm1')?.state === 'running' ? true : undefined;
    });
    const sla = await halo('sla');
    expect(sla.stderr).toBe('');
    expect(sla.code).toBe(0);
    expect(sla.stdout).toContain('SLO 99.95 % — a budget of 21.9 min down per VM a month');
    expect(sla.stdout).toMatch(/node01-vm1 +\d+\.\d +\d+% +1 +met/);

    const strict = await halo('sla', '--slo', '99.99999999');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/node01-vm1 .*BREACHED/);
    const parsed = json<{
      budgetMinutes: number;
      vms: { vmId: string; downMinutes: number; breach: boolean }[];
    }>(await halo('--json', 'sla'));
    expect(parsed.budgetMinutes).toBeCloseTo(21.9, 1);
    expect(parsed.vms[0]).toMatchObject({ vmId: 'node01-vm1', breach: false });
    expect(parsed.vms[0]?.downMinutes).toBeGreaterThan(0);

    const before = await halo('sla', '--month', '2020-01');
    expect(before.code).toBe(0);
    expect(before.stdout).toContain('No VM was down');
    expect((await halo('sla', '--month', '2020-1')).code).toBe(2);
  });

  it('vm down-on-purpose is refused for a VM that runs (the control plane says why): exit 2', async () => {
    const refused = await halo('vm', 'down-on-purpose', 'node01-vm1', 'on');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('409');
    expect((await halo('vm', 'down-on-purpose', 'node01-vm1')).code).toBe(2);
  });
});

describe('relay credentials and the target', () => {
  it('relay rotate issues a new credential, revoke refuses the relay’s reports', async () => {
    const rotated = await halo('--json', 'relay', 'rotate', 'r2', '--site', SITE);
    expect(rotated.code).toBe(0);
    expect(json<{ credential: string }>(rotated).credential).toMatch(/^hrc1\.site-local\.r2\./);
    const revoked = await halo('relay', 'revoke', 'r2', '--site', SITE);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('Relay r2 of site site-local is revoked');
    const relays = json<{ relayId: string; status: string }[]>(await halo('--json', 'relays'));
    expect(relays.find((r) => r.relayId === 'r2')?.status).toBe('revoked');
  });

  it('--url wins over HALO_URL; nothing listening is exit 3', async () => {
    const nobody = await freePort();
    const closed = await halo('--url', `http://127.0.0.1:${nobody}`, 'hosts');
    expect(closed.code).toBe(3);
    expect(closed.stderr).toContain(`halo: cannot reach http://127.0.0.1:${nobody}: connection refused`);
    expect(
      (
        await haloRunner({ env: { ...env, HALO_URL: 'http://127.0.0.1:9' } })(
          '--url',
          plane.url,
          'hosts',
          '--state',
          'up',
        )
      ).code,
    ).toBe(0);
  });

  it('local mode needs the local operator token: none, or a stale one, is exit 3 naming the file', async () => {
    const missing = join(scratch, 'no-such-token');
    const none = await haloRunner({ env: { ...env, HALO_LOCAL_TOKEN_FILE: missing } })('hosts');
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('401');
    expect(none.stderr).toContain(`no local operator token in ${missing}`);

    const staleFile = join(scratch, 'stale-token');
    writeFileSync(staleFile, 'a-token-of-an-earlier-start-0123456789\n', { mode: 0o600 });
    const stale = await haloRunner({ env: { ...env, HALO_LOCAL_TOKEN_FILE: staleFile } })('hosts');
    expect(stale.code).toBe(3);
    expect(stale.stderr).toContain(`the local control plane refused the token in ${staleFile}`);
  });

  it('a site whose relays all fall silent is partitioned: status says so, exit 1', async () => {
    await stopRelays();
    const partitioned = await waitFor(
      'the relays silent',
      async () => {
        const status = await halo('status');
        return status.stdout.includes('the site is cut off (partitioned)') ? status : undefined;
      },
      30_000,
    );
    expect(partitioned.code).toBe(1);
    expect(partitioned.stdout).toContain('site-local: no live relay (partitioned)');
    expect(
      json<{ relayId: string }[]>(await halo('--json', 'relays', '--state', 'silent')).map((r) => r.relayId),
    ).toEqual(['r1']);
  });

  it('usage errors exit 2 with the reason on stderr', async () => {
    const none = await halo();
    expect(none.code).toBe(2);
    const unknown = await halo('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("halo: unknown command 'frobnicate'");
    const help = await halo('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit status:');
  });
});
