import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_TOKEN, STACK_OUTPUTS } from '../contracts/operator-api';
import { type AwsOptions, DEFAULT_STACK_NAME, describeStack, regionOfApiHost, signedTransport } from './aws';
import { localTransport, OperatorClient, type Transport } from './client';
import { UnreachableError, UsageError } from './errors';

/** The global options that choose the control plane. */
export interface TargetOptions {
  /** `--url` (else HALO_URL): a local control plane on loopback, or a deployed API's base URL. */
  readonly url?: string | undefined;
  /** `--stack` (else HALO_STACK, else the app's stack name): the stack whose outputs name the API. */
  readonly stack?: string | undefined;
  readonly region?: string | undefined;
  readonly profile?: string | undefined;
}

/** The control plane the CLI talks to, and how. */
export interface Target {
  readonly client: OperatorClient;
  /** `local http://127.0.0.1:8787`, `stack Halo (eu-west-1)`, or `https://… (eu-west-1)`. */
  readonly description: string;
  /** The region of a deployed API; null locally. */
  readonly region: string | null;
  /** The stack's outputs, when the target was found through them (dashboard, alarm topic…). */
  readonly outputs: Readonly<Record<string, string>>;
}

type Env = Readonly<Record<string, string | undefined>>;

const API_URL_OUTPUT = STACK_OUTPUTS.apiUrl;
/** Description of that output on stacks deployed before it had a fixed key (infra/constructs/api.ts). */
const API_URL_DESCRIPTION = 'Base URL of the Halo API';

/** Where `npm start -- --serve` stores the local operator token (contracts LOCAL_TOKEN): the same rule as the server. */
export function localTokenFile(env: Env, home: string = homedir()): string {
  const named = env[LOCAL_TOKEN.fileEnv];
  if (named !== undefined && named !== '') return named;
  const config = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : null;
  return join(config ?? join(home, '.config'), LOCAL_TOKEN.relativePath);
}

/** True for a loopback host: local mode, whose endpoint listens there only. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function readToken(file: string): Promise<string | null> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    return token === '' ? null : token;
  } catch {
    return null;
  }
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url: not a URL: ${text}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`--url: expected http:// or https://, got ${text}`);
  return url;
}

/** The API URL among a stack's outputs. */
function apiUrlOf(
  outputs: Readonly<Record<string, string>>,
  descriptions: Readonly<Record<string, string>>,
): string | undefined {
  const direct = outputs[API_URL_OUTPUT];
  if (direct !== undefined) return direct;
  const key = Object.keys(outputs).find(
    (k) => k.startsWith(API_URL_OUTPUT) || descriptions[k]?.startsWith(API_URL_DESCRIPTION) === true,
  );
  return key === undefined ? undefined : outputs[key];
}

/**
 * Chooses the control plane: `--url`/HALO_URL on loopback is local mode (plain HTTP, the local operator
 * token); any other URL is a deployed API (SigV4, the region from its hostname or the chain); without a
 * URL, the stack's outputs (DescribeStacks with the default credential chain) name the API.
 */
export async function resolveTarget(options: TargetOptions, env: Env): Promise<Target> {
  const urlText = options.url ?? (env.HALO_URL === '' ? undefined : env.HALO_URL);
  const aws: AwsOptions = {
    region: options.region ?? undefined,
    profile: options.profile ?? undefined,
  };
  if (urlText !== undefined) {
    const url = parseUrl(urlText);
    const base = `${url.origin}${url.pathname}`.replace(/\/+$/, '');
    if (isLoopback(url.hostname)) {
      const file = localTokenFile(env);
      const token = await readToken(file);
      const hint =
        token === null
          ? `no local operator token in ${file}: \`npm start -- --serve\` writes it there when it starts (HALO_LOCAL_TOKEN_FILE names another file)`
          : `the local control plane refused the token in ${file}: was it restarted with another one? (HALO_LOCAL_TOKEN_FILE names another file)`;
      return target(localTransport(base, token, hint), `local ${base}`, null, {});
    }
    const region = aws.region ?? regionOfApiHost(url.hostname) ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (region === undefined || region === '')
      throw new UsageError(`--url ${base}: which AWS region signs for it? pass --region`);
    return target(signedTransport(base, region, aws), `${base} (${region})`, region, {});
  }
  const stackName =
    options.stack ?? (env.HALO_STACK === '' ? undefined : env.HALO_STACK) ?? DEFAULT_STACK_NAME;
  const stack = await describeStack(stackName, aws);
  const apiUrl = apiUrlOf(stack.outputs, stack.descriptions);
  if (apiUrl === undefined)
    throw new UnreachableError(`stack ${stackName} in ${stack.region} has no ${API_URL_OUTPUT} output`);
  return target(
    signedTransport(apiUrl, stack.region, aws),
    `stack ${stackName} (${stack.region})`,
    stack.region,
    stack.outputs,
  );
}

function target(
  transport: Transport,
  description: string,
  region: string | null,
  outputs: Readonly<Record<string, string>>,
): Target {
  return { client: new OperatorClient(transport), description, region, outputs };
}
