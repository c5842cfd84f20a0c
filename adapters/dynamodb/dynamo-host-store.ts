import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConcurrentUpdateError, NoCapacityError, NotFoundError } from '../../app/errors';
import type { HostRecord, HostStore, NewHost } from '../../app/ports';
import type { HostState } from '../../core/lifecycle';
import {
  beginsWith,
  CONDITION_FAILED,
  type DynamoContext,
  getItem,
  type Item,
  type Key,
  keyOf,
  map,
  mapOrNull,
  num,
  putIfAbsent,
  queryAll,
  str,
  unlessConditionFails,
  updateVersioned,
} from './dynamo-support';
import { hostSk, idAfter, PK_PREFIX, SK_PREFIX, siteKey } from './table-definition';

/** Version conflicts `reserve` absorbs by re-reading before it gives up with ConcurrentUpdateError. */
export const RESERVE_RETRIES = 5;

type Reservations = HostRecord['reservations'];
type Reservation = Reservations[string];

/**
 * Hosts: one item per host, written on inventory change, lifecycle transition and reservation, each an
 * optimistic-lock update on `version`.
 */
export class DynamoHostStore implements HostStore {
  constructor(private readonly ctx: DynamoContext) {}

  async getHost(siteId: string, hostId: string): Promise<HostRecord | null> {
    const item = await getItem(this.ctx, hostKey(siteId, hostId));
    return item === null ? null : hostFromItem(item);
  }

  async listHosts(siteId: string, cluster?: string): Promise<HostRecord[]> {
    const query = beginsWith(siteKey(siteId), SK_PREFIX.host);
    const items = await queryAll(
      this.ctx,
      cluster === undefined
        ? query
        : {
            ...query,
            FilterExpression: '#cluster = :cluster',
            ExpressionAttributeNames: { ...query.ExpressionAttributeNames, '#cluster': 'cluster' },
            ExpressionAttributeValues: { ...query.ExpressionAttributeValues, ':cluster': cluster },
          },
    );
    return items.map(hostFromItem);
  }

  async createHost(host: NewHost): Promise<HostRecord> {
    const fresh: HostRecord = { ...host, reservations: {}, incidentSeq: 0, fenceReadiness: {}, version: 1 };
    if (await putIfAbsent(this.ctx, hostToItem(fresh))) return fresh;
    const existing = await this.getHost(host.siteId, host.hostId);
    if (existing === null) throw new NotFoundError(`host ${host.siteId}/${host.hostId} vanished`);
    return existing;
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
    const fields = {
      ...(inventory.takenAt === undefined ? {} : { takenAt: inventory.takenAt }),
      cpus: inventory.cpus,
      memoryMiB: inventory.memoryMiB,
      bootId: inventory.bootId,
      usedCpus: inventory.usedCpus,
      usedMiB: inventory.usedMiB,
      digest: inventory.digest,
      observedAt: inventory.observedAt,
      cluster: inventory.cluster,
      ...(inventory.reservations === undefined ? {} : { reservations: inventory.reservations }),
    };
    const item = await updateVersioned(
      this.ctx,
      hostKey(siteId, hostId),
      expectedVersion,
      fields,
      hostName(siteId, hostId),
    );
    return hostFromItem(item);
  }

  async saveFenceReadiness(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    fenceReadiness: HostRecord['fenceReadiness'],
  ): Promise<HostRecord> {
    // The whole map, on the version read: `SET fenceReadiness.#relay` would need the map to exist, which
    // items written before fence readiness lack, and the version check makes the replacement safe.
    const item = await updateVersioned(
      this.ctx,
      hostKey(siteId, hostId),
      expectedVersion,
      { fenceReadiness },
      hostName(siteId, hostId),
    );
    return hostFromItem(item);
  }

  async setLifecycle(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    lifecycle: HostState,
    opts?: { incidentSeq?: number },
  ): Promise<HostRecord> {
    const item = await updateVersioned(
      this.ctx,
      hostKey(siteId, hostId),
      expectedVersion,
      { lifecycle, incidentSeq: opts?.incidentSeq },
      hostName(siteId, hostId),
    );
    return hostFromItem(item);
  }

