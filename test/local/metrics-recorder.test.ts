import { describe, expect, it } from 'vitest';
import { MetricsRecorder } from '../../local/metrics-recorder';

describe('MetricsRecorder', () => {
  it('keeps every datapoint and summarises per name and dimension set', () => {
    let now = 1000;
    const metrics = new MetricsRecorder({ now: () => now });
    metrics.count('IncidentOpened');
    now = 2000;
    metrics.seconds('SecondsToFence', 3.5);
    metrics.seconds('SecondsToFence', 1.5);
    metrics.count('IncidentClosed', 1, { outcome: 'recovered' });
    metrics.count('IncidentClosed', 1, { outcome: 'left-down' });

    expect(metrics.records('SecondsToFence')).toEqual([
      { at: 2000, name: 'SecondsToFence', unit: 'Seconds', value: 3.5 },
      { at: 2000, name: 'SecondsToFence', unit: 'Seconds', value: 1.5 },
    ]);
    expect(metrics.total('IncidentClosed')).toBe(2);
    expect(metrics.summary()).toHaveLength(4);
    expect(metrics.summary().find((s) => s.name === 'SecondsToFence')).toMatchObject({
      samples: 2,
      sum: 5,
      min: 1.5,
      max: 3.5,
      last: 1.5,
    });
  });

  it('drops the oldest datapoints past its bound, and the summary stays exact', () => {
    const metrics = new MetricsRecorder(undefined, 2);
    for (let i = 1; i <= 5; i += 1) metrics.count('ReportsIngested', i);
    expect(metrics.records().map((r) => r.value)).toEqual([4, 5]);
    expect(metrics.droppedRecords).toBe(3);
    expect(metrics.total('ReportsIngested')).toBe(15);
  });
});
