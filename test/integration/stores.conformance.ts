import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BadCredentialError,
  ConcurrentUpdateError,
  NoCapacityError,
  NotFoundError,
  RelayExistsError,
  RelayRevokedError,
  StaleSequenceError,
  UnknownRelayError,
} from '../../app/errors';
import type {
  HostRecord,
  IncidentEvent,
  IncidentRecord,
  RelayRecord,
  VmRecord,
  VmRecovery,
} from '../../app/ports';
import {
  HASH_A,
  HASH_B,
  type Mutable,
  newCommand,
  newHost,
  newIncident,
  OTHER_SITE,
  resultOf,
  SITE,
  type StoresUnderTest,
  settle,
  T0,
} from '../support/store-fixtures';

/**
 * One behavioural contract for every implementation of the store ports (app/ports.ts). Each adapter's
 * test file calls this with a setup that returns fresh, empty stores for every test.
 */
export function describeStoreConformance(
  name: string,
  setup: () => Promise<{ stores: StoresUnderTest; cleanup: () => Promise<void> }>,
): void {
  describe(`${name}: store conformance`, () => {
    let stores: StoresUnderTest;
    let cleanup: () => Promise<void> = async () => {};

    beforeEach(async () => {
      ({ stores, cleanup } = await setup());
    });

    afterEach(async () => {
      await cleanup();
    });

    const enrollRelay = (relayId = 'r1', credentialHash = HASH_A, siteId = SITE): Promise<RelayRecord> =>
      stores.relays.enroll({ siteId, relayId, credentialHash, at: T0 });

    const report = (
      seq: number,
      extra: { credentialHash?: string; silentHosts?: Record<string, number> } = {},
    ) => ({
      seq,
      at: T0 + seq * 1000,
      credentialHash: extra.credentialHash ?? HASH_A,
      silentHosts: extra.silentHosts ?? {},
    });

    // ------------------------------------------------------------ sites

    describe('SiteStore', () => {
      it('creates a site once; a repeat says so and keeps the first record', async () => {
        expect(await stores.sites.putSite({ siteId: SITE, createdAt: T0 })).toEqual({ created: true });
        expect(await stores.sites.putSite({ siteId: SITE, createdAt: T0 + 1 })).toEqual({ created: false });
        expect(await stores.sites.listSites()).toEqual([{ siteId: SITE, createdAt: T0 }]);
      });

      it('lists every site in id order', async () => {
        await stores.sites.putSite({ siteId: 'zeta', createdAt: T0 });
        await stores.sites.putSite({ siteId: 'alpha', createdAt: T0 + 1 });
        expect((await stores.sites.listSites()).map((s) => s.siteId)).toEqual(['alpha', 'zeta']);
      });

      it('loads no control for an unknown site', async () => {
        expect(await stores.sites.loadControl('nowhere')).toBeNull();
      });

      it('loads a site with its clusters, relays, host summaries and open incidents, and nothing else', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        await stores.sites.putSite({ siteId: OTHER_SITE, createdAt: T0 });
        await stores.sites.ensureCluster(SITE, 'c2');
        await stores.sites.ensureCluster(SITE, 'c1');
        await stores.sites.ensureCluster(OTHER_SITE, 'cx');
        await enrollRelay('r2');
        await enrollRelay('r1');
        await enrollRelay('rx', HASH_A, OTHER_SITE);
        const h1 = { digest: 'd1', cluster: 'c1', status: 'up', incidentId: null } as const;
        const h2 = { digest: 'd2', cluster: 'c1', status: 'suspect', incidentId: 'i1' } as const;
        await stores.sites.putHostSummary(SITE, 'h1', h1);
        await stores.sites.putHostSummary(SITE, 'h2', h2);
        await stores.sites.putHostSummary(OTHER_SITE, 'hx', h1);
        await stores.sites.setIncidentOpen(SITE, 'i2', true);
        await stores.sites.setIncidentOpen(SITE, 'i1', true);
        // Items of the same partition outside the control prefix must not leak into the control read.
        await stores.hosts.createHost(newHost('h1'));
        await stores.vms.saveObserved(
          SITE,
          'h1',
          { id: 'v1', cpus: 1, memoryMiB: 512, state: 'running' },
          T0,
        );
        await stores.commands.create(newCommand('cmd1'));

        const control = await stores.sites.loadControl(SITE);

        expect(control).toEqual({
          site: { siteId: SITE, createdAt: T0 },
          clusters: [
            { siteId: SITE, clusterId: 'c1', fencingEnabled: true, policy: {}, version: 1 },
            { siteId: SITE, clusterId: 'c2', fencingEnabled: true, policy: {}, version: 1 },
          ],
          relays: [await stores.relays.getRelay(SITE, 'r1'), await stores.relays.getRelay(SITE, 'r2')],
          hosts: { h1, h2 },
          openIncidents: ['i1', 'i2'],
          recovering: [],
        });
        // A consistent read (ingest's second look when relays vote at once) reads the same items.
        expect(await stores.sites.loadControl(SITE, { consistent: true })).toEqual(control);
      });

      it('loads a fresh site with empty collections', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        expect(await stores.sites.loadControl(SITE)).toEqual({
          site: { siteId: SITE, createdAt: T0 },
          clusters: [],
          relays: [],
          hosts: {},
          openIncidents: [],
          recovering: [],
        });
      });

      it('creates a cluster with fencing enabled; ensuring it again returns it as it now is', async () => {
        const created = await stores.sites.ensureCluster(SITE, 'c1');
        expect(created).toEqual({
          siteId: SITE,
          clusterId: 'c1',
          fencingEnabled: true,
          policy: {},
          version: 1,
        });
        const updated = await stores.sites.updateCluster(SITE, 'c1', 1, { fencingEnabled: false });
        expect(await stores.sites.ensureCluster(SITE, 'c1')).toEqual(updated);
      });

      it('updates a cluster on the version read, keeping what the patch leaves out', async () => {
        await stores.sites.ensureCluster(SITE, 'c1');
        const withPolicy = await stores.sites.updateCluster(SITE, 'c1', 1, {
          policy: { cpuOvercommit: 2, reserveMiB: 1024 },
        });
        expect(withPolicy).toEqual({
          siteId: SITE,
          clusterId: 'c1',
          fencingEnabled: true,
          policy: { cpuOvercommit: 2, reserveMiB: 1024 },
          version: 2,
        });
        const off = await stores.sites.updateCluster(SITE, 'c1', 2, { fencingEnabled: false });
        expect(off).toEqual({ ...withPolicy, fencingEnabled: false, version: 3 });
      });

      it('refuses a cluster update on a stale version and changes nothing', async () => {
        await stores.sites.ensureCluster(SITE, 'c1');
        await stores.sites.updateCluster(SITE, 'c1', 1, { fencingEnabled: false });
        await expect(
          stores.sites.updateCluster(SITE, 'c1', 1, { fencingEnabled: true }),
        ).rejects.toBeInstanceOf(ConcurrentUpdateError);
        expect(await stores.sites.ensureCluster(SITE, 'c1')).toMatchObject({
          fencingEnabled: false,
          version: 2,
        });
      });

      it('refuses to update a cluster that does not exist', async () => {
        await expect(
          stores.sites.updateCluster(SITE, 'nope', 1, { fencingEnabled: false }),
        ).rejects.toBeInstanceOf(NotFoundError);
      });

      it('lets exactly one of two cluster writers with the same expected version win', async () => {
        await stores.sites.ensureCluster(SITE, 'c1');
        const { values, errors } = await settle([
          stores.sites.updateCluster(SITE, 'c1', 1, { fencingEnabled: false }),
          stores.sites.updateCluster(SITE, 'c1', 1, { policy: { reserveMiB: 512 } }),
        ]);
        expect(values).toHaveLength(1);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(ConcurrentUpdateError);
        expect(await stores.sites.ensureCluster(SITE, 'c1')).toEqual(values[0]);
      });

      it('keeps one host summary per host: adds, overwrites, never drops the others', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        const up = { digest: 'd1', cluster: 'c1', status: 'up', incidentId: null } as const;
        await stores.sites.putHostSummary(SITE, 'h1', up);
        await stores.sites.putHostSummary(SITE, 'h2', up);
        await stores.sites.putHostSummary(SITE, 'h1', { ...up, status: 'suspect', incidentId: 'i1' });
        expect((await stores.sites.loadControl(SITE))?.hosts).toEqual({
          h1: { ...up, status: 'suspect', incidentId: 'i1' },
          h2: up,
        });
      });

      it("keeps a host summary's fence verdict of each relay, and a summary without any as it is", async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        const h1 = { digest: 'd1', cluster: 'c1', status: 'up', incidentId: null } as const;
        const h2 = { ...h1, digest: 'd2', fenceOk: { r1: false, r2: true } };
        await stores.sites.putHostSummary(SITE, 'h1', h1);
        await stores.sites.putHostSummary(SITE, 'h2', h2);
        await stores.sites.putHostSummary(SITE, 'h1', { ...h1, fenceOk: { r1: true } });
        expect((await stores.sites.loadControl(SITE))?.hosts).toEqual({
          h1: { ...h1, fenceOk: { r1: true } },
          h2,
        });
      });

      it('keeps every host summary written concurrently into a site that has none yet', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        const ids = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
        await Promise.all(
          ids.map((id) =>
            stores.sites.putHostSummary(SITE, id, {
              digest: id,
              cluster: 'c1',
              status: 'up',
              incidentId: null,
            }),
          ),
        );
        expect(Object.keys((await stores.sites.loadControl(SITE))?.hosts ?? {}).sort()).toEqual(ids);
      });

      it('opens and closes incidents of a site with set semantics (repeats are harmless)', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        await stores.sites.setIncidentOpen(SITE, 'i1', true);
        await stores.sites.setIncidentOpen(SITE, 'i1', true);
        await stores.sites.setIncidentOpen(SITE, 'i2', true);
        expect((await stores.sites.loadControl(SITE))?.openIncidents).toEqual(['i1', 'i2']);
        await stores.sites.setIncidentOpen(SITE, 'i1', false);
        await stores.sites.setIncidentOpen(SITE, 'i1', false);
        expect((await stores.sites.loadControl(SITE))?.openIncidents).toEqual(['i2']);
        await stores.sites.setIncidentOpen(SITE, 'i2', false);
        expect((await stores.sites.loadControl(SITE))?.openIncidents).toEqual([]);
        await stores.sites.setIncidentOpen(SITE, 'never-opened', false);
        expect((await stores.sites.loadControl(SITE))?.openIncidents).toEqual([]);
      });

      it('puts VMs on the retry list and takes them off with set semantics (repeats are harmless)', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        await stores.sites.setRecovering(SITE, 'v2', true);
        await stores.sites.setRecovering(SITE, 'v1', true);
        await stores.sites.setRecovering(SITE, 'v1', true);
        await stores.sites.setIncidentOpen(SITE, 'i1', true);
        expect(await stores.sites.loadControl(SITE)).toMatchObject({
          recovering: ['v1', 'v2'],
          openIncidents: ['i1'],
        });
        await stores.sites.setRecovering(SITE, 'v1', false);
        await stores.sites.setRecovering(SITE, 'v1', false);
        await stores.sites.setRecovering(SITE, 'v2', false);
        expect((await stores.sites.loadControl(SITE))?.recovering).toEqual([]);
        await expect(stores.sites.setRecovering('nowhere', 'v1', true)).rejects.toBeInstanceOf(NotFoundError);
        expect(await stores.sites.loadControl('nowhere')).toBeNull();
      });

      it('keeps the VMs running twice as vm@host pairs with set semantics, absent when there are none', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        expect((await stores.sites.loadControl(SITE))?.runningTwice).toBeUndefined();
        await stores.sites.setRunningTwice(SITE, ['db-1@h1', 'db-1@h2'], true);
        await stores.sites.setRunningTwice(SITE, ['db-1@h2', 'web-1@h3'], true);
        expect((await stores.sites.loadControl(SITE))?.runningTwice).toEqual([
          'db-1@h1',
          'db-1@h2',
          'web-1@h3',
        ]);
        await stores.sites.setRunningTwice(SITE, ['db-1@h1', 'db-1@h1', 'web-1@h3'], false);
        await stores.sites.setRunningTwice(SITE, [], false);
        expect((await stores.sites.loadControl(SITE))?.runningTwice).toEqual(['db-1@h2']);
        await stores.sites.setRunningTwice(SITE, ['db-1@h2'], false);
        expect((await stores.sites.loadControl(SITE))?.runningTwice).toBeUndefined();
        await expect(stores.sites.setRunningTwice('nowhere', ['v@h'], true)).rejects.toBeInstanceOf(
          NotFoundError,
        );
      });

      it('refuses to open an incident on an unknown site, creating nothing', async () => {
        await expect(stores.sites.setIncidentOpen('nowhere', 'i1', true)).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect(await stores.sites.loadControl('nowhere')).toBeNull();
        expect(await stores.sites.listSites()).toEqual([]);
      });

      it('hands out copies: mutating a loaded control changes nothing stored', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        await stores.sites.ensureCluster(SITE, 'c1');
        const summary = { digest: 'd1', cluster: 'c1', status: 'up' as const, incidentId: null };
        await stores.sites.putHostSummary(SITE, 'h1', summary);
        summary.digest = 'changed by caller';
        const control = await stores.sites.loadControl(SITE);
        if (control === null) throw new Error('site missing');
        (control.clusters[0] as Mutable<(typeof control.clusters)[number]>).fencingEnabled = false;
        (control.hosts as Record<string, unknown>).h1 = null;
        (control.openIncidents as string[]).push('i9');
        expect(await stores.sites.loadControl(SITE)).toMatchObject({
          clusters: [{ fencingEnabled: true }],
          hosts: { h1: { digest: 'd1' } },
          openIncidents: [],
        });
      });
    });

    // ------------------------------------------------------------ relays

    describe('RelayStore', () => {
      it('enrolls a relay that has not reported yet', async () => {
        const relay = await enrollRelay();
        const expected: RelayRecord = {
          siteId: SITE,
          relayId: 'r1',
          credentialHash: HASH_A,
          revoked: false,
          lastSeq: -1,
          lastSeenAt: null,
          silentHosts: {},
          enrolledAt: T0,
        };
        expect(relay).toEqual(expected);
        expect(await stores.relays.getRelay(SITE, 'r1')).toEqual(expected);
      });

      it('returns null for an unknown relay', async () => {
        expect(await stores.relays.getRelay(SITE, 'nope')).toBeNull();
      });

      it('refuses to enroll over a live relay and keeps its credential', async () => {
        await enrollRelay('r1', HASH_A);
        await expect(enrollRelay('r1', HASH_B)).rejects.toBeInstanceOf(RelayExistsError);
        await expect(enrollRelay('r1', HASH_A)).rejects.toBeInstanceOf(RelayExistsError);
        expect(await stores.relays.getRelay(SITE, 'r1')).toMatchObject({
          credentialHash: HASH_A,
          revoked: false,
        });
      });

      it('keeps the hosts a report did not list until a report lists them all', async () => {
        await enrollRelay('r1', HASH_A);
        await stores.relays.acceptReport(SITE, 'r1', { ...report(1), unheardHosts: ['h2', 'h1'] });
        expect((await stores.relays.getRelay(SITE, 'r1'))?.unheardHosts).toEqual(['h2', 'h1']);
        await stores.relays.acceptReport(SITE, 'r1', report(2));
        expect(await stores.relays.getRelay(SITE, 'r1')).not.toHaveProperty('unheardHosts');
      });

      it('keeps the peer relays a report lists, with the report, and drops them with one that lists none', async () => {
        await stores.sites.putSite({ siteId: SITE, createdAt: T0 });
        await enrollRelay('r1', HASH_A);
        const accepted = await stores.relays.acceptReport(SITE, 'r1', { ...report(1), peers: { r2: 700 } });
        expect(accepted.peers).toEqual({ r2: 700 });
        expect((await stores.relays.getRelay(SITE, 'r1'))?.peers).toEqual({ r2: 700 });
        expect((await stores.sites.loadControl(SITE))?.relays.find((r) => r.relayId === 'r1')?.peers).toEqual(
          {
            r2: 700,
          },
        );
        await stores.relays.acceptReport(SITE, 'r1', report(2));
        expect(await stores.relays.getRelay(SITE, 'r1')).not.toHaveProperty('peers');
      });

      it('enrolls the same relay id again after revocation, starting afresh', async () => {
        await enrollRelay('r1', HASH_A);
        await stores.relays.acceptReport(SITE, 'r1', report(7));
        await stores.relays.revoke(SITE, 'r1', T0 + 1);
        const again = await stores.relays.enroll({
          siteId: SITE,
          relayId: 'r1',
          credentialHash: HASH_B,
          at: T0 + 2,
        });
        expect(again).toMatchObject({
          credentialHash: HASH_B,
          revoked: false,
          lastSeq: -1,
          lastSeenAt: null,
        });
        await expect(stores.relays.acceptReport(SITE, 'r1', report(8))).rejects.toBeInstanceOf(
          BadCredentialError,
        );
        expect(
          await stores.relays.acceptReport(SITE, 'r1', report(0, { credentialHash: HASH_B })),
        ).toMatchObject({
          lastSeq: 0,
        });
      });

      it('revokes once; revoking again is harmless', async () => {
        await enrollRelay();
        await stores.relays.revoke(SITE, 'r1', T0 + 1);
        const revoked = await stores.relays.getRelay(SITE, 'r1');
        expect(revoked?.revoked).toBe(true);
        await stores.relays.revoke(SITE, 'r1', T0 + 2);
        expect(await stores.relays.getRelay(SITE, 'r1')).toEqual(revoked);
      });

      it('refuses to revoke a relay that was never enrolled, creating nothing', async () => {
        await expect(stores.relays.revoke(SITE, 'nope', T0)).rejects.toBeInstanceOf(UnknownRelayError);
        expect(await stores.relays.getRelay(SITE, 'nope')).toBeNull();
      });

      it('accepts a report: records seq, time and silent hosts, and returns the stored record', async () => {
        await enrollRelay();
        const accepted = await stores.relays.acceptReport(
          SITE,
          'r1',
          report(0, { silentHosts: { h3: 7000 } }),
        );
        expect(accepted).toEqual({
          siteId: SITE,
          relayId: 'r1',
          credentialHash: HASH_A,
          revoked: false,
          lastSeq: 0,
          lastSeenAt: T0,
          silentHosts: { h3: 7000 },
          enrolledAt: T0,
        });
        expect(await stores.relays.getRelay(SITE, 'r1')).toEqual(accepted);
      });

      it('keeps the pace the last response asked for, and the one before when a report names none', async () => {
        await enrollRelay();
        expect((await stores.relays.acceptReport(SITE, 'r1', report(1))).nextReportInMs).toBeUndefined();
        const paced = await stores.relays.acceptReport(SITE, 'r1', { ...report(2), nextReportInMs: 2000 });
        expect(paced.nextReportInMs).toBe(2000);
        expect((await stores.relays.acceptReport(SITE, 'r1', report(3))).nextReportInMs).toBe(2000);
        await stores.relays.acceptReport(SITE, 'r1', { ...report(4), nextReportInMs: 10_000 });
        expect((await stores.relays.getRelay(SITE, 'r1'))?.nextReportInMs).toBe(10_000);
      });

      it('replaces the silent hosts with each report instead of merging them', async () => {
        await enrollRelay();
        await stores.relays.acceptReport(SITE, 'r1', report(1, { silentHosts: { h1: 7000, h2: 9000 } }));
        const next = await stores.relays.acceptReport(SITE, 'r1', report(2, { silentHosts: { h2: 11000 } }));
        expect(next.silentHosts).toEqual({ h2: 11000 });
      });

      it('accepts sequence gaps (lost reports) as long as seq goes up', async () => {
        await enrollRelay();
        await stores.relays.acceptReport(SITE, 'r1', report(1));
        expect((await stores.relays.acceptReport(SITE, 'r1', report(40))).lastSeq).toBe(40);
      });

      it.each([
        ['a replay of the same seq', 5],
        ['an older seq', 3],
      ])('refuses %s with StaleSequenceError and changes nothing', async (_what, seq) => {
        await enrollRelay();
        await stores.relays.acceptReport(SITE, 'r1', report(5, { silentHosts: { h1: 7000 } }));
        const before = await stores.relays.getRelay(SITE, 'r1');
        await expect(stores.relays.acceptReport(SITE, 'r1', report(seq))).rejects.toBeInstanceOf(
          StaleSequenceError,
        );
        expect(await stores.relays.getRelay(SITE, 'r1')).toEqual(before);
      });

      it('refuses a wrong credential with BadCredentialError and changes nothing', async () => {
        await enrollRelay();
        await stores.relays.acceptReport(SITE, 'r1', report(1));
        const before = await stores.relays.getRelay(SITE, 'r1');
        await expect(
          stores.relays.acceptReport(SITE, 'r1', report(2, { credentialHash: HASH_B })),
        ).rejects.toBeInstanceOf(BadCredentialError);
        expect(await stores.relays.getRelay(SITE, 'r1')).toEqual(before);
      });

      it('refuses a revoked relay with RelayRevokedError and changes nothing', async () => {
        await enrollRelay();
        await stores.relays.acceptReport(SITE, 'r1', report(1));
        await stores.relays.revoke(SITE, 'r1', T0);
        const before = await stores.relays.getRelay(SITE, 'r1');
        await expect(stores.relays.acceptReport(SITE, 'r1', report(2))).rejects.toBeInstanceOf(
          RelayRevokedError,
        );
        expect(await stores.relays.getRelay(SITE, 'r1')).toEqual(before);
      });

      it('tells a wrong credential on a revoked relay only that the credential is bad', async () => {
        await enrollRelay();
        await stores.relays.revoke(SITE, 'r1', T0);
        await expect(
          stores.relays.acceptReport(SITE, 'r1', report(2, { credentialHash: HASH_B })),
        ).rejects.toBeInstanceOf(BadCredentialError);
      });

      it('refuses an unknown relay with UnknownRelayError and creates nothing', async () => {
        await enrollRelay('r1', HASH_A);
        await expect(stores.relays.acceptReport(SITE, 'r9', report(1))).rejects.toBeInstanceOf(
          UnknownRelayError,
        );
        await expect(stores.relays.acceptReport(OTHER_SITE, 'r1', report(1))).rejects.toBeInstanceOf(
          UnknownRelayError,
        );
        expect(await stores.relays.getRelay(SITE, 'r9')).toBeNull();
        expect(await stores.relays.getRelay(OTHER_SITE, 'r1')).toBeNull();
      });

      it('accepts exactly one of two concurrent deliveries of the same report', async () => {
        await enrollRelay();
        const { values, errors } = await settle([
          stores.relays.acceptReport(SITE, 'r1', report(3)),
          stores.relays.acceptReport(SITE, 'r1', report(3)),
        ]);
        expect(values).toHaveLength(1);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(StaleSequenceError);
      });

      it('keeps no reference to the report passed in', async () => {
        await enrollRelay();
        const silentHosts: Record<string, number> = { h1: 7000 };
        const accepted = await stores.relays.acceptReport(SITE, 'r1', report(1, { silentHosts }));
        silentHosts.h2 = 1;
        (accepted.silentHosts as Record<string, number>).h3 = 2;
        expect((await stores.relays.getRelay(SITE, 'r1'))?.silentHosts).toEqual({ h1: 7000 });
      });
    });

    // ------------------------------------------------------------ hosts

    describe('HostStore', () => {
      const limits = { memoryMiB: 16_384, cpus: 16 };
      const vmRes = (id: string, memoryMiB = 4096, cpus = 2) => ({ id, vmId: `vm-${id}`, cpus, memoryMiB });

      it('creates a host first seen at version 1 with no reservations and no fence readiness', async () => {
        const host = await stores.hosts.createHost(newHost('h1'));
        const expected: HostRecord = {
          ...newHost('h1'),
          reservations: {},
          incidentSeq: 0,
          fenceReadiness: {},
          version: 1,
        };
        expect(host).toEqual(expected);
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(expected);
      });

      it('returns the stored host when created again, never resetting it', async () => {
        await stores.hosts.createHost(newHost('h1'));
        await stores.hosts.reserve(SITE, 'h1', vmRes('r1'), limits);
        const stored = await stores.hosts.getHost(SITE, 'h1');
        expect(await stores.hosts.createHost(newHost('h1', { cpus: 99 }))).toEqual(stored);
      });

      it('returns null for an unknown host', async () => {
        expect(await stores.hosts.getHost(SITE, 'nope')).toBeNull();
      });

      it('lists the hosts of a site in id order, optionally of one cluster', async () => {
        await stores.hosts.createHost(newHost('h3', { cluster: 'c2' }));
        await stores.hosts.createHost(newHost('h1'));
        await stores.hosts.createHost(newHost('h2'));
        await stores.hosts.createHost(newHost('hx', { siteId: OTHER_SITE }));
        await stores.vms.saveObserved(
          SITE,
          'h1',
          { id: 'v1', cpus: 1, memoryMiB: 512, state: 'running' },
          T0,
        );
        expect((await stores.hosts.listHosts(SITE)).map((h) => h.hostId)).toEqual(['h1', 'h2', 'h3']);
        expect((await stores.hosts.listHosts(SITE, 'c1')).map((h) => h.hostId)).toEqual(['h1', 'h2']);
        expect(await stores.hosts.listHosts(SITE, 'none')).toEqual([]);
      });

      it('saves inventory on the version read, keeping lifecycle, reservations and incident count', async () => {
        await stores.hosts.createHost(newHost('h1'));
        await stores.hosts.reserve(SITE, 'h1', vmRes('r1'), limits);
        const before = await stores.hosts.getHost(SITE, 'h1');
        if (before === null) throw new Error('host missing');
        const inventory = {
          cpus: 32,
          memoryMiB: 131_072,
          bootId: 'boot-2',
          usedCpus: 4,
          usedMiB: 8192,
          digest: 'digest-2',
          observedAt: T0 + 10_000,
          cluster: 'c9',
        };
        const after = await stores.hosts.saveInventory(SITE, 'h1', before.version, inventory);
        expect(after).toEqual({ ...before, ...inventory, version: before.version + 1 });
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(after);
      });

      it('replaces the reservations in the same write when given, keeps them when not', async () => {
        await stores.hosts.createHost(newHost('h1'));
        await stores.hosts.reserve(SITE, 'h1', { id: 'r1', vmId: 'v1', cpus: 1, memoryMiB: 1024 }, limits);
        await stores.hosts.reserve(SITE, 'h1', { id: 'r2', vmId: 'v2', cpus: 1, memoryMiB: 1024 }, limits);
        const held = await stores.hosts.getHost(SITE, 'h1');
        if (held === null) throw new Error('host missing');
        const kept = await stores.hosts.saveInventory(SITE, 'h1', held.version, {
          ...newHost('h1'),
          usedMiB: 7,
        });
        expect(Object.keys(kept.reservations).sort()).toEqual(['r1', 'r2']);
        const { r2, ...rest } = kept.reservations;
        const after = await stores.hosts.saveInventory(SITE, 'h1', kept.version, {
          ...newHost('h1'),
          usedMiB: 1031,
          reservations: rest,
        });
        expect(after.reservations).toEqual({ r1: { vmId: 'v1', cpus: 1, memoryMiB: 1024 } });
        expect(r2).toEqual({ vmId: 'v2', cpus: 1, memoryMiB: 1024 });
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(after);
      });

      it('refuses inventory on a stale version or for an unknown host, changing nothing', async () => {
        await stores.hosts.createHost(newHost('h1'));
        const inventory = { ...newHost('h1'), usedMiB: 1 };
        await stores.hosts.saveInventory(SITE, 'h1', 1, inventory);
        const stored = await stores.hosts.getHost(SITE, 'h1');
        await expect(
          stores.hosts.saveInventory(SITE, 'h1', 1, { ...inventory, usedMiB: 2 }),
        ).rejects.toBeInstanceOf(ConcurrentUpdateError);
        await expect(stores.hosts.saveInventory(SITE, 'nope', 1, inventory)).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(stored);
        expect(await stores.hosts.getHost(SITE, 'nope')).toBeNull();
      });

      it('sets the lifecycle on the version read, and the incident count only when given', async () => {
        await stores.hosts.createHost(newHost('h1'));
        const suspect = { status: 'suspect', bootId: 'boot-h1', incidentId: 'h1-1', since: T0 } as const;
        const s = await stores.hosts.setLifecycle(SITE, 'h1', 1, suspect, { incidentSeq: 1 });
        expect(s).toMatchObject({ lifecycle: suspect, incidentSeq: 1, version: 2 });
        const fencing = { ...suspect, status: 'fencing', attempts: 0, relaysTried: [] } as const;
        const f = await stores.hosts.setLifecycle(SITE, 'h1', 2, fencing);
        expect(f).toMatchObject({ lifecycle: fencing, incidentSeq: 1, version: 3 });
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(f);
      });

      it('lets exactly one of two lifecycle writers with the same expected version win', async () => {
        await stores.hosts.createHost(newHost('h1'));
        const { values, errors } = await settle([
          stores.hosts.setLifecycle(SITE, 'h1', 1, { status: 'maintenance', bootId: 'boot-h1' }),
          stores.hosts.setLifecycle(SITE, 'h1', 1, {
            status: 'suspect',
            bootId: 'boot-h1',
            incidentId: 'h1-1',
            since: T0,
          }),
        ]);
        expect(values).toHaveLength(1);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(ConcurrentUpdateError);
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(values[0]);
      });

      describe('fence readiness', () => {
        const down = { level: 1, driver: 'ipmitool', ok: false, power: null, error: 'timed out' };
        const up = { level: 2, driver: 'fence_apc_snmp', ok: true, power: 'on', error: null } as const;
        const byRelay = {
          r1: { ok: false, checkedAt: T0, reportedAt: T0 + 1, levels: [down] },
          r2: { ok: true, checkedAt: T0, reportedAt: T0 + 2, levels: [down, up] },
        };

        it('saves every relay entry on the version read, keeping everything else', async () => {
          await stores.hosts.createHost(newHost('h1'));
          await stores.hosts.reserve(SITE, 'h1', vmRes('r1'), limits);
          const before = await stores.hosts.getHost(SITE, 'h1');
          if (before === null) throw new Error('host missing');

          const after = await stores.hosts.saveFenceReadiness(SITE, 'h1', before.version, byRelay);

          expect(after).toEqual({ ...before, fenceReadiness: byRelay, version: before.version + 1 });
          expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(after);
          expect((await stores.hosts.listHosts(SITE))[0]?.fenceReadiness).toEqual(byRelay);
        });

        it('replaces the entries: a relay left out is dropped', async () => {
          await stores.hosts.createHost(newHost('h1'));
          await stores.hosts.saveFenceReadiness(SITE, 'h1', 1, byRelay);
          const after = await stores.hosts.saveFenceReadiness(SITE, 'h1', 2, { r2: byRelay.r2 });
          expect(after.fenceReadiness).toEqual({ r2: byRelay.r2 });
        });

        it('refuses a stale version or an unknown host, changing and creating nothing', async () => {
          await stores.hosts.createHost(newHost('h1'));
          await stores.hosts.setLifecycle(SITE, 'h1', 1, { status: 'maintenance', bootId: 'boot-h1' });
          const stored = await stores.hosts.getHost(SITE, 'h1');

          await expect(stores.hosts.saveFenceReadiness(SITE, 'h1', 1, byRelay)).rejects.toBeInstanceOf(
            ConcurrentUpdateError,
          );
          await expect(stores.hosts.saveFenceReadiness(SITE, 'nope', 1, byRelay)).rejects.toBeInstanceOf(
            NotFoundError,
          );
          expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(stored);
          expect(await stores.hosts.getHost(SITE, 'nope')).toBeNull();
        });

        it('lets exactly one of two writers with the same expected version win', async () => {
          await stores.hosts.createHost(newHost('h1'));
          const { values, errors } = await settle([
            stores.hosts.saveFenceReadiness(SITE, 'h1', 1, { r1: byRelay.r1 }),
            stores.hosts.saveFenceReadiness(SITE, 'h1', 1, { r2: byRelay.r2 }),
          ]);
          expect(values).toHaveLength(1);
          expect(errors).toHaveLength(1);
          expect(errors[0]).toBeInstanceOf(ConcurrentUpdateError);
          expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(values[0]);
        });

        it('is kept by inventory, lifecycle, reservation and release writes, which move the version', async () => {
          await stores.hosts.createHost(newHost('h1'));
          await stores.hosts.saveFenceReadiness(SITE, 'h1', 1, byRelay);
          await stores.hosts.saveInventory(SITE, 'h1', 2, { ...newHost('h1'), usedMiB: 5 });
          await stores.hosts.setLifecycle(SITE, 'h1', 3, { status: 'maintenance', bootId: 'boot-h1' });
          await stores.hosts.reserve(SITE, 'h1', vmRes('x'), limits);
          await stores.hosts.release(SITE, 'h1', 'x');
          const host = await stores.hosts.getHost(SITE, 'h1');
          expect(host).toMatchObject({ fenceReadiness: byRelay, version: 6 });
        });

        it('hands out copies: mutating a returned readiness changes nothing stored', async () => {
          await stores.hosts.createHost(newHost('h1'));
          const input = structuredClone(byRelay);
          const saved = await stores.hosts.saveFenceReadiness(SITE, 'h1', 1, input);
          (input.r1.levels[0] as { error: string | null }).error = 'changed';
          (saved.fenceReadiness as Record<string, unknown>).r9 = byRelay.r1;
          expect((await stores.hosts.getHost(SITE, 'h1'))?.fenceReadiness).toEqual(byRelay);
        });
      });

      it('refuses a lifecycle change for an unknown host', async () => {
        await expect(
          stores.hosts.setLifecycle(SITE, 'nope', 1, { status: 'maintenance', bootId: null }),
        ).rejects.toBeInstanceOf(NotFoundError);
      });

      it('reserves capacity once; the same reservation again is `already` and not counted twice', async () => {
        await stores.hosts.createHost(newHost('h1'));
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r1', 8192, 8), limits)).toBe('reserved');
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r1', 8192, 8), limits)).toBe('already');
        // Exactly fills the rest: proves r1 is held once, not twice.
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r2', 8192, 8), limits)).toBe('reserved');
        const host = await stores.hosts.getHost(SITE, 'h1');
        expect(host?.reservations).toEqual({
          r1: { vmId: 'vm-r1', cpus: 8, memoryMiB: 8192 },
          r2: { vmId: 'vm-r2', cpus: 8, memoryMiB: 8192 },
        });
        expect(host?.version).toBe(3);
      });

      it('refuses a reservation that would pass the memory limit, counting usage and other reservations', async () => {
        await stores.hosts.createHost(newHost('h1', { usedMiB: 8192, usedCpus: 2 }));
        await stores.hosts.reserve(SITE, 'h1', vmRes('r1', 4096, 1), limits);
        const before = await stores.hosts.getHost(SITE, 'h1');
        await expect(stores.hosts.reserve(SITE, 'h1', vmRes('r2', 4097, 1), limits)).rejects.toBeInstanceOf(
          NoCapacityError,
        );
        expect(await stores.hosts.getHost(SITE, 'h1')).toEqual(before);
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r3', 4096, 1), limits)).toBe('reserved');
      });

      it('refuses a reservation that would pass the CPU limit (overcommitted CPUs may be fractional)', async () => {
        await stores.hosts.createHost(newHost('h1', { usedCpus: 10 }));
        const cpuLimits = { memoryMiB: 65_536, cpus: 13.5 };
        await expect(
          stores.hosts.reserve(SITE, 'h1', vmRes('r1', 1024, 4), cpuLimits),
        ).rejects.toBeInstanceOf(NoCapacityError);
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r2', 1024, 3), cpuLimits)).toBe('reserved');
      });

      it('refuses to reserve on an unknown host', async () => {
        await expect(stores.hosts.reserve(SITE, 'nope', vmRes('r1'), limits)).rejects.toBeInstanceOf(
          NotFoundError,
        );
      });

      it('never lets concurrent reservations together pass the limits', async () => {
        await stores.hosts.createHost(newHost('h1', { usedMiB: 2048 }));
        // 10 × 4 GiB against 14 GiB free: at most 3 fit.
        const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
        const results = await Promise.allSettled(
          ids.map((id) => stores.hosts.reserve(SITE, 'h1', vmRes(id), limits)),
        );
        const won = ids.filter((_, i) => results[i]?.status === 'fulfilled');
        for (const r of results) {
          if (r.status === 'fulfilled') expect(r.value).toBe('reserved');
          else expect([NoCapacityError, ConcurrentUpdateError].some((e) => r.reason instanceof e)).toBe(true);
        }
        const host = await stores.hosts.getHost(SITE, 'h1');
        const held = Object.values(host?.reservations ?? {});
        expect(Object.keys(host?.reservations ?? {}).sort()).toEqual([...won].sort());
        expect(won.length).toBeGreaterThanOrEqual(1);
        expect(2048 + held.reduce((sum, r) => sum + r.memoryMiB, 0)).toBeLessThanOrEqual(limits.memoryMiB);
        expect(held.reduce((sum, r) => sum + r.cpus, 0)).toBeLessThanOrEqual(limits.cpus);
      });

      it('never overfills a host on a stale `seen` host: the version check re-reads it', async () => {
        // given a caller that read h1 empty, after which another reservation filled 12 of 16 GiB
        await stores.hosts.createHost(newHost('h1'));
        const stale = await stores.hosts.getHost(SITE, 'h1');
        if (stale === null) throw new Error('no h1');
        await stores.hosts.reserve(SITE, 'h1', vmRes('r1', 12_288, 2), limits);

        // when it reserves 8 GiB with its stale read, then it is refused as not fitting
        await expect(
          stores.hosts.reserve(SITE, 'h1', vmRes('r2', 8192, 2), limits, stale),
        ).rejects.toBeInstanceOf(NoCapacityError);
        // and 4 GiB on the same stale read is held, next to r1
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r3', 4096, 2), limits, stale)).toBe('reserved');
        const host = await stores.hosts.getHost(SITE, 'h1');
        expect(Object.keys(host?.reservations ?? {}).sort()).toEqual(['r1', 'r3']);
      });

      it('releases a reservation once (`released`, then `absent`) and frees its capacity', async () => {
        await stores.hosts.createHost(newHost('h1'));
        await stores.hosts.reserve(SITE, 'h1', vmRes('r1', 16_384, 4), limits);
        await expect(stores.hosts.reserve(SITE, 'h1', vmRes('r2', 1, 1), limits)).rejects.toBeInstanceOf(
          NoCapacityError,
        );
        expect(await stores.hosts.release(SITE, 'h1', 'r1')).toBe('released');
        expect(await stores.hosts.release(SITE, 'h1', 'r1')).toBe('absent');
        expect((await stores.hosts.getHost(SITE, 'h1'))?.reservations).toEqual({});
        expect(await stores.hosts.reserve(SITE, 'h1', vmRes('r2', 1, 1), limits)).toBe('reserved');
      });

      it('answers `absent` for a reservation of an unknown host, creating nothing', async () => {
        expect(await stores.hosts.release(SITE, 'nope', 'r1')).toBe('absent');
        expect(await stores.hosts.getHost(SITE, 'nope')).toBeNull();
      });

      it('moves the version on reserve and release, so a write based on an older read fails', async () => {
        await stores.hosts.createHost(newHost('h1'));
        await stores.hosts.reserve(SITE, 'h1', vmRes('r1'), limits);
        await expect(
          stores.hosts.setLifecycle(SITE, 'h1', 1, { status: 'maintenance', bootId: 'boot-h1' }),
        ).rejects.toBeInstanceOf(ConcurrentUpdateError);
        await stores.hosts.release(SITE, 'h1', 'r1');
        expect((await stores.hosts.getHost(SITE, 'h1'))?.version).toBe(3);
      });

      it('hands out copies: mutating a returned host changes nothing stored', async () => {
        const input = newHost('h1');
        const created = (await stores.hosts.createHost(input)) as Mutable<HostRecord>;
        created.cpus = 1;
        (created.reservations as Record<string, unknown>).x = { vmId: 'x', cpus: 1, memoryMiB: 1 };
        (input.lifecycle as { bootId: string }).bootId = 'changed';
        expect(await stores.hosts.getHost(SITE, 'h1')).toMatchObject({
          cpus: 16,
          reservations: {},
          lifecycle: { bootId: 'boot-h1' },
        });
      });
    });

    // ------------------------------------------------------------ VMs

    describe('VmStore', () => {
      const running = { id: 'v1', cpus: 2, memoryMiB: 4096, state: 'running' } as const;

      it('records an observed VM with default metadata: not HA, medium priority', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        const expected: VmRecord = {
          siteId: SITE,
          vmId: 'v1',
          hostId: 'h1',
          cpus: 2,
          memoryMiB: 4096,
          state: 'running',
          reason: null,
          autostart: null,
          definedOn: ['h1'],
          autostartOn: [],
          ha: false,
          priority: 'medium',
          antiAffinity: null,
          observedAt: T0,
        };
        expect(await stores.vms.getVm(SITE, 'v1')).toEqual(expected);
      });

      it('returns null for an unknown VM', async () => {
        expect(await stores.vms.getVm(SITE, 'nope')).toBeNull();
      });

      it('keeps operator metadata when a new observation is saved', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        await stores.vms.setMetadata(SITE, 'v1', { ha: true, priority: 'high', antiAffinity: 'db' });
        await stores.vms.saveObserved(
          SITE,
          'h2',
          { ...running, state: 'paused', memoryMiB: 8192 },
          T0 + 1000,
        );
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          hostId: 'h2',
          state: 'paused',
          memoryMiB: 8192,
          observedAt: T0 + 1000,
          ha: true,
          priority: 'high',
          antiAffinity: 'db',
        });
      });

      it('keeps the observed state when metadata is set, and returns the whole record', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        const vm = await stores.vms.setMetadata(SITE, 'v1', {
          ha: true,
          priority: 'low',
          antiAffinity: null,
        });
        expect(vm).toEqual({
          siteId: SITE,
          vmId: 'v1',
          hostId: 'h1',
          cpus: 2,
          memoryMiB: 4096,
          state: 'running',
          reason: null,
          autostart: null,
          definedOn: ['h1'],
          autostartOn: [],
          ha: true,
          priority: 'low',
          antiAffinity: null,
          observedAt: T0,
        });
        expect(await stores.vms.getVm(SITE, 'v1')).toEqual(vm);
      });

      it('registers a VM never observed as a placeholder that its first observation fills in', async () => {
        const placeholder = await stores.vms.setMetadata(SITE, 'v1', {
          ha: true,
          priority: 'high',
          antiAffinity: 'g',
        });
        expect(placeholder).toEqual({
          siteId: SITE,
          vmId: 'v1',
          hostId: null,
          cpus: 0,
          memoryMiB: 0,
          state: 'down',
          reason: null,
          autostart: null,
          definedOn: [],
          autostartOn: [],
          ha: true,
          priority: 'high',
          antiAffinity: 'g',
          observedAt: 0,
        });
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        expect(await stores.vms.getVm(SITE, 'v1')).toEqual({
          ...placeholder,
          hostId: 'h1',
          cpus: 2,
          memoryMiB: 4096,
          state: 'running',
          definedOn: ['h1'],
          observedAt: T0,
        });
      });

      it('clears an anti-affinity group when the operator sets it to null', async () => {
        await stores.vms.setMetadata(SITE, 'v1', { ha: true, priority: 'high', antiAffinity: 'g' });
        const vm = await stores.vms.setMetadata(SITE, 'v1', {
          ha: true,
          priority: 'high',
          antiAffinity: null,
        });
        expect(vm.antiAffinity).toBeNull();
      });

      it('drops an observation older than the one stored', async () => {
        await stores.vms.saveObserved(SITE, 'h2', running, T0 + 5000);
        await stores.vms.saveObserved(SITE, 'h1', { ...running, state: 'shut-off' }, T0);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          hostId: 'h2',
          state: 'running',
          observedAt: T0 + 5000,
        });
      });

      it("keeps libvirt's reason and autostart as the latest observation has them, absent as null", async () => {
        await stores.vms.saveObserved(SITE, 'h1', { ...running, reason: 'booted', autostart: false }, T0);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({ reason: 'booted', autostart: false });
        const stopped = { ...running, state: 'shut-off', reason: 'destroyed', autostart: true } as const;
        expect(await stores.vms.saveObserved(SITE, 'h1', stopped, T0 + 1000)).toBe(true);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          state: 'shut-off',
          reason: 'destroyed',
          autostart: true,
          definedOn: ['h1'],
          autostartOn: ['h1'],
        });
        // An agent that predates them leaves them out: not known any more, not kept as if still true.
        await stores.vms.saveObserved(SITE, 'h1', running, T0 + 2000);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          reason: null,
          autostart: null,
          definedOn: ['h1'],
          autostartOn: [],
        });
      });

      it('never lets a shut-off or crashed observation from another host take a VM active elsewhere', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        const defined = { ...running, state: 'shut-off', reason: 'shutdown' } as const;
        expect(await stores.vms.saveObserved(SITE, 'h2', defined, T0 + 1000)).toBe(false);
        expect(await stores.vms.saveObserved(SITE, 'h3', { ...defined, state: 'crashed' }, T0 + 1000)).toBe(
          false,
        );
        await stores.vms.saveObserved(SITE, 'h1', { ...running, state: 'paused' }, T0 + 2000);
        expect(await stores.vms.saveObserved(SITE, 'h2', defined, T0 + 3000)).toBe(false);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          hostId: 'h1',
          state: 'paused',
          observedAt: T0 + 2000,
          definedOn: ['h1'],
        });
      });

      it('lets an inactive observation through from the host the record names, or when nothing runs it', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        const off = { ...running, state: 'shut-off' } as const;
        // The VM stopped where it ran: that is how its stop is learnt.
        expect(await stores.vms.saveObserved(SITE, 'h1', off, T0 + 1000)).toBe(true);
        // Nothing runs it now: the latest report takes it, as before.
        expect(await stores.vms.saveObserved(SITE, 'h2', off, T0 + 2000)).toBe(true);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          hostId: 'h2',
          state: 'shut-off',
          definedOn: ['h1', 'h2'],
        });
        // An active observation elsewhere always takes it (a move, or a split brain ingest reports).
        expect(await stores.vms.saveObserved(SITE, 'h3', running, T0 + 3000)).toBe(true);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({ hostId: 'h3', state: 'running' });
      });

      it('lets an inactive observation take a VM active on the host named as confirmed off, and only that one', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        const crashed = { ...running, state: 'crashed', reason: 'crashed' } as const;
        // Another host than the one the record has it active on: still refused.
        expect(await stores.vms.saveObserved(SITE, 'h2', crashed, T0 + 1000, { overActiveOn: 'h3' })).toBe(
          false,
        );
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({ hostId: 'h1', state: 'running' });
        // h1 is the one confirmed off: the observation from h2 takes the record.
        expect(await stores.vms.saveObserved(SITE, 'h2', crashed, T0 + 1000, { overActiveOn: 'h1' })).toBe(
          true,
        );
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          hostId: 'h2',
          state: 'crashed',
          reason: 'crashed',
          observedAt: T0 + 1000,
        });
        // Not over an older observation.
        await stores.vms.saveObserved(SITE, 'h1', running, T0 + 5000);
        expect(await stores.vms.saveObserved(SITE, 'h2', crashed, T0 + 4000, { overActiveOn: 'h1' })).toBe(
          false,
        );
      });

      it('records which hosts list a VM, and with autostart, without touching the observed fields', async () => {
        await stores.vms.saveObserved(SITE, 'h1', running, T0);
        const before = await stores.vms.getVm(SITE, 'v1');
        await stores.vms.setListing(SITE, 'v1', 'h3', { listed: true, autostart: true });
        await stores.vms.setListing(SITE, 'v1', 'h2', { listed: true, autostart: false });
        // Repeat-safe.
        await stores.vms.setListing(SITE, 'v1', 'h2', { listed: true, autostart: false });
        expect(await stores.vms.getVm(SITE, 'v1')).toEqual({
          ...before,
          definedOn: ['h1', 'h2', 'h3'],
          autostartOn: ['h3'],
        });
        await stores.vms.setListing(SITE, 'v1', 'h3', { listed: true, autostart: false });
        await stores.vms.setListing(SITE, 'v1', 'h2', { listed: false, autostart: false });
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          definedOn: ['h1', 'h3'],
          autostartOn: [],
        });
        // An observation of a VM its host no longer lists takes the host out of the sets in the same write.
        const gone = { ...running, state: 'shut-off' } as const;
        await stores.vms.saveObserved(SITE, 'h1', gone, T0 + 1000, { listed: false });
        await stores.vms.setListing(SITE, 'v1', 'h3', { listed: false, autostart: false });
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
          hostId: 'h1',
          state: 'shut-off',
          definedOn: [],
          autostartOn: [],
        });
      });

      it('creates nothing when a listing names a VM without a record', async () => {
        await stores.vms.setListing(SITE, 'nope', 'h1', { listed: true, autostart: true });
        expect(await stores.vms.getVm(SITE, 'nope')).toBeNull();
      });

      it('marks a VM down only while it is still recorded on the fenced host, keeping that host', async () => {
        await stores.vms.saveObserved(SITE, 'h1', { ...running, reason: 'booted' }, T0);
        await stores.vms.markDown(SITE, 'v1', 'h1', T0 + 1000);
        const down = await stores.vms.getVm(SITE, 'v1');
        expect(down).toMatchObject({ hostId: 'h1', state: 'down', observedAt: T0 + 1000, reason: null });
        // Repeat-safe.
        await stores.vms.markDown(SITE, 'v1', 'h1', T0 + 1000);
        expect(await stores.vms.getVm(SITE, 'v1')).toEqual(down);
      });

      it('leaves a VM alone that has been seen on another host since', async () => {
        await stores.vms.saveObserved(SITE, 'h2', running, T0 + 2000);
        await stores.vms.markDown(SITE, 'v1', 'h1', T0 + 3000);
        expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({ hostId: 'h2', state: 'running' });
      });

      it('creates nothing when marking an unknown VM down', async () => {
        await stores.vms.markDown(SITE, 'nope', 'h1', T0);
        expect(await stores.vms.getVm(SITE, 'nope')).toBeNull();
      });

      describe('recovery (VM-level HA)', () => {
        const recovery: Omit<VmRecovery, 'version'> = {
          status: 'waiting',
          cause: 'vm-crashed',
          since: T0,
          incidentId: 's1:vm:v1:1',
          incidentSeq: 1,
          restarts: [T0 - 1000],
          attempt: 0,
          triedHosts: [],
          orders: 0,
          start: null,
          pinned: null,
          notBefore: null,
          checkedAt: 0,
          note: null,
          by: null,
        };

        it('writes a first recovery at version 1 and the next ones on the version read', async () => {
          await stores.vms.saveObserved(SITE, 'h1', running, T0);
          const first = await stores.vms.saveRecovery(SITE, 'v1', null, recovery);
          expect(first.recovery).toEqual({ ...recovery, version: 1 });
          const start = {
            commandId: 'c1',
            hostId: 'h2',
            relayId: 'r1',
            reservationId: 'res1',
            notAfter: T0 + 20_000,
            result: null,
          };
          const second = await stores.vms.saveRecovery(SITE, 'v1', 1, {
            ...recovery,
            status: 'starting',
            start,
            pinned: { hostId: 'h2', bootId: 'b2' },
          });
          expect(second.recovery).toMatchObject({ status: 'starting', start, version: 2 });
          expect((await stores.vms.getVm(SITE, 'v1'))?.recovery).toEqual(second.recovery);
          expect((await stores.vms.listVms(SITE))[0]?.recovery).toEqual(second.recovery);
        });

        it('refuses a stale version or a second first write, and a VM without a record', async () => {
          await stores.vms.saveObserved(SITE, 'h1', running, T0);
          await stores.vms.saveRecovery(SITE, 'v1', null, recovery);
          await expect(stores.vms.saveRecovery(SITE, 'v1', null, recovery)).rejects.toBeInstanceOf(
            ConcurrentUpdateError,
          );
          await expect(stores.vms.saveRecovery(SITE, 'v1', 7, recovery)).rejects.toBeInstanceOf(
            ConcurrentUpdateError,
          );
          await expect(stores.vms.saveRecovery(SITE, 'nope', null, recovery)).rejects.toBeInstanceOf(
            NotFoundError,
          );
          expect(await stores.vms.getVm(SITE, 'nope')).toBeNull();
        });

        it('lets one of two racing writers win', async () => {
          await stores.vms.saveObserved(SITE, 'h1', running, T0);
          const { values, errors } = await settle([
            stores.vms.saveRecovery(SITE, 'v1', null, recovery),
            stores.vms.saveRecovery(SITE, 'v1', null, { ...recovery, cause: 'host-rebooted' }),
          ]);
          expect(values).toHaveLength(1);
          expect(errors[0]).toBeInstanceOf(ConcurrentUpdateError);
        });

        it('is kept by observation, listing, metadata and down writes, which never touch it', async () => {
          await stores.vms.saveObserved(SITE, 'h1', running, T0);
          const { recovery: held } = await stores.vms.saveRecovery(SITE, 'v1', null, recovery);
          await stores.vms.saveObserved(
            SITE,
            'h1',
            { ...running, state: 'shut-off', reason: 'crashed' },
            T0 + 1,
          );
          await stores.vms.setListing(SITE, 'v1', 'h2', { listed: true, autostart: false });
          await stores.vms.setMetadata(SITE, 'v1', { ha: true, priority: 'high', antiAffinity: null });
          await stores.vms.markDown(SITE, 'v1', 'h1', T0 + 2);
          expect(await stores.vms.getVm(SITE, 'v1')).toMatchObject({
            state: 'down',
            ha: true,
            recovery: held,
          });
        });

        it('is absent from a VM HA never acted on', async () => {
          await stores.vms.saveObserved(SITE, 'h1', running, T0);
          expect(await stores.vms.getVm(SITE, 'v1')).not.toHaveProperty('recovery');
        });
      });

      it('lists the VMs of a site in id order, optionally of one host', async () => {
        await stores.vms.saveObserved(SITE, 'h1', { ...running, id: 'v3' }, T0);
        await stores.vms.saveObserved(SITE, 'h2', { ...running, id: 'v1' }, T0);
        await stores.vms.saveObserved(SITE, 'h1', { ...running, id: 'v2' }, T0);
        await stores.vms.saveObserved(OTHER_SITE, 'h1', { ...running, id: 'vx' }, T0);
        await stores.vms.setMetadata(SITE, 'v4', { ha: true, priority: 'high', antiAffinity: null });
        await stores.hosts.createHost(newHost('h1'));
        expect((await stores.vms.listVms(SITE)).map((v) => v.vmId)).toEqual(['v1', 'v2', 'v3', 'v4']);
        expect((await stores.vms.listVms(SITE, { hostId: 'h1' })).map((v) => v.vmId)).toEqual(['v2', 'v3']);
        expect(await stores.vms.listVms(SITE, { hostId: 'h9' })).toEqual([]);
      });
    });

    // ------------------------------------------------------------ incidents

    describe('IncidentStore', () => {
      it('creates an incident at version 1; creating it again returns the stored one', async () => {
        const first = await stores.incidents.create(newIncident('i1', T0));
        expect(first).toEqual({ created: true, incident: { ...newIncident('i1', T0), version: 1 } });
        const again = await stores.incidents.create(newIncident('i1', T0 + 1, { hostId: 'h2' }));
        expect(again).toEqual({ created: false, incident: first.incident });
        expect(await stores.incidents.get('i1')).toEqual(first.incident);
      });

      it('creates an incident once when two writers race', async () => {
        const { values } = await settle([
          stores.incidents.create(newIncident('i1', T0)),
          stores.incidents.create(newIncident('i1', T0)),
        ]);
        expect(values.map((v) => v.created).sort()).toEqual([false, true]);
      });

      it('keeps a VM incident: its kind, its VM, and no execution input', async () => {
        const vmIncident = newIncident('s1:vm:v1:1', T0, { kind: 'vm', vmId: 'v1', input: null });
        const { incident } = await stores.incidents.create(vmIncident);
        expect(incident).toEqual({ ...vmIncident, version: 1 });
        expect(await stores.incidents.get('s1:vm:v1:1')).toEqual({ ...vmIncident, version: 1 });
        const closed = await stores.incidents.update('s1:vm:v1:1', 1, {
          outcome: 'recovered',
          closedAt: T0 + 1,
        });
        expect(closed).toMatchObject({ kind: 'vm', vmId: 'v1', input: null, outcome: 'recovered' });
        expect((await stores.incidents.list({ siteId: SITE }))[0]).toEqual(closed);
      });

      it('returns null for an unknown incident', async () => {
        expect(await stores.incidents.get('nope')).toBeNull();
      });

      it('lists incidents newest first, filtered by site and openness, up to a limit', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        await stores.incidents.create(
          newIncident('i3', T0 + 3000, { outcome: 'recovered', closedAt: T0 + 4000 }),
        );
        await stores.incidents.create(newIncident('i2', T0 + 2000, { outcome: 'awaiting-operator' }));
        await stores.incidents.create(newIncident('i4', T0 + 4000, { siteId: OTHER_SITE }));
        await stores.incidents.create(newIncident('i5', T0 + 5000, { outcome: 'false-alarm' }));
        await stores.incidents.appendEvent({
          incidentId: 'i1',
          at: T0 + 9000,
          kind: 'suspected',
          detail: '',
        });
        const ids = (list: IncidentRecord[]) => list.map((i) => i.incidentId);

        expect(ids(await stores.incidents.list())).toEqual(['i5', 'i4', 'i3', 'i2', 'i1']);
        expect(ids(await stores.incidents.list({ siteId: SITE }))).toEqual(['i5', 'i3', 'i2', 'i1']);
        expect(ids(await stores.incidents.list({ openOnly: true }))).toEqual(['i4', 'i2', 'i1']);
        expect(ids(await stores.incidents.list({ siteId: SITE, openOnly: true }))).toEqual(['i2', 'i1']);
        expect(ids(await stores.incidents.list({ limit: 2 }))).toEqual(['i5', 'i4']);
        // The limit counts matches, not incidents read: closed ones before them do not use it up.
        expect(ids(await stores.incidents.list({ siteId: SITE, openOnly: true, limit: 1 }))).toEqual(['i2']);
        expect(await stores.incidents.list({ siteId: 'nowhere' })).toEqual([]);
      });

      it('lists only incidents opened at or after `since`, newest first, the limit counting those', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        await stores.incidents.create(newIncident('i2', T0 + 2000));
        await stores.incidents.create(newIncident('i3', T0 + 3000, { siteId: OTHER_SITE }));
        const ids = (list: IncidentRecord[]) => list.map((i) => i.incidentId);
        expect(ids(await stores.incidents.list({ since: T0 + 2000 }))).toEqual(['i3', 'i2']);
        expect(ids(await stores.incidents.list({ since: T0 + 2001, siteId: SITE }))).toEqual([]);
        expect(ids(await stores.incidents.list({ since: T0, limit: 1 }))).toEqual(['i3']);
        expect(ids(await stores.incidents.list({ since: 0, siteId: SITE }))).toEqual(['i2', 'i1']);
      });

      it('keeps the down periods of an incident, absent until written', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        expect((await stores.incidents.get('i1'))?.downtime).toBeUndefined();
        const open = await stores.incidents.update('i1', 1, {
          downtime: { v1: { from: T0 - 500, to: null }, v2: { from: T0 - 500, to: T0 + 700 } },
        });
        const ended = await stores.incidents.update('i1', open.version, {
          downtime: { v1: { from: T0 - 500, to: T0 + 900 }, v2: { from: T0 - 500, to: T0 + 700 } },
        });
        expect(ended.downtime).toEqual({
          v1: { from: T0 - 500, to: T0 + 900 },
          v2: { from: T0 - 500, to: T0 + 700 },
        });
        expect(await stores.incidents.get('i1')).toEqual(ended);
        expect((await stores.incidents.list())[0]).toEqual(ended);
      });

      it('reads the fleet-wide feed in (time, incident, kind, key) order, from an instant or after a position', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        await stores.incidents.create(newIncident('i2', T0, { siteId: OTHER_SITE }));
        const event = (incidentId: string, at: number, kind: string, key?: string) => ({
          incidentId,
          at,
          kind,
          ...(key === undefined ? {} : { key }),
          detail: `${incidentId} ${kind}`,
        });
        await stores.incidents.appendEvent(event('i2', T0 + 20, 'vm-started', 'v2'));
        await stores.incidents.appendEvent(event('i1', T0 + 20, 'vm-started', 'v1'));
        await stores.incidents.appendEvent(event('i1', T0, 'suspected'));
        await stores.incidents.appendEvent(event('i2', T0 + 5, 'suspected'));
        await stores.incidents.appendEvent(event('i1', T0 + 20, 'vm-started', 'v0'));
        await stores.incidents.appendEvent(event('i1', T0 + 30, 'closed'));
        // The same fact twice is one event, in the feed as in the timeline.
        await stores.incidents.appendEvent(event('i1', T0 + 30, 'closed'));
        const keys = (list: IncidentEvent[]) =>
          list.map((e) => `${e.at - T0}:${e.incidentId}:${e.kind}:${e.key ?? ''}`);

        const all = await stores.incidents.listFeed({ fromAt: 0, limit: 100 });
        expect(keys(all)).toEqual([
          '0:i1:suspected:',
          '5:i2:suspected:',
          '20:i1:vm-started:v0',
          '20:i1:vm-started:v1',
          '20:i2:vm-started:v2',
          '30:i1:closed:',
        ]);
        expect(all[0]).toEqual(event('i1', T0, 'suspected'));
        expect(keys(await stores.incidents.listFeed({ fromAt: T0 + 20, limit: 2 }))).toEqual([
          '20:i1:vm-started:v0',
          '20:i1:vm-started:v1',
        ]);
        const after = { at: T0 + 20, incidentId: 'i1', kind: 'vm-started', key: 'v1' };
        expect(keys(await stores.incidents.listFeed({ after, limit: 100 }))).toEqual([
          '20:i2:vm-started:v2',
          '30:i1:closed:',
        ]);
        expect(await stores.incidents.listFeed({ fromAt: T0 + 31, limit: 100 })).toEqual([]);
      });

      it('orders incidents opened in the same millisecond by id, newest-first style', async () => {
        await stores.incidents.create(newIncident('i-a', T0));
        await stores.incidents.create(newIncident('i-b', T0));
        expect((await stores.incidents.list()).map((i) => i.incidentId)).toEqual(['i-b', 'i-a']);
      });

      it('updates on the version read; null clears a field, left-out fields stay', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        const waiting = await stores.incidents.update('i1', 1, {
          outcome: 'awaiting-operator',
          executionArn: 'arn:exec:i1',
          operatorTaskToken: 'tok',
        });
        expect(waiting).toEqual({
          ...newIncident('i1', T0),
          outcome: 'awaiting-operator',
          executionArn: 'arn:exec:i1',
          operatorTaskToken: 'tok',
          version: 2,
        });
        const done = await stores.incidents.update('i1', 2, {
          outcome: 'recovered',
          fencedAt: T0 + 10,
          closedAt: T0 + 20,
          operatorTaskToken: null,
        });
        expect(done).toEqual({
          ...waiting,
          outcome: 'recovered',
          fencedAt: T0 + 10,
          closedAt: T0 + 20,
          operatorTaskToken: null,
          version: 3,
        });
        expect(await stores.incidents.get('i1')).toEqual(done);
      });

      it('keeps the answer to the operator wait and when the wait ended, absent until written', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        const fresh = await stores.incidents.get('i1');
        expect(fresh?.operatorAnswer).toBeUndefined();
        expect(fresh?.operatorWaitEndedAt).toBeUndefined();
        const ended = await stores.incidents.update('i1', 1, {
          operatorWaitEndedAt: T0 + 5,
          operatorTaskToken: null,
        });
        const answer = { decision: 'confirmed-off' as const, by: 'alice', at: T0 + 9 };
        const answered = await stores.incidents.update('i1', ended.version, { operatorAnswer: answer });
        expect(answered).toMatchObject({ operatorWaitEndedAt: T0 + 5, operatorAnswer: answer, version: 3 });
        expect(await stores.incidents.get('i1')).toEqual(answered);
      });

      it('refuses an update on a stale version or of an unknown incident, changing nothing', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        await stores.incidents.update('i1', 1, { executionArn: 'arn:1' });
        const stored = await stores.incidents.get('i1');
        await expect(stores.incidents.update('i1', 1, { outcome: 'recovered' })).rejects.toBeInstanceOf(
          ConcurrentUpdateError,
        );
        await expect(stores.incidents.update('nope', 1, { outcome: 'recovered' })).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect(await stores.incidents.get('i1')).toEqual(stored);
        expect(await stores.incidents.get('nope')).toBeNull();
      });

      it('lets exactly one of two incident writers with the same expected version win', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        const { values, errors } = await settle([
          stores.incidents.update('i1', 1, { outcome: 'recovered' }),
          stores.incidents.update('i1', 1, { outcome: 'false-alarm' }),
        ]);
        expect(values).toHaveLength(1);
        expect(errors).toHaveLength(1);
        expect(errors[0]).toBeInstanceOf(ConcurrentUpdateError);
        expect(await stores.incidents.get('i1')).toEqual(values[0]);
      });

      it('keeps the timeline in time order, whatever order the events arrive in', async () => {
        await stores.incidents.create(newIncident('i1', T0));
        await stores.incidents.appendEvent({
          incidentId: 'i1',
          at: T0 + 3000,
          kind: 'fenced',
          detail: 'off',
        });
        await stores.incidents.appendEvent({
          incidentId: 'i1',
          at: T0,
          kind: 'suspected',
          detail: 'silent',
          data: { relays: ['r1', 'r2'], silentMs: 6500, nested: { ok: true } },
        });
        await stores.incidents.appendEvent({
          incidentId: 'i1',
          at: T0 + 1000,
          kind: 'fence-ordered',
          detail: 'r1',
        });
        await stores.incidents.appendEvent({
          incidentId: 'i1',
          at: T0 + 1000,
          kind: 'confirmed',
          detail: '',
        });
        await stores.incidents.appendEvent({ incidentId: 'i2', at: T0, kind: 'suspected', detail: 'other' });

        expect(await stores.incidents.listEvents('i1')).toEqual([
          {
            incidentId: 'i1',
            at: T0,
            kind: 'suspected',
            detail: 'silent',
            data: { relays: ['r1', 'r2'], silentMs: 6500, nested: { ok: true } },
          },
          { incidentId: 'i1', at: T0 + 1000, kind: 'confirmed', detail: '' },
          { incidentId: 'i1', at: T0 + 1000, kind: 'fence-ordered', detail: 'r1' },
          { incidentId: 'i1', at: T0 + 3000, kind: 'fenced', detail: 'off' },
        ]);
      });

      it('stores an event with the same time and kind once, keeping the first', async () => {
        const event = { incidentId: 'i1', at: T0, kind: 'vm-started#v1', detail: 'first' };
        await stores.incidents.appendEvent(event);
        await stores.incidents.appendEvent({ ...event, detail: 'second' });
        await Promise.all([stores.incidents.appendEvent(event), stores.incidents.appendEvent(event)]);
        expect(await stores.incidents.listEvents('i1')).toEqual([event]);
      });

      it('keeps events of one time and kind apart when their keys (subjects) differ', async () => {
        const v1 = { incidentId: 'i1', at: T0, kind: 'vm-started', key: 'vm-1', detail: 'vm-1 on h2' };
        const v2 = { incidentId: 'i1', at: T0, kind: 'vm-started', key: 'vm-2', detail: 'vm-2 on h3' };
        await stores.incidents.appendEvent(v2);
        await stores.incidents.appendEvent(v1);
        await stores.incidents.appendEvent({ ...v1, detail: 'repeat' });
        expect(await stores.incidents.listEvents('i1')).toEqual([v1, v2]);
      });

      it('lists the tail of a timeline from an instant on, that instant included', async () => {
        for (const [at, kind] of [
          [T0, 'suspected'],
          [T0 + 1000, 'fence-ordered'],
          [T0 + 1000, 'confirmed'],
          [T0 + 3000, 'fenced'],
        ] as const) {
          await stores.incidents.appendEvent({ incidentId: 'i1', at, kind, detail: '' });
        }
        const kinds = async (fromAt: number) =>
          (await stores.incidents.listEvents('i1', { fromAt })).map((e) => e.kind);
        expect(await kinds(T0 + 1000)).toEqual(['confirmed', 'fence-ordered', 'fenced']);
        expect(await kinds(T0 + 1001)).toEqual(['fenced']);
        expect(await kinds(T0 + 3001)).toEqual([]);
        expect(await kinds(0)).toEqual(['suspected', 'confirmed', 'fence-ordered', 'fenced']);
      });

      it('has an empty timeline for an incident without events', async () => {
        expect(await stores.incidents.listEvents('nope')).toEqual([]);
      });

      it('hands out copies: mutating a returned incident or event changes nothing stored', async () => {
        const { incident } = await stores.incidents.create(newIncident('i1', T0));
        (incident as Mutable<IncidentRecord>).outcome = 'recovered';
        (incident.input?.evidence.relays as unknown[]).length = 0;
        const data = { relays: ['r1'] };
        await stores.incidents.appendEvent({ incidentId: 'i1', at: T0, kind: 'k', detail: '', data });
        data.relays.push('r2');
        expect(await stores.incidents.get('i1')).toEqual({ ...newIncident('i1', T0), version: 1 });
        expect((await stores.incidents.listEvents('i1'))[0]?.data).toEqual({ relays: ['r1'] });
      });
    });

    // ------------------------------------------------------------ commands

    describe('CommandStore', () => {
      it('stores a command as pending; storing it again changes nothing', async () => {
        expect(await stores.commands.create(newCommand('c1'))).toEqual({ created: true });
        expect(await stores.commands.create({ ...newCommand('c1'), taskToken: 'other' })).toEqual({
          created: false,
        });
        expect(await stores.commands.listOpen(SITE, 'r1')).toEqual([
          { ...newCommand('c1'), status: 'pending', deliveredAt: null, result: null },
        ]);
      });

      it('stores a command without a task token (VM-level HA) and completes it once', async () => {
        await stores.commands.create({ ...newCommand('c1'), taskToken: null });
        expect((await stores.commands.listOpen(SITE, 'r1'))[0]?.taskToken).toBeNull();
        const done = await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1');
        expect(done).toMatchObject({ taskToken: null, status: 'succeeded' });
        expect(await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1')).toBeNull();
      });

      it('lists the open commands of one relay, oldest first, without finished ones or other relays', async () => {
        await stores.commands.create(newCommand('c3', { createdAt: T0 + 3 }));
        await stores.commands.create(newCommand('c1', { createdAt: T0 + 1 }));
        await stores.commands.create(newCommand('c2', { createdAt: T0 + 2 }));
        await stores.commands.create(newCommand('c4', { createdAt: T0 + 4 }));
        await stores.commands.create(newCommand('c5', { relayId: 'r2' }));
        await stores.commands.create(newCommand('c6', { siteId: OTHER_SITE }));
        await stores.commands.markDelivered(SITE, 'c2', T0 + 10);
        await stores.commands.complete(SITE, 'c3', resultOf('c3'), 'r1');
        await stores.commands.markDelivered(SITE, 'c4', T0 + 10);
        await stores.commands.complete(SITE, 'c4', resultOf('c4', { outcome: 'failed' }), 'r1');

        const open = await stores.commands.listOpen(SITE, 'r1');
        expect(open.map((c) => [c.command.commandId, c.status])).toEqual([
          ['c1', 'pending'],
          ['c2', 'delivered'],
        ]);
        expect((await stores.commands.listOpen(SITE, 'r2')).map((c) => c.command.commandId)).toEqual(['c5']);
        expect(await stores.commands.listOpen(SITE, 'r9')).toEqual([]);
      });

      it('marks a command delivered once, keeping the first delivery time', async () => {
        await stores.commands.create(newCommand('c1'));
        await stores.commands.markDelivered(SITE, 'c1', T0 + 10);
        await stores.commands.markDelivered(SITE, 'c1', T0 + 20);
        expect(await stores.commands.listOpen(SITE, 'r1')).toMatchObject([
          { status: 'delivered', deliveredAt: T0 + 10 },
        ]);
      });

      it('does not reopen a finished command or create an unknown one on delivery', async () => {
        await stores.commands.create(newCommand('c1'));
        await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1');
        await stores.commands.markDelivered(SITE, 'c1', T0 + 10);
        await stores.commands.markDelivered(SITE, 'nope', T0 + 10);
        expect(await stores.commands.listForIncident(SITE, 'i1')).toMatchObject([
          { status: 'succeeded', deliveredAt: null },
        ]);
      });

      it('completes a command the first time and returns it with its task token', async () => {
        await stores.commands.create(newCommand('c1'));
        await stores.commands.markDelivered(SITE, 'c1', T0 + 10);
        const result = resultOf('c1');
        expect(await stores.commands.complete(SITE, 'c1', result, 'r1')).toEqual({
          ...newCommand('c1'),
          status: 'succeeded',
          deliveredAt: T0 + 10,
          result,
        });
      });

      it('records a failed result as failed', async () => {
        await stores.commands.create(newCommand('c1'));
        const result = resultOf('c1', { outcome: 'failed', powerState: 'on', detail: 'BMC said on' });
        expect(await stores.commands.complete(SITE, 'c1', result, 'r1')).toMatchObject({
          status: 'failed',
          result,
        });
      });

      it('adopts a new task token for an existing command, whatever its status; null for none', async () => {
        await stores.commands.create(newCommand('c1'));
        expect(await stores.commands.adoptTaskToken(SITE, 'c1', 'tok-2')).toMatchObject({
          taskToken: 'tok-2',
        });
        await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1');
        expect(await stores.commands.adoptTaskToken(SITE, 'c1', 'tok-3')).toMatchObject({
          taskToken: 'tok-3',
          status: 'succeeded',
        });
        expect(await stores.commands.adoptTaskToken(SITE, 'nope', 'tok')).toBeNull();
      });

      it('returns null for a repeated result and changes nothing', async () => {
        await stores.commands.create(newCommand('c1'));
        const first = await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1');
        expect(
          await stores.commands.complete(
            SITE,
            'c1',
            resultOf('c1', { outcome: 'failed', finishedAt: T0 + 9 }),
            'r1',
          ),
        ).toBeNull();
        expect(await stores.commands.listForIncident(SITE, 'i1')).toEqual([first]);
      });

      it('returns null for a result from a relay the command was not sent to, and changes nothing', async () => {
        await stores.commands.create(newCommand('c1'));
        expect(await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r2')).toBeNull();
        expect(await stores.commands.listOpen(SITE, 'r1')).toMatchObject([
          { status: 'pending', result: null },
        ]);
        expect(await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1')).toMatchObject({
          status: 'succeeded',
        });
      });

      it('returns null for the result of an unknown command, creating nothing', async () => {
        expect(await stores.commands.complete(SITE, 'nope', resultOf('nope'), 'r1')).toBeNull();
        expect(await stores.commands.listForIncident(SITE, 'i1')).toEqual([]);
      });

      it('ignores a result that names another incident than the command was issued for', async () => {
        await stores.commands.create(newCommand('c1', { incidentId: 'i1' }));
        expect(
          await stores.commands.complete(SITE, 'c1', resultOf('c1', { incidentId: 'i0' }), 'r1'),
        ).toBeNull();
        expect(await stores.commands.listOpen(SITE, 'r1')).toMatchObject([
          { status: 'pending', result: null },
        ]);
      });

      it('completes exactly once when the same result arrives through two relays at once', async () => {
        await stores.commands.create(newCommand('c1'));
        const outcomes = await Promise.all([
          stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1'),
          stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1'),
        ]);
        expect(outcomes.filter((o) => o !== null)).toHaveLength(1);
      });

      it('lists all commands of an incident, whatever their status or relay', async () => {
        await stores.commands.create(newCommand('c1', { createdAt: T0 + 1 }));
        await stores.commands.create(newCommand('c2', { relayId: 'r2', createdAt: T0 + 2 }));
        await stores.commands.create(newCommand('c3', { incidentId: 'i2' }));
        await stores.commands.create(newCommand('c4', { siteId: OTHER_SITE }));
        await stores.commands.complete(SITE, 'c1', resultOf('c1'), 'r1');
        expect(
          (await stores.commands.listForIncident(SITE, 'i1')).map((c) => [c.command.commandId, c.status]),
        ).toEqual([
          ['c1', 'succeeded'],
          ['c2', 'pending'],
        ]);
        expect(await stores.commands.listForIncident(SITE, 'i9')).toEqual([]);
      });
    });
  });
}
