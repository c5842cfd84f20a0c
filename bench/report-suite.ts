import type { Cell } from './harness';

/** A table a suite prints: a title and rows whose keys are the columns. */
export interface Table {
  readonly title: string;
  readonly rows: readonly Readonly<Record<string, Cell>>[];
  /** Printed under the table: how its numbers were derived. */
  readonly footnote?: string;
}

/**
 * A suite that measures asynchronously (a store, a bundler, the file system) and returns several tables
 * rather than one timing table; bench/run.ts prints them in order. Registered in run.ts like a BenchSuite.
 */
export interface ReportSuite {
  readonly title: string;
  readonly report: () => Promise<readonly Table[]>;
}

/** Nearest-rank percentile of sorted samples (the harness's rule, for async timings). */
export function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Bytes as KB (1,024) with one decimal, for tables. */
export const kb = (bytes: number): string => (bytes / 1024).toFixed(1);

/** A count with thousands separators. */
export const count = (n: number): string => n.toLocaleString('en-US');
