import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  type ILayerVersion,
  LayerVersion,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import {
  type BundlingOptions,
  LogLevel,
  NodejsFunction,
  OutputFormat,
  SourceMapMode,
} from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { z } from 'zod';
import { acknowledge } from '../nag';

/** Repository root: entries, the lock file and tsconfig are resolved from here, whatever the cwd. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The Lambda runtime of every function (also asserted by the infra tests). */
export const HALO_RUNTIME = Runtime.NODEJS_22_X;

/** An environment map with exactly the keys of a function's env schema, every value a string. */
export type LambdaEnvironment<T> = { readonly [K in keyof T]-?: string };

/** Memory of every function, in MB; Lambda allots CPU in proportion (the cost model in bench/ reads it). */
export const HALO_MEMORY_MB = 256;

/**
 * Packages left out of every bundle because the Node.js 22 Lambda runtime ships them: the AWS SDK v3
 * clients Halo imports (client-dynamodb, lib-dynamodb, client-sfn). Bundled, the SDK is ~390 KB of each
 * ~1.1 MB bundle, over the 300 KB budget by itself (docs/cost.md, "Bundle size"). `@smithy/*` stays
 * bundled: Halo never imports it, the runtime's clients bring their own, and the one Smithy package that
 * is bundled (aws-xray-sdk-core's service-error-classification) then keeps the version it declares
 * instead of whatever the runtime happens to hoist.
 */
export const RUNTIME_PROVIDED_MODULES: readonly string[] = ['@aws-sdk/*'];

/**
 * Powertools (logger, metrics, tracer with aws-xray-sdk-core) comes from the Powertools Lambda layer of
 * exactly the version the tests ran with, not from the bundle: the tracer's X-Ray SDK alone is ~130 KB.
 */
export const LAYER_PROVIDED_MODULES: readonly string[] = ['@aws-lambda-powertools/*'];

/** The Powertools version in node_modules: the layer deployed is this one, so Lambda runs what was tested. */
export const POWERTOOLS_VERSION: string = (
  JSON.parse(
    readFileSync(join(REPO_ROOT, 'node_modules/@aws-lambda-powertools/logger/package.json'), 'utf8'),
  ) as {
    version: string;
  }
).version;

/**
 * The Powertools layer, once per stack. Its ARN is resolved at deploy time from the public SSM parameter
 * AWS publishes per version (so synth stays offline and the layer matches POWERTOOLS_VERSION exactly).
 */
export function powertoolsLayer(scope: Construct): ILayerVersion {
  const stack = Stack.of(scope);
  const id = 'PowertoolsLayer';
  const existing = stack.node.tryFindChild(id);
  if (existing !== undefined) return existing as ILayerVersion;
  const arn = StringParameter.valueForStringParameter(
    stack,
    `/aws/service/powertools/typescript/generic/all/${POWERTOOLS_VERSION}`,
  );
  return LayerVersion.fromLayerVersionArn(stack, id, arn);
}

/**
 * esbuild options of every Halo function, as NodejsFunction takes them. The one definition: the construct
 * bundles with it and bench/bundle.bench.ts measures the bundles it produces.
 */
export const HALO_BUNDLING: Readonly<BundlingOptions> = {
  forceDockerBundling: false,
  target: 'node22',
  format: OutputFormat.ESM,
  // Prefer the ESM builds of dependencies (middy 7 ships only ESM).
  mainFields: ['module', 'main'],
  // CommonJS dependencies (aws-xray-sdk-core) call require() on Node built-ins; ESM has none.
  banner:
    "import { createRequire as __haloCreateRequire } from 'node:module'; const require = __haloCreateRequire(import.meta.url);",
  minify: true,
  keepNames: true,
  sourceMap: true,
  sourceMapMode: SourceMapMode.DEFAULT,
  // Maps without embedded sources stay small; stack traces still resolve to file:line.
  sourcesContent: false,
  // The runtime's SDK, not the tested one: same major (v3), and Halo uses only long-stable calls (DynamoDB
  // document client Get/Put/Update/Query, SFN StartExecution/SendTask*); see docs/cost.md for the trade.
  externalModules: [...RUNTIME_PROVIDED_MODULES, ...LAYER_PROVIDED_MODULES],
  // esbuild's size table on every synth is noise; warnings and errors still print.
  logLevel: LogLevel.WARNING,
};

/** Properties of a {@link HaloFunction}. */
export interface HaloFunctionProps<T extends object> {
  /** Entry file, relative to the repository root (functions/env.ts FUNCTION_ENTRIES). */
  readonly entry: string;
  readonly description: string;
  /** The schema the handler parses its environment with at cold start. */
  readonly envSchema: z.ZodType<T>;
  /** Every variable of the schema, defaults included: what runs in AWS is what the template says. */
  readonly environment: LambdaEnvironment<T>;
  readonly logRetention: RetentionDays;
  /** @default 10 seconds */
  readonly timeout?: Duration;
  /**
   * Active X-Ray tracing (default true). Off for ingest: it runs on every report of every relay, where
   * traces would dominate the liveness bill and the tracer's SDK would double the bundle.
   */
  readonly tracing?: boolean;
}

/**
 * A Halo Lambda: arm64, Node.js 22, esbuild-bundled with source maps and kept class names (Step Functions
 * Retry/Catch match on error class names), JSON logs into its own log group with retention, X-Ray on,
 * and its own role that starts with nothing but permission to write its logs.
 */
export class HaloFunction<T extends object> extends Construct {
  /** The function. */
  readonly function: NodejsFunction;
  /** Its execution role; grants go here. */
  readonly role: Role;
  /** Its log group. */
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: HaloFunctionProps<T>) {
    super(scope, id);
    // Checked at synth with the handler's own schema: a value the handler would refuse at cold start
    // (say, a non-numeric DETECTOR_TICK_SECONDS) fails here instead. Tokens are non-empty strings.
    const checked = props.envSchema.safeParse(props.environment);
    if (!checked.success) {
      throw new Error(`${id}: environment does not satisfy its schema: ${checked.error.message}`);
    }

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs are incident evidence; they expire by retention, not with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Our own role instead of the default one: the default attaches the AWS-managed
    // AWSLambdaBasicExecutionRole (logs:* on every log group), which cdk-nag rightly flags (IAM4).
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the Halo ${id} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(REPO_ROOT, props.entry),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: HALO_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: HALO_MEMORY_MB,
      timeout: props.timeout ?? Duration.seconds(10),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      systemLogLevelV2: SystemLogLevel.WARN,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      tracing: props.tracing === false ? Tracing.DISABLED : Tracing.ACTIVE,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: HALO_BUNDLING,
      layers: [powertoolsLayer(this)],
    });

    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'Node.js 22 on purpose, not 24: the repository pins node@22 for its tests and local mode (aws-local-stepfunctions needs 22+), so Lambda runs the major every test ran on; nodejs22.x is a supported Lambda runtime. Move to 24 together with the devDependency.',
    );
    if (props.tracing !== false) {
      acknowledge(
        this.role,
        'AwsSolutions-IAM5[Resource::*]',
        'Added by Tracing.ACTIVE: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so their Resource must be *.',
      );
    }
  }
}
