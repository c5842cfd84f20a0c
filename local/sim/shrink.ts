import { type Scenario, ScenarioSchema, type ViolationRule } from '../../contracts/scenario';
import type { RunOptions, RunResult } from './runner';

/**
 * Shrinking a failing schedule (QuickCheck's and TigerBeetle's VOPR's practice): a generated scenario that
 * breaks a rule is cut down, one removal at a time, to a small one that still breaks it (fewer faults,
 * hosts, VMs and relays), re-run with the same seed on virtual time after each cut. Greedy and bounded:
 * each accepted cut restarts the search, and it stops when no cut keeps the violation or the run budget is
 * spent. What it returns is a scenario file's content: it replays with `npm run sim -- FILE --seed N`.
 */

/** Runs one candidate; the simulator's runner, or a test's stub. */
export type ShrinkRunner = (scenario: Scenario, options: RunOptions) => Promise<RunResult>;

/** Options of {@link shrinkScenario}. */
export interface ShrinkOptions {
  readonly seed: number;
  /** The rule the original run broke: a candidate is kept only when it breaks this one too. */
  readonly rule: ViolationRule;
  readonly runner: ShrinkRunner;
  /** Candidate runs at most; 200 by default. */
  readonly maxRuns?: number;
  /** Each accepted cut, as it is made. */
  readonly onStep?: (step: ShrinkStep) => void;
}

/** One cut kept. */
export interface ShrinkStep {
  readonly cut: string;
  readonly size: ScenarioSize;
  readonly runs: number;
}

/** How big a scenario is, as shrinking counts it. */
export interface ScenarioSize {
  readonly hosts: number;
  readonly vms: number;
  readonly faults: number;
  readonly relays: number;
}

/** What shrinking came to. */
export interface ShrinkResult {
  readonly scenario: Scenario;
  readonly from: ScenarioSize;
  readonly to: ScenarioSize;
  readonly runs: number;
  readonly steps: readonly ShrinkStep[];
  /** The violation's detail in the smallest run. */
  readonly detail: string;
}

export function sizeOf(s: Scenario): ScenarioSize {
  return {
    hosts: s.hosts.length,
    vms: s.vms.length,
    faults: s.faults.length,
    relays: s.sites.reduce((n, site) => n + site.relays.length, 0),
  };
}

/** A candidate: a description of the cut and the scenario after it. */
interface Cut {
  readonly cut: string;
  readonly scenario: Scenario;
}

/** Every fault that names `key` = `value` (a host, VM, relay or site) goes with it. */
function mentions(fault: Scenario['faults'][number], key: 'host' | 'vm' | 'relay' | 'site', id: string) {
  return key in fault && (fault as Record<string, unknown>)[key] === id;
}

function withoutHost(s: Scenario, hostId: string): Scenario {
  const vms = new Set(s.vms.filter((v) => v.host === hostId).map((v) => v.id));
  return {
    ...s,
    hosts: s.hosts.filter((h) => h.id !== hostId),
    vms: s.vms.filter((v) => v.host !== hostId),
    faults: s.faults.filter(
      (f) => !mentions(f, 'host', hostId) && ![...vms].some((v) => mentions(f, 'vm', v)),
    ),
  };
}

function withoutVm(s: Scenario, vmId: string): Scenario {
  return {
    ...s,
    vms: s.vms.filter((v) => v.id !== vmId),
    faults: s.faults.filter((f) => !mentions(f, 'vm', vmId)),
  };
}

function withoutRelay(s: Scenario, relayId: string): Scenario {
  return {
    ...s,
    sites: s.sites.map((site) => {
      const { relayClockSkewMs, ...rest } = site;
      // The relay's clock skew goes with it (a skew may only name a relay of its site).
      const skew = Object.entries(relayClockSkewMs ?? {}).filter(([r]) => r !== relayId);
      return {
        ...rest,
        relays: site.relays.filter((r) => r !== relayId),
        ...(skew.length === 0 ? {} : { relayClockSkewMs: Object.fromEntries(skew) }),
      };
    }),
    faults: s.faults.filter((f) => !mentions(f, 'relay', relayId)),
  };
}

/** Runs of `items` to cut, largest first: halves, quarters, … down to one at a time (ddmin's order). */
function* chunksOf<T>(items: readonly T[]): Generator<T[]> {
  for (let size = Math.max(1, Math.floor(items.length / 2)); size >= 1; size = Math.floor(size / 2)) {
    for (let from = 0; from + size <= items.length; from += size) yield items.slice(from, from + size);
  }
}

/** The cuts to try on `s`, largest first: faults, hosts (with their VMs), VMs, relays. */
function* cutsOf(s: Scenario): Generator<Cut> {
  for (const gone of chunksOf(s.faults)) {
    yield {
      cut: `faults ${gone.map((f) => `${f.type}@${f.atMs}`).join(', ')}`,
      scenario: { ...s, faults: s.faults.filter((f) => !gone.includes(f)) },
    };
  }
  for (const h of s.hosts) yield { cut: `host ${h.id} and its VMs`, scenario: withoutHost(s, h.id) };
  for (const gone of chunksOf(s.vms)) {
    yield {
      cut: `VM ${gone.map((v) => v.id).join(', ')}`,
      scenario: gone.reduce((acc, v) => withoutVm(acc, v.id), s),
    };
  }
  for (const site of s.sites) {
    for (const r of site.relays) yield { cut: `relay ${r}`, scenario: withoutRelay(s, r) };
  }
}

/** Shrinks `scenario` (which broke `rule` with `seed`) as far as the budget allows; see the module note. */
export async function shrinkScenario(scenario: Scenario, options: ShrinkOptions): Promise<ShrinkResult> {
  const maxRuns = options.maxRuns ?? 200;
  const steps: ShrinkStep[] = [];
  let best = scenario;
  let detail = '';
  let runs = 0;
  const breaks = async (candidate: Scenario): Promise<string | null> => {
    runs += 1;
    try {
      const { report } = await options.runner(candidate, { seed: options.seed });
      return report.violations.find((v) => v.rule === options.rule)?.detail ?? null;
    } catch {
      // A cut the simulator cannot run (a site left with only a deaf relay never warms up) proves nothing.
      return null;
    }
  };
  let progress = true;
  while (progress && runs < maxRuns) {
    progress = false;
    for (const { cut, scenario: candidate } of cutsOf(best)) {
      if (runs >= maxRuns) break;
      // A cut that leaves the file invalid (a site without relays, no host) is no candidate.
      const valid = ScenarioSchema.safeParse(candidate);
      if (!valid.success) continue;
      const found = await breaks(valid.data);
      if (found === null) continue;
      best = valid.data;
      detail = found;
      steps.push({ cut, size: sizeOf(best), runs });
      options.onStep?.(steps.at(-1) as ShrinkStep);
      progress = true;
      break;
    }
  }
  if (detail === '') detail = (await breaks(best)) ?? '';
  const from = sizeOf(scenario);
  const to = sizeOf(best);
  const name = `${scenario.name} — shrunk (seed ${options.seed}, ${options.rule}): ${to.hosts} host(s), ${to.vms} VM(s), ${to.faults} fault(s)`;
  return { scenario: { ...best, name: name.slice(0, 200) }, from, to, runs, steps, detail };
}
