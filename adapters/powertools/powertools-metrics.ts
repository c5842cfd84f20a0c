import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricsPort } from '../../app/ports';

/**
 * MetricsPort over Powertools Metrics (EMF). The namespace is the Metrics instance's (set from the
 * environment by functions/shared/powertools). Metrics without dimensions are buffered and flushed by the
 * logMetrics middleware; metrics with dimensions go out as a single metric so their dimensions do not leak
 * onto the rest of the invocation's buffer.
 */
export class PowertoolsMetrics implements MetricsPort {
  constructor(private readonly metrics: Metrics) {}

  count(name: string, value = 1, dimensions?: Record<string, string>): void {
    this.emit(name, MetricUnit.Count, value, dimensions);
  }

  seconds(name: string, value: number, dimensions?: Record<string, string>): void {
    this.emit(name, MetricUnit.Seconds, value, dimensions);
  }

  private emit(
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
    dimensions: Record<string, string> | undefined,
  ): void {
    if (dimensions === undefined || Object.keys(dimensions).length === 0) {
      this.metrics.addMetric(name, unit, value);
      return;
    }
    const single = this.metrics.singleMetric();
    single.addDimensions(dimensions);
    single.addMetric(name, unit, value);
  }
}
