/**
 * Whether a silent host may be fenced. Every "no" is an alert, not a silence: the caller reports the reason
 * and its detail to an operator.
 */

/** More than this share of a cluster's hosts silent at once means fence none (safety rule 3). */
export const DEFAULT_MASS_SILENCE_SHARE = 0.5;

/** What the fencing policy looks at, gathered by the caller at decision time. */
export interface FencingPolicyInput {
  /** Relays of the host's site heard recently; 0 means the site is partitioned. */
  readonly liveRelays: number;
  readonly clusterHosts: number;
  /** Silent hosts of the cluster, this one included. */
  readonly silentHostsInCluster: number;
  /** Share of silent hosts above which nothing is fenced; defaults to `DEFAULT_MASS_SILENCE_SHARE`. */
  readonly massSilenceShare?: number | undefined;
  readonly hostInMaintenance: boolean;
  /** The per-cluster switch (safety rule 7). */
  readonly fencingEnabled: boolean;
  /** The host was heard again since it went silent. */
  readonly hostRecovered: boolean;
}

/** The inputs a decision was taken on, with the share resolved, for the incident's audit trail. */
export type FencingEvidence = {
  readonly liveRelays: number;
  readonly clusterHosts: number;
  readonly silentHostsInCluster: number;
  readonly massSilenceShare: number;
  readonly hostInMaintenance: boolean;
  readonly fencingEnabled: boolean;
  readonly hostRecovered: boolean;
};

/** Why a fence is not sent. */
export type SuppressReason =
  | 'site-partitioned'
  | 'host-recovered'
  | 'maintenance'
  | 'fencing-disabled'
  | 'mass-silence';

/** The policy's answer: fence the host, or suppress the fence and alert. */
export type FencingDecision =
  | {
      readonly action: 'fence';
      readonly reason: 'host-silent';
      readonly detail: string;
      readonly evidence: FencingEvidence;
    }
  | {
      readonly action: 'suppress';
      readonly reason: SuppressReason;
      readonly detail: string;
      readonly evidence: FencingEvidence;
    };

/** Raised when the policy's input is inconsistent; never answered with a guess. */
export class InvalidPolicyInputError extends Error {
  override readonly name = 'InvalidPolicyInputError';
  readonly code = 'invalid-policy-input';

  constructor(
    readonly field: keyof FencingPolicyInput,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Decides whether a silent host may be fenced; the checks run in order and the first that holds suppresses. */
export function decideFencing(input: FencingPolicyInput): FencingDecision {
  const evidence = validate(input);
  const { liveRelays, clusterHosts, silentHostsInCluster: silent, massSilenceShare: share } = evidence;

  // Safety rule 2: with every relay silent the cloud cannot tell a dead host from a cut link.
  if (liveRelays === 0) {
    return suppress(
      'site-partitioned',
      'all relays of the site are silent (0 live): the site is partitioned, not dead; never fence',
      evidence,
    );
  }
  if (input.hostRecovered) {
    return suppress('host-recovered', 'the host was heard again since it went silent', evidence);
  }
  if (input.hostInMaintenance) {
    return suppress('maintenance', 'the host is in maintenance mode', evidence);
  }
  if (!input.fencingEnabled) {
    return suppress('fencing-disabled', 'fencing is disabled for this cluster', evidence);
  }
  // Division, not silent > share * hosts: an exact share stays exact, where the product may round below it.
  const silentShare = silent / clusterHosts;
  if (silentShare > share) {
    return suppress(
      'mass-silence',
      `${silent} of ${clusterHosts} hosts are silent (${percent(silentShare)}), more than the ` +
        `${percent(share)} mass-silence share: fence none`,
      evidence,
    );
  }
  return {
    action: 'fence',
    reason: 'host-silent',
    detail:
      `host silent with ${liveRelays} live relay(s); ${silent} of ${clusterHosts} hosts silent ` +
      `(${percent(silentShare)}, at most ${percent(share)})`,
    evidence,
  };
}

function suppress(reason: SuppressReason, detail: string, evidence: FencingEvidence): FencingDecision {
  return { action: 'suppress', reason, detail, evidence };
}

function validate(input: FencingPolicyInput): FencingEvidence {
  const count = (field: 'liveRelays' | 'clusterHosts' | 'silentHostsInCluster', min: number): number => {
    const value = input[field];
    if (!Number.isInteger(value) || value < min) {
      throw new InvalidPolicyInputError(field, `must be an integer of at least ${min}, got ${value}`);
    }
    return value;
  };
  const liveRelays = count('liveRelays', 0);
  // The host being decided on belongs to the cluster, so an empty cluster is a caller's bug.
  const clusterHosts = count('clusterHosts', 1);
  // A silent host counts itself; undercounting would make mass silence look smaller than it is.
  const silentHostsInCluster = count('silentHostsInCluster', input.hostRecovered ? 0 : 1);
  if (silentHostsInCluster > clusterHosts) {
    throw new InvalidPolicyInputError(
      'silentHostsInCluster',
      `${silentHostsInCluster} silent hosts in a cluster of ${clusterHosts}`,
    );
  }
  const massSilenceShare = input.massSilenceShare ?? DEFAULT_MASS_SILENCE_SHARE;
  if (!(massSilenceShare > 0 && massSilenceShare <= 1)) {
    throw new InvalidPolicyInputError('massSilenceShare', `must be in (0, 1], got ${massSilenceShare}`);
  }
  return {
    liveRelays,
    clusterHosts,
    silentHostsInCluster,
    massSilenceShare,
    hostInMaintenance: input.hostInMaintenance,
    fencingEnabled: input.fencingEnabled,
    hostRecovered: input.hostRecovered,
  };
}

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}
