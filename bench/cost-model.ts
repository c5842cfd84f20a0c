/**
 * Dollars per month of Halo's steady state, from measured per-report and per-tick figures (bench/ingest.bench.ts
 * measures them; docs/cost.md explains them). Pure arithmetic, so the bench table and the doc agree.
 *
 * List prices, us-east-1, no free tier, from /work/shared/research/performance-and-cost.md §2 unless noted.
 */
export const PRICES = {
  /** HTTP API, first 300 M requests a month, per request of up to 512 KB. */
  apiPerRequest: 1.0 / 1e6,
  apiMeteringBytes: 512 * 1024,
  lambdaPerRequest: 0.2 / 1e6,
  /** arm64. */
  lambdaPerGbSecond: 0.0000133334,
  dynamoPerWru: 0.625 / 1e6,
  dynamoPerRru: 0.125 / 1e6,
  sfnPerTransition: 0.025 / 1000,
  schedulerPerInvocation: 1.0 / 1e6,
  logsPerGbIngested: 0.5,
  /** aws.amazon.com/xray/pricing: $5.00 per million traces recorded (not in the research file). */
  xrayPerTrace: 5.0 / 1e6,
} as const;

/** AWS bills a month as 730 hours. */
export const SECONDS_PER_MONTH = 730 * 3600;
const GB = 1024 ** 3;

/** The fleet being priced. */
export interface Fleet {
  readonly hosts: number;
  readonly hostsPerSite: number;
  readonly relaysPerSite: number;
  readonly reportIntervalSeconds: number;
}

/** What one steady-state report measured (bench output, "ingest" tables). */
export interface IngestFigures {
  readonly memoryMb: number;
  /** Warm duration billed per report, ms (already rounded up to Lambda's 1 ms granularity). */
  readonly billedMs: number;
  readonly wru: number;
  readonly rru: number;
  readonly reportBodyBytes: number;
  /** Bytes the function writes to CloudWatch Logs per report (EMF metrics, log lines). */
  readonly functionLogBytes: number;
  /** Bytes of the API's access-log line per report. */
  readonly accessLogBytes: number;
}

/** What the detector measured per tick (bench output, "detector" tables). */
export interface DetectorFigures {
  readonly memoryMb: number;
  readonly tickSeconds: number;
  readonly runSeconds: number;
  /** Wall time of one tick, per site checked, ms. */
  readonly tickMsPerSite: number;
  /** RRU of listing the sites: bytes of one site item on the index (sum, then 4 KB pages). */
  readonly siteItemBytes: number;
  /** RRU of one site's control query. */
  readonly controlRruPerSite: number;
  /** Extra RRU per site on a capacity tick (hosts and VMs of the site). */
  readonly capacityRruPerSite: number;
  /** How often capacity is evaluated (on the first tick of every Nth minute). */
  readonly capacityEveryMinutes: number;
  /** Log bytes of one tick (its log line) and of one invocation's metrics flush. */
  readonly logBytesPerTick: number;
  readonly logBytesPerInvocation: number;
}

/** One priced line: dollars a month. */
export interface CostLine {
  readonly item: string;
  readonly group: 'liveness' | 'detector-fixed' | 'detector-per-site';
  readonly dollars: number;
  /** The quantity a month it was priced from, in words. */
  readonly quantity: string;
}

export function sitesOf(fleet: Fleet): number {
  return Math.ceil(fleet.hosts / fleet.hostsPerSite);
}

export function reportsPerMonth(fleet: Fleet): number {
  return sitesOf(fleet) * fleet.relaysPerSite * (SECONDS_PER_MONTH / fleet.reportIntervalSeconds);
}

/**
 * Ticks of one detector invocation, as functions/detector/detector.ts loops: a tick every `tickSeconds`
 * while the next one would start before `runSeconds`, so the last tick starts at (ticks − 1) · tick.
 */
