import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConcurrentUpdateError, NotFoundError } from '../../app/errors';
import type { VmRecord, VmRecovery, VmStore } from '../../app/ports';
import type { ObservedVm } from '../../contracts/relay-protocol';
import type { Priority } from '../../core/model';
import {
  beginsWith,
  bool,
  boolOrNull,
  CONDITION_FAILED,
  type DynamoContext,
  getItem,
  type Item,
  type Key,
  keyOf,
  mapOrNull,
  num,
  queryAll,
  requireAttributes,
  str,
  stringSet,
  strOrNull,
  unlessConditionFails,
} from './dynamo-support';
import { idAfter, PK_PREFIX, SK_PREFIX, siteKey, vmSk } from './table-definition';

/** Metadata of a VM no operator registered: not HA (safety first), middle priority. */
const DEFAULT_META = { ha: false, priority: 'medium', antiAffinity: null } as const;

/**
 * VMs: observed fields (host, size, state, reason, autostart) and the hosts that list the VM (`definedOn`,
 * `autostartOn`, string sets) come from agents, metadata (ha, priority, anti-affinity) from operators; each
 * write sets only its own fields and fills the others' defaults with if_not_exists.
 */
export class DynamoVmStore implements VmStore {
  constructor(private readonly ctx: DynamoContext) {}

  async getVm(siteId: string, vmId: string): Promise<VmRecord | null> {
    const item = await getItem(this.ctx, vmKey(siteId, vmId));
    return item === null ? null : vmFromItem(item);
  }

  async listVms(siteId: string, filter?: { hostId?: string }): Promise<VmRecord[]> {
    const query = beginsWith(siteKey(siteId), SK_PREFIX.vm);
    const hostId = filter?.hostId;
    const items = await queryAll(
      this.ctx,
      hostId === undefined
        ? query
        : {
            ...query,
            FilterExpression: '#hostId = :hostId',
            ExpressionAttributeNames: { ...query.ExpressionAttributeNames, '#hostId': 'hostId' },
            ExpressionAttributeValues: { ...query.ExpressionAttributeValues, ':hostId': hostId },
          },
    );
    return items.map(vmFromItem);
  }

