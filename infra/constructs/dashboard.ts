import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Dashboard, GraphWidget, type IMetric, TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { CLOSING_OUTCOMES, HALO_METRIC, haloMetric } from '../metrics';

/** Properties of the {@link HaloDashboard}. */
export interface HaloDashboardProps {
  readonly stateMachine: IStateMachine;
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly api: HttpApi;
}

const FIVE_MINUTES = Duration.minutes(5);
const WIDTH = 8;
const HEIGHT = 6;

function graph(title: string, left: IMetric[], right: IMetric[] = []): GraphWidget {
  return new GraphWidget({ title, left, right, width: WIDTH, height: HEIGHT });
}

/** One dashboard: liveness, incidents and their timings, then the machinery (Lambdas, executions, API). */
export class HaloDashboard extends Construct {
  /** The dashboard. */
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: HaloDashboardProps) {
    super(scope, id);
    const sum = (name: Parameters<typeof haloMetric>[0], label?: string) =>
      haloMetric(name, { statistic: 'Sum', period: FIVE_MINUTES, ...(label === undefined ? {} : { label }) });
    const timing = (name: Parameters<typeof haloMetric>[0], statistic: string) =>
      haloMetric(name, { statistic, period: FIVE_MINUTES, label: `${name} ${statistic}` });
    const gauge = (name: Parameters<typeof haloMetric>[0], label: string) =>
      haloMetric(name, { statistic: 'Maximum', period: Duration.minutes(1), label });
    const functions = Object.entries(props.functions);

    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new TextWidget({
            markdown:
              "# Halo\nLiveness and failover of the on-prem hosts. Alarms notify the alerts topic; an incident's evidence is its Step Functions execution.",
            width: 24,
            height: 2,
          }),
        ],
        [
          graph('Reports ingested', [sum(HALO_METRIC.ReportsIngested)]),
          graph('Hosts and relays silent, hosts not fenceable', [
            haloMetric(HALO_METRIC.HostsSilent, {
              statistic: 'Maximum',
              period: Duration.minutes(1),
              label: 'hosts',
            }),
            haloMetric(HALO_METRIC.RelaysSilent, {
              statistic: 'Maximum',
              period: Duration.minutes(1),
              label: 'relays',
            }),
            haloMetric(HALO_METRIC.HostsNotFenceable, {
              statistic: 'Maximum',
              period: Duration.minutes(1),
              label: 'hosts not fenceable',
            }),
          ]),
          graph('Incidents opened / closed by outcome', [
            sum(HALO_METRIC.IncidentOpened, 'opened'),
            ...CLOSING_OUTCOMES.map((outcome) =>
              haloMetric(HALO_METRIC.IncidentClosed, {
                statistic: 'Sum',
                period: FIVE_MINUTES,
                label: outcome,
                dimensions: { outcome },
              }),
            ),
          ]),
        ],
        [
          graph('Seconds to fence', [
            timing(HALO_METRIC.SecondsToFence, 'p50'),
            timing(HALO_METRIC.SecondsToFence, 'Maximum'),
          ]),
          graph('Seconds to first / last restart', [
            timing(HALO_METRIC.SecondsToFirstRestart, 'p50'),
            timing(HALO_METRIC.SecondsToLastRestart, 'p50'),
            timing(HALO_METRIC.SecondsToLastRestart, 'Maximum'),
          ]),
          graph('VMs unplaced and split-brain', [
            sum(HALO_METRIC.VmsUnplaced, 'VMs unplaced'),
            sum(HALO_METRIC.SplitBrainDetected, 'split-brain'),
            sum(HALO_METRIC.FenceFailed, 'fence failed'),
            sum(HALO_METRIC.CallbackFailed, 'callback refused'),
          ]),
        ],
        [
          graph(
            'Lambda duration p99 (ms)',
            functions.map(([name, fn]) =>
              fn.metricDuration({ statistic: 'p99', period: FIVE_MINUTES, label: name }),
            ),
          ),
          graph(
            'Lambda errors / throttles',
            functions.map(([name, fn]) => fn.metricErrors({ period: FIVE_MINUTES, label: `${name} errors` })),
            functions.map(([name, fn]) =>
              fn.metricThrottles({ period: FIVE_MINUTES, label: `${name} throttles` }),
            ),
          ),
          graph('Failover executions', [
            props.stateMachine.metricStarted({ period: FIVE_MINUTES, label: 'started' }),
            props.stateMachine.metricSucceeded({ period: FIVE_MINUTES, label: 'succeeded' }),
            props.stateMachine.metricFailed({ period: FIVE_MINUTES, label: 'failed' }),
            props.stateMachine.metricTimedOut({ period: FIVE_MINUTES, label: 'timed out' }),
          ]),
        ],
        [
          graph(
            'API requests and errors',
            [props.api.metricCount({ period: FIVE_MINUTES, label: 'requests' })],
            [
              props.api.metricClientError({ period: FIVE_MINUTES, label: '4xx' }),
              props.api.metricServerError({ period: FIVE_MINUTES, label: '5xx' }),
            ],
          ),
          graph('API latency p99 (ms)', [
            props.api.metricLatency({ statistic: 'p99', period: FIVE_MINUTES, label: 'latency' }),
            props.api.metricIntegrationLatency({
              statistic: 'p99',
              period: FIVE_MINUTES,
              label: 'integration',
            }),
          ]),
          graph('Awaiting an operator / sites partitioned', [
            sum(HALO_METRIC.AwaitingOperator, 'awaiting operator'),
            sum(HALO_METRIC.SitePartitioned, 'site partitioned'),
          ]),
        ],
        [
          // The detector's gauges, one value per tick: each alarm is in ALARM while its gauge is above zero.
          graph('Needs an operator now', [
            gauge(HALO_METRIC.HostsAwaitingOperator, 'hosts awaiting an operator'),
            gauge(HALO_METRIC.VmsRunningTwice, 'VMs running twice'),
          ]),
          graph('HA VMs down', [gauge(HALO_METRIC.HaVmsDown, 'HA VMs down')]),
          graph('Clusters mass-silent, sites on one relay', [
            gauge(HALO_METRIC.ClustersMassSilent, 'clusters mass-silent'),
            gauge(HALO_METRIC.SitesOnOneRelay, 'sites on one relay'),
          ]),
        ],
      ],
    });
  }
}
