import type { MetricsPort } from '../app/ports';

/** One datapoint as a use case published it. */
export interface MetricRecord {
  readonly at: number;
  readonly name: string;
  readonly unit: 'Count' | 'Seconds';
  readonly value: number;
  readonly dimensions?: Readonly<Record<string, string>>;
}

/** Aggregate of every datapoint of one metric name and dimension set since the start. */
export interface MetricSummary {
  readonly name: string;
  readonly unit: 'Count' | 'Seconds';
  readonly dimensions?: Readonly<Record<string, string>>;
  readonly samples: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly last: number;
}

/** Datapoints kept by default: a serve left running for days must not grow without bound. */
const DEFAULT_MAX_RECORDS = 100_000;

/**
 * MetricsPort of local mode: every datapoint in memory (the newest `maxRecords` of them) and a running
 * summary per metric, which stays exact when old datapoints are dropped. What CloudWatch holds in AWS.
 */
export class MetricsRecorder implements MetricsPort {
  private readonly kept: MetricRecord[] = [];
  private readonly summaries = new Map<string, MetricSummary>();
  private dropped = 0;

  constructor(
    private readonly clock: { now(): number } = { now: () => Date.now() },
    private readonly maxRecords = DEFAULT_MAX_RECORDS,
  ) {}

  count(name: string, value = 1, dimensions?: Record<string, string>): void {
    this.record(name, 'Count', value, dimensions);
  }

  seconds(name: string, value: number, dimensions?: Record<string, string>): void {
    this.record(name, 'Seconds', value, dimensions);
  }

  /** The datapoints kept, oldest first (optionally of one name). */
  records(name?: string): MetricRecord[] {
    return this.kept.filter((r) => name === undefined || r.name === name);
  }

  /** How many datapoints were dropped to stay within `maxRecords`. */
  get droppedRecords(): number {
    return this.dropped;
  }

  /** One summary per metric name and dimension set, sorted by name. */
  summary(): MetricSummary[] {
    return [...this.summaries.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, s]) => ({ ...s }));
  }

  /** Sum of every datapoint of `name`, across dimension sets (0 when never published). */
  total(name: string): number {
    let sum = 0;
    for (const s of this.summaries.values()) if (s.name === name) sum += s.sum;
    return sum;
  }

  private record(
    name: string,
    unit: MetricRecord['unit'],
    value: number,
    dimensions: Record<string, string> | undefined,
  ): void {
    const dims =
      dimensions === undefined || Object.keys(dimensions).length === 0 ? undefined : { ...dimensions };
    this.kept.push({
      at: this.clock.now(),
      name,
      unit,
      value,
      ...(dims === undefined ? {} : { dimensions: dims }),
    });
    if (this.kept.length > this.maxRecords) {
      this.kept.shift();
      this.dropped += 1;
    }
    // CloudWatch keys a metric by name and dimension set; the summary does the same.
    const key = dims === undefined ? name : `${name}|${JSON.stringify(Object.entries(dims).sort())}`;
    const prev = this.summaries.get(key);
    this.summaries.set(key, {
      name,
      unit,
      ...(dims === undefined ? {} : { dimensions: dims }),
      samples: (prev?.samples ?? 0) + 1,
      sum: (prev?.sum ?? 0) + value,
      min: Math.min(prev?.min ?? value, value),
      max: Math.max(prev?.max ?? value, value),
      last: value,
    });
  }
}
