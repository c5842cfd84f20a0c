import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { NotFoundError } from '../../app/errors';
import type {
  ClusterRecord,
  HostSummary,
  RelayRecord,
  SiteControl,
  SiteRecord,
  SiteStore,
} from '../../app/ports';
import type { HaPolicyInput } from '../../core/policy';
import { relayFromItem } from './dynamo-relay-store';
import {
  beginsWith,
  bool,
  CONDITION_FAILED,
  type DynamoContext,
  getItem,
  type Item,
  type Key,
  keyOf,
  map,
  num,
  putIfAbsent,
  queryAll,
  str,
  stringSet,
  unlessConditionFails,
  updateVersioned,
} from './dynamo-support';
import {
  clusterSk,
  GSI1,
  HOSTS_SK,
  idAfter,
  PK_PREFIX,
  SITE_SK,
  SITES_GSI_PK,
  SK_PREFIX,
  siteKey,
} from './table-definition';

/**
 * Sites and their control items (`C#…`): the site, its clusters, relays and host summaries share one
 * partition and one sort-key prefix, so ingest reads everything it needs about a site with one query.
 */
export class DynamoSiteStore implements SiteStore {
  constructor(private readonly ctx: DynamoContext) {}

  async putSite(site: SiteRecord): Promise<{ created: boolean }> {
    return { created: await putIfAbsent(this.ctx, siteToItem(site)) };
  }

  async listSites(): Promise<SiteRecord[]> {
    const items = await queryAll(this.ctx, {
      IndexName: GSI1.indexName,
      KeyConditionExpression: '#gsi1pk = :sites',
      ExpressionAttributeNames: { '#gsi1pk': GSI1.pk },
      ExpressionAttributeValues: { ':sites': SITES_GSI_PK },
    });
    return items.map(siteFromItem);
  }

  async loadControl(
    siteId: string,
    options: { readonly consistent?: boolean } = {},
  ): Promise<SiteControl | null> {
    // Eventually consistent by default, on purpose (half the cost): ingest tolerates a read a moment old,
    // and every write it then makes is conditional.
    const items = await queryAll(this.ctx, {
      ...beginsWith(siteKey(siteId), SK_PREFIX.control),
      ...(options.consistent === true ? { ConsistentRead: true } : {}),
    });
    let site: SiteRecord | null = null;
    let openIncidents: string[] = [];
    let recovering: string[] = [];
    let runningTwice: string[] = [];
    let hosts: Record<string, HostSummary> = {};
    const clusters: ClusterRecord[] = [];
    const relays: RelayRecord[] = [];
    for (const item of items) {
      const sk = str(item, 'sk');
      if (sk === SITE_SK) {
        site = siteFromItem(item);
        openIncidents = stringSet(item, 'openIncidents');
        recovering = stringSet(item, 'recovering');
        runningTwice = stringSet(item, 'runningTwice');
      } else if (sk === HOSTS_SK) hosts = map<Record<string, HostSummary>>(item, 'hosts');
      else if (sk.startsWith(SK_PREFIX.cluster)) clusters.push(clusterFromItem(item));
      else if (sk.startsWith(SK_PREFIX.relay)) relays.push(relayFromItem(item));
    }
    if (site === null) return null;
    return {
      site,
      clusters,
      relays,
      hosts,
      openIncidents,
      recovering,
      ...(runningTwice.length === 0 ? {} : { runningTwice }),
    };
  }

  async ensureCluster(siteId: string, clusterId: string): Promise<ClusterRecord> {
    const fresh: ClusterRecord = { siteId, clusterId, fencingEnabled: true, policy: {}, version: 1 };
    if (await putIfAbsent(this.ctx, clusterToItem(fresh))) return fresh;
    const item = await getItem(this.ctx, clusterKey(siteId, clusterId));
    if (item === null) throw new NotFoundError(`cluster ${siteId}/${clusterId} vanished`);
    return clusterFromItem(item);
  }

  async updateCluster(
    siteId: string,
    clusterId: string,
    expectedVersion: number,
    patch: { fencingEnabled?: boolean; policy?: HaPolicyInput },
  ): Promise<ClusterRecord> {
    const item = await updateVersioned(
      this.ctx,
      clusterKey(siteId, clusterId),
      expectedVersion,
      { fencingEnabled: patch.fencingEnabled, policy: patch.policy },
      `cluster ${siteId}/${clusterId}`,
    );
    return clusterFromItem(item);
  }

