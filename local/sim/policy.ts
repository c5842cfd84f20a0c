import type { Scenario } from '../../contracts/scenario';
import { type HaPolicy, type HaPolicyInput, resolvePolicy } from '../../core/policy';
import { type AvailabilityConfig, haVmDownBounds, restartBudgetOf } from './availability';

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
    // A VM that boots slowly (vmBootMs) gets twice its boot time: a timeout is a start left unconfirmed.
    startTimeoutMs: t.startTimeoutMs ?? seconds(Math.max(5 * hb, 2 * (t.vmBootMs ?? 0))),
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

/** The availability rules' settings for a scenario run under `policy` (see `haVmDownBounds`). */
export function availabilityConfig(
  scenario: Scenario,
  policy: HaPolicy = scenarioPolicy(scenario),
): Omit<AvailabilityConfig, 'vms'> {
  return {
    hosts: scenario.hosts,
    policy: scenario.policy,
    bounds: haVmDownBounds(policy, scenario.timing.vmBootMs ?? 0),
    restartBudget: restartBudgetOf(policy),
    // The agent's next heartbeat, then the relay's next report, with a heartbeat to spare.
    reportLagMs: 2 * policy.hostHeartbeatMs + policy.relayReportMs,
  };
}
