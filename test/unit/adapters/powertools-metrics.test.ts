import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { PowertoolsMetrics } from '../../../adapters/powertools/powertools-metrics';

function fakeMetrics() {
  const single = { addDimensions: vi.fn(), addMetric: vi.fn() };
  const metrics = { addMetric: vi.fn(), singleMetric: vi.fn(() => single) };
  // Only the two methods the adapter calls are faked; the real class writes EMF to stdout.
  return { metrics, single, port: new PowertoolsMetrics(metrics as unknown as Metrics) };
}

describe('PowertoolsMetrics', () => {
  it('buffers counts (default 1) and seconds without dimensions on the shared instance', () => {
    const { metrics, port } = fakeMetrics();
    port.count('ReportsAccepted');
    port.count('CommandsDelivered', 3);
    port.seconds('FailoverSeconds', 42.5);
    expect(metrics.addMetric.mock.calls).toEqual([
      ['ReportsAccepted', MetricUnit.Count, 1],
      ['CommandsDelivered', MetricUnit.Count, 3],
      ['FailoverSeconds', MetricUnit.Seconds, 42.5],
    ]);
    expect(metrics.singleMetric).not.toHaveBeenCalled();
  });

  it('emits a single metric when dimensions are given, so they do not leak onto other metrics', () => {
    const { metrics, single, port } = fakeMetrics();
    port.seconds('TimeToFence', 12, { site: 'site-a' });
    port.count('Empty', 1, {});
    expect(single.addDimensions).toHaveBeenCalledWith({ site: 'site-a' });
    expect(single.addMetric).toHaveBeenCalledWith('TimeToFence', MetricUnit.Seconds, 12);
    expect(metrics.singleMetric).toHaveBeenCalledTimes(1);
    expect(metrics.addMetric).toHaveBeenCalledWith('Empty', MetricUnit.Count, 1);
  });
});
