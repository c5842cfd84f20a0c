import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { regionOfApiHost } from '../../../cli/aws';
import { STACK_OUTPUTS } from '../../../contracts/operator-api';
import { haloRunner } from './support';

/**
 * The deployed path: the stack's outputs come from CloudFormation DescribeStacks (mocked), the credentials
 * and region from the SDK's default chain (here the environment), and every operator request is signed
 * with SigV4 for execute-api. A local HTTP server stands in for API Gateway and records what arrives;
 * the signature is checked by signing the received request again with the same credentials and date.
 */

interface Captured {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const captured: Captured[] = [];
let answer: (req: Captured) => { status: number; body: unknown } = () => ({ status: 200, body: [] });
let server: Server;
let apiUrl: string;

const host = {
  siteId: 'dc1',
  hostId: 'node01',
  cluster: 'prod',
  cpus: 16,
  memoryMiB: 65536,
  bootId: 'b1',
  lifecycle: { status: 'up', bootId: 'b1' },
  usedCpus: 4,
  usedMiB: 8192,
  observedAt: 1,
  fencing: { fenceable: true, reason: null },
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [path = '', query = ''] = (req.url ?? '').split('?');
      const request = {
        method: req.method ?? '',
        path,
        query,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      captured.push(request);
      const { status, body } = answer(request);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const cfn = mockClient(CloudFormationClient);

function stackWithApi(url: string) {
  return {
    Stacks: [
      {
        StackName: 'Halo',
        CreationTime: new Date(0),
        StackStatus: 'CREATE_COMPLETE' as const,
        Outputs: [
          { OutputKey: STACK_OUTPUTS.apiUrl, OutputValue: url, Description: 'Base URL of the Halo API' },
          { OutputKey: STACK_OUTPUTS.dashboardUrl, OutputValue: 'https://console.example/dashboard' },
        ],
      },
    ],
  };
}

beforeEach(() => {
  captured.length = 0;
  answer = () => ({ status: 200, body: [] });
  cfn.reset();
  cfn.on(DescribeStacksCommand).resolves(stackWithApi(apiUrl));
  // The default chain reads process.env: static keys with a session token, a region, no shared files.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY');
  vi.stubEnv('AWS_SESSION_TOKEN', 'session-token-example');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('AWS_PROFILE', undefined);
  vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/aws-config');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/aws-credentials');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
});

afterEach(() => {
  vi.unstubAllEnvs();
});

/** Signs the request the server received again, with the same credentials and date, over the headers it signed. */
async function expectedAuthorization(request: Captured, region: string): Promise<string> {
  const authorization = String(request.headers.authorization);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = String(request.headers[name]);
  const date = String(request.headers['x-amz-date']);
  const signingDate = new Date(
    `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
  );
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: {
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      sessionToken: 'session-token-example',
    },
    sha256: Hash.bind(null, 'sha256'),
  });
  const [hostname, port] = String(request.headers.host).split(':');
  const signed = await signer.sign(
    {
      method: request.method,
      protocol: 'http:',
      hostname: hostname ?? '',
      ...(port === undefined ? {} : { port: Number(port) }),
      path: request.path,
      query: Object.fromEntries(new URLSearchParams(request.query)),
      headers,
      ...(request.body === '' ? {} : { body: request.body }),
    },
    { signingDate },
  );
  return String(signed.headers.authorization);
}

describe('halo against a deployed stack', () => {
  it('finds the API in the stack outputs and signs each request with SigV4 (credentials and region from the chain)', async () => {
    const halo = haloRunner();
    const run = await halo('status', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ target: 'stack Halo (eu-west-1)', ok: true, sites: [] });
    expect(cfn.commandCalls(DescribeStacksCommand)[0]?.args[0].input).toEqual({ StackName: 'Halo' });

    const [request] = captured;
    expect(request).toMatchObject({ method: 'GET', path: '/v1/sites' });
    const authorization = String(request?.headers.authorization);
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(String(request?.headers['x-amz-date'])).toMatch(/^\d{8}T\d{6}Z$/);
    expect(request?.headers['x-amz-security-token']).toBe('session-token-example');
    if (request !== undefined) expect(authorization).toBe(await expectedAuthorization(request, 'eu-west-1'));

    const human = await halo('status');
    expect(human.stdout).toContain('Halo — stack Halo (eu-west-1)');
    expect(human.stdout).toContain('Dashboard: https://console.example/dashboard');
  });

  it('signs bodies and percent-encoded paths too, for the region --region names, on the stack --stack names', async () => {
    answer = (req) => {
      if (req.path === '/v1/sites') return { status: 200, body: [{ siteId: 'dc1', createdAt: 1 }] };
      if (req.path === '/v1/sites/dc1/hosts') return { status: 200, body: [host] };
      return {
        status: 200,
        body: { siteId: 'dc1', hostId: 'node01', status: 'maintenance', by: 'arn:aws:iam::1:user/bob' },
      };
    };
    cfn.on(DescribeStacksCommand, { StackName: 'HaloStaging' }).resolves(stackWithApi(apiUrl));
    const halo = haloRunner();
    const run = await halo('--stack', 'HaloStaging', '--region', 'us-west-2', 'maintenance', 'node01', 'on');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('node01 (site dc1) is in maintenance');
    const put = captured.find((r) => r.method === 'PUT');
    expect(put).toMatchObject({ path: '/v1/sites/dc1/hosts/node01/maintenance', body: '{"enabled":true}' });
    expect(String(put?.headers.authorization)).toContain('/us-west-2/execute-api/aws4_request');
    if (put !== undefined)
      expect(String(put.headers.authorization)).toBe(await expectedAuthorization(put, 'us-west-2'));

    // An incident id carries ':' — percent-encoded on the wire, and signed as API Gateway checks it.
    captured.length = 0;
    answer = () => ({
      status: 404,
      body: { error: 'not-found', message: 'incident dc1:node01:1 not found' },
    });
    const missing = await halo('--stack', 'HaloStaging', 'incident', 'dc1:node01:1');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('incident dc1:node01:1 not found');
    const get = captured[0];
    expect(get?.path).toBe('/v1/incidents/dc1%3Anode01%3A1');
    if (get !== undefined)
      expect(String(get.headers.authorization)).toBe(await expectedAuthorization(get, 'eu-west-1'));
  });

  it('exits 3 naming the stack when it does not exist', async () => {
    cfn
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id Halo does not exist'), { name: 'ValidationError' }));
    const run = await haloRunner()('hosts');
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('halo: no stack Halo in eu-west-1: pass --stack NAME or --region REGION');
    expect(captured).toEqual([]);
  });

  it('exits 3 when the chain finds no credentials, before any request leaves', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', undefined);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', undefined);
    vi.stubEnv('AWS_SESSION_TOKEN', undefined);
    const run = await haloRunner()('hosts');
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('halo: no AWS credentials found by the default chain');
    expect(captured).toEqual([]);
  });

  it('exits 3 with the access policies named when the API refuses the identity (403)', async () => {
    answer = () => ({ status: 403, body: { message: 'Forbidden' } });
    const run = await haloRunner()('hosts');
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('403');
    expect(run.stderr).toContain('read-only (every GET) and operator (everything)');
  });

  it('a --url that is not loopback is a deployed API, signed in the region its hostname names, else --region', async () => {
    expect(regionOfApiHost('abc123.execute-api.ap-southeast-2.amazonaws.com')).toBe('ap-southeast-2');
    expect(regionOfApiHost('halo.example.com')).toBeNull();
    const halo = haloRunner();
    const unknown = await halo('--url', 'https://halo-api.example.invalid', 'hosts');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('which AWS region signs for it? pass --region');
    // Signed, then nothing answers there (a name that never resolves): exit 3.
    const unreachable = await halo(
      '--url',
      'https://halo-api.example.invalid',
      '--region',
      'eu-west-1',
      'hosts',
    );
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain(
      'halo: cannot reach https://halo-api.example.invalid: host not found',
    );
  });
});
