import { Duration, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { HALO_METRIC, type HaloMetricName, haloMetric } from '../metrics';

/** Properties of the {@link HaloAlarms}. */
export interface HaloAlarmsProps {
  /** Subscribed by email when given (the recipient must confirm the subscription). */
  readonly alertEmail: string | undefined;
  readonly stateMachine: IStateMachine;
  /** Functions whose Errors metric gets an alarm, by a readable name. */
  readonly functions: Readonly<Record<string, IFunction>>;
}

/** Where the detector's gauges name what they count: every tick's report, in the detector's log group. */
const NAMED_IN_TICK_REPORT =
  ' The detector names them every tick: its log group, "detector tick" lines, report.alerts (per site).';

/**
 * A gauge the detector publishes every tick (10 s), so the alarm stays in ALARM while it is above zero and
 * returns to OK when it is zero: Maximum over a short period. No datapoint means the detector did not run,
 * not that things were fixed: the last state is kept (the detector's own Errors alarm reports the outage).
 */
function lastingGauge(metric: HaloMetricName, description: string): (typeof METRIC_ALARMS)[number] {
  return {
    metric,
    statistic: 'Maximum',
    period: Duration.minutes(1),
    description: description + NAMED_IN_TICK_REPORT,
    treatMissingData: TreatMissingData.IGNORE,
  };
}

/** The Halo alarms on custom metrics, with what each one asks of the operator. */
const METRIC_ALARMS: readonly {
  metric: HaloMetricName;
  statistic: 'Sum' | 'Maximum';
  period: Duration;
  description: string;
  /** What no datapoint means; by default nothing happened (the metric is published only when it does). */
  treatMissingData?: TreatMissingData;
}[] = [
  {
    metric: HALO_METRIC.FenceFailed,
    statistic: 'Sum',
    period: Duration.minutes(1),
    description: 'A host could not be confirmed powered off. Its VMs stay down until an operator confirms.',
  },
  {
    metric: HALO_METRIC.AwaitingOperator,
    statistic: 'Sum',
    period: Duration.minutes(1),
    description: 'An incident waits for an operator: check the host, then POST confirm-power-off.',
  },
  {
    metric: HALO_METRIC.SplitBrainDetected,
    statistic: 'Sum',
    period: Duration.minutes(1),
    description: 'SEVERITY 1: a VM is running on two hosts at once (safety rule 6). Act now.',
  },
  {
    metric: HALO_METRIC.NPlusOneBroken,
    statistic: 'Maximum',
    // A gauge published every detector tick; five minutes rides over one missed publication.
    period: Duration.minutes(5),
    description: 'A cluster can no longer restart every HA VM after the loss of any one host.',
  },
  {
    metric: HALO_METRIC.SitePartitioned,
    statistic: 'Sum',
    period: Duration.minutes(1),
    description: 'Every relay of a site is silent: partitioned, not dead. Nothing is fenced (safety rule 2).',
  },
  {
    metric: HALO_METRIC.HostsNotFenceable,
    statistic: 'Maximum',
    // A gauge published every detector tick, so it stays in ALARM for as long as a host cannot be fenced.
    period: Duration.minutes(5),
    description:
      'A host cannot be fenced: every fence level of every relay failed its power-status read, so its ' +
      'failover would wait for an operator. GET /v1/sites/{siteId}/hosts names it (fencing.reason); run ' +
      '`halo-relay check-bmc` on the relay to see each level answer, and fix the BMC or PDU access.',
    // No datapoint means the detector did not run, not that the hosts were fixed: keep the last state
    // (the detector's own Errors alarm reports the outage) rather than send a false OK.
    treatMissingData: TreatMissingData.IGNORE,
  },
  {
    metric: HALO_METRIC.HaVmsWithAutostart,
    statistic: 'Maximum',
    // Published only by the detector's capacity pass, once every five minutes: ten ride over the jitter
    // of when that pass lands in a period.
    period: Duration.minutes(10),
    description:
      'An HA VM has libvirt autostart on: a fenced host that boots again would start a second copy of a ' +
      'VM its failover restarted elsewhere. GET /v1/sites/{siteId}/vms names it (misconfigurations, ' +
      'autostartOn); run `virsh autostart --disable <vm>` on each of those hosts.',
    // No datapoint between capacity passes, or when the detector did not run: keep the last state.
    treatMissingData: TreatMissingData.IGNORE,
  },
  lastingGauge(
    HALO_METRIC.HostsAwaitingOperator,
    'A host could not be fenced and its HA VMs stay down until an operator confirms it is powered off: ' +
      'check the host, then POST /v1/incidents/{incidentId}/confirm-power-off (it works at any time, also ' +
      'after the failover stopped waiting). The incident timeline says why fencing failed.',
  ),
  lastingGauge(
    HALO_METRIC.VmsRunningTwice,
    'SEVERITY 1: a VM runs on two hosts at once (safety rule 6): two copies may be writing its disks. ' +
      'Stop one copy now; the incident timeline (split-brain) names the VM and both hosts.',
  ),
  lastingGauge(
    HALO_METRIC.HaVmsDown,
    'HA VMs are down and must run again: a failover could not restart them (no room, every start ' +
      'failed) or they stopped on their own, and they are retried. GET /v1/sites/{siteId}/vms shows each ' +
      "one's recovery; the closed incident's timeline names those its failover left down.",
  ),
  lastingGauge(
    HALO_METRIC.ClustersMassSilent,
    'More than the mass-silence share of a cluster is silent (safety rule 3): nothing there is fenced or ' +
      'restarted. Check the cluster network or power; confirm hosts off by hand if they are.',
  ),
  lastingGauge(
    HALO_METRIC.SitesOnOneRelay,
    'A site is down to one live relay: one more failure partitions it (nothing is fenced then) and a ' +
      'fence has no second relay to go through. Bring the silent relay back.',
  ),
];

/**
 * The alerts topic (KMS-encrypted, TLS only) and every alarm, each notifying on ALARM and on OK.
 */
export class HaloAlarms extends Construct {
  /** The topic every alarm notifies. */
  readonly topic: Topic;
  /** Every alarm, by construct id. */
  readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: HaloAlarmsProps) {
    super(scope, id);
    // A customer-managed key, not alias/aws/sns: CloudWatch alarms cannot publish to a topic encrypted
    // with the AWS-managed SNS key (its key policy cannot be changed to let cloudwatch.amazonaws.com
    // use it), and the alarm notifications would be dropped without an error anywhere.
    const key = new Key(this, 'TopicKey', {
      description: 'Encrypts the Halo alerts topic',
      enableKeyRotation: true,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new Topic(this, 'Topic', {
      displayName: 'Halo alerts',
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alertEmail !== undefined) this.topic.addSubscription(new EmailSubscription(props.alertEmail));

    const action = new SnsAction(this.topic);
    const alarms: Alarm[] = [];
    const add = (
      alarmId: string,
      metric: IMetric,
      description: string,
      // No data means nothing happened: most metrics are only published when something does.
      treatMissingData = TreatMissingData.NOT_BREACHING,
    ): void => {
      const alarm = new Alarm(this, alarmId, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData,
        alarmDescription: description,
      });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      alarms.push(alarm);
    };

    for (const a of METRIC_ALARMS) {
      add(
        a.metric,
        haloMetric(a.metric, { statistic: a.statistic, period: a.period }),
        a.description,
        a.treatMissingData,
      );
    }
    const perMinute = { period: Duration.minutes(1), statistic: 'Sum' };
    add(
      'ExecutionsFailed',
      props.stateMachine.metricFailed(perMinute),
      'A failover execution failed: read its execution history; VMs of that host may still be down.',
    );
    add(
      'ExecutionsTimedOut',
      props.stateMachine.metricTimedOut(perMinute),
      'A failover execution hit the workflow timeout: read its execution history.',
    );
    for (const [name, fn] of Object.entries(props.functions)) {
      add(
        `${name}Errors`,
        fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        `The ${name} Lambda failed an invocation: see its log group.`,
      );
    }
    this.alarms = alarms;
  }
}
