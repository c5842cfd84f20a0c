import { App, Stack } from 'aws-cdk-lib';
import type { CfnStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { HaloApi } from '../infra/constructs/api';

/**
 * The access-log line API Gateway writes for one relay report, from the format the stack really configures
 * (infra/constructs/api.ts, read off the construct: no bundling) with a report's context values filled in.
 */
export function accessLogFormat(): string {
  const stack = new Stack(new App(), 'AccessLogFormat');
  const fn = (id: string) =>
    LambdaFunction.fromFunctionAttributes(stack, id, {
      functionArn: `arn:aws:lambda:us-east-1:123456789012:function:${id}`,
      sameEnvironment: true,
    });
  const api = new HaloApi(stack, 'Api', {
    ingestFunction: fn('ingest'),
    operatorFunction: fn('operator'),
    throttle: { rateLimit: 50, burstLimit: 100 },
    logRetention: RetentionDays.ONE_MONTH,
  });
  const stage = api.stage.node.defaultChild as CfnStage;
  const settings = stage.accessLogSettings as CfnStage.AccessLogSettingsProperty | undefined;
  if (settings?.format === undefined) throw new Error('the API stage has no access-log format');
  return settings.format;
}

/** Values of the $context variables for one accepted report (HTTP API formats; `-` when empty). */
export function reportContext(args: {
  responseLength: number;
  integrationLatencyMs: number;
}): Record<string, string> {
  return {
    requestId: 'Kx3V9gAbIAMEYwQ=',
    requestTime: '25/Nov/2026:14:38:08 +0000',
    'identity.sourceIp': '203.0.113.10',
    'identity.userArn': '-',
    routeKey: 'POST /v1/reports',
    status: '200',
    protocol: 'HTTP/1.1',
    responseLength: String(args.responseLength),
    integrationLatency: String(args.integrationLatencyMs),
    integrationErrorMessage: '-',
  };
}

/** The format with every `$context.x` replaced; throws on a variable `values` lacks. */
export function renderAccessLog(format: string, values: Readonly<Record<string, string>>): string {
  return format.replace(/\$context\.([A-Za-z.]+)/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for $context.${name}`);
    return value;
  });
}
