import { afterEach, describe, expect, it, vi } from 'vitest';
import { SfnWorkflow } from '../../adapters/sfn/sfn-workflow';
import { createAppContext } from '../../functions/shared/context';
import { parsePolicy } from '../../functions/shared/policy';

const baseEnv = {
  TABLE_NAME: 'halo-test',
  POWERTOOLS_SERVICE_NAME: 'halo',
  POWERTOOLS_METRICS_NAMESPACE: 'HaloTest',
  HALO_POLICY: '{}',
  STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:HaloFailover',
  AWS_REGION: 'eu-west-1',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
};

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe('parsePolicy (HALO_POLICY)', () => {
  it('accepts the empty policy and partial overrides', () => {
    expect(parsePolicy('{}')).toEqual({});
    expect(parsePolicy('{"hostHeartbeatMs": 1000, "cpuOvercommit": 2}')).toEqual({
      hostHeartbeatMs: 1000,
      cpuOvercommit: 2,
    });
  });

  it.each([
    ['not JSON', '{hostHeartbeatMs: 1}', /not JSON/],
    ['a misspelt key', '{"hostHeartbeatMS": 1000}', /hostHeartbeatMS/],
    ['a string value', '{"hostHeartbeatMs": "1000"}', /hostHeartbeatMs/],
    ['an array', '[]', /invalid/],
    ['a value the core refuses', '{"hostHeartbeatMs": -1}', /hostHeartbeatMs/],
  ])('refuses %s, loudly', (_name, text, message) => {
    expect(() => parsePolicy(text)).toThrow(message);
  });
});

describe('createAppContext', () => {
  it('builds every port once, from the environment', () => {
    const ctx = createAppContext({ ...baseEnv, HALO_POLICY: '{"relayReportMs": 5000}' });
    expect(Object.keys(ctx.ports).sort()).toEqual(
      [
        'clock',
        'commands',
        'hosts',
        'ids',
        'incidents',
        'metrics',
        'relays',
        'sites',
        'vms',
        'workflow',
      ].sort(),
    );
    expect(ctx.defaults).toEqual({ relayReportMs: 5000 });
    expect(ctx.ports.workflow).toBeInstanceOf(SfnWorkflow);
    expect(ctx.hasher.hash('abc')).toMatch(/^[0-9a-f]{64}$/);
    // The wall clock: read between two readings of it.
    const before = Date.now();
    const now = ctx.ports.clock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('without a state machine ARN (failover-steps) the workflow cannot start executions', async () => {
    const { STATE_MACHINE_ARN: _unused, ...env } = baseEnv;
    const ctx = createAppContext(env);
    await expect(
      ctx.ports.workflow.startIncident({} as Parameters<typeof ctx.ports.workflow.startIncident>[0]),
    ).rejects.toThrow(/no state machine ARN/);
  });
});

describe('cold start', () => {
  const stub = (env: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  };

  it.each([
    ['ingest', () => import('../../functions/ingest/handler')],
    ['operator-api', () => import('../../functions/operator-api/handler')],
    ['failover-steps', () => import('../../functions/failover-steps/handler')],
    ['detector', () => import('../../functions/detector/handler')],
  ])('%s loads with a complete environment', async (_name, load) => {
    stub(baseEnv);
    const module = await load();
    expect(module.handler).toBeTypeOf('function');
  });

  it('fails at module load on a bad HALO_POLICY', async () => {
    stub({ ...baseEnv, HALO_POLICY: '{"fenceDeadlineMs": "soon"}' });
    await expect(import('../../functions/ingest/handler')).rejects.toThrow(/HALO_POLICY/);
  });

  it('fails at module load on a missing variable', async () => {
    stub({ ...baseEnv, TABLE_NAME: undefined });
    await expect(import('../../functions/operator-api/handler')).rejects.toThrow(/TABLE_NAME/);
  });

  it('fails at module load on a malformed state machine ARN', async () => {
    stub({ ...baseEnv, STATE_MACHINE_ARN: 'arn:aws:lambda:eu-west-1:1:function:nope' });
    await expect(import('../../functions/detector/handler')).rejects.toThrow(/state machine ARN/);
  });
});
