import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { GSI1, PK, SK, TTL_ATTRIBUTE } from '../../adapters/dynamodb/table-definition';
import { OPERATOR_ROUTES, REPORT_ROUTE, STACK_OUTPUTS } from '../../contracts/operator-api';
import { STATE } from '../../contracts/workflow';
import { POWERTOOLS_VERSION } from '../../infra/constructs/halo-function';
import { extractDefinition } from '../../infra/definition';
import { HALO_METRIC, METRICS_NAMESPACE } from '../../infra/metrics';
import { asArray, asObject, buildHaloApp, type JsonObject } from './helpers';

let template: Template;
let resources: Record<string, JsonObject>;

beforeAll(() => {
  const { stack } = buildHaloApp();
  template = Template.fromStack(stack);
  resources = Object.fromEntries(
    Object.entries(asObject(template.toJSON().Resources)).map(([id, r]) => [id, asObject(r)]),
  );
});

function ofType(type: string): [string, JsonObject][] {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

function properties(resource: JsonObject): JsonObject {
  return asObject(resource.Properties, 'Properties');
}

/** Logical id of the one Lambda function whose Description starts with `Halo: <prefix>`. */
function functionId(prefix: string): string {
  const matches = ofType('AWS::Lambda::Function').filter(([, r]) =>
    String(properties(r).Description).startsWith(`Halo: ${prefix}`),
  );
  const [match, ...rest] = matches;
  if (match === undefined || rest.length > 0) throw new Error(`expected one function "${prefix}"`);
  return match[0];
}

/** Policy statements attached to the role of a function. */
function statementsOfFunction(fnId: string): JsonObject[] {
  const role = asObject(properties(asObject(resources[fnId])).Role);
  const [roleId] = asArray(role['Fn::GetAtt']);
  return ofType('AWS::IAM::Policy')
    .filter(([, p]) => asArray(properties(p).Roles).some((r) => asObject(r).Ref === roleId))
    .flatMap(([, p]) => asArray(asObject(properties(p).PolicyDocument).Statement).map((s) => asObject(s)));
}

function actionsOf(statement: JsonObject): string[] {
  const action = statement.Action;
  return Array.isArray(action) ? action.map(String) : [String(action)];
}

function resourcesOf(statement: JsonObject): unknown[] {
  const resource = statement.Resource;
  return Array.isArray(resource) ? resource : [resource];
}

describe('table', () => {
  it('is built from table-definition: keys, gsi1, TTL, on demand, PITR, SSE, retained', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: PK, KeyType: 'HASH' },
          { AttributeName: SK, KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
        GlobalSecondaryIndexes: [
          {
            IndexName: GSI1.indexName,
            KeySchema: [
              { AttributeName: GSI1.pk, KeyType: 'HASH' },
              { AttributeName: GSI1.sk, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      },
    });
  });
});

describe('functions', () => {
  it('are four, each arm64 on nodejs22.x with source maps, JSON logs and 256 MB; X-Ray on all but ingest', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions).toHaveLength(4);
    const traced = functions.filter(([, fn]) =>
      JSON.stringify(properties(fn).TracingConfig ?? null).includes('"Active"'),
    );
    expect(traced.map(([id]) => id).sort()).toEqual(
      functions
        .map(([id]) => id)
        .filter((id) => !id.startsWith('Ingest'))
        .sort(),
    );
    for (const [, fn] of functions) {
      expect(properties(fn)).toMatchObject({
        Architectures: ['arm64'],
        Runtime: 'nodejs22.x',
        MemorySize: 256,
        LoggingConfig: { LogFormat: 'JSON', SystemLogLevel: 'WARN' },
        Environment: {
          Variables: { NODE_OPTIONS: '--enable-source-maps', POWERTOOLS_METRICS_NAMESPACE: 'Halo' },
        },
      });
    }
  });

  it('each take Powertools from the layer of the version the tests ran with (SSM-resolved at deploy)', () => {
    const params = Object.entries(asObject(template.toJSON().Parameters ?? {})).filter(
      ([, p]) =>
        asObject(p).Default === `/aws/service/powertools/typescript/generic/all/${POWERTOOLS_VERSION}`,
    );
    expect(params).toHaveLength(1);
    const [paramId] = params[0] ?? [];
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      expect(properties(fn).Layers).toEqual([{ Ref: paramId }]);
    }
  });

  it('each log to their own log group with the retention from context', () => {
    for (const [, fn] of ofType('AWS::Lambda::Function')) {
      const logGroupId = asObject(asObject(properties(fn).LoggingConfig).LogGroup).Ref;
      const group = asObject(resources[String(logGroupId)]);
      expect(group.Type).toBe('AWS::Logs::LogGroup');
      expect(properties(group).RetentionInDays).toBe(30);
    }
    // Every log group has a retention, the API access logs and the workflow's included.
    for (const [, group] of ofType('AWS::Logs::LogGroup')) expect(properties(group).RetentionInDays).toBe(30);
  });

  it('get the state machine ARN where their env schema asks for it, and the detector its tick', () => {
    const machine = ofType('AWS::StepFunctions::StateMachine')[0]?.[0];
    for (const prefix of ['relay reports', 'operator API', 'finds silent']) {
      const vars = asObject(
        asObject(properties(asObject(resources[functionId(prefix)])).Environment).Variables,
      );
      expect(vars.STATE_MACHINE_ARN).toEqual({ Ref: machine });
    }
    const steps = asObject(
      asObject(properties(asObject(resources[functionId('every step')])).Environment).Variables,
    );
    expect(steps.STATE_MACHINE_ARN).toBeUndefined();
    const detector = asObject(
      asObject(properties(asObject(resources[functionId('finds silent')])).Environment).Variables,
    );
    expect(detector).toMatchObject({ DETECTOR_TICK_SECONDS: '10', DETECTOR_RUN_SECONDS: '55' });
    expect(properties(asObject(resources[functionId('finds silent')])).Timeout).toBe(70);
  });

  it('use their own roles, never the AWS-managed basic execution role', () => {
    for (const [, role] of ofType('AWS::IAM::Role'))
      expect(properties(role).ManagedPolicyArns).toBeUndefined();
  });
});

