import type { Scenario } from '../../contracts/scenario';
import { type HaPolicy, type HaPolicyInput, hostSilentAfterMs, resolvePolicy } from '../../core/policy';
import { DEFAULT_LAN_HTTP_TIMEOUT_MS } from '../../site/adapters/lan-transport';
import {
  type AvailabilityConfig,
  type HaDownBounds,
  haVmDownBounds,
  lanHopMs,
  restartBudgetOf,
} from './availability';

/**
 * The control plane's policy for a scenario, and what the oracle derives from it. Kept apart from the
 * runner so that the generator can size its scenarios by the same numbers without loading a control plane.
 */

const seconds = (ms: number): number => Math.max(1000, Math.ceil(ms / 1000) * 1000);

/**
 * The control plane's policy for a scenario. Durations not given derive from the heartbeat, tuned for local
 * runs so that an incident settles within 20 heartbeats of its fault: the silence is re-checked after one
 * heartbeat, a fence attempt and a start get five heartbeats (whole seconds, as Step Functions counts
 * them: at least one, which a local step of 10–50 ms leaves ample), and fencing gives up after two
 * attempts. Below a 200 ms heartbeat the whole-second floor stretches the failure paths past 20 beats.
 */
export function scenarioPolicy(scenario: Scenario): HaPolicy {
  const t = scenario.timing;
  const hb = t.hostHeartbeatMs;
  const fenceAttemptTimeoutMs = t.fenceAttemptTimeoutMs ?? seconds(5 * hb);
  const confirmSilenceMs = t.confirmSilenceMs ?? hb;
  const input: HaPolicyInput = {
    hostHeartbeatMs: hb,
    missedHeartbeats: t.missedHeartbeats,
    relayReportMs: t.relayReportMs,
    incidentReportMs: t.incidentReportMs ?? Math.min(t.relayReportMs, Math.max(25, hb / 2)),
    relaySilentAfterMs: t.relaySilentAfterMs ?? 3 * t.relayReportMs,
    confirmSilenceMs,
    fenceAttemptTimeoutMs,
    // Two attempts (through two relays when there are two), then the operator.
    fenceDeadlineMs: t.fenceDeadlineMs ?? confirmSilenceMs + 2 * fenceAttemptTimeoutMs + 2 * hb,
    // VMs that boot slowly (vmBootMs, a VM's bootMs) get twice the slowest boot: a timeout is a start left
    // unconfirmed.
    startTimeoutMs: t.startTimeoutMs ?? seconds(Math.max(5 * hb, 2 * slowestBootMs(scenario))),
    cpuOvercommit: scenario.policy.cpuOvercommit,
    reserveMiB: scenario.policy.reserveMiB,
    reserveCpus: scenario.policy.reserveCpus,
    massSilenceShare: scenario.policy.massSilenceShare,
    // Human time in production (a day); a scenario shortens it to see what a late operator gets.
    ...(t.operatorTimeoutMs === undefined ? {} : { operatorTimeoutMs: t.operatorTimeoutMs }),
    ...(scenario.policy.maxStartAttempts === undefined
      ? {}
      : { maxStartAttempts: scenario.policy.maxStartAttempts }),
  };
  return resolvePolicy(input);
}

/** The longest boot of any VM of the scenario (its own `bootMs`, else `timing.vmBootMs`). */
export function slowestBootMs(scenario: Scenario): number {
  const common = scenario.timing.vmBootMs ?? 0;
  return Math.max(common, ...scenario.vms.map((vm) => vm.bootMs ?? common));
}

/**
 * The longest one reliable LAN message may take in the scenario: under the worst conditions any of its
 * sites has, from the start or during a `lan-degrade` (see `lanHopMs`).
 */
export function scenarioLanHopMs(scenario: Scenario): number {
  const conditions = [
    ...scenario.sites.flatMap((s) => (s.lan === undefined ? [] : [s.lan])),
    ...scenario.faults.flatMap((f) => (f.type === 'lan-degrade' ? [f] : [])),
  ];
  return Math.max(0, ...conditions.map((lan) => lanHopMs(lan, DEFAULT_LAN_HTTP_TIMEOUT_MS)));
}

/**
 * The relay's loop period in a simulated run (local/sim/runner.ts gives its relays this `loopMs`): how
 * late after a report is due a relay sends it.
 */
export const simRelayLoopMs = (hostHeartbeatMs: number): number =>
  Math.max(10, Math.min(50, Math.floor(hostHeartbeatMs / 4)));

/**
 * From a host's loss to the end of its fence's last attempt: the host's silence and one relay report, the
 * fence deadline (counted from the incident's opening) and one more attempt window (whole seconds, as Step
 * Functions counts the attempt's timeout). After this the fence has given up, or confirmed.
 */
export function fenceGivesUpMs(policy: HaPolicy): number {
  return (
    hostSilentAfterMs(policy) +
    policy.relayReportMs +
    policy.fenceDeadlineMs +
    Math.ceil(policy.fenceAttemptTimeoutMs / 1000) * 1000
  );
}

/** The ha-vm-down bounds of a scenario run under `policy`. */
export function scenarioBounds(
  scenario: Scenario,
  policy: HaPolicy = scenarioPolicy(scenario),
): HaDownBounds {
  return haVmDownBounds(policy, slowestBootMs(scenario), scenarioLanHopMs(scenario));
}

/** The availability rules' settings for a scenario run under `policy` (see `haVmDownBounds`). */
export function availabilityConfig(
  scenario: Scenario,
  policy: HaPolicy = scenarioPolicy(scenario),
): Omit<AvailabilityConfig, 'vms'> {
  return {
    hosts: scenario.hosts,
    policy: scenario.policy,
    bounds: scenarioBounds(scenario, policy),
    restartBudget: restartBudgetOf(policy),
    // The agent's next heartbeat and its trip to a relay, then the relay's next report, with a heartbeat
    // to spare.
    reportLagMs: 2 * policy.hostHeartbeatMs + scenarioLanHopMs(scenario) + policy.relayReportMs,
    fence: {
      windowMs: policy.fenceAttemptTimeoutMs,
      // The relay's next report at the incident pace brings the command, and its loop sends that report.
      deliverMs: policy.incidentReportMs + simRelayLoopMs(policy.hostHeartbeatMs),
      givesUpMs: fenceGivesUpMs(policy),
    },
  };
}
