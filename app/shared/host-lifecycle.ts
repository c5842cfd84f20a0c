import {
  decide,
  foldHostEvents,
  type HostCommand,
  type HostEvent,
  type HostState,
} from '../../core/lifecycle';
import type { AppContext } from '../context';
import { NotFoundError } from '../errors';
import type { HostRecord, HostSummary } from '../ports';
import { type Decision, readDecideWrite } from './retry';

/** What to ask of the host's lifecycle, decided on the freshly read record; null for nothing. */
export type HostPlan = { readonly command: HostCommand; readonly incidentSeq?: number } | null;

/** The outcome of one lifecycle command: the record after it and the events it proved. */
export interface HostTransition {
  readonly host: HostRecord;
  readonly before: HostState;
  readonly events: readonly HostEvent[];
}

/** The summary kept in the site's control item for a host record. */
export function summaryOf(host: HostRecord): HostSummary {
  const { lifecycle } = host;
  const readiness = Object.entries(host.fenceReadiness);
  return {
    digest: host.digest,
    cluster: host.cluster,
    status: lifecycle.status,
    incidentId: 'incidentId' in lifecycle ? lifecycle.incidentId : null,
    // Only the verdict of each relay: the site's summaries share one item, so the levels stay on the host.
    ...(readiness.length === 0
      ? {}
      : { fenceOk: Object.fromEntries(readiness.map(([relayId, r]) => [relayId, r.ok])) }),
    ...(host.takenAt === undefined ? {} : { bootId: host.bootId, takenAt: host.takenAt }),
  };
}

/**
 * Reads the host, decides the planned command with core `decide`, and writes the new state with one
 * conditional write (re-reading on a lost race, so only one writer's decision stands). A command that
 * proves nothing new, or only audit events that leave the state as it is, writes nothing.
 * Lifecycle errors propagate as thrown by core.
 */
export async function transitionHost(
  ctx: AppContext,
  siteId: string,
  hostId: string,
  plan: (host: HostRecord) => HostPlan | Promise<HostPlan>,
  seen?: HostRecord,
): Promise<HostTransition> {
  const { summarized, ...transition } = await transitionHostSummaryAfter(ctx, siteId, hostId, plan, seen);
  await summarized;
  return transition;
}

/**
 * transitionHost, except that the site's summary of the host is only started once the lifecycle is
 * written: `summarized` settles when it is, so that a caller's own next writes can go out beside it. The
 * caller must await it before it returns.
 */
export async function transitionHostSummaryAfter(
  ctx: AppContext,
  siteId: string,
  hostId: string,
  plan: (host: HostRecord) => HostPlan | Promise<HostPlan>,
  seen?: HostRecord,
): Promise<HostTransition & { readonly summarized: Promise<void> }> {
  const { hosts, sites } = ctx.ports;
  // `seen` saves the first read when it leads to a write (readDecideWrite).
  const transition = await readDecideWrite(
    async () => {
      const host = await hosts.getHost(siteId, hostId);
      if (host === null) throw new NotFoundError(`host ${siteId}/${hostId} not found`);
      return host;
    },
    async (host): Promise<Decision<HostTransition & { written?: true }>> => {
      const step = await plan(host);
      if (step === null) return { done: { host, before: host.lifecycle, events: [] } };
      const events = decide(step.command, host.lifecycle);
      const next = foldHostEvents(host.lifecycle, events);
      // evolve hands back the very same state for repeats and audit-only events: nothing to write.
      if (next === host.lifecycle) return { done: { host, before: host.lifecycle, events } };
      const opts = step.incidentSeq === undefined ? undefined : { incidentSeq: step.incidentSeq };
      return {
        write: async () => ({
          host: await hosts.setLifecycle(siteId, hostId, host.version, next, opts),
          before: host.lifecycle,
          events,
          written: true,
        }),
      };
    },
    seen,
  );
  const summarized =
    transition.written === true
      ? sites.putHostSummary(siteId, hostId, summaryOf(transition.host))
      : Promise.resolve();
  // Marked handled: the caller awaits it, but may first await writes of its own that fail.
  summarized.catch(() => {});
  return { host: transition.host, before: transition.before, events: transition.events, summarized };
}

/** The incident a lifecycle state belongs to, if any. */
export function incidentOf(state: HostState): string | null {
  return 'incidentId' in state ? state.incidentId : null;
}
