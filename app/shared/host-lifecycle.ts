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
import { retryOnConflict } from './retry';

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
  return {
    digest: host.digest,
    cluster: host.cluster,
    status: lifecycle.status,
    incidentId: 'incidentId' in lifecycle ? lifecycle.incidentId : null,
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
  // `seen` (the record as the caller just read it) saves the first read when it leads to a write: the
  // write is conditional on its version, so a stale one only costs a re-read. A decision to write nothing
  // is only ever taken on a fresh read.
  let optimistic = seen;
  const transition = await retryOnConflict(async () => {
    for (;;) {
      const guess = optimistic;
      optimistic = undefined;
      const host = guess ?? (await hosts.getHost(siteId, hostId));
      if (host === null) throw new NotFoundError(`host ${siteId}/${hostId} not found`);
      let decided: { step: NonNullable<HostPlan>; events: HostEvent[]; next: HostState } | null;
      try {
        const step = await plan(host);
        const events = step === null ? [] : decide(step.command, host.lifecycle);
        decided = step === null ? null : { step, events, next: foldHostEvents(host.lifecycle, events) };
      } catch (error) {
        // A refusal, like a decision to write nothing, stands only on a fresh read.
        if (guess !== undefined) continue;
        throw error;
      }
      // evolve hands back the very same state for repeats and audit-only events: nothing to write.
      if (decided === null || decided.next === host.lifecycle) {
        if (guess !== undefined) continue;
        return { host, before: host.lifecycle, events: decided?.events ?? [] };
      }
      const { step, events, next } = decided;
      const opts = step.incidentSeq === undefined ? undefined : { incidentSeq: step.incidentSeq };
      const saved = await hosts.setLifecycle(siteId, hostId, host.version, next, opts);
      return { host: saved, before: host.lifecycle, events, written: true as const };
    }
  });
  const summarized =
    'written' in transition
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
