import type { HaPolicyInput } from '../../core/policy';
import type { FenceDevice } from '../ports';

/** One fence level of a host (Pacemaker's fencing topology): tried in order until one reads `off` back. */
export interface FenceLevel {
  readonly device: FenceDevice;
  /**
   * Longest this level may take to confirm `off` before the next level is tried (within the command's
   * notAfter); default DEFAULT_LEVEL_TIMEOUT_MS.
   */
  readonly timeoutMs?: number;
}

/** Every host's fence levels, by host id: lives only in the relay's local configuration. */
export type FenceConfig = Readonly<Record<string, readonly FenceLevel[]>>;

/** A level that has not read `off` back within this long gives way to the next one. */
export const DEFAULT_LEVEL_TIMEOUT_MS = 15_000;

/** Readiness checks run this often by default (5 minutes, jittered). */
export const DEFAULT_FENCE_CHECK_MS = 5 * 60 * 1000;

/** The timings a relay acts on; the same values the control plane's policy uses for the site. */
export type RelayTiming = Pick<HaPolicyInput, 'hostHeartbeatMs' | 'missedHeartbeats' | 'relayReportMs'>;

/** A relay's settings (its local configuration file). */
export interface RelayConfig {
  readonly siteId: string;
  readonly relayId: string;
  /** The `hrc1.…` credential issued at enrolment. */
  readonly credential: string;
  /** Left-out values take the production defaults (core/policy DEFAULT_TIMING). */
  readonly timing: RelayTiming;
  readonly fence: FenceConfig;
  /**
   * Values blanked from every text that could leave the relay (result details, readiness errors, logs):
   * BMC and PDU passwords, addresses and user names, the LAN key. The credential is always blanked.
   */
  readonly secrets?: readonly string[];
  /** Interval of power-status reads while a fence waits for `off`; default 1 s. */
  readonly bmcPollMs?: number;
  /** Interval of fence readiness checks (jittered by up to a tenth either way); 0 turns them off. */
  readonly fenceCheckMs?: number;
  /** A start request unanswered this long is sent to the agent again; default `hostHeartbeatMs`. */
  readonly startResendMs?: number;
  /**
   * Least time between two reports sent early because a host or VM changed; default 250 ms (API
   * throttling). A finished command's result and a host crossing the silence threshold are not held back
   * by it.
   */
  readonly minReportGapMs?: number;
  /** Granularity of `run()`'s loop; default 100 ms. */
  readonly loopMs?: number;
  /**
   * The site's other relays (ids; their LAN addresses are the transport's). The relay sends each a relay
   * heartbeat every `hostHeartbeatMs` and reports how long ago it heard each: relays that hear each other
   * take turns reporting, and one that dies is known at once (docs/protocol.md "Relays take turns").
   */
  readonly peers?: readonly string[];
}
