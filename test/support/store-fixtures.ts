import type { CommandRecord, IncidentRecord, NewHost, Ports } from '../../app/ports';
import type { CommandResult } from '../../contracts/relay-protocol';
import type { IncidentInput } from '../../contracts/workflow';

/** The store ports, as both adapters' factories return them. */
export type StoresUnderTest = Pick<Ports, 'sites' | 'relays' | 'hosts' | 'vms' | 'incidents' | 'commands'>;

/** A writable view of a record, to prove that mutating a returned copy changes nothing stored. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export const SITE = 's1';
export const OTHER_SITE = 's2';
export const T0 = 1_750_000_000_000;

/** sha256-like hex credential hashes (the stores only compare them). */
export const HASH_A = 'a'.repeat(64);
export const HASH_B = 'b'.repeat(64);

/** A host as first seen: up, 16 CPUs, 64 GiB, nothing running. */
export function newHost(hostId: string, extra: Partial<NewHost> = {}): NewHost {
  return {
    siteId: SITE,
    hostId,
    cluster: 'c1',
    cpus: 16,
    memoryMiB: 65_536,
    bootId: `boot-${hostId}`,
    lifecycle: { status: 'up', bootId: `boot-${hostId}` },
    usedCpus: 0,
    usedMiB: 0,
    digest: `digest-${hostId}`,
    observedAt: T0,
    ...extra,
  };
}

/** An open incident of host h1 at `openedAt`. */
export function newIncident(
  incidentId: string,
  openedAt: number,
  extra: Partial<Omit<IncidentRecord, 'version'>> = {},
): Omit<IncidentRecord, 'version'> {
  const siteId = extra.siteId ?? SITE;
  const input: IncidentInput = {
    incidentId,
    siteId,
    hostId: 'h1',
    cluster: 'c1',
    bootId: 'boot-h1',
    openedAt,
    timing: {
      confirmSilenceSeconds: 2,
      fenceAttemptTimeoutSeconds: 20,
      startTimeoutSeconds: 20,
      operatorTimeoutSeconds: 3600,
    },
    evidence: { relays: [{ relayId: 'r1', lastHeardMsAgo: 6500 }], silentAfterMs: 6000 },
  };
  return {
    incidentId,
    siteId,
    hostId: 'h1',
    cluster: 'c1',
    bootId: 'boot-h1',
    openedAt,
    outcome: 'in-progress',
    input,
    executionArn: null,
    fencedAt: null,
    closedAt: null,
    operatorTaskToken: null,
    ...extra,
  };
}

/** A fence command of `incidentId` for relay `relayId`. */
export function newCommand(
  commandId: string,
  opts: { relayId?: string; incidentId?: string; createdAt?: number; siteId?: string } = {},
): Omit<CommandRecord, 'status' | 'deliveredAt' | 'result'> {
  const createdAt = opts.createdAt ?? T0;
  const incidentId = opts.incidentId ?? 'i1';
  return {
    siteId: opts.siteId ?? SITE,
    relayId: opts.relayId ?? 'r1',
    command: {
      kind: 'fence',
      commandId,
      incidentId,
      hostId: 'h1',
      issuedAt: createdAt,
      notAfter: createdAt + 60_000,
    },
    taskToken: `token-${commandId}`,
    createdAt,
  };
}

/** A relay's result for a command. */
export function resultOf(commandId: string, extra: Partial<CommandResult> = {}): CommandResult {
  return {
    commandId,
    incidentId: 'i1',
    outcome: 'succeeded',
    powerState: 'off',
    finishedAt: T0 + 5_000,
    ...extra,
  };
}

/** Outcome of each promise, for races where the winner is not known in advance. */
export async function settle<T>(
  promises: readonly Promise<T>[],
): Promise<{ values: T[]; errors: unknown[] }> {
  const results = await Promise.allSettled(promises);
  const values: T[] = [];
  const errors: unknown[] = [];
  for (const r of results) {
    if (r.status === 'fulfilled') values.push(r.value);
    else errors.push(r.reason);
  }
  return { values, errors };
}
