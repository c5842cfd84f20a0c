/**
 * Metric names the use cases publish. The alarms (infra/metrics.ts HALO_METRIC) watch a metric by name and
 * exact dimension set, so names match theirs and only `IncidentClosed` carries a dimension (`outcome`).
 */
export const METRIC = {
  ReportsIngested: 'ReportsIngested',
  HostsSilent: 'HostsSilent',
  IncidentOpened: 'IncidentOpened',
  IncidentClosed: 'IncidentClosed',
  SecondsToFence: 'SecondsToFence',
  SecondsToFirstRestart: 'SecondsToFirstRestart',
  SecondsToLastRestart: 'SecondsToLastRestart',
  VmsUnplaced: 'VmsUnplaced',
  FenceFailed: 'FenceFailed',
  AwaitingOperator: 'AwaitingOperator',
  SplitBrainDetected: 'SplitBrainDetected',
  NPlusOneBroken: 'NPlusOneBroken',
  SitePartitioned: 'SitePartitioned',
  HostsNotFenceable: 'HostsNotFenceable',
  HaVmsWithAutostart: 'HaVmsWithAutostart',
  // Detector gauges, one datapoint per tick: their alarms stay in ALARM while they are above zero.
  HostsAwaitingOperator: 'HostsAwaitingOperator',
  VmsRunningTwice: 'VmsRunningTwice',
  ClustersMassSilent: 'ClustersMassSilent',
  SitesOnOneRelay: 'SitesOnOneRelay',
  /**
   * detector: HA VMs on the retry list across all sites (down, and must run again), per tick (a gauge).
   * Not counted: VMs an operator marked down on purpose.
   */
  HaVmsDown: 'HaVmsDown',
  /** VM-level HA: restarts ordered (the first start of each restart; a restart may try several hosts). */
  VmRestarts: 'VmRestarts',
  // Not alarmed on; for the dashboard and the incident review.
  RelaysSilent: 'RelaysSilent',
  FencingSuppressed: 'FencingSuppressed',
  FalseAlarm: 'FalseAlarm',
  CallbackFailed: 'CallbackFailed',
  OperatorTimedOut: 'OperatorTimedOut',
} as const;

/** Seconds between two epoch-ms instants, for the Seconds* metrics. */
export function secondsBetween(from: number, to: number): number {
  return Math.max(0, (to - from) / 1000);
}
