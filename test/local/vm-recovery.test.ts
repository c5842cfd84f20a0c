import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentRecord } from '../../app/ports';
import {
  type CommandResult,
  type HostObservation,
  type ObservedVm,
  type RelayCommand,
  type RelayReport,
  ReportResponseSchema,
} from '../../contracts/relay-protocol';
import { STATE } from '../../contracts/workflow';
import { type LocalControlPlane, startLocalControlPlane } from '../../local/control-plane';
import { credentialOf, postJson, TEST_POLICY, waitFor } from './support';

/**
 * VM-level HA through the local control plane: real HTTP, the ingest and operator handlers, DynamoDB on
 * dynalite, the detector on its timer, and (for a host's failover) the synthesized state machine. A small
 * site model plays the relay: it reports what each host runs, and carries out the start commands the
 * responses bring, reporting their results on the next report.
 *
 * Real time, so nothing here depends on how fast the machine is: every outcome is awaited as a condition
 * (the relay keeps reporting until it holds, or a generous deadline passes), and no timeout these tests
 * do not exercise can fire on a loaded machine (a start's result comes with the next report, well inside
 * its timeout; the relay reports many times within its silence). What happens in which order, and when,
 * is asserted in virtual time in test/unit/app/vm-recovery.test.ts.
 */

let plane: LocalControlPlane;

/** How long one outcome may take on a loaded machine; a few hundred ms on an idle one. */
const OUTCOME_MS = 30_000;
/** A test awaits at most three outcomes in a row. */
const TEST_MS = 4 * OUTCOME_MS;

beforeAll(async () => {
  plane = await startLocalControlPlane({
    // A two-restart budget keeps the exhaustion case short.
    policy: { ...TEST_POLICY, vmRestartLimit: 2 },
    detectorTickMs: 100,
    waitOverridesMs: { [STATE.WaitBeforeConfirm]: 50 },
    retryIntervalMs: 100,
  });
});

afterAll(async () => {
  await plane.stop();
});

const GiB = 1024;
type Host = 'node01' | 'node02' | 'node03';
const HOSTS: readonly Host[] = ['node01', 'node02', 'node03'];

/** A site of three 8-CPU, 16-GiB hosts and one relay that does what the responses ask, as it is told to. */
class SiteModel {
  private seq = 0;
  private credential = '';
  /** What each host runs (and lists), by host. */
  readonly vms = new Map<Host, ObservedVm[]>(HOSTS.map((h) => [h, []]));
  /** Hosts whose agent refuses starts (libvirt fails). */
  readonly failStartsOn = new Set<Host>();
  /** Hosts the relay no longer hears. */
  readonly silent = new Set<Host>();
  /** Commands the relay carried out, in order. */
  readonly carriedOut: RelayCommand[] = [];
  private results: CommandResult[] = [];

  constructor(readonly siteId: string) {}

  async enroll(): Promise<void> {
    const enrolled = await plane.operator('enrollRelay', {
      params: { siteId: this.siteId },
      body: { relayId: 'relay-a' },
    });
    this.credential = credentialOf(enrolled.body);
  }

  run(host: Host, id: string, memoryMiB: number, state: ObservedVm['state'] = 'running', reason?: string) {
    const others = (this.vms.get(host) ?? []).filter((vm) => vm.id !== id);
    const vm: ObservedVm = { id, cpus: 2, memoryMiB, state, ...(reason === undefined ? {} : { reason }) };
    this.vms.set(host, [...others, vm]);
  }

  remove(host: Host, id: string): void {
    this.vms.set(
      host,
      (this.vms.get(host) ?? []).filter((vm) => vm.id !== id),
    );
  }

  async ha(vmId: string, priority: 'high' | 'medium' | 'low' = 'high'): Promise<void> {
    const answer = await plane.operator('setVmMetadata', {
      params: { siteId: this.siteId, vmId },
      body: { ha: true, priority },
    });
    expect(answer.status).toBe(200);
  }