  async reserve(
    siteId: string,
    hostId: string,
    reservation: { id: string; vmId: string; cpus: number; memoryMiB: number },
    limits: { memoryMiB: number; cpus: number },
    seen?: HostRecord,
  ): Promise<'reserved' | 'already'> {
    const key = hostKey(siteId, hostId);
    // A condition expression cannot sum the reservations map, so the check is done on the item read and
    // made atomic by writing only if the version is still the one read.
    for (let attempt = 0; attempt <= RESERVE_RETRIES; attempt++) {
      const host = attempt === 0 && seen !== undefined ? seen : await this.readHost(siteId, hostId);
      if (Object.hasOwn(host.reservations, reservation.id)) return 'already';
      assertFits(host, reservation, limits);
      const held: Reservation = {
        vmId: reservation.vmId,
        cpus: reservation.cpus,
        memoryMiB: reservation.memoryMiB,
      };
      const result = await unlessConditionFails(
        this.ctx.client.send(
          new UpdateCommand({
            TableName: this.ctx.tableName,
            Key: keyOf(key),
            UpdateExpression: 'SET #reservations.#id = :reservation, #version = #version + :one',
            ConditionExpression: '#version = :expected',
            ExpressionAttributeNames: {
              '#reservations': 'reservations',
              '#id': reservation.id,
              '#version': 'version',
            },
            ExpressionAttributeValues: { ':reservation': held, ':one': 1, ':expected': host.version },
          }),
        ),
      );
      if (result !== CONDITION_FAILED) return 'reserved';
    }
    throw new ConcurrentUpdateError(
      `${hostName(siteId, hostId)}: reservation ${reservation.id} lost ${RESERVE_RETRIES + 1} races`,
    );
  }

  private async readHost(siteId: string, hostId: string): Promise<HostRecord> {
    const item = await getItem(this.ctx, hostKey(siteId, hostId));
    if (item === null) throw new NotFoundError(`${hostName(siteId, hostId)} not found`);
    return hostFromItem(item);
  }

  async release(siteId: string, hostId: string, reservationId: string): Promise<'released' | 'absent'> {
    // Freeing capacity can never overfill a host, so it needs no version check; it still bumps the
    // version, so that a reserve that read the old reservations re-reads before writing.
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(hostKey(siteId, hostId)),
          UpdateExpression: 'REMOVE #reservations.#id SET #version = #version + :one',
          ConditionExpression: 'attribute_exists(#reservations.#id)',
          ExpressionAttributeNames: {
            '#reservations': 'reservations',
            '#id': reservationId,
            '#version': 'version',
          },
          ExpressionAttributeValues: { ':one': 1 },
        }),
      ),
    );
    return result === CONDITION_FAILED ? 'absent' : 'released';
  }
}

/** Throws NoCapacityError unless used + reserved + the new reservation stays within both limits. */
function assertFits(
  host: Pick<HostRecord, 'siteId' | 'hostId' | 'usedCpus' | 'usedMiB' | 'reservations'>,
  reservation: { id: string; cpus: number; memoryMiB: number },
  limits: { memoryMiB: number; cpus: number },
): void {
  let memoryMiB = host.usedMiB + reservation.memoryMiB;
  let cpus = host.usedCpus + reservation.cpus;
  for (const held of Object.values(host.reservations)) {
    memoryMiB += held.memoryMiB;
    cpus += held.cpus;
  }
  if (memoryMiB > limits.memoryMiB || cpus > limits.cpus) {
    throw new NoCapacityError(
      `${hostName(host.siteId, host.hostId)}: reservation ${reservation.id} needs ${memoryMiB} MiB / ` +
        `${cpus} CPUs of ${limits.memoryMiB} MiB / ${limits.cpus} CPUs`,
    );
  }
}

function hostName(siteId: string, hostId: string): string {
  return `host ${siteId}/${hostId}`;
}

function hostKey(siteId: string, hostId: string): Key {
  return { pk: siteKey(siteId), sk: hostSk(hostId) };
}

function hostToItem(host: HostRecord): Item {
  return {
    ...keyOf(hostKey(host.siteId, host.hostId)),
    cluster: host.cluster,
    cpus: host.cpus,
    memoryMiB: host.memoryMiB,
    bootId: host.bootId,
    lifecycle: host.lifecycle,
    usedCpus: host.usedCpus,
    usedMiB: host.usedMiB,
    reservations: host.reservations,
    incidentSeq: host.incidentSeq,
    fenceReadiness: host.fenceReadiness,
    digest: host.digest,
    observedAt: host.observedAt,
    ...(host.takenAt === undefined ? {} : { takenAt: host.takenAt }),
    version: host.version,
  };
}

function hostFromItem(item: Item): HostRecord {
  return {
    siteId: idAfter(PK_PREFIX.site, str(item, 'pk')),
    hostId: idAfter(SK_PREFIX.host, str(item, 'sk')),
    cluster: str(item, 'cluster'),
    cpus: num(item, 'cpus'),
    memoryMiB: num(item, 'memoryMiB'),
    bootId: str(item, 'bootId'),
    lifecycle: map<HostState>(item, 'lifecycle'),
    usedCpus: num(item, 'usedCpus'),
    usedMiB: num(item, 'usedMiB'),
    reservations: map<Reservations>(item, 'reservations'),
    incidentSeq: num(item, 'incidentSeq'),
    // Items written before fence readiness have none: no relay has checked those hosts yet.
    fenceReadiness: mapOrNull<HostRecord['fenceReadiness']>(item, 'fenceReadiness') ?? {},
    digest: str(item, 'digest'),
    observedAt: num(item, 'observedAt'),
    ...(typeof item.takenAt === 'number' ? { takenAt: item.takenAt } : {}),
    version: num(item, 'version'),
  };
}