  async saveObserved(
    siteId: string,
    hostId: string,
    vm: ObservedVm,
    at: number,
    options?: { readonly listed?: boolean; readonly overActiveOn?: string },
  ): Promise<boolean> {
    const listed = options?.listed ?? true;
    const active = vm.state === 'running' || vm.state === 'paused';
    const overOff = options?.overActiveOn;
    // Two relays report the same VM: an observation older than the stored one is dropped, not written
    // over a newer one. An inactive one from a host other than the one the VM is active on is a definition
    // elsewhere: it must not move the record (the condition is the rule; a failed one is the expected no-op).
    // With `overActiveOn` (a host confirmed off), the record may be taken from that host as well.
    const rule = active
      ? ''
      : ` AND (#hostId = :hostId${overOff === undefined ? '' : ' OR #hostId = :overOff'} OR NOT (#state IN (:running, :paused)))`;
    const set = [
      '#hostId = :hostId',
      '#cpus = :cpus',
      '#memoryMiB = :memoryMiB',
      '#state = :state',
      '#observedAt = :at',
      '#ha = if_not_exists(#ha, :ha)',
      '#priority = if_not_exists(#priority, :priority)',
      '#antiAffinity = if_not_exists(#antiAffinity, :antiAffinity)',
    ];
    // libvirt's reason and autostart as this observation has them: an agent that leaves one out does not
    // know it, so a value from an earlier observation is removed rather than kept as if still true.
    const remove: string[] = [];
    if (vm.reason === undefined) remove.push('#reason');
    else set.push('#reason = :reason');
    if (vm.autostart === undefined) remove.push('#autostart');
    else set.push('#autostart = :autostart');
    const membership = listingClauses(listed, listed && vm.autostart === true);
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(vmKey(siteId, vm.id)),
          UpdateExpression: [
            `SET ${set.join(', ')}`,
            remove.length === 0 ? '' : `REMOVE ${remove.join(', ')}`,
            membership,
          ]
            .filter((clause) => clause !== '')
            .join(' '),
          ConditionExpression: `attribute_not_exists(#pk) OR (#observedAt <= :at${rule})`,
          ExpressionAttributeNames: {
            '#pk': 'pk',
            '#hostId': 'hostId',
            '#cpus': 'cpus',
            '#memoryMiB': 'memoryMiB',
            '#state': 'state',
            '#reason': 'reason',
            '#autostart': 'autostart',
            '#observedAt': 'observedAt',
            '#ha': 'ha',
            '#priority': 'priority',
            '#antiAffinity': 'antiAffinity',
            '#definedOn': 'definedOn',
            '#autostartOn': 'autostartOn',
          },
          ExpressionAttributeValues: {
            ':hostId': hostId,
            ':cpus': vm.cpus,
            ':memoryMiB': vm.memoryMiB,
            ':state': vm.state,
            ...(vm.reason === undefined ? {} : { ':reason': vm.reason }),
            ...(vm.autostart === undefined ? {} : { ':autostart': vm.autostart }),
            ':at': at,
            ':ha': DEFAULT_META.ha,
            ':priority': DEFAULT_META.priority,
            ':antiAffinity': DEFAULT_META.antiAffinity,
            ':host': new Set([hostId]),
            ...(active ? {} : { ':running': 'running', ':paused': 'paused' }),
            ...(active || overOff === undefined ? {} : { ':overOff': overOff }),
          },
        }),
      ),
    );
    return result !== CONDITION_FAILED;
  }

  async setListing(
    siteId: string,
    vmId: string,
    hostId: string,
    listing: { readonly listed: boolean; readonly autostart: boolean },
  ): Promise<void> {
    // ADD and DELETE on a string set are idempotent by themselves; the condition keeps a listing from
    // creating a VM item with no observation in it (a failed condition is the expected no-op).
    await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(vmKey(siteId, vmId)),
          UpdateExpression: listingClauses(listing.listed, listing.listed && listing.autostart),
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk', '#definedOn': 'definedOn', '#autostartOn': 'autostartOn' },
          ExpressionAttributeValues: { ':host': new Set([hostId]) },
        }),
      ),
    );
  }

  async setMetadata(
    siteId: string,
    vmId: string,
    meta: { ha: boolean; priority: Priority; antiAffinity: string | null },
  ): Promise<VmRecord> {
    // The operator's word is final for these three fields, so no condition; a VM never observed gets a
    // placeholder (nowhere, size 0, down, observedAt 0) that its first observation overwrites.
    const out = await this.ctx.client.send(
      new UpdateCommand({
        TableName: this.ctx.tableName,
        Key: keyOf(vmKey(siteId, vmId)),
        UpdateExpression:
          'SET #ha = :ha, #priority = :priority, #antiAffinity = :antiAffinity, ' +
          '#hostId = if_not_exists(#hostId, :null), #cpus = if_not_exists(#cpus, :zero), ' +
          '#memoryMiB = if_not_exists(#memoryMiB, :zero), #state = if_not_exists(#state, :down), ' +
          '#observedAt = if_not_exists(#observedAt, :zero)',
        ExpressionAttributeNames: {
          '#ha': 'ha',
          '#priority': 'priority',
          '#antiAffinity': 'antiAffinity',
          '#hostId': 'hostId',
          '#cpus': 'cpus',
          '#memoryMiB': 'memoryMiB',
          '#state': 'state',
          '#observedAt': 'observedAt',
        },
        ExpressionAttributeValues: {
          ':ha': meta.ha,
          ':priority': meta.priority,
          ':antiAffinity': meta.antiAffinity,
          ':null': null,
          ':zero': 0,
          ':down': 'down',
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return vmFromItem(requireAttributes(out.Attributes, `vm ${siteId}/${vmId}`));
  }

  async markDown(siteId: string, vmId: string, hostId: string, at: number): Promise<void> {
    // Only if the VM is still recorded on the fenced host: if it was already seen elsewhere, that newer
    // truth stays (a failed condition is the expected no-op). hostId stays: where it last ran.
    await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(vmKey(siteId, vmId)),
          // libvirt's reason described the observed state, not the control plane's `down`.
          UpdateExpression: 'SET #state = :down, #observedAt = :at REMOVE #reason',
          ConditionExpression: '#hostId = :hostId',
          ExpressionAttributeNames: {
            '#hostId': 'hostId',
            '#state': 'state',
            '#observedAt': 'observedAt',
            '#reason': 'reason',
          },
          ExpressionAttributeValues: { ':down': 'down', ':at': at, ':hostId': hostId },
        }),
      ),
    );
  }

  async saveRecovery(
    siteId: string,
    vmId: string,
    expectedVersion: number | null,
    recovery: Omit<VmRecovery, 'version'>,
  ): Promise<VmRecord> {
    const next: VmRecovery = { ...recovery, version: (expectedVersion ?? 0) + 1 };
    // The recovery map alone, conditional on its own version (`attribute_not_exists` for the first): it
    // races neither ingest's observation writes, which never touch it, nor the operator's metadata.
    const out = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(vmKey(siteId, vmId)),
          UpdateExpression: 'SET #recovery = :recovery',
          ConditionExpression:
            expectedVersion === null
              ? 'attribute_exists(#pk) AND attribute_not_exists(#recovery)'
              : '#recovery.#version = :expected',
          ExpressionAttributeNames: {
            '#recovery': 'recovery',
            ...(expectedVersion === null ? { '#pk': 'pk' } : { '#version': 'version' }),
          },
          ExpressionAttributeValues: {
            ':recovery': next,
            ...(expectedVersion === null ? {} : { ':expected': expectedVersion }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    if (out === CONDITION_FAILED) {
      const current = await getItem(this.ctx, vmKey(siteId, vmId));
      if (current === null) throw new NotFoundError(`vm ${siteId}/${vmId} not found`);
      const found = mapOrNull<VmRecovery>(current, 'recovery')?.version ?? null;
      throw new ConcurrentUpdateError(
        `recovery of vm ${siteId}/${vmId} changed: expected version ${String(expectedVersion)}, found ${String(found)}`,
      );
    }
    return vmFromItem(requireAttributes(out.Attributes, `vm ${siteId}/${vmId}`));
  }
}

/**
 * The ADD and DELETE clauses that put `:host` in or out of `definedOn` and `autostartOn` (string sets:
 * DynamoDB drops a set emptied by DELETE, and an absent one reads as []).
 */
function listingClauses(defined: boolean, autostart: boolean): string {
  const add = [defined ? '#definedOn :host' : null, autostart ? '#autostartOn :host' : null].filter(
    (a) => a !== null,
  );
  const del = [defined ? null : '#definedOn :host', autostart ? null : '#autostartOn :host'].filter(
    (a) => a !== null,
  );
  return [add.length === 0 ? '' : `ADD ${add.join(', ')}`, del.length === 0 ? '' : `DELETE ${del.join(', ')}`]
    .filter((c) => c !== '')
    .join(' ');
}

function vmKey(siteId: string, vmId: string): Key {
  return { pk: siteKey(siteId), sk: vmSk(vmId) };
}

function vmFromItem(item: Item): VmRecord {
  return {
    siteId: idAfter(PK_PREFIX.site, str(item, 'pk')),
    vmId: idAfter(SK_PREFIX.vm, str(item, 'sk')),
    hostId: strOrNull(item, 'hostId'),
    cpus: num(item, 'cpus'),
    memoryMiB: num(item, 'memoryMiB'),
    state: str(item, 'state') as VmRecord['state'],
    ha: bool(item, 'ha'),
    priority: str(item, 'priority') as Priority,
    antiAffinity: strOrNull(item, 'antiAffinity'),
    reason: strOrNull(item, 'reason'),
    autostart: boolOrNull(item, 'autostart'),
    definedOn: stringSet(item, 'definedOn'),
    autostartOn: stringSet(item, 'autostartOn'),
    observedAt: num(item, 'observedAt'),
    ...recoveryOf(item),
  };
}

/** The recovery map as stored (saveRecovery writes it whole); absent when HA never acted on the VM. */
function recoveryOf(item: Item): { recovery?: VmRecovery } {
  const recovery = mapOrNull<VmRecovery>(item, 'recovery');
  return recovery === null ? {} : { recovery };
}