  /** One report; the start commands of its response are carried out at once, their results sent next time. */
  async report(): Promise<void> {
    this.seq += 1;
    const hosts: HostObservation[] = HOSTS.map((hostId) => ({
      hostId,
      cluster: 'c1',
      bootId: `boot-${hostId}`,
      lastHeardMsAgo: this.silent.has(hostId) ? 60_000 : 20,
      cpus: 8,
      memoryMiB: 16 * GiB,
      vms: this.vms.get(hostId) ?? [],
    }));
    const report: RelayReport = {
      protocol: 1,
      siteId: this.siteId,
      relayId: 'relay-a',
      seq: this.seq,
      sentAt: Date.now(),
      hosts,
      results: this.results,
    };
    const answer = await postJson(`${plane.url}/v1/reports`, report, {
      authorization: `Bearer ${this.credential}`,
    });
    expect(answer.status).toBe(200);
    this.results = [];
    for (const command of ReportResponseSchema.parse(answer.body).commands) this.carryOut(command);
  }

  private carryOut(command: RelayCommand): void {
    if (this.carriedOut.some((c) => c.commandId === command.commandId)) return;
    this.carriedOut.push(command);
    const base = { commandId: command.commandId, incidentId: command.incidentId, finishedAt: Date.now() };
    if (command.kind === 'fence') {
      // Powered off: silent, and nothing runs there any more.
      this.silent.add(command.hostId as Host);
      this.vms.set(command.hostId as Host, []);
      this.results.push({ ...base, outcome: 'succeeded', powerState: 'off' });
      return;
    }
    const host = command.hostId as Host;
    if (this.failStartsOn.has(host)) {
      this.results.push({ ...base, outcome: 'failed', detail: 'libvirt: failed to start (test)' });
      return;
    }
    this.run(host, command.vm.id, command.vm.memoryMiB);
    this.results.push({ ...base, outcome: 'succeeded' });
  }

  /** Reports until `probe` says something, the way a relay keeps reporting. */
  until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = OUTCOME_MS): Promise<T> {
    return waitFor(
      what,
      async () => {
        await this.report();
        return probe();
      },
      timeoutMs,
    );
  }

  async incidents(kind: 'vm' | 'host' = 'vm'): Promise<IncidentRecord[]> {
    const all = await plane.ctx.ports.incidents.list({ siteId: this.siteId });
    return all.filter((i) => (i.kind ?? 'host') === kind).sort((a, b) => a.openedAt - b.openedAt);
  }

  /**
   * The incidents of `kind` closed with their timeline complete, oldest first: the record says closed a
   * moment before the `closed` line is written, and a pass may still be writing in between.
   */
  async closed(kind: 'vm' | 'host' = 'vm'): Promise<IncidentRecord[]> {
    const closed = (await this.incidents(kind)).filter((i) => i.closedAt !== null);
    const complete = await Promise.all(
      closed.map(async (i) => (await this.kinds(i.incidentId)).at(-1) === 'closed'),
    );
    return closed.filter((_, n) => complete[n]);
  }

  /** Reports until at least `count` incidents of `kind` are closed (complete); returns them, oldest first. */
  untilClosed(what: string, count = 1, kind: 'vm' | 'host' = 'vm'): Promise<IncidentRecord[]> {
    return this.until(what, async () => {
      const closed = await this.closed(kind);
      return closed.length >= count ? closed : undefined;
    });
  }

  /** The site's retry list (the control item's marker). */
  async recovering(): Promise<readonly string[] | undefined> {
    return (await plane.ctx.ports.sites.loadControl(this.siteId))?.recovering;
  }

  async kinds(incidentId: string): Promise<string[]> {
    const answer = await plane.operator('getIncident', { params: { incidentId } });
    expect(answer.status).toBe(200);
    return (answer.body as { events: { kind: string }[] }).events.map((e) => e.kind);
  }

  /** Where the VM really runs, by this model. */
  runningOn(vmId: string): Host[] {
    return HOSTS.filter((h) =>
      (this.vms.get(h) ?? []).some((vm) => vm.id === vmId && vm.state === 'running'),
    );
  }
}

