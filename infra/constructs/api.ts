import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpMethod, type HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { OPERATOR_ROUTES, REPORT_ROUTE } from '../../contracts/operator-api';
import { acknowledge } from '../nag';

/** Properties of the {@link HaloApi}. */
export interface HaloApiProps {
  readonly ingestFunction: IFunction;
  readonly operatorFunction: IFunction;
  /** Stage-wide throttling: a runaway relay fleet cannot run up the Lambda bill or starve the operator. */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: RetentionDays;
}

// HTTP API context variables (not the REST ones): who called which route, with what result. `userArn`
// is the IAM caller of operator routes, so a confirmPowerOff is traceable to a person.
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    requestTime: '$context.requestTime',
    ip: '$context.identity.sourceIp',
    userArn: '$context.identity.userArn',
    routeKey: '$context.routeKey',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    integrationLatency: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
  }),
);

/**
 * The HTTP API: `POST /v1/reports` for relays (bearer credential checked by the ingest Lambda) and the
 * operator routes of contracts/operator-api.ts behind IAM (SigV4).
 */
export class HaloApi extends Construct {
  /** The API. */
  readonly api: HttpApi;
  /** Its `$default` stage, with throttling and access logs. */
  readonly stage: HttpStage;

  constructor(scope: Construct, id: string, props: HaloApiProps) {
    super(scope, id);
    // The default stage is created by hand: HttpApi's own default stage takes neither throttling nor
    // access-log settings.
    this.api = new HttpApi(this, 'HttpApi', {
      description: 'Halo: relay reports and the operator API',
      createDefaultStage: false,
    });
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: ACCESS_LOG_FORMAT },
    });

    const [reportRoute] = this.api.addRoutes({
      path: REPORT_ROUTE.path,
      methods: [HttpMethod[REPORT_ROUTE.method]],
      integration: new HttpLambdaIntegration('Reports', props.ingestFunction),
    });
    if (reportRoute === undefined) throw new Error('report route not created');
    acknowledge(
      reportRoute,
      'AwsSolutions-APIG4',
      'Relays are on-prem machines without AWS identities: each report carries the relay bearer credential, which the ingest Lambda checks (hashed, per relay, revocable) in the same conditional write that records liveness.',
    );

    // One integration for all operator routes: one Lambda serves them, routed by contracts/operator-api.ts.
    const operatorIntegration = new HttpLambdaIntegration('Operator', props.operatorFunction);
    const iam = new HttpIamAuthorizer();
    for (const route of OPERATOR_ROUTES) {
      this.api.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: operatorIntegration,
        authorizer: iam,
      });
    }
  }
}
