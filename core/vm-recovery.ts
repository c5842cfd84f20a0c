import type { HostStatus } from './lifecycle';
import type { PlacementPolicy, Vm } from './model';
import { type HostLoad, rankHosts } from './placement';

/**
 * VM-level HA rules, pure: whether a VM that stopped did so unexpectedly, how many restarts its budget
 * allows and when, and where a VM that is down may start without ever running twice. The control plane's
 * recovery (app/recovery) applies them; time arrives as `now`.
 */

/** A VM's power state as the control plane records it (`down`: its host was fenced). */
export type RecordedVmState = 'running' | 'paused' | 'shut-off' | 'crashed' | 'down';

/** How a VM's state reads for HA: it runs, it stopped unexpectedly, or it was stopped on purpose. */
export type VmStopKind = 'active' | 'unexpected' | 'on-purpose';

/**
 * libvirt reasons of a `shut-off` VM that HA restarts: it crashed, failed, or nobody knows why (an agent
 * that predates reasons sends none, which counts as unknown). Every other reason is someone's intent or
 * not a failure: `shutdown` (its guest shut down), `destroyed` (an operator stopped it), `saved`,
 * `migrated` (it runs elsewhere now), `from-snapshot`, `daemon`.
 */
export const UNEXPECTED_SHUTOFF_REASONS: readonly string[] = ['crashed', 'failed', 'unknown'];

/** Classifies a VM's state and libvirt reason (null: not reported). */
export function classifyVmState(state: RecordedVmState, reason: string | null): VmStopKind {
  switch (state) {
    case 'running':
    case 'paused':
      return 'active';
    case 'crashed':
    case 'down':
      return 'unexpected';
    case 'shut-off':
      return reason === null || UNEXPECTED_SHUTOFF_REASONS.includes(reason) ? 'unexpected' : 'on-purpose';
    default:
      return unreachable(state);
  }
}

/** The policy fields the restart budget reads (core/policy.ts HaPolicy). */
export interface RestartBudgetPolicy {
  readonly vmRestartLimit: number;
  readonly vmRestartWindowMs: number;
  readonly vmRestartBackoffMs: number;
}

/** What the budget says about restarting a VM now. */
export type RestartVerdict =
  | {
      readonly allowed: true;
      /** When the restart may go out: now, or later for the backoff. */
      readonly at: number;
      /** Restarts still inside the window, oldest first: the history to keep. */
      readonly recent: readonly number[];
    }
  | {
      readonly allowed: false;
      /** When the oldest restart that counts leaves the window and one restart is allowed again. */
      readonly until: number;
      readonly recent: readonly number[];
    };

/**
 * The restart budget: at most `vmRestartLimit` restarts in any `vmRestartWindowMs` (sliding), and before
 * the n-th of the window (n ≥ 2) a backoff of `vmRestartBackoffMs × 2^(n−2)` after the previous one. A VM
 * that crashed once an hour ago restarts at once; one that crashes right after each restart is restarted
 * ever more slowly, then left down until the window lets it try again.
 */
export function restartVerdict(
  restarts: readonly number[],
  now: number,
  policy: RestartBudgetPolicy,
): RestartVerdict {
  const recent = restarts.filter((at) => at > now - policy.vmRestartWindowMs).sort((a, b) => a - b);
  if (recent.length >= policy.vmRestartLimit) {
    // The restart that must leave the window for one slot to free up.
    const blocking = recent[recent.length - policy.vmRestartLimit] as number;
    return { allowed: false, until: blocking + policy.vmRestartWindowMs, recent };
  }
  const last = recent.at(-1);
  if (last === undefined) return { allowed: true, at: now, recent };
  const backoff = policy.vmRestartBackoffMs * 2 ** (recent.length - 1);
  return { allowed: true, at: Math.max(now, last + backoff), recent };
}

/** What is known about a host a VM was last on (or is pinned to), from its lifecycle and the relays. */
export interface HostFacts {
  readonly hostId: string;
  readonly status: HostStatus;
  /** Some live relay hears the host now (it is not silent). */
  readonly heard: boolean;
  /** The boot the host runs now, as its inventory last said. */
  readonly bootId: string;
}

/** A host a start went to without a result: until that host's boot ends, the VM may come up there. */
export interface StartPin {
  readonly hostId: string;
  readonly bootId: string;
}

