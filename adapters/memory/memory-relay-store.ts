import {
  BadCredentialError,
  RelayExistsError,
  RelayRevokedError,
  StaleSequenceError,
  UnknownRelayError,
} from '../../app/errors';
import type { RelayRecord, RelayStore } from '../../app/ports';
import { copy, type MemoryState, rowKey } from './memory-state';

/** In-memory RelayStore with the DynamoDB store's semantics. */
export class MemoryRelayStore implements RelayStore {
  constructor(private readonly state: MemoryState) {}

  async enroll(relay: {
    siteId: string;
    relayId: string;
    credentialHash: string;
    at: number;
  }): Promise<RelayRecord> {
    const key = rowKey(relay.siteId, relay.relayId);
    const existing = this.state.relays.get(key);
    // A revoked relay may be enrolled again under the same id (a replaced box); a live one may not.
    if (existing !== undefined && !existing.revoked) {
      throw new RelayExistsError(`relay ${relay.siteId}/${relay.relayId} is already enrolled`);
    }
    const record: RelayRecord = {
      siteId: relay.siteId,
      relayId: relay.relayId,
      credentialHash: relay.credentialHash,
      revoked: false,
      lastSeq: -1,
      lastSeenAt: null,
      silentHosts: {},
      enrolledAt: relay.at,
    };
    this.state.relays.set(key, record);
    return copy(record);
  }

  async revoke(siteId: string, relayId: string, _at: number): Promise<void> {
    const key = rowKey(siteId, relayId);
    const existing = this.state.relays.get(key);
    if (existing === undefined) throw new UnknownRelayError(`relay ${siteId}/${relayId} is not enrolled`);
    if (!existing.revoked) this.state.relays.set(key, { ...existing, revoked: true });
  }

  async getRelay(siteId: string, relayId: string): Promise<RelayRecord | null> {
    const relay = this.state.relays.get(rowKey(siteId, relayId));
    return relay === undefined ? null : copy(relay);
  }

  async acceptReport(
    siteId: string,
    relayId: string,
    report: {
      seq: number;
      at: number;
      credentialHash: string;
      silentHosts: Record<string, number>;
      nextReportInMs?: number;
      unheardHosts?: readonly string[];
      peers?: Readonly<Record<string, number>>;
    },
  ): Promise<RelayRecord> {
    const key = rowKey(siteId, relayId);
    const relay = this.state.relays.get(key);
    const name = `relay ${siteId}/${relayId}`;
    // Same order as the DynamoDB store: credential before revocation, so a wrong secret learns nothing.
    if (relay === undefined) throw new UnknownRelayError('unknown relay');
    if (relay.credentialHash !== report.credentialHash)
      throw new BadCredentialError(`${name}: bad credential`);
    if (relay.revoked) throw new RelayRevokedError(`${name} is revoked`);
    if (relay.lastSeq >= report.seq) {
      throw new StaleSequenceError(`${name}: seq ${report.seq} is not above ${relay.lastSeq}`);
    }
    const { unheardHosts: _previous, peers: _previousPeers, ...kept } = relay;
    const unheard = report.unheardHosts ?? [];
    const next: RelayRecord = {
      ...kept,
      lastSeq: report.seq,
      lastSeenAt: report.at,
      silentHosts: copy(report.silentHosts),
      ...(report.nextReportInMs === undefined ? {} : { nextReportInMs: report.nextReportInMs }),
      ...(unheard.length === 0 ? {} : { unheardHosts: [...unheard] }),
      ...(report.peers === undefined ? {} : { peers: copy(report.peers) }),
    };
    this.state.relays.set(key, next);
    return copy(next);
  }
}
