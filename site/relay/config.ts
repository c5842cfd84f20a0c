import type { HaPolicyInput } from '../../core/policy';
import type { BmcEndpoint } from '../ports';

/** Every host's BMC, by host id: lives only in the relay's local configuration and never leaves the site. */
export type BmcConfig = Readonly<Record<string, BmcEndpoint>>;

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
  readonly bmc: BmcConfig;
  /** Interval of power-status reads while a fence waits for `off`; default 1 s. */
  readonly bmcPollMs?: number;
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
}
