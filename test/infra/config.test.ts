import { App } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../infra/config';
import { cdkJsonContext } from './helpers';

const configOf = (context: Record<string, unknown>) => readConfig(new App({ context }).node);

describe('cdk.json context', () => {
  it('holds the documented defaults', () => {
    expect(configOf(cdkJsonContext())).toEqual({
      alertEmail: undefined,
      policy: { hostHeartbeatMs: 2000, missedHeartbeats: 3, relayReportMs: 10_000 },
      reportThrottle: { rateLimit: 50, burstLimit: 100 },
      logRetention: RetentionDays.ONE_MONTH,
      detectorTickSeconds: 10,
    });
  });

  it('takes `-c key=value` strings from the command line as JSON', () => {
    const config = configOf({
      'halo:alertEmail': 'oncall@example.com',
      'halo:policy': '{"hostHeartbeatMs":1000,"massSilenceShare":0.3}',
      'halo:logRetentionDays': '90',
      'halo:detectorTickSeconds': '5',
    });
    expect(config).toMatchObject({
      alertEmail: 'oncall@example.com',
      policy: { hostHeartbeatMs: 1000, massSilenceShare: 0.3 },
      logRetention: RetentionDays.THREE_MONTHS,
      detectorTickSeconds: 5,
    });
  });

  it('refuses what the handlers or CloudWatch would refuse, naming the key', () => {
    expect(() => configOf({ 'halo:policy': { hostHeartBeatMs: 1000 } })).toThrow(/halo:policy/);
    expect(() =>
      configOf({ 'halo:policy': { fenceAttemptTimeoutMs: 60_000, fenceDeadlineMs: 1000 } }),
    ).toThrow(/fenceDeadlineMs/);
    expect(() => configOf({ 'halo:logRetentionDays': 31 })).toThrow(/halo:logRetentionDays/);
    expect(() => configOf({ 'halo:alertEmail': 'not-an-address' })).toThrow(/halo:alertEmail/);
    expect(() => configOf({ 'halo:detectorTickSeconds': 0 })).toThrow(/halo:detectorTickSeconds/);
  });
});
