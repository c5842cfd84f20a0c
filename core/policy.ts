import { InvalidInputError, type PlacementPolicy } from './model';

/**
 * Every timing and threshold the control plane acts on. All durations are milliseconds.
 * Durations left out derive from the heartbeat so that a site tuned only by its heartbeat stays coherent.
 */
export interface HaPolicy extends PlacementPolicy {
  /** Host agent → relay heartbeat interval on the LAN. */
  readonly hostHeartbeatMs: number;
  /** Heartbeats a relay must miss before it calls a host silent. */
  readonly missedHeartbeats: number;
  /** Relay → cloud report interval while nothing happens. */
  readonly relayReportMs: number;
  /** Report interval while the site has an open incident. */
  readonly incidentReportMs: number;
  /** A relay not heard for this long is silent; a site with every relay silent is partitioned. */
  readonly relaySilentAfterMs: number;
  /**
   * Grace after the incident opens before the silence is re-checked (a host may come back); the check then
   * also waits for a report from every live relay since the opening (at most one incident pace more).
   * Default: a sixteenth of a heartbeat, the command pace at which the relays report during a failover
   * (125 ms at the production 2 s): the missed heartbeats are the silence, the re-check wants fresh word.
   */
  readonly confirmSilenceMs: number;
  /** Time one relay gets to power the host off and read it back as off. */
  readonly fenceAttemptTimeoutMs: number;
  /** Fencing gives up (→ operator) after this long in total, across relays. */
  readonly fenceDeadlineMs: number;
  /** Time a VM start may take before the wave moves on without it. */
  readonly startTimeoutMs: number;
  /** Attempts to start one VM, each on the next best host. */
  readonly maxStartAttempts: number;
  /**
   * How long a failover waits for an operator once fencing gave up, before it stops waiting and escalates.
   * Human time, not derived from the heartbeat; a confirmation after it still restarts the VMs.
   */
  readonly operatorTimeoutMs: number;
  /**
   * VM-level HA: restarts of one VM allowed within `vmRestartWindowMs` (vSphere's default: 3 per hour).
   * Past it the VM stays down, on the retry list, until its oldest restart leaves the window.
   */
  readonly vmRestartLimit: number;
  /** The sliding window the restart limit counts in. Human time, not derived from the heartbeat. */
  readonly vmRestartWindowMs: number;
  /**
   * Backoff before the n-th restart within the window (n ≥ 2): base × 2^(n−2) after the previous one, so
   * a VM that crashes again at once is not restarted in a tight loop; the first restart goes at once.
   */
  readonly vmRestartBackoffMs: number;
  /** Slow pace at which the detector retries HA VMs left down for lack of room (besides capacity changes). */
  readonly vmRetryIntervalMs: number;
  /** More than this share of a cluster silent at once: fence none (safety rule 3). */
  readonly massSilenceShare: number;
  /** Reports whose sentAt differs from the cloud's clock by more than this are refused. */
  readonly maxClockSkewMs: number;
}

/** The fields a site or scenario may set; the rest derive from them. */
export type HaPolicyInput = Partial<HaPolicy>;

/** Default operator wait: a day, whatever the heartbeat (an operator answers in human time). */
export const DEFAULT_OPERATOR_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/** Default VM restart window: an hour, whatever the heartbeat (vSphere's "maximum resets time window"). */
export const DEFAULT_VM_RESTART_WINDOW_MS = 60 * 60 * 1000;

/** Production defaults: 2 s LAN heartbeat, 3 misses, a report every 10 s. */
export const DEFAULT_TIMING = { hostHeartbeatMs: 2000, missedHeartbeats: 3, relayReportMs: 10_000 } as const;

