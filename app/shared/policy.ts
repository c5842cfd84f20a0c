import type { WorkflowTiming } from '../../contracts/workflow';
import { type HaPolicy, resolvePolicy } from '../../core/policy';
import type { AppContext } from '../context';
import type { ClusterRecord } from '../ports';

/** The deployment's default policy, for what is site-wide rather than per cluster (clock skew). */
export function defaultPolicy(ctx: AppContext): HaPolicy {
  return resolvePolicy(ctx.defaults);
}

/** A cluster's policy: its overrides over the deployment's defaults (the defaults alone if it is unknown). */
export function clusterPolicy(
  ctx: AppContext,
  clusters: readonly ClusterRecord[],
  clusterId: string,
): HaPolicy {
  const cluster = clusters.find((c) => c.clusterId === clusterId);
  return resolvePolicy({ ...ctx.defaults, ...cluster?.policy });
}

/**
 * When a relay should report next: the fastest interval any of the site's clusters asks for, since one
 * report serves them all and reporting early is always safe.
 */
export function reportIntervalMs(
  ctx: AppContext,
  clusters: readonly ClusterRecord[],
  incidentsOpen: boolean,
): number {
  const policies = [defaultPolicy(ctx), ...clusters.map((c) => clusterPolicy(ctx, clusters, c.clusterId))];
  return Math.min(...policies.map((p) => (incidentsOpen ? p.incidentReportMs : p.relayReportMs)));
}

/**
 * Longest the ConfirmSilence step itself waits (app/failover/confirm-silence.ts: the part of the grace
 * under a second, then the relays' word; the steps function times out at 10 s).
 */
export const CONFIRM_STEP_MAX_WAIT_MS = 5000;

/** The timings the state machine needs, in whole seconds rounded up (never shorter than the policy). */
export function workflowTiming(policy: HaPolicy): WorkflowTiming {
  const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
  return {
    // Whole seconds of the confirmation's grace, rounded down: ConfirmSilence waits the rest itself, to the
    // millisecond, and then for every live relay's report since the opening.
    confirmSilenceSeconds: Math.floor(policy.confirmSilenceMs / 1000),
    fenceAttemptTimeoutSeconds: seconds(policy.fenceAttemptTimeoutMs),
    startTimeoutSeconds: seconds(policy.startTimeoutMs),
    operatorTimeoutSeconds: seconds(policy.operatorTimeoutMs),
  };
}
