import { NoCapacityError, NotFoundError } from '../../app/errors';
import type { HostRecord, HostStore, NewHost } from '../../app/ports';
import type { HostState } from '../../core/lifecycle';
import { checkVersion, copy, definedFields, type MemoryState, rowKey, rowsOfSite } from './memory-state';

/** In-memory HostStore with the DynamoDB store's semantics. */
export class MemoryHostStore implements HostStore {
  constructor(private readonly state: MemoryState) {}

  async getHost(siteId: string, hostId: string): Promise<HostRecord | null> {
    const host = this.state.hosts.get(rowKey(siteId, hostId));
    return host === undefined ? null : copy(host);
  }

  async listHosts(siteId: string, cluster?: string): Promise<HostRecord[]> {
    return rowsOfSite(this.state.hosts, siteId).filter((h) => cluster === undefined || h.cluster === cluster);
  }

  async createHost(host: NewHost): Promise<HostRecord> {
    const key = rowKey(host.siteId, host.hostId);
    const existing = this.state.hosts.get(key);
    if (existing !== undefined) return copy(existing);
    const fresh: HostRecord = {
      ...copy(host),
      reservations: {},
      incidentSeq: 0,
      fenceReadiness: {},
      version: 1,
    };
    this.state.hosts.set(key, fresh);
    return copy(fresh);
  }

  async saveInventory(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    inventory: Pick<
      HostRecord,
      'cpus' | 'memoryMiB' | 'bootId' | 'usedCpus' | 'usedMiB' | 'digest' | 'observedAt' | 'cluster'
    > & { readonly reservations?: HostRecord['reservations']; readonly takenAt?: number },
  ): Promise<HostRecord> {
    const { cpus, memoryMiB, bootId, usedCpus, usedMiB, digest, observedAt, cluster, reservations } =
      inventory;
    return this.write(siteId, hostId, expectedVersion, {
      ...(reservations === undefined ? {} : { reservations }),
      ...(inventory.takenAt === undefined ? {} : { takenAt: inventory.takenAt }),
      cpus,
      memoryMiB,
      bootId,
      usedCpus,
      usedMiB,
      digest,
      observedAt,
      cluster,
    });
  }

  async saveFenceReadiness(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    fenceReadiness: HostRecord['fenceReadiness'],
  ): Promise<HostRecord> {
    return this.write(siteId, hostId, expectedVersion, { fenceReadiness });
  }

  async setLifecycle(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    lifecycle: HostState,
    opts?: { incidentSeq?: number },
  ): Promise<HostRecord> {
    return this.write(siteId, hostId, expectedVersion, { lifecycle, incidentSeq: opts?.incidentSeq });
  }

  async reserve(
    siteId: string,
    hostId: string,
    reservation: { id: string; vmId: string; cpus: number; memoryMiB: number },
    limits: { memoryMiB: number; cpus: number },
    // One synchronous step here: nothing can come between a read and the write, so `seen` saves nothing.
    _seen?: HostRecord,
  ): Promise<'reserved' | 'already'> {
    const key = rowKey(siteId, hostId);
    const host = this.state.hosts.get(key);
    if (host === undefined) throw new NotFoundError(`host ${siteId}/${hostId} not found`);
    if (Object.hasOwn(host.reservations, reservation.id)) return 'already';
    let memoryMiB = host.usedMiB + reservation.memoryMiB;
    let cpus = host.usedCpus + reservation.cpus;
    for (const held of Object.values(host.reservations)) {
      memoryMiB += held.memoryMiB;
      cpus += held.cpus;
    }
    if (memoryMiB > limits.memoryMiB || cpus > limits.cpus) {
      throw new NoCapacityError(
        `host ${siteId}/${hostId}: reservation ${reservation.id} needs ${memoryMiB} MiB / ${cpus} CPUs ` +
          `of ${limits.memoryMiB} MiB / ${limits.cpus} CPUs`,
      );
    }
    const { vmId, cpus: vmCpus, memoryMiB: vmMiB } = reservation;
    this.state.hosts.set(key, {
      ...host,
      reservations: { ...host.reservations, [reservation.id]: { vmId, cpus: vmCpus, memoryMiB: vmMiB } },
      version: host.version + 1,
    });
    return 'reserved';
  }

  async release(siteId: string, hostId: string, reservationId: string): Promise<'released' | 'absent'> {
    const key = rowKey(siteId, hostId);
    const host = this.state.hosts.get(key);
    if (host === undefined || !Object.hasOwn(host.reservations, reservationId)) return 'absent';
    const { [reservationId]: _released, ...kept } = host.reservations;
    this.state.hosts.set(key, { ...host, reservations: kept, version: host.version + 1 });
    return 'released';
  }

  private write(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    fields: Partial<HostRecord>,
  ): HostRecord {
    const key = rowKey(siteId, hostId);
    const current = checkVersion(this.state.hosts.get(key), expectedVersion, `host ${siteId}/${hostId}`);
    const next: HostRecord = { ...current, ...copy(definedFields(fields)), version: current.version + 1 };
    this.state.hosts.set(key, next);
    return copy(next);
  }
}
