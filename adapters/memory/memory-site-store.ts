import { NotFoundError } from '../../app/errors';
import type { ClusterRecord, HostSummary, SiteControl, SiteRecord, SiteStore } from '../../app/ports';
import type { HaPolicyInput } from '../../core/policy';
import {
  checkVersion,
  compareStrings,
  copy,
  definedFields,
  type MemoryState,
  rowKey,
  rowsOfSite,
} from './memory-state';

/** In-memory SiteStore with the DynamoDB store's semantics. */
export class MemorySiteStore implements SiteStore {
  constructor(private readonly state: MemoryState) {}

  async putSite(site: SiteRecord): Promise<{ created: boolean }> {
    if (this.state.sites.has(site.siteId)) return { created: false };
    this.state.sites.set(site.siteId, { site: copy(site), openIncidents: new Set(), recovering: new Set() });
    return { created: true };
  }

  async listSites(): Promise<SiteRecord[]> {
    return [...this.state.sites.values()]
      .map((entry) => copy(entry.site))
      .sort((a, b) => compareStrings(a.siteId, b.siteId));
  }

  async loadControl(
    siteId: string,
    _options?: { readonly consistent?: boolean },
  ): Promise<SiteControl | null> {
    const entry = this.state.sites.get(siteId);
    if (entry === undefined) return null;
    const summaries = this.state.hostSummaries.get(siteId) ?? new Map<string, HostSummary>();
    return {
      site: copy(entry.site),
      clusters: rowsOfSite(this.state.clusters, siteId),
      relays: rowsOfSite(this.state.relays, siteId),
      hosts: copy(Object.fromEntries(summaries)),
      openIncidents: [...entry.openIncidents].sort(compareStrings),
      recovering: [...entry.recovering].sort(compareStrings),
      ...(entry.runningTwice === undefined || entry.runningTwice.size === 0
        ? {}
        : { runningTwice: [...entry.runningTwice].sort(compareStrings) }),
    };
  }

  async ensureCluster(siteId: string, clusterId: string): Promise<ClusterRecord> {
    const key = rowKey(siteId, clusterId);
    const existing = this.state.clusters.get(key);
    if (existing !== undefined) return copy(existing);
    const fresh: ClusterRecord = { siteId, clusterId, fencingEnabled: true, policy: {}, version: 1 };
    this.state.clusters.set(key, fresh);
    return copy(fresh);
  }

  async updateCluster(
    siteId: string,
    clusterId: string,
    expectedVersion: number,
    patch: { fencingEnabled?: boolean; policy?: HaPolicyInput },
  ): Promise<ClusterRecord> {
    const key = rowKey(siteId, clusterId);
    const current = checkVersion(
      this.state.clusters.get(key),
      expectedVersion,
      `cluster ${siteId}/${clusterId}`,
    );
    const next: ClusterRecord = {
      ...current,
      ...copy(definedFields({ fencingEnabled: patch.fencingEnabled, policy: patch.policy })),
      version: current.version + 1,
    };
    this.state.clusters.set(key, next);
    return copy(next);
  }

  async putHostSummary(siteId: string, hostId: string, summary: HostSummary): Promise<void> {
    let summaries = this.state.hostSummaries.get(siteId);
    if (summaries === undefined) {
      summaries = new Map();
      this.state.hostSummaries.set(siteId, summaries);
    }
    summaries.set(hostId, copy(summary));
  }

  async setIncidentOpen(siteId: string, incidentId: string, open: boolean): Promise<void> {
    const entry = this.state.sites.get(siteId);
    if (entry === undefined) throw new NotFoundError(`site ${siteId} not found`);
    if (open) entry.openIncidents.add(incidentId);
    else entry.openIncidents.delete(incidentId);
  }

  async setRunningTwice(siteId: string, pairs: readonly string[], on: boolean): Promise<void> {
    if (pairs.length === 0) return;
    const entry = this.state.sites.get(siteId);
    if (entry === undefined) throw new NotFoundError(`site ${siteId} not found`);
    entry.runningTwice ??= new Set();
    for (const pair of pairs) {
      if (on) entry.runningTwice.add(pair);
      else entry.runningTwice.delete(pair);
    }
  }

  async setRecovering(siteId: string, vmId: string, on: boolean): Promise<void> {
    const entry = this.state.sites.get(siteId);
    if (entry === undefined) throw new NotFoundError(`site ${siteId} not found`);
    if (on) entry.recovering.add(vmId);
    else entry.recovering.delete(vmId);
  }
}