/** Where a VM that is down may start now. */
export type StartScope =
  | { readonly kind: 'none'; readonly reason: string }
  /** Only this host: a start there may still be under way, and a second start on one host is harmless. */
  | { readonly kind: 'pinned'; readonly hostId: string }
  | {
      readonly kind: 'free';
      /** The host it stopped on, first choice (null: that host takes nothing now). */
      readonly inPlace: string | null;
      /** Other hosts, by placement: only once the VM is known not running where it was. */
      readonly elsewhere: boolean;
    };

/**
 * Where a VM that is down may start without two copies ever running: nowhere while it runs (`active`) or
 * while what its host does is unknown (silent, suspect, being fenced, awaiting an operator: that host's
 * incident decides); on its host again (in place) while that host is up and heard, since libvirt never runs
 * one domain twice on a host; elsewhere once the host is known not to run it: heard reporting it stopped,
 * fenced (powered off), or running a later boot than the one the VM ran in. A pin (an earlier start without
 * a result) restricts it to the pinned host for as long as that host runs the same boot.
 */
export function startScope(input: {
  readonly vmState: RecordedVmState;
  /** The host the record names (where it stopped); null for a VM never seen on a host. */
  readonly lastHost: HostFacts | null;
  readonly pin: StartPin | null;
  /** Facts of the pinned host (null when the pin is null or the host is unknown). */
  readonly pinnedHost: HostFacts | null;
}): StartScope {
  const { vmState, lastHost, pin, pinnedHost } = input;
  if (vmState === 'running' || vmState === 'paused') return { kind: 'none', reason: 'it runs' };
  if (pin !== null && pinLasts(pin, pinnedHost)) {
    if (pinnedHost?.status === 'up' && pinnedHost.heard) return { kind: 'pinned', hostId: pin.hostId };
    return {
      kind: 'none',
      reason: `a start on ${pin.hostId} got no result and may still bring it up there, which is not up and heard now`,
    };
  }
  if (lastHost === null) return { kind: 'none', reason: 'it was never seen on a host' };
  switch (lastHost.status) {
    case 'fenced':
      return { kind: 'free', inPlace: null, elsewhere: true };
    case 'up':
      if (!lastHost.heard) return { kind: 'none', reason: `${lastHost.hostId} is silent` };
      return { kind: 'free', inPlace: lastHost.hostId, elsewhere: true };
    case 'maintenance':
      // Heard saying the VM is stopped, it may start elsewhere; the host itself takes nothing (rule 7).
      if (!lastHost.heard) return { kind: 'none', reason: `${lastHost.hostId} is in maintenance and silent` };
      return { kind: 'free', inPlace: null, elsewhere: true };
    case 'suspect':
    case 'fencing':
    case 'awaiting-operator':
      return {
        kind: 'none',
        reason: `${lastHost.hostId} is ${lastHost.status}: its incident decides what runs there`,
      };
    default:
      return unreachable(lastHost.status);
  }
}

/** A pin holds while its host exists, is not fenced and still runs the boot of the start. */
function pinLasts(pin: StartPin, host: HostFacts | null): boolean {
  return host !== null && host.status !== 'fenced' && host.bootId === pin.bootId;
}

/**
 * The hosts to try, best first, for a VM allowed `scope`: its own host first when it fits there (in place),
 * then every other up host that can take it by placement (core rankHosts: lowest memory load after, within
 * memory, CPU overcommit, reserve and anti-affinity). Hosts in `tried` (this restart's failed attempts) are
 * left out. `loads` are the candidate hosts (up, with what they run and hold).
 */
export function recoveryTargets(args: {
  readonly vm: Vm;
  readonly scope: StartScope;
  readonly loads: readonly HostLoad[];
  readonly policy: PlacementPolicy;
  readonly tried: readonly string[];
}): string[] {
  const { vm, scope, loads, policy, tried } = args;
  if (scope.kind === 'none') return [];
  const ranked = rankHosts(vm, loads, policy, tried).map((r) => r.hostId);
  if (scope.kind === 'pinned') return ranked.filter((h) => h === scope.hostId);
  const inPlace = scope.inPlace !== null && ranked.includes(scope.inPlace) ? [scope.inPlace] : [];
  const others = scope.elsewhere ? ranked.filter((h) => h !== scope.inPlace) : [];
  return [...inPlace, ...others];
}

function unreachable(value: never): never {
  throw new Error(`unhandled variant: ${JSON.stringify(value)}`);
}