/** Resolves a full policy from partial input: every duration not given is a multiple of the heartbeat. */
export function resolvePolicy(input: HaPolicyInput = {}): HaPolicy {
  const hostHeartbeatMs = input.hostHeartbeatMs ?? DEFAULT_TIMING.hostHeartbeatMs;
  const missedHeartbeats = input.missedHeartbeats ?? DEFAULT_TIMING.missedHeartbeats;
  const relayReportMs = input.relayReportMs ?? DEFAULT_TIMING.relayReportMs;
  const policy: HaPolicy = {
    hostHeartbeatMs,
    missedHeartbeats,
    relayReportMs,
    incidentReportMs: input.incidentReportMs ?? Math.min(relayReportMs, Math.max(hostHeartbeatMs, 250)),
    relaySilentAfterMs: input.relaySilentAfterMs ?? 3 * relayReportMs,
    confirmSilenceMs: input.confirmSilenceMs ?? Math.max(1, Math.round(hostHeartbeatMs / 16)),
    fenceAttemptTimeoutMs: input.fenceAttemptTimeoutMs ?? Math.max(3 * hostHeartbeatMs, 2 * relayReportMs),
    fenceDeadlineMs: input.fenceDeadlineMs ?? Math.max(8 * hostHeartbeatMs, 5 * relayReportMs),
    startTimeoutMs: input.startTimeoutMs ?? Math.max(3 * hostHeartbeatMs, 2 * relayReportMs),
    maxStartAttempts: input.maxStartAttempts ?? 3,
    operatorTimeoutMs: input.operatorTimeoutMs ?? DEFAULT_OPERATOR_TIMEOUT_MS,
    vmRestartLimit: input.vmRestartLimit ?? 3,
    vmRestartWindowMs: input.vmRestartWindowMs ?? DEFAULT_VM_RESTART_WINDOW_MS,
    // One report interval at least: a VM that crashes again right after its restart is seen in the next
    // report, and its next restart should not come before that (10 s with the production timing).
    vmRestartBackoffMs: input.vmRestartBackoffMs ?? Math.max(5 * hostHeartbeatMs, relayReportMs),
    // Each retry reads the site's hosts and VMs: a minute with the production timing keeps that cheap.
    vmRetryIntervalMs: input.vmRetryIntervalMs ?? Math.max(30 * hostHeartbeatMs, 6 * relayReportMs),
    massSilenceShare: input.massSilenceShare ?? 0.5,
    maxClockSkewMs: input.maxClockSkewMs ?? 300_000,
    cpuOvercommit: input.cpuOvercommit ?? 1,
    reserveMiB: input.reserveMiB ?? 0,
    reserveCpus: input.reserveCpus ?? 0,
  };
  validatePolicy(policy);
  return policy;
}

/** Silence threshold for a host, as a relay measures it. */
export function hostSilentAfterMs(policy: HaPolicy): number {
  return policy.hostHeartbeatMs * policy.missedHeartbeats;
}

function validatePolicy(p: HaPolicy): void {
  const positive: (keyof HaPolicy)[] = [
    'hostHeartbeatMs',
    'missedHeartbeats',
    'relayReportMs',
    'incidentReportMs',
    'relaySilentAfterMs',
    'confirmSilenceMs',
    'fenceAttemptTimeoutMs',
    'fenceDeadlineMs',
    'startTimeoutMs',
    'maxStartAttempts',
    'operatorTimeoutMs',
    'vmRestartLimit',
    'vmRestartWindowMs',
    'vmRestartBackoffMs',
    'vmRetryIntervalMs',
    'maxClockSkewMs',
    'cpuOvercommit',
  ];
  for (const key of positive) {
    const value = p[key];
    if (!(typeof value === 'number' && Number.isFinite(value) && value > 0)) {
      throw new InvalidInputError(`policy.${key} must be a positive number, got ${String(value)}`);
    }
  }
  if (!(p.massSilenceShare > 0 && p.massSilenceShare <= 1)) {
    throw new InvalidInputError(`policy.massSilenceShare must be in (0, 1], got ${p.massSilenceShare}`);
  }
  if (p.fenceDeadlineMs < p.fenceAttemptTimeoutMs) {
    throw new InvalidInputError(
      'policy.fenceDeadlineMs must be at least one fence attempt (fenceAttemptTimeoutMs)',
    );
  }
  if (p.reserveMiB < 0 || p.reserveCpus < 0) throw new InvalidInputError('policy reserves must be >= 0');
  if (!Number.isInteger(p.vmRestartLimit)) {
    throw new InvalidInputError(`policy.vmRestartLimit must be a whole number, got ${p.vmRestartLimit}`);
  }
}
