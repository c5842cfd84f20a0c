import { Duration } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { METRIC } from '../app/shared/metrics';
import { IncidentOutcomeSchema } from '../contracts/workflow';

/**
 * The custom metrics the alarms and the dashboard read. Handlers publish them with Powertools Metrics
 * (namespace from POWERTOOLS_METRICS_NAMESPACE, default dimension `service` from POWERTOOLS_SERVICE_NAME).
 *
 * A CloudWatch metric is identified by its name AND its exact dimension set, and alarms cannot search:
 * every metric below must be published with the dimension set given here and no other, or the alarm
 * watches a metric that never receives data (and, treating missing data as not breaching, stays OK).
 */

/** Namespace of every Halo metric (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'Halo';

/**
 * POWERTOOLS_SERVICE_NAME of every function. One value for all of them so that an alarm does not need
 * to know which function emits a metric; logs still name the function (Powertools' `function_name`).
 */
export const METRICS_SERVICE = 'halo';

/** The metrics infra reads (names from app/shared/metrics.ts); the comment says who publishes it and the unit. */
export const HALO_METRIC = {
  /** ingest: accepted site reports (Count). */
  ReportsIngested: METRIC.ReportsIngested,
  /** detector: hosts currently silent across all sites, per tick (Count, a gauge: read its Maximum). */
  HostsSilent: METRIC.HostsSilent,
  /** detector: relays currently silent, per tick (Count, a gauge: read its Maximum). */
  RelaysSilent: METRIC.RelaysSilent,
  /** ingest and operator API: a SendTaskSuccess/Failure that Step Functions refused (Count). */
  CallbackFailed: METRIC.CallbackFailed,
  /** ingest: incidents opened (Count). */
  IncidentOpened: METRIC.IncidentOpened,
  /** failover-steps: incidents closed, extra dimension `outcome` = IncidentOutcome (Count). */
  IncidentClosed: METRIC.IncidentClosed,
  /** failover-steps: incident opened → power-off confirmed (Seconds). */
  SecondsToFence: METRIC.SecondsToFence,
  /** failover-steps: incident opened → first VM reported running elsewhere (Seconds). */
  SecondsToFirstRestart: METRIC.SecondsToFirstRestart,
  /** failover-steps: incident opened → last VM reported running elsewhere (Seconds). */
  SecondsToLastRestart: METRIC.SecondsToLastRestart,
  /** failover-steps: HA VMs the plan or the waves could not place (Count). */
  VmsUnplaced: METRIC.VmsUnplaced,
  /** failover-steps: a fence gave up without a confirmed power-off (Count). Alarm. */
  FenceFailed: METRIC.FenceFailed,
  /** failover-steps: an incident waits for an operator's confirmation (Count). Alarm. */
  AwaitingOperator: METRIC.AwaitingOperator,
  /** ingest: a VM seen running on two hosts (Count). Alarm, highest severity (safety rule 6). */
  SplitBrainDetected: METRIC.SplitBrainDetected,
  /** detector: 1 while some cluster cannot survive the loss of one host, else 0 (Count). Alarm. */
  NPlusOneBroken: METRIC.NPlusOneBroken,
  /** detector: a site whose relays are all silent (Count). Alarm (safety rule 2). */
  SitePartitioned: METRIC.SitePartitioned,
  /**
   * detector: hosts no relay can fence (every level of every relay failed its readiness check), across all
   * sites, per tick (Count, a gauge: read its Maximum). Alarm.
   */
  HostsNotFenceable: METRIC.HostsNotFenceable,
  /**
   * detector: running HA VMs with libvirt autostart on, across all sites, per capacity pass (every 5
   * minutes; Count, a gauge: read its Maximum). Alarm.
   */
  HaVmsWithAutostart: METRIC.HaVmsWithAutostart,
  /** detector: hosts whose failover waits for an operator, across all sites, per tick (a gauge). Alarm. */
  HostsAwaitingOperator: METRIC.HostsAwaitingOperator,
  /** detector: VMs reported running on two hosts and still so, per tick (a gauge). Alarm, highest severity. */
  VmsRunningTwice: METRIC.VmsRunningTwice,
  /** detector: HA VMs on the sites' retry lists (down, to run again), per tick (a gauge). Alarm. */
  HaVmsDown: METRIC.HaVmsDown,
  /** detector: clusters with more than their mass-silence share of hosts silent, per tick (a gauge). Alarm. */
  ClustersMassSilent: METRIC.ClustersMassSilent,
  /** detector: sites with several relays of which only one is live, per tick (a gauge). Alarm. */
  SitesOnOneRelay: METRIC.SitesOnOneRelay,
  /** failover-steps: a failover stopped waiting for an operator; the incident stays open (Count). */
  OperatorTimedOut: METRIC.OperatorTimedOut,
} as const;

/** A Halo metric name. */
export type HaloMetricName = (typeof HALO_METRIC)[keyof typeof HALO_METRIC];

/** Outcomes a closed incident is counted under (`in-progress` is never a closing outcome). */
export const CLOSING_OUTCOMES = IncidentOutcomeSchema.options.filter((o) => o !== 'in-progress');

/** A Halo metric with the dimension set the handlers publish it with. */
export function haloMetric(
  name: HaloMetricName,
  options: { statistic: string; period?: Duration; label?: string; dimensions?: Record<string, string> },
): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { service: METRICS_SERVICE, ...options.dimensions },
    statistic: options.statistic,
    period: options.period ?? Duration.minutes(1),
    ...(options.label === undefined ? {} : { label: options.label }),
  });
}