export function detectorTicks(tickSeconds: number, runSeconds: number): number {
  return Math.max(1, Math.ceil(runSeconds / tickSeconds));
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Every priced line for `fleet`. */
export function monthlyCost(fleet: Fleet, ingest: IngestFigures, detector: DetectorFigures): CostLine[] {
  const reports = reportsPerMonth(fleet);
  const sites = sitesOf(fleet);
  const gbSecondsPerReport = (ingest.billedMs / 1000) * (ingest.memoryMb / 1024);
  const apiUnits = Math.max(1, Math.ceil(ingest.reportBodyBytes / PRICES.apiMeteringBytes));

  const invocations = SECONDS_PER_MONTH / 60;
  const ticks = detectorTicks(detector.tickSeconds, detector.runSeconds);
  const lastTickMs = detector.tickMsPerSite * sites;
  const detectorBilledMs = Math.ceil((ticks - 1) * detector.tickSeconds * 1000 + lastTickMs);
  const detectorGbSeconds = invocations * (detectorBilledMs / 1000) * (detector.memoryMb / 1024);
  const listSitesRru = Math.max(1, Math.ceil((sites * detector.siteItemBytes) / 4096)) / 2;
  const capacityTicks = invocations / detector.capacityEveryMinutes;
  const detectorRru = invocations * ticks * (listSitesRru + sites * detector.controlRruPerSite);
  const capacityRru = capacityTicks * sites * detector.capacityRruPerSite;
  const detectorLogBytes = invocations * (ticks * detector.logBytesPerTick + detector.logBytesPerInvocation);

  return [
    {
      item: 'API Gateway HTTP API requests',
      group: 'liveness',
      dollars: reports * apiUnits * PRICES.apiPerRequest,
      quantity: `${fmt(reports * apiUnits)} requests`,
    },
    {
      item: 'Lambda requests (ingest)',
      group: 'liveness',
      dollars: reports * PRICES.lambdaPerRequest,
      quantity: `${fmt(reports)} invocations`,
    },
    {
      item: `Lambda duration (ingest, ${ingest.memoryMb} MB arm64, ${ingest.billedMs} ms)`,
      group: 'liveness',
      dollars: reports * gbSecondsPerReport * PRICES.lambdaPerGbSecond,
      quantity: `${fmt(reports * gbSecondsPerReport)} GB-s`,
    },
    {
      item: 'DynamoDB writes (ingest)',
      group: 'liveness',
      dollars: reports * ingest.wru * PRICES.dynamoPerWru,
      quantity: `${fmt(reports * ingest.wru)} WRU`,
    },
    {
      item: 'DynamoDB reads (ingest)',
      group: 'liveness',
      dollars: reports * ingest.rru * PRICES.dynamoPerRru,
      quantity: `${fmt(reports * ingest.rru)} RRU`,
    },
    {
      item: 'CloudWatch Logs (ingest function)',
      group: 'liveness',
      dollars: ((reports * ingest.functionLogBytes) / GB) * PRICES.logsPerGbIngested,
      quantity: `${((reports * ingest.functionLogBytes) / GB).toFixed(2)} GB`,
    },
    {
      item: 'CloudWatch Logs (API access log)',
      group: 'liveness',
      dollars: ((reports * ingest.accessLogBytes) / GB) * PRICES.logsPerGbIngested,
      quantity: `${((reports * ingest.accessLogBytes) / GB).toFixed(2)} GB`,
    },
    {
      item: `Detector Lambda (${detector.memoryMb} MB, ${ticks} ticks, ${(detectorBilledMs / 1000).toFixed(1)} s)`,
      group: 'detector-fixed',
      dollars: invocations * PRICES.lambdaPerRequest + detectorGbSeconds * PRICES.lambdaPerGbSecond,
      quantity: `${fmt(invocations)} invocations, ${fmt(detectorGbSeconds)} GB-s`,
    },
    {
      item: 'EventBridge Scheduler (detector)',
      group: 'detector-fixed',
      dollars: invocations * PRICES.schedulerPerInvocation,
      quantity: `${fmt(invocations)} invocations`,
    },
    {
      item: 'CloudWatch Logs (detector)',
      group: 'detector-fixed',
      dollars: (detectorLogBytes / GB) * PRICES.logsPerGbIngested,
      quantity: `${(detectorLogBytes / GB).toFixed(2)} GB`,
    },
    {
      item: 'X-Ray traces (detector)',
      group: 'detector-fixed',
      dollars: invocations * PRICES.xrayPerTrace,
      quantity: `${fmt(invocations)} traces`,
    },
    {
      item: 'DynamoDB reads (detector: sites + control items every tick, hosts + VMs every 5 min)',
      group: 'detector-per-site',
      dollars: (detectorRru + capacityRru) * PRICES.dynamoPerRru,
      quantity: `${fmt(detectorRru + capacityRru)} RRU`,
    },
  ];
}

/** Totals of a fleet's lines. */
export interface CostSummary {
  readonly hosts: number;
  readonly liveness: number;
  readonly livenessPerHost: number;
  /** X-Ray traces of the ingest path (part of liveness). */
  readonly detectorFixed: number;
  readonly detectorPerSite: number;
  readonly total: number;
}

export function summarizeCost(fleet: Fleet, lines: readonly CostLine[]): CostSummary {
  const sum = (pred: (l: CostLine) => boolean) => lines.filter(pred).reduce((s, l) => s + l.dollars, 0);
  const liveness = sum((l) => l.group === 'liveness');
  return {
    hosts: fleet.hosts,
    liveness,
    livenessPerHost: liveness / fleet.hosts,
    detectorFixed: sum((l) => l.group === 'detector-fixed'),
    detectorPerSite: sum((l) => l.group === 'detector-per-site'),
    total: sum(() => true),
  };
}

/** Step Functions cost of one incident of `transitions` state transitions (Standard workflow). */
export function incidentWorkflowCost(transitions: number): number {
  return transitions * PRICES.sfnPerTransition;
}
