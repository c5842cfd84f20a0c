import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  BadCredentialError,
  ConcurrentUpdateError,
  RelayExistsError,
  RelayRevokedError,
  StaleSequenceError,
  UnknownRelayError,
} from '../../app/errors';
import type { RelayRecord, RelayStore } from '../../app/ports';
import {
  bool,
  CONDITION_FAILED,
  type DynamoContext,
  getItem,
  type Item,
  type Key,
  keyOf,
  map,
  num,
  numOrNull,
  requireAttributes,
  str,
  unlessConditionFails,
} from './dynamo-support';
import { idAfter, PK_PREFIX, relaySk, SK_PREFIX, siteKey } from './table-definition';

/**
 * Relays: one small item per relay under its site's partition, rewritten by every accepted report. That
 * write is the cost of liveness, so the item stays < 1 KB, carries no GSI attributes and no version: its
 * condition (credential, revocation, sequence) is the rule itself.
 */
export class DynamoRelayStore implements RelayStore {
  constructor(private readonly ctx: DynamoContext) {}

  async enroll(relay: {
    siteId: string;
    relayId: string;
    credentialHash: string;
    at: number;
  }): Promise<RelayRecord> {
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
    // A revoked relay may be enrolled again under the same id (a replaced box); a live one may not.
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new PutCommand({
          TableName: this.ctx.tableName,
          Item: relayToItem(record),
          ConditionExpression: 'attribute_not_exists(#pk) OR #revoked = :true',
          ExpressionAttributeNames: { '#pk': 'pk', '#revoked': 'revoked' },
          ExpressionAttributeValues: { ':true': true },
        }),
      ),
    );
    if (result === CONDITION_FAILED) {
      throw new RelayExistsError(`relay ${relay.siteId}/${relay.relayId} is already enrolled`);
    }
    return record;
  }

  async revoke(siteId: string, relayId: string, at: number): Promise<void> {
    const key = relayKey(siteId, relayId);
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(key),
          UpdateExpression: 'SET #revoked = :true, #revokedAt = :at',
          ConditionExpression: 'attribute_exists(#pk) AND #revoked = :false',
          ExpressionAttributeNames: { '#pk': 'pk', '#revoked': 'revoked', '#revokedAt': 'revokedAt' },
          ExpressionAttributeValues: { ':true': true, ':false': false, ':at': at },
        }),
      ),
    );
    if (result !== CONDITION_FAILED) return;
    // Already revoked is the idempotent repeat; a relay that never existed is the caller's mistake.
    if ((await getItem(this.ctx, key)) === null) {
      throw new UnknownRelayError(`relay ${siteId}/${relayId} is not enrolled`);
    }
  }

  async getRelay(siteId: string, relayId: string): Promise<RelayRecord | null> {
    const item = await getItem(this.ctx, relayKey(siteId, relayId));
    return item === null ? null : relayFromItem(item);
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
    const key = relayKey(siteId, relayId);
    const pace = report.nextReportInMs;
    const unheard = report.unheardHosts ?? [];
    const peers = report.peers;
    const removed = [
      ...(unheard.length === 0 ? ['#unheardHosts'] : []),
      ...(peers === undefined ? ['#peers'] : []),
    ];
    // The only write of a quiet report: credential check, revocation check and replay guard in one condition.
    const result = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(key),
          UpdateExpression:
            'SET #lastSeq = :seq, #lastSeenAt = :at, #silentHosts = :silentHosts' +
            (pace === undefined ? '' : ', #nextReportInMs = :pace') +
            (unheard.length === 0 ? '' : ', #unheardHosts = :unheard') +
            (peers === undefined ? '' : ', #peers = :peers') +
            (removed.length === 0 ? '' : ` REMOVE ${removed.join(', ')}`),
          ConditionExpression: '#credentialHash = :hash AND #revoked = :false AND #lastSeq < :seq',
          ExpressionAttributeNames: {
            '#lastSeq': 'lastSeq',
            '#lastSeenAt': 'lastSeenAt',
            '#silentHosts': 'silentHosts',
            '#credentialHash': 'credentialHash',
            '#revoked': 'revoked',
            ...(pace === undefined ? {} : { '#nextReportInMs': 'nextReportInMs' }),
            '#unheardHosts': 'unheardHosts',
            '#peers': 'peers',
          },
          ExpressionAttributeValues: {
            ':seq': report.seq,
            ':at': report.at,
            ':silentHosts': report.silentHosts,
            ':hash': report.credentialHash,
            ':false': false,
            ...(pace === undefined ? {} : { ':pace': pace }),
            ...(unheard.length === 0 ? {} : { ':unheard': [...unheard] }),
            ...(peers === undefined ? {} : { ':peers': { ...peers } }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    if (result !== CONDITION_FAILED) {
      return relayFromItem(requireAttributes(result.Attributes, `relay ${siteId}/${relayId}`));
    }
    const current = await getItem(this.ctx, key);
    throw refusal(current === null ? null : relayFromItem(current), report);
  }
}

/**
 * Why a report was refused. The credential is checked before revocation, so a caller without the right
 * secret learns nothing about the relay's state.
 */
function refusal(relay: RelayRecord | null, report: { seq: number; credentialHash: string }): Error {
  if (relay === null) return new UnknownRelayError('unknown relay');
  const name = `relay ${relay.siteId}/${relay.relayId}`;
  if (relay.credentialHash !== report.credentialHash)
    return new BadCredentialError(`${name}: bad credential`);
  if (relay.revoked) return new RelayRevokedError(`${name} is revoked`);
  if (relay.lastSeq >= report.seq) {
    return new StaleSequenceError(`${name}: seq ${report.seq} is not above ${relay.lastSeq}`);
  }
  // The condition failed but holds now: the relay was re-enrolled or revoked in between.
  return new ConcurrentUpdateError(`${name} changed while the report was being accepted`);
}

function relayKey(siteId: string, relayId: string): Key {
  return { pk: siteKey(siteId), sk: relaySk(relayId) };
}

/** Maps a relay record to its item; ids live only in the keys, to keep the liveness item small. */
function relayToItem(relay: RelayRecord): Item {
  return {
    ...keyOf(relayKey(relay.siteId, relay.relayId)),
    credentialHash: relay.credentialHash,
    revoked: relay.revoked,
    lastSeq: relay.lastSeq,
    lastSeenAt: relay.lastSeenAt,
    silentHosts: relay.silentHosts,
    ...(relay.unheardHosts === undefined ? {} : { unheardHosts: relay.unheardHosts }),
    ...(relay.peers === undefined ? {} : { peers: relay.peers }),
    enrolledAt: relay.enrolledAt,
  };
}

/** Maps a relay item (from GetItem or the site's control query) to its record. */
export function relayFromItem(item: Item): RelayRecord {
  return {
    siteId: idAfter(PK_PREFIX.site, str(item, 'pk')),
    relayId: idAfter(SK_PREFIX.relay, str(item, 'sk')),
    credentialHash: str(item, 'credentialHash'),
    revoked: bool(item, 'revoked'),
    lastSeq: num(item, 'lastSeq'),
    lastSeenAt: numOrNull(item, 'lastSeenAt'),
    silentHosts: map<Record<string, number>>(item, 'silentHosts'),
    enrolledAt: num(item, 'enrolledAt'),
    ...optionalPace(numOrNull(item, 'nextReportInMs')),
    ...(Array.isArray(item.unheardHosts) && item.unheardHosts.length > 0
      ? { unheardHosts: item.unheardHosts.filter((h): h is string => typeof h === 'string') }
      : {}),
    ...(typeof item.peers === 'object' && item.peers !== null
      ? { peers: map<Record<string, number>>(item, 'peers') }
      : {}),
  };
}

function optionalPace(pace: number | null): { nextReportInMs?: number } {
  return pace === null ? {} : { nextReportInMs: pace };
}
