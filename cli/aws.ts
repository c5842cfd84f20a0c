import {
  CloudFormationClient,
  DescribeStacksCommand,
  type DescribeStacksCommandOutput,
} from '@aws-sdk/client-cloudformation';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { fetchWire, type Transport } from './client';
import { UnreachableError } from './errors';

/** The app's stack (infra/app.ts). */
export const DEFAULT_STACK_NAME = 'Halo';

/** Where the credentials and region come from: the SDK's default chain, optionally a named profile. */
export interface AwsOptions {
  readonly region?: string | undefined;
  readonly profile?: string | undefined;
}

/** A stack's outputs by key, with the region they were read in. */
export interface StackOutputs {
  readonly stackName: string;
  readonly region: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** Output descriptions by key, to find outputs whose keys CDK derived from construct paths. */
  readonly descriptions: Readonly<Record<string, string>>;
}

const NO_CREDENTIALS =
  'no AWS credentials found by the default chain (environment, AWS_PROFILE / ~/.aws, SSO, instance role); ' +
  'sign in (e.g. `aws sso login`), pass --profile, or use --url for a local control plane';

/** An SDK failure as UnreachableError, in the operator's words. */
function awsFailure(error: unknown, what: string): UnreachableError {
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message))
    return new UnreachableError(NO_CREDENTIALS);
  if (/Region is missing/i.test(message))
    return new UnreachableError(
      'no AWS region: pass --region or set AWS_REGION (or a region in your profile)',
    );
  if (name === 'ExpiredTokenException' || name === 'ExpiredToken')
    return new UnreachableError(`${what}: your AWS session has expired; sign in again`);
  return new UnreachableError(`${what}: ${name === '' ? '' : `${name}: `}${message}`);
}

/** Reads the stack's outputs with CloudFormation DescribeStacks, in the region the default chain gives. */
export async function describeStack(stackName: string, aws: AwsOptions): Promise<StackOutputs> {
  const client = new CloudFormationClient({
    ...(aws.region === undefined ? {} : { region: aws.region }),
    ...(aws.profile === undefined ? {} : { profile: aws.profile }),
    credentials: fromNodeProviderChain(aws.profile === undefined ? {} : { profile: aws.profile }),
  });
  try {
    let region: string;
    try {
      region = await client.config.region();
    } catch (error) {
      throw awsFailure(error, 'region');
    }
    let answer: DescribeStacksCommandOutput;
    try {
      answer = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/does not exist/i.test(message))
        throw new UnreachableError(
          `no stack ${stackName} in ${region}: pass --stack NAME or --region REGION (or --url for a local control plane)`,
        );
      throw awsFailure(error, `DescribeStacks ${stackName} in ${region}`);
    }
    const outputs: Record<string, string> = {};
    const descriptions: Record<string, string> = {};
    for (const output of answer.Stacks?.[0]?.Outputs ?? []) {
      if (output.OutputKey === undefined || output.OutputValue === undefined) continue;
      outputs[output.OutputKey] = output.OutputValue;
      if (output.Description !== undefined) descriptions[output.OutputKey] = output.Description;
    }
    return { stackName, region, outputs, descriptions };
  } finally {
    client.destroy();
  }
}

/** The region an execute-api hostname names (`abc.execute-api.eu-west-1.amazonaws.com`); null otherwise. */
export function regionOfApiHost(hostname: string): string | null {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(hostname)?.[1] ?? null;
}

/**
 * A deployed stack: every request signed with SigV4 for `execute-api` in `region` by the SDK's signer,
 * with credentials from the default provider chain (resolved, and refreshed, by the chain itself).
 */
export function signedTransport(baseUrl: string, region: string, aws: AwsOptions): Transport {
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: fromNodeProviderChain(aws.profile === undefined ? {} : { profile: aws.profile }),
    sha256: Hash.bind(null, 'sha256'),
  });
  const base = baseUrl.replace(/\/+$/, '');
  return {
    mode: 'aws',
    baseUrl: base,
    authHint:
      'the API refused your IAM identity: the stack grants its operator API through two managed policies, ' +
      'read-only (every GET) and operator (everything); ask for the one you need',
    send: async (request) => {
      const { url } = request;
      const query: Record<string, string> = {};
      for (const [key, value] of url.searchParams) query[key] = value;
      const headers: Record<string, string> = { host: url.host, accept: 'application/json' };
      if (request.body !== undefined) headers['content-type'] = 'application/json';
      let signed: { headers: Record<string, string> };
      try {
        signed = await signer.sign({
          method: request.method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port === '' ? {} : { port: Number(url.port) }),
          path: url.pathname,
          query,
          headers,
          ...(request.body === undefined ? {} : { body: request.body }),
        });
      } catch (error) {
        throw awsFailure(error, 'signing the request');
      }
      // fetch sets Host from the URL itself (the same value that was signed).
      const { host: _host, ...sent } = signed.headers;
      return fetchWire(request, sent, '');
    },
  };
}