async function siteWith(siteId: string, setup: (site: SiteModel) => void): Promise<SiteModel> {
  const site = new SiteModel(siteId);
  await site.enroll();
  setup(site);
  await site.report();
  return site;
}

describe('VM-level HA through the local control plane', () => {
  it(
    'restarts a crashed HA VM in place, and closes its incident recovered once it runs',
    async () => {
      const site = await siteWith('vm-a', (s) => s.run('node01', 'db-1', 4 * GiB));
      await site.ha('db-1');
      site.run('node01', 'db-1', 4 * GiB, 'shut-off', 'crashed');

      const [incident] = await site.untilClosed('the VM incident to close');

      expect(incident).toMatchObject({ kind: 'vm', vmId: 'db-1', hostId: 'node01', outcome: 'recovered' });
      expect(site.runningOn('db-1')).toEqual(['node01']);
      expect(site.carriedOut.map((c) => [c.kind, c.hostId])).toEqual([['start-vm', 'node01']]);
      expect(await site.kinds(incident?.incidentId ?? '')).toEqual([
        'vm-stopped',
        'start-ordered',
        'vm-started',
        'closed',
      ]);
      expect(plane.metrics.total('VmRestarts')).toBeGreaterThanOrEqual(1);
    },
    TEST_MS,
  );

  it(
    'restarts it elsewhere when the start in place fails, never on two hosts',
    async () => {
      const site = await siteWith('vm-b', (s) => {
        s.run('node01', 'db-1', 4 * GiB);
        s.run('node02', 'big', 8 * GiB);
      });
      await site.ha('db-1');
      site.failStartsOn.add('node01');
      site.run('node01', 'db-1', 4 * GiB, 'crashed');

      const [incident] = await site.untilClosed('db-1 to run again');

      expect(incident?.outcome).toBe('recovered');
      // node03 is emptier than node02; node01 refused.
      expect(site.carriedOut.map((c) => c.hostId)).toEqual(['node01', 'node03']);
      expect(site.runningOn('db-1')).toEqual(['node03']);
      expect(await site.kinds(incident?.incidentId ?? '')).toEqual([
        'vm-stopped',
        'start-ordered',
        'start-failed',
        'start-ordered',
        'vm-started',
        'closed',
      ]);
    },
    TEST_MS,
  );

  it(
    'leaves a VM its guest shut down where it is: no incident, no start',
    async () => {
      const site = await siteWith('vm-c', (s) => s.run('node01', 'db-1', 4 * GiB));
      await site.ha('db-1');
      site.run('node01', 'db-1', 4 * GiB, 'shut-off', 'shutdown');
      for (let i = 0; i < 5; i += 1) await site.report();
      await plane.runDetectorOnce();

      expect(await site.incidents()).toEqual([]);
      expect(site.carriedOut).toEqual([]);
      const vms = await plane.operator('listVms', { params: { siteId: 'vm-c' } });
      expect(vms.body).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ vmId: 'db-1', state: 'shut-off', reason: 'shutdown' }),
        ]),
      );
    },
    TEST_MS,
  );

  it(
    'leaves a VM down, with an incident saying so, once its restart budget is spent',
    async () => {
      const site = await siteWith('vm-d', (s) => s.run('node01', 'db-1', 4 * GiB));
      await site.ha('db-1');
      // Crashes right after every start: two restarts (the budget), then it stays down.
      for (let crash = 1; crash <= 3; crash += 1) {
        site.run('node01', 'db-1', 4 * GiB, 'shut-off', 'crashed');
        await site.untilClosed(`incident ${crash} to close`, crash);
      }

      const incidents = await site.incidents();
      expect(incidents.map((i) => i.outcome)).toEqual(['recovered', 'recovered', 'partially-recovered']);
      const last = incidents[2]?.incidentId ?? '';
      expect(await site.kinds(last)).toEqual(['vm-stopped', 'restart-budget-exhausted', 'closed']);
      expect(site.carriedOut).toHaveLength(2);
      // Still listed (the detector's HaVmsDown gauge counts it) until the window lets it try again: the
      // marker survives the pass that took it off the list after restart 2 (it ran) racing the listing of
      // crash 3 (app/recovery/episode.ts unlist).
      expect(await site.recovering()).toEqual(['db-1']);
      expect((await plane.ctx.ports.vms.getVm('vm-d', 'db-1'))?.recovery).toMatchObject({
        status: 'waiting',
        notBefore: expect.any(Number),
      });
    },
    TEST_MS,
  );

  it(
    'starts a VM left down for lack of room as soon as room returns',
    async () => {
      const site = await siteWith('vm-e', (s) => {
        s.run('node01', 'db-1', 6 * GiB);
        s.run('node01', 'filler-1', 10 * GiB);
        s.run('node02', 'filler-2', 12 * GiB);
        s.run('node03', 'filler-3', 12 * GiB);
      });
      await site.ha('db-1');
      // db-1 crashes, and filler-1 grows into its room on node01 at once: no host has 6 GiB.
      site.run('node01', 'db-1', 6 * GiB, 'shut-off', 'crashed');
      site.run('node01', 'filler-1', 12 * GiB);
      const [unplaced] = await site.untilClosed('the VM incident to close unplaced');
      expect(unplaced?.outcome).toBe('partially-recovered');
      expect(await site.kinds(unplaced?.incidentId ?? '')).toEqual(['vm-stopped', 'vm-unplaced', 'closed']);

      // filler-3 is shut down on purpose: node03 has room again.
      site.run('node03', 'filler-3', 12 * GiB, 'shut-off', 'shutdown');
      await site.until('db-1 to run on node03', async () =>
        site.runningOn('db-1').length > 0 ? true : undefined,
      );
      expect(site.runningOn('db-1')).toEqual(['node03']);
      const closed = await site.untilClosed('its retry incident to close recovered', 2);
      expect(closed.map((i) => i.outcome)).toEqual(['partially-recovered', 'recovered']);
      // The pass that closed it takes it off the list right after.
      await site.until('off the retry list', async () =>
        (await site.recovering())?.length === 0 ? true : undefined,
      );
    },
    TEST_MS,
  );

  it(
    'lists the HA VMs a host failover leaves down (partially-recovered) and starts them when room returns',
    async () => {
      const site = await siteWith('vm-f', (s) => {
        s.run('node01', 'db-1', 6 * GiB);
        s.run('node02', 'filler-2', 12 * GiB);
        s.run('node03', 'filler-3', 12 * GiB);
      });
      await site.ha('db-1');
      // node01 dies: the relay stops hearing it; the failover fences it, finds no room, and closes.
      site.silent.add('node01');
      const [failover] = await site.untilClosed('the host incident to close', 1, 'host');
      expect(failover?.outcome).toBe('partially-recovered');
      expect(await site.kinds(failover?.incidentId ?? '')).toContain('retry-listed');
      expect((await plane.ctx.ports.sites.loadControl('vm-f'))?.recovering).toEqual(['db-1']);

      site.remove('node02', 'filler-2');
      await site.until('db-1 to run again', async () =>
        site.runningOn('db-1').length > 0 ? true : undefined,
      );
      expect(site.runningOn('db-1')).toEqual(['node02']);
      await site.until('off the retry list', async () => {
        const control = await plane.ctx.ports.sites.loadControl('vm-f');
        return control?.recovering.length === 0 ? true : undefined;
      });
    },
    TEST_MS,
  );
});