describe('API', () => {
  it('routes POST /v1/reports to ingest without an authorizer', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: `${REPORT_ROUTE.method} ${REPORT_ROUTE.path}`,
      AuthorizationType: 'NONE',
    });
  });

  it('puts every operator route behind IAM', () => {
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => properties(r));
    expect(routes).toHaveLength(OPERATOR_ROUTES.length + 1);
    for (const route of OPERATOR_ROUTES) {
      const found = routes.filter((r) => r.RouteKey === `${route.method} ${route.path}`);
      expect(found, route.name).toHaveLength(1);
      expect(found[0]?.AuthorizationType, route.name).toBe('AWS_IAM');
    }
  });

  it('throttles the stage from context and writes access logs', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    });
  });
});

describe('detector schedule', () => {
  it('invokes the detector every minute, without retries, through its own role', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [functionId('finds silent'), 'Arn'] },
        RoleArn: Match.anyValue(),
        RetryPolicy: { MaximumRetryAttempts: 0 },
      },
    });
  });
});

describe('alarms', () => {
  it('watch every Halo alarm metric with its service dimension, missing data not breaching', () => {
    for (const metric of [
      HALO_METRIC.FenceFailed,
      HALO_METRIC.AwaitingOperator,
      HALO_METRIC.SplitBrainDetected,
      HALO_METRIC.NPlusOneBroken,
      HALO_METRIC.SitePartitioned,
    ]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRICS_NAMESPACE,
        MetricName: metric,
        Dimensions: [{ Name: 'service', Value: 'halo' }],
        Statistic: metric === HALO_METRIC.NPlusOneBroken ? 'Maximum' : 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: Match.anyValue() }],
      });
    }
  });

  it('alarm while any host cannot be fenced, keeping the state when the detector publishes nothing', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: HALO_METRIC.HostsNotFenceable,
      Dimensions: [{ Name: 'service', Value: 'halo' }],
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'ignore',
      AlarmActions: [{ Ref: Match.anyValue() }],
      OKActions: [{ Ref: Match.anyValue() }],
      AlarmDescription: Match.stringLikeRegexp('halo-relay check-bmc'),
    });
  });

  it('alarm while an HA VM has libvirt autostart on, keeping the state between capacity passes', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: HALO_METRIC.HaVmsWithAutostart,
      Dimensions: [{ Name: 'service', Value: 'halo' }],
      Statistic: 'Maximum',
      Period: 600,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'ignore',
      AlarmActions: [{ Ref: Match.anyValue() }],
      OKActions: [{ Ref: Match.anyValue() }],
      AlarmDescription: Match.stringLikeRegexp('virsh autostart --disable'),
    });
  });

  it.each([
    [HALO_METRIC.HostsAwaitingOperator, 'confirm-power-off'],
    [HALO_METRIC.VmsRunningTwice, 'SEVERITY 1'],
    [HALO_METRIC.HaVmsDown, 'must run again'],
    [HALO_METRIC.ClustersMassSilent, 'mass-silence share'],
    [HALO_METRIC.SitesOnOneRelay, 'one live relay'],
  ])(
    'alarm while the %s gauge is above zero, keeping the state when the detector publishes nothing',
    (metric, says) => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRICS_NAMESPACE,
        MetricName: metric,
        Dimensions: [{ Name: 'service', Value: 'halo' }],
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'ignore',
        AlarmActions: [{ Ref: Match.anyValue() }],
        OKActions: [{ Ref: Match.anyValue() }],
        // The notification cannot name them: the description says where the detector does.
        AlarmDescription: Match.stringLikeRegexp(`${says}.*report\\.alerts`),
      });
    },
  );

  it('watch failed and timed-out executions and every function’s errors', () => {
    for (const metric of ['ExecutionsFailed', 'ExecutionsTimedOut']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/States',
        MetricName: metric,
      });
    }
    const errorAlarms = ofType('AWS::CloudWatch::Alarm').filter(
      ([, a]) => properties(a).Namespace === 'AWS/Lambda' && properties(a).MetricName === 'Errors',
    );
    expect(errorAlarms).toHaveLength(4);
  });

  it('notify a KMS-encrypted, TLS-only topic whose key lets CloudWatch publish', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
    // No email subscription unless halo:alertEmail is set.
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('has one dashboard', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('IAM', () => {
  const machineRef = () => ({ Ref: ofType('AWS::StepFunctions::StateMachine')[0]?.[0] });

  it('lets ingest, detector and operator API start executions of the failover machine only', () => {
    for (const prefix of ['relay reports', 'operator API', 'finds silent', 'every step']) {
      const statements = statementsOfFunction(functionId(prefix)).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('states:')),
      );
      if (prefix === 'every step') {
        expect(statements).toEqual([]);
        continue;
      }
      expect(statements.length).toBeGreaterThan(0);
      for (const s of statements) {
        expect(s.Effect).toBe('Allow');
        expect(resourcesOf(s)).toEqual([machineRef()]);
      }
      expect(statements.flatMap(actionsOf)).toContain('states:StartExecution');
    }
  });

  it('lets only ingest and the operator API resolve callbacks', () => {
    const callbackActions = (prefix: string) =>
      statementsOfFunction(functionId(prefix))
        .flatMap(actionsOf)
        .filter((a) => a === 'states:SendTaskSuccess' || a === 'states:SendTaskFailure')
        .sort();
    const both = ['states:SendTaskFailure', 'states:SendTaskSuccess'];
    expect(callbackActions('relay reports')).toEqual(both);
    expect(callbackActions('operator API')).toEqual(both);
    expect(callbackActions('finds silent')).toEqual([]);
    expect(callbackActions('every step')).toEqual([]);
  });

  it('grants `*` resources to nothing but X-Ray and log delivery', () => {
    for (const [, policy] of ofType('AWS::IAM::Policy')) {
      for (const s of asArray(asObject(properties(policy).PolicyDocument).Statement).map((x) =>
        asObject(x),
      )) {
        if (!resourcesOf(s).includes('*')) continue;
        for (const action of actionsOf(s)) expect(action).toMatch(/^(xray:|logs:)/);
      }
    }
  });

  it('gives item access to the table, and gsi1 queries only to the operator API and the detector', () => {
    const queriesIndex = (prefix: string) =>
      statementsOfFunction(functionId(prefix)).some((s) => JSON.stringify(s.Resource).includes('/index/'));
    expect(queriesIndex('operator API')).toBe(true);
    expect(queriesIndex('finds silent')).toBe(true);
    expect(queriesIndex('relay reports')).toBe(false);
    expect(queriesIndex('every step')).toBe(false);
    for (const prefix of ['relay reports', 'operator API', 'finds silent', 'every step']) {
      const actions = statementsOfFunction(functionId(prefix)).flatMap(actionsOf);
      expect(actions).toEqual(
        expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query']),
      );
      expect(actions).not.toContain('dynamodb:Scan');
      expect(actions.some((a) => a.endsWith('*'))).toBe(false);
    }
  });

  it('lets the state machine invoke failover-steps and no other function', () => {
    const [machine] = ofType('AWS::StepFunctions::StateMachine');
    const roleId = asArray(asObject(properties(asObject(machine?.[1])).RoleArn)['Fn::GetAtt'])[0];
    const invoked = ofType('AWS::IAM::Policy')
      .filter(([, p]) => asArray(properties(p).Roles).some((r) => asObject(r).Ref === roleId))
      .flatMap(([, p]) => asArray(asObject(properties(p).PolicyDocument).Statement).map((s) => asObject(s)))
      .filter((s) => actionsOf(s).includes('lambda:InvokeFunction'))
      .flatMap(resourcesOf);
    const stepsId = functionId('every step');
    expect(invoked).toEqual([
      { 'Fn::GetAtt': [stepsId, 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [stepsId, 'Arn'] }, ':*']] },
    ]);
  });
});

