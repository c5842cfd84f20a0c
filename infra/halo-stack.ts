import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { GSI1 } from '../adapters/dynamodb/table-definition';
import { STACK_OUTPUTS } from '../contracts/operator-api';
import {
  DetectorEnvSchema,
  FailoverStepsEnvSchema,
  FUNCTION_ENTRIES,
  IngestEnvSchema,
  OperatorApiEnvSchema,
} from '../functions/env';
import type { HaloConfig } from './config';
import { HaloAlarms } from './constructs/alarms';
import { HaloApi } from './constructs/api';
import { HaloDashboard } from './constructs/dashboard';
import { DETECTOR_RUN_SECONDS, DETECTOR_TIMEOUT, Detector } from './constructs/detector';
import { FailoverWorkflow } from './constructs/failover-workflow';
import { HaloFunction } from './constructs/halo-function';
import { OperatorAccess } from './constructs/operator-access';
import { HaloTable } from './constructs/tables';
import { METRICS_NAMESPACE, METRICS_SERVICE } from './metrics';

/** Properties of the {@link HaloStack}. */
export interface HaloStackProps extends StackProps {
  readonly config: HaloConfig;
}

/** The whole control plane. It only composes constructs and wires grants between them. */
export class HaloStack extends Stack {
  constructor(scope: Construct, id: string, props: HaloStackProps) {
    super(scope, id, props);
    const { config } = props;
    const table = new HaloTable(this, 'Data');
    const common = {
      TABLE_NAME: table.table.tableName,
      POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      HALO_POLICY: JSON.stringify(config.policy),
    };
    const logRetention = config.logRetention;

    // failover-steps first: the state machine invokes it, and it needs no state machine ARN, so the
    // machine can depend on it while ingest, detector and operator-api depend on the machine.
    const steps = new HaloFunction(this, 'FailoverSteps', {
      entry: FUNCTION_ENTRIES.failoverSteps,
      description: 'Halo: every step of the failover workflow, routed by `step`',
      envSchema: FailoverStepsEnvSchema,
      environment: common,
      logRetention,
      timeout: Duration.seconds(30),
    });
    table.grantItemAccess(steps.role);
    const workflow = new FailoverWorkflow(this, 'Failover', { stepsFunction: steps.function, logRetention });
    const stateMachine = workflow.stateMachine;
    const withMachine = { ...common, STATE_MACHINE_ARN: stateMachine.stateMachineArn };

    const ingest = new HaloFunction(this, 'Ingest', {
      tracing: false,
      entry: FUNCTION_ENTRIES.ingest,
      description: 'Halo: relay reports in, pending commands out; opens incidents',
      envSchema: IngestEnvSchema,
      environment: withMachine,
      logRetention,
    });
    const operatorApi = new HaloFunction(this, 'OperatorApi', {
      entry: FUNCTION_ENTRIES.operatorApi,
      description: 'Halo: operator API (IAM-authorised)',
      envSchema: OperatorApiEnvSchema,
      environment: withMachine,
      logRetention,
      timeout: Duration.seconds(15),
    });
    const detector = new HaloFunction(this, 'Detector', {
      entry: FUNCTION_ENTRIES.detector,
      description: 'Halo: finds silent relays and partitioned sites, once a minute, looping inside',
      envSchema: DetectorEnvSchema,
      environment: {
        ...withMachine,
        DETECTOR_TICK_SECONDS: String(config.detectorTickSeconds),
        DETECTOR_RUN_SECONDS: String(DETECTOR_RUN_SECONDS),
      },
      logRetention,
      timeout: DETECTOR_TIMEOUT,
    });

    // gsi1 lists sites and incidents: the operator API and the detector query it; ingest and the
    // workflow only write items that carry its attributes (data-model.md, access patterns).
    table.grantItemAccess(ingest.role);
    table.grantItemAccess(operatorApi.role, { queryIndexes: [GSI1.indexName] });
    table.grantItemAccess(detector.role, { queryIndexes: [GSI1.indexName] });

    for (const fn of [ingest, detector, operatorApi]) {
      fn.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['states:StartExecution'],
          resources: [stateMachine.stateMachineArn],
        }),
      );
    }
    // Relays' fence/start results (ingest) and the operator's decision (operator API) resolve callbacks.
    for (const fn of [ingest, operatorApi]) {
      fn.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
          resources: [stateMachine.stateMachineArn],
        }),
      );
    }

    const api = new HaloApi(this, 'Api', {
      ingestFunction: ingest.function,
      operatorFunction: operatorApi.function,
      throttle: config.reportThrottle,
      logRetention,
    });
    new Detector(this, 'DetectorSchedule', { detectorFunction: detector.function });

    const functions = {
      Ingest: ingest.function,
      OperatorApi: operatorApi.function,
      FailoverSteps: steps.function,
      Detector: detector.function,
    };
    const alarms = new HaloAlarms(this, 'Alarms', { alertEmail: config.alertEmail, stateMachine, functions });
    const dashboard = new HaloDashboard(this, 'Dashboard', { stateMachine, functions, api: api.api });
    const access = new OperatorAccess(this, 'OperatorAccess', { api: api.api, stage: api.stage });

    // What the CLI and an operator look up (contracts/operator-api.ts STACK_OUTPUTS): stack-level ids, so
    // the output keys stay as written, and no exports, so nothing else can pin this stack.
    const outputs: Record<keyof typeof STACK_OUTPUTS, { value: string; description: string }> = {
      apiUrl: { value: api.stage.url, description: 'Base URL of the Halo API' },
      alarmTopicArn: { value: alarms.topic.topicArn, description: 'SNS topic every Halo alarm notifies' },
      stateMachineArn: {
        value: stateMachine.stateMachineArn,
        description: 'Failover state machine (one execution per host incident)',
      },
      tableName: { value: table.table.tableName, description: 'DynamoDB table of the control plane' },
      dashboardUrl: {
        value: `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${dashboard.dashboard.dashboardName}`,
        description: 'CloudWatch dashboard',
      },
      readOnlyPolicyArn: {
        value: access.readOnly.managedPolicyArn,
        description: 'IAM managed policy: every GET route of the operator API (read-only)',
      },
      operatorPolicyArn: {
        value: access.operator.managedPolicyArn,
        description: 'IAM managed policy: every route of the operator API (operator)',
      },
    };
    for (const [key, output] of Object.entries(outputs)) {
      new CfnOutput(this, STACK_OUTPUTS[key as keyof typeof STACK_OUTPUTS], output);
    }
  }
}