  async putHostSummary(siteId: string, hostId: string, summary: HostSummary): Promise<void> {
    const key: Key = { pk: siteKey(siteId), sk: HOSTS_SK };
    // `SET hosts.#h` needs the map to exist, and one expression cannot create the map and an entry of
    // it. So: update the entry; if the item is missing, create it with this entry; if someone else just
    // created it, the entry update now succeeds.
    if (await this.setSummaryEntry(key, hostId, summary)) return;
    if (await putIfAbsent(this.ctx, { ...keyOf(key), hosts: { [hostId]: summary } })) return;
    if (!(await this.setSummaryEntry(key, hostId, summary))) {
      throw new Error(`host summaries of site ${siteId} could not be written`);
    }
  }

  async setIncidentOpen(siteId: string, incidentId: string, open: boolean): Promise<void> {
    await this.setMember(siteId, 'openIncidents', incidentId, open);
  }

  async setRecovering(siteId: string, vmId: string, on: boolean): Promise<void> {
    await this.setMember(siteId, 'recovering', vmId, on);
  }

  async setRunningTwice(siteId: string, pairs: readonly string[], on: boolean): Promise<void> {
    if (pairs.length === 0) return;
    await this.setMembers(siteId, 'runningTwice', pairs, on);
  }

  /** Puts `member` in or out of a string set of the site item. */
  private async setMember(siteId: string, set: string, member: string, present: boolean): Promise<void> {
    await this.setMembers(siteId, set, [member], present);
  }

  /** Puts `members` in or out of a string set of the site item, in one write. */
  private async setMembers(
    siteId: string,
    set: string,
    members: readonly string[],
    present: boolean,
  ): Promise<void> {
    // ADD/DELETE on a string set is idempotent by itself; the condition keeps a stray call from creating
    // a half site item.
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(siteItemKey(siteId)),
          UpdateExpression: `${present ? 'ADD' : 'DELETE'} #set :members`,
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk', '#set': set },
          ExpressionAttributeValues: { ':members': new Set(members) },
        }),
      ),
    );
    if (result === CONDITION_FAILED) throw new NotFoundError(`site ${siteId} not found`);
  }

  private async setSummaryEntry(key: Key, hostId: string, summary: HostSummary): Promise<boolean> {
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(key),
          UpdateExpression: 'SET #hosts.#hostId = :summary',
          ConditionExpression: 'attribute_exists(#hosts)',
          ExpressionAttributeNames: { '#hosts': 'hosts', '#hostId': hostId },
          ExpressionAttributeValues: { ':summary': summary },
        }),
      ),
    );
    return result !== CONDITION_FAILED;
  }
}

function siteItemKey(siteId: string): Key {
  return { pk: siteKey(siteId), sk: SITE_SK };
}

function clusterKey(siteId: string, clusterId: string): Key {
  return { pk: siteKey(siteId), sk: clusterSk(clusterId) };
}

function siteToItem(site: SiteRecord): Item {
  return {
    ...keyOf(siteItemKey(site.siteId)),
    [GSI1.pk]: SITES_GSI_PK,
    [GSI1.sk]: site.siteId,
    createdAt: site.createdAt,
  };
}

function siteFromItem(item: Item): SiteRecord {
  return { siteId: idAfter(PK_PREFIX.site, str(item, 'pk')), createdAt: num(item, 'createdAt') };
}

function clusterToItem(cluster: ClusterRecord): Item {
  return {
    ...keyOf(clusterKey(cluster.siteId, cluster.clusterId)),
    fencingEnabled: cluster.fencingEnabled,
    policy: cluster.policy,
    version: cluster.version,
  };
}

function clusterFromItem(item: Item): ClusterRecord {
  return {
    siteId: idAfter(PK_PREFIX.site, str(item, 'pk')),
    clusterId: idAfter(SK_PREFIX.cluster, str(item, 'sk')),
    fencingEnabled: bool(item, 'fencingEnabled'),
    policy: map<HaPolicyInput>(item, 'policy'),
    version: num(item, 'version'),
  };
}