describe('state machine', () => {
  it('is Standard, traced, logs errors without execution data, and may run 8 days', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: { Level: 'ERROR', IncludeExecutionData: false },
    });
    expect(extractDefinition(template.toJSON()).TimeoutSeconds).toBe(8 * 24 * 3600);
  });

  it('has every state named in contracts/workflow.ts STATE, and no other', () => {
    const definition = extractDefinition(template.toJSON());
    const names = new Set<string>();
    const collect = (states: JsonObject) => {
      for (const [name, state] of Object.entries(states)) {
        names.add(name);
        const processor = asObject(state).ItemProcessor;
        if (processor !== undefined) collect(asObject(asObject(processor).States));
        const branches = asObject(state).Branches;
        for (const branch of Array.isArray(branches) ? branches : [])
          collect(asObject(asObject(branch).States));
      }
    };
    collect(definition.States);
    expect([...names].sort()).toEqual(Object.values(STATE).sort());
  });
});

describe('outputs and operator access', () => {
  it('outputs the API URL, alarm topic, state machine, table, dashboard URL and both policies, under stable keys, exported nowhere', () => {
    const outputs = asObject(template.toJSON().Outputs);
    expect(Object.keys(outputs).sort()).toEqual(Object.values(STACK_OUTPUTS).sort());
    for (const output of Object.values(outputs)) expect(asObject(output).Export).toBeUndefined();
    const ref = (type: string) => ({ Ref: ofType(type)[0]?.[0] });
    expect(asObject(outputs[STACK_OUTPUTS.alarmTopicArn]).Value).toEqual(ref('AWS::SNS::Topic'));
    expect(asObject(outputs[STACK_OUTPUTS.stateMachineArn]).Value).toEqual(
      ref('AWS::StepFunctions::StateMachine'),
    );
    expect(asObject(outputs[STACK_OUTPUTS.tableName]).Value).toEqual(ref('AWS::DynamoDB::Table'));
    expect(JSON.stringify(asObject(outputs[STACK_OUTPUTS.dashboardUrl]).Value)).toMatch(
      /cloudwatch\/home\?region=.*#dashboards:name=/,
    );
    expect(JSON.stringify(asObject(outputs[STACK_OUTPUTS.apiUrl]).Value)).toContain('execute-api');
    // docs/site-install.md finds the URL by its description.
    expect(asObject(outputs[STACK_OUTPUTS.apiUrl]).Description).toBe('Base URL of the Halo API');
    const policies = ofType('AWS::IAM::ManagedPolicy').map(([id]) => ({ Ref: id }));
    expect([
      asObject(outputs[STACK_OUTPUTS.readOnlyPolicyArn]).Value,
      asObject(outputs[STACK_OUTPUTS.operatorPolicyArn]).Value,
    ]).toEqual(expect.arrayContaining(policies));
  });

  /** The route (`GET /v1/sites/*\/hosts`) each execute-api resource of a managed policy allows. */
  function routesOf(outputKey: string): string[] {
    const ref = asObject(asObject(asObject(template.toJSON().Outputs)[outputKey]).Value).Ref;
    const policy = properties(asObject(resources[String(ref)]));
    const statements = asArray(asObject(policy.PolicyDocument).Statement).map((s) => asObject(s));
    expect(
      statements.every((s) => s.Effect === 'Allow' && actionsOf(s).join() === 'execute-api:Invoke'),
    ).toBe(true);
    return statements.flatMap((s) =>
      resourcesOf(s).map((resource) => {
        const parts = asArray(asObject(resource)['Fn::Join']);
        const tail = String(asArray(parts[1]).at(-1));
        // …:<api id>/$default/GET/v1/sites/*/hosts
        const [, , method, ...path] = tail.split('/');
        return `${method} /${path.join('/')}`;
      }),
    );
  }

  const pattern = (path: string) => path.replace(/\{[^}]+\}/g, '*');

  it('read-only policy: execute-api:Invoke on every GET operator route and nothing else', () => {
    const gets = OPERATOR_ROUTES.filter((r) => r.method === 'GET').map((r) => `GET ${pattern(r.path)}`);
    expect(routesOf(STACK_OUTPUTS.readOnlyPolicyArn).sort()).toEqual(gets.sort());
    expect(routesOf(STACK_OUTPUTS.readOnlyPolicyArn)).not.toContain('POST /v1/incidents/*/confirm-power-off');
  });

  it('operator policy: every operator route, never the relay report route', () => {
    const all = OPERATOR_ROUTES.map((r) => `${r.method} ${pattern(r.path)}`);
    expect(routesOf(STACK_OUTPUTS.operatorPolicyArn).sort()).toEqual(all.sort());
    expect(routesOf(STACK_OUTPUTS.operatorPolicyArn)).not.toContain(`POST ${REPORT_ROUTE.path}`);
  });

  it("graphs the detector's gauges on the dashboard", () => {
    const [, dashboard] = ofType('AWS::CloudWatch::Dashboard')[0] ?? [];
    const body = JSON.stringify(properties(asObject(dashboard)).DashboardBody);
    for (const gauge of [
      HALO_METRIC.HostsAwaitingOperator,
      HALO_METRIC.VmsRunningTwice,
      HALO_METRIC.ClustersMassSilent,
      HALO_METRIC.SitesOnOneRelay,
      HALO_METRIC.HaVmsDown,
      HALO_METRIC.HostsNotFenceable,
    ]) {
      expect(body).toContain(gauge);
    }
  });
});
