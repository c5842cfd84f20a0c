/**
 * Host lifecycle as a decider: `decide(command, state)` turns a command into the events it proves, and
 * `evolve(state, event)` folds an event into the state. Both are pure; time arrives in each command's `at`.
 *
 * The one invariant everything else serves (safety rule 1): `fenced` is reached only through
 * `PowerOffConfirmed`, which `decide` emits only for a power status read back as `off` or for an operator's
 * explicit confirmation.
 */

/** Milliseconds since the epoch, always passed in: the core never reads the clock. */
export type EpochMs = number;

/** Who or what established that a host is powered off. */
export type PowerOffConfirmation = 'ipmi-read-back' | 'operator';

/** What a relay read back from the host's BMC after a power-off. */
export type PowerReadBack = 'off' | 'on' | 'unknown';

/** Where a host stands in the HA lifecycle. */
export type HostState =
  | { readonly status: 'up'; readonly bootId: string }
  | {
      readonly status: 'suspect';
      readonly bootId: string;
      readonly incidentId: string;
      readonly since: EpochMs;
    }
  | {
      readonly status: 'fencing';
      readonly bootId: string;
      readonly incidentId: string;
      readonly since: EpochMs;
      /** Failed attempts so far, across relays. */
      readonly attempts: number;
      /** Relays whose attempt failed, each once, in the order they first failed. */
      readonly relaysTried: readonly string[];
    }
  | {
      readonly status: 'fenced';
      /** The boot that was powered off: the same boot reporting alive contradicts the fence. */
      readonly bootId: string;
      readonly incidentId: string;
      readonly confirmedBy: PowerOffConfirmation;
      readonly at: EpochMs;
    }
  | {
      readonly status: 'awaiting-operator';
      readonly bootId: string;
      readonly incidentId: string;
      readonly reason: string;
      readonly since: EpochMs;
    }
  | {
      readonly status: 'maintenance';
      /** Null when the host entered maintenance powered off: its next boot is not known yet. */
      readonly bootId: string | null;
    };

/** One of the six lifecycle statuses. */
export type HostStatus = HostState['status'];

/** The state variant of one status. */
export type HostStateOf<S extends HostStatus> = Extract<HostState, { readonly status: S }>;

// A record keyed by the union makes the compiler reject a status added to HostState but not listed here.
const STATUS_SET: Readonly<Record<HostStatus, true>> = {
  up: true,
  suspect: true,
  fencing: true,
  fenced: true,
  'awaiting-operator': true,
  maintenance: true,
};

/** Every lifecycle status. */
export const HOST_STATUSES: readonly HostStatus[] = Object.keys(STATUS_SET) as HostStatus[];

/** What the control plane asks of a host's lifecycle. */
export type HostCommand =
  /** Every live relay says the host is silent; the caller chose the incident id. */
  | { readonly type: 'ReportSilent'; readonly at: EpochMs; readonly incidentId: string }
  | { readonly type: 'ReportAlive'; readonly at: EpochMs; readonly bootId: string }
  | {
      readonly type: 'StartFence';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly relayId: string;
    }
  | {
      readonly type: 'RecordFenceResult';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly relayId: string;
      readonly readBack: PowerReadBack;
    }
  /** The fence deadline passed, or no relay can fence. */
  | {
      readonly type: 'GiveUpFencing';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly reason: string;
    }
  | {
      readonly type: 'OperatorConfirmsOff';
      readonly at: EpochMs;
      readonly incidentId?: string | undefined;
      readonly operator: string;
    }
  | { readonly type: 'EnterMaintenance'; readonly at: EpochMs }
  | { readonly type: 'ExitMaintenance'; readonly at: EpochMs; readonly bootId: string }
  /**
   * The host is still silent after its incident closed without a fence (the guard held then and no longer
   * does): a new incident replaces the closed one. The only command that names another incident on purpose.
   */
  | { readonly type: 'ReopenSuspicion'; readonly at: EpochMs; readonly incidentId: string };

/** The command variant of one type. */
export type HostCommandOf<T extends HostCommand['type']> = Extract<HostCommand, { readonly type: T }>;

/** The facts the lifecycle records. */
export type HostEvent =
  | { readonly type: 'HostSuspected'; readonly at: EpochMs; readonly incidentId: string }
  /** A still-silent suspect host moves from its closed incident to a new one. */
  | {
      readonly type: 'SuspicionReopened';
      readonly at: EpochMs;
      readonly incidentId: string;
      /** The closed incident it replaces: the one the state must still carry. */
      readonly previousIncidentId: string;
    }
  | {
      /** A false alarm, a recovery, or a reboot: `bootIdChanged` tells which. */
      readonly type: 'HostCameBack';
      readonly at: EpochMs;
      readonly bootId: string;
      readonly bootIdChanged: boolean;
      /** The incident the return ends, if one was open. */
      readonly incidentId: string | null;
    }
  | {
      readonly type: 'FenceStarted';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly relayId: string;
    }
  | {
      readonly type: 'FenceAttemptFailed';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly relayId: string;
      readonly readBack: Exclude<PowerReadBack, 'off'>;
    }
  | {
      readonly type: 'PowerOffConfirmed';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly by: 'ipmi-read-back';
      readonly relayId: string;
    }
  | {
      readonly type: 'PowerOffConfirmed';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly by: 'operator';
      readonly operator: string;
    }
  | {
      readonly type: 'FenceFailed';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly reason: string;
    }
  | {
      readonly type: 'MaintenanceEntered';
      readonly at: EpochMs;
      /** The incident the host was in, if any: maintenance ends the lifecycle's part in it. */
      readonly incidentId: string | null;
    }
  | { readonly type: 'MaintenanceExited'; readonly at: EpochMs; readonly bootId: string }
  /** Silence of a maintenance host, recorded so the audit shows it was seen and deliberately not acted on. */
  | {
      readonly type: 'SilenceIgnored';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly reason: 'maintenance';
    }
  /**
   * The host reappeared in the boot being fenced; the fence goes on, since it may be a half-dead host still
   * writing. (In a new boot it came back instead: HostCameBack.) `bootIdChanged` is always false now; kept
   * so that events recorded before read the same.
   */
  | {
      readonly type: 'AliveDuringFence';
      readonly at: EpochMs;
      readonly incidentId: string;
      readonly bootId: string;
      readonly bootIdChanged: boolean;
    };

/** The event variant of one type. */
export type HostEventOf<T extends HostEvent['type']> = Extract<HostEvent, { readonly type: T }>;

/** Machine-readable codes of the lifecycle's errors; Step Functions and handlers map on these. */
export type LifecycleErrorCode =
  | 'illegal-transition'
  | 'stale-command'
  | 'fence-contradicted'
  | 'unexpected-event';

/** Base of every error the lifecycle throws on purpose. */
export abstract class LifecycleError extends Error {
  abstract readonly code: LifecycleErrorCode;
}

/** The command is not allowed in the host's current status. */
export class IllegalTransitionError extends LifecycleError {
  override readonly name = 'IllegalTransitionError';
  readonly code = 'illegal-transition';

  constructor(
    readonly commandType: HostCommand['type'],
    readonly status: HostStatus,
    why?: string,
  ) {
    super(`${commandType} is not allowed while the host is ${status}${why === undefined ? '' : `: ${why}`}`);
  }
}

/** The command belongs to another incident than the host's open one (safety rule 4). */
export class StaleCommandError extends LifecycleError {
  override readonly name = 'StaleCommandError';
  readonly code = 'stale-command';

  constructor(
    readonly commandType: HostCommand['type'],
    readonly expectedIncidentId: string,
    readonly receivedIncidentId: string,
  ) {
    super(
      `${commandType} carries incident ${receivedIncidentId} but the host's incident is ${expectedIncidentId}: refused as stale or foreign`,
    );
  }
}

/** Evidence contradicts a confirmed power-off: a split-brain signal the caller must alarm on. */
export class FenceContradictedError extends LifecycleError {
  override readonly name = 'FenceContradictedError';
  readonly code = 'fence-contradicted';

  constructor(
    readonly incidentId: string,
    readonly bootId: string,
    readonly evidence: 'same-boot-alive' | 'power-read-back-on',
    readonly relayId?: string,
  ) {
    super(
      evidence === 'same-boot-alive'
        ? `host was confirmed off in incident ${incidentId} but boot ${bootId} is alive`
        : `host was confirmed off in incident ${incidentId} but relay ${relayId ?? '?'} read its power back as on`,
    );
  }
}

/** An event that cannot follow the state it is applied to: the event stream is corrupt or misordered. */
export class UnexpectedEventError extends LifecycleError {
  override readonly name = 'UnexpectedEventError';
  readonly code = 'unexpected-event';

  constructor(
    readonly eventType: HostEvent['type'],
    readonly status: HostStatus,
  ) {
    super(`${eventType} cannot follow a host that is ${status}`);
  }
}

/** A freshly registered host: up, with the boot it reported. */
export function initialHostState(bootId: string): HostState {
  return { status: 'up', bootId };
}

/** True when the host is confirmed powered off. */
export function isFenced(state: HostState): state is HostStateOf<'fenced'> {
  return state.status === 'fenced';
}

/** Folds events, oldest first, onto a state. */
export function foldHostEvents(initial: HostState, events: readonly HostEvent[]): HostState {
  return events.reduce(evolve, initial);
}

/**
 * Decides which events a command proves, given the host's state.
 *
 * Idempotency (safety rule 4): a command that repeats a fact already recorded returns `[]` instead of
 * failing, so retried deliveries are harmless. Examples: `ReportSilent` for the open incident,
 * `RecordFenceResult` 'off' or `OperatorConfirmsOff` on a host already fenced in that incident,
 * `GiveUpFencing` when already awaiting the operator, `EnterMaintenance` in maintenance,
 * `ReportAlive`/`ExitMaintenance` naming the boot already recorded on an up host.
 * Everything else that does not fit is contradictory and throws a `LifecycleError`; nothing is silently dropped.
 */
export function decide(command: HostCommand, state: HostState): HostEvent[] {
  // ReopenSuspicion names its new incident by design; every other command must carry the open one.
  if (command.type !== 'ReopenSuspicion') refuseForeignIncident(command, state);
  switch (state.status) {
    case 'up':
      return decideUp(command, state);
    case 'suspect':
      return decideSuspect(command, state);
    case 'fencing':
      return decideFencing(command, state);
    case 'fenced':
      return decideFenced(command, state);
    case 'awaiting-operator':
      return decideAwaitingOperator(command, state);
    case 'maintenance':
      return decideMaintenance(command, state);
    default:
      return unreachable(state);
  }
}

/** Applies one event to the state; throws `UnexpectedEventError` for an event that cannot follow it. */
export function evolve(state: HostState, event: HostEvent): HostState {
  if (!sameIncident(state, event)) throw new UnexpectedEventError(event.type, state.status);
  switch (event.type) {
    case 'HostSuspected':
      if (!hasStatus(state, ['up'])) break;
      return { status: 'suspect', bootId: state.bootId, incidentId: event.incidentId, since: event.at };
    case 'SuspicionReopened':
      if (!hasStatus(state, ['suspect'])) break;
      return { status: 'suspect', bootId: state.bootId, incidentId: event.incidentId, since: event.at };
    case 'HostCameBack':
      // From fencing only in a new boot (decide): the boot being fenced has ended by itself.
      if (!hasStatus(state, ['up', 'suspect', 'fencing', 'awaiting-operator', 'fenced'])) break;
      return { status: 'up', bootId: event.bootId };
    case 'FenceStarted':
      if (hasStatus(state, ['fencing'])) return state;
      if (!hasStatus(state, ['suspect'])) break;
      return {
        status: 'fencing',
        bootId: state.bootId,
        incidentId: state.incidentId,
        since: event.at,
        attempts: 0,
        relaysTried: [],
      };
    case 'FenceAttemptFailed':
      // A late result after giving up is recorded for the audit but changes nothing.
      if (hasStatus(state, ['awaiting-operator'])) return state;
      if (!hasStatus(state, ['fencing'])) break;
      return {
        ...state,
        attempts: state.attempts + 1,
        relaysTried: state.relaysTried.includes(event.relayId)
          ? state.relaysTried
          : [...state.relaysTried, event.relayId],
      };
    case 'PowerOffConfirmed':
      if (!hasStatus(state, ['suspect', 'fencing', 'awaiting-operator'])) break;
      return {
        status: 'fenced',
        bootId: state.bootId,
        incidentId: state.incidentId,
        confirmedBy: event.by,
        at: event.at,
      };
    case 'FenceFailed':
      if (!hasStatus(state, ['suspect', 'fencing'])) break;
      return {
        status: 'awaiting-operator',
        bootId: state.bootId,
        incidentId: state.incidentId,
        reason: event.reason,
        since: event.at,
      };
    case 'MaintenanceEntered':
      if (!hasStatus(state, ['up', 'suspect', 'awaiting-operator', 'fenced'])) break;
      // A fenced host is powered off: whatever boots next is a new boot, recorded on exit.
      return { status: 'maintenance', bootId: state.status === 'fenced' ? null : state.bootId };
    case 'MaintenanceExited':
      if (!hasStatus(state, ['maintenance'])) break;
      return { status: 'up', bootId: event.bootId };
    case 'SilenceIgnored':
      if (!hasStatus(state, ['maintenance'])) break;
      return state;
    case 'AliveDuringFence':
      if (!hasStatus(state, ['fencing'])) break;
      return state;
    default:
      return unreachable(event);
  }
  throw new UnexpectedEventError(event.type, state.status);
}

function decideUp(command: HostCommand, state: HostStateOf<'up'>): HostEvent[] {
  switch (command.type) {
    case 'ReportSilent':
      return [{ type: 'HostSuspected', at: command.at, incidentId: command.incidentId }];
    case 'ReportAlive':
      // A new boot never seen going silent is an unnoticed reboot: record it rather than lose it.
      return command.bootId === state.bootId ? [] : [cameBack(command, state.bootId, null)];
    case 'EnterMaintenance':
      return [{ type: 'MaintenanceEntered', at: command.at, incidentId: null }];
    case 'ExitMaintenance':
      if (command.bootId === state.bootId) return [];
      throw new IllegalTransitionError(
        command.type,
        state.status,
        `the host is not in maintenance and runs boot ${state.bootId}`,
      );
    case 'StartFence':
    case 'RecordFenceResult':
    case 'GiveUpFencing':
    case 'OperatorConfirmsOff':
      throw new IllegalTransitionError(command.type, state.status, 'the host has no open incident');
    case 'ReopenSuspicion':
      throw new IllegalTransitionError(
        command.type,
        state.status,
        'the host is not suspect; ReportSilent opens an incident',
      );
    default:
      return unreachable(command);
  }
}

function decideSuspect(command: HostCommand, state: HostStateOf<'suspect'>): HostEvent[] {
  switch (command.type) {
    case 'ReportSilent':
      return [];
    case 'ReportAlive':
      return [cameBack(command, state.bootId, state.incidentId)];
    case 'StartFence':
      return [
        { type: 'FenceStarted', at: command.at, incidentId: state.incidentId, relayId: command.relayId },
      ];
    case 'RecordFenceResult':
      throw new IllegalTransitionError(command.type, state.status, 'no fence was started in this incident');
    case 'GiveUpFencing':
      // No relay may be able to fence at all, before any attempt: the operator must decide.
      return [fenceFailed(command, state.incidentId)];
    case 'OperatorConfirmsOff':
      return [operatorConfirmed(command, state.incidentId)];
    case 'EnterMaintenance':
      return [{ type: 'MaintenanceEntered', at: command.at, incidentId: state.incidentId }];
    case 'ExitMaintenance':
      throw new IllegalTransitionError(command.type, state.status, 'the host is not in maintenance');
    case 'ReopenSuspicion':
      // Repeating the reopening for the incident it opened is a retried delivery.
      if (command.incidentId === state.incidentId) return [];
      return [
        {
          type: 'SuspicionReopened',
          at: command.at,
          incidentId: command.incidentId,
          previousIncidentId: state.incidentId,
        },
      ];
    default:
      return unreachable(command);
  }
}

function decideFencing(command: HostCommand, state: HostStateOf<'fencing'>): HostEvent[] {
  switch (command.type) {
    case 'ReportSilent':
      return [];
    case 'ReportAlive':
      // A new boot proves the boot being fenced is gone, with every VM process it ran: powering the new one
      // off would prove nothing more, so the host is up again and its incident restarts the old boot's VMs.
      // The same boot may be a half-dead host still writing to shared storage: the fence goes on.
      if (command.bootId !== state.bootId) return [cameBack(command, state.bootId, state.incidentId)];
      return [
        {
          type: 'AliveDuringFence',
          at: command.at,
          incidentId: state.incidentId,
          bootId: command.bootId,
          bootIdChanged: false,
        },
      ];
    case 'StartFence':
      // Every StartFence is a new attempt (relays drop repeated command ids), even through a relay that failed:
      // a busy BMC may answer the second time.
      return [
        { type: 'FenceStarted', at: command.at, incidentId: state.incidentId, relayId: command.relayId },
      ];
    case 'RecordFenceResult':
      return [fenceResult(command, state.incidentId)];
    case 'GiveUpFencing':
      return [fenceFailed(command, state.incidentId)];
    case 'OperatorConfirmsOff':
      return [operatorConfirmed(command, state.incidentId)];
    case 'EnterMaintenance':
      throw new IllegalTransitionError(
        command.type,
        state.status,
        'a fence is in flight; wait for it or give it up',
      );
    case 'ExitMaintenance':
      throw new IllegalTransitionError(command.type, state.status, 'the host is not in maintenance');
    case 'ReopenSuspicion':
      throw new IllegalTransitionError(command.type, state.status, 'its incident is still fencing the host');
    default:
      return unreachable(command);
  }
}

function decideAwaitingOperator(command: HostCommand, state: HostStateOf<'awaiting-operator'>): HostEvent[] {
  switch (command.type) {
    case 'ReportSilent':
    case 'GiveUpFencing':
      return [];
    case 'ReportAlive':
      // Nothing was restarted elsewhere, so the host simply resumes.
      return [cameBack(command, state.bootId, state.incidentId)];
    case 'StartFence':
      throw new IllegalTransitionError(
        command.type,
        state.status,
        'fencing was given up; the operator decides',
      );
    case 'RecordFenceResult':
      // A late result still counts: a read-back 'off' is as strong as it would have been in time.
      return [fenceResult(command, state.incidentId)];
    case 'OperatorConfirmsOff':
      return [operatorConfirmed(command, state.incidentId)];
    case 'EnterMaintenance':
      return [{ type: 'MaintenanceEntered', at: command.at, incidentId: state.incidentId }];
    case 'ExitMaintenance':
      throw new IllegalTransitionError(command.type, state.status, 'the host is not in maintenance');
    case 'ReopenSuspicion':
      throw new IllegalTransitionError(command.type, state.status, 'its incident waits for the operator');
    default:
      return unreachable(command);
  }
}

function decideFenced(command: HostCommand, state: HostStateOf<'fenced'>): HostEvent[] {
  switch (command.type) {
    case 'ReportSilent':
    case 'OperatorConfirmsOff':
      return [];
    case 'ReportAlive':
      if (command.bootId === state.bootId) {
        throw new FenceContradictedError(state.incidentId, state.bootId, 'same-boot-alive');
      }
      return [cameBack(command, state.bootId, state.incidentId)];
    case 'RecordFenceResult':
      if (command.readBack === 'off') return [];
      if (command.readBack === 'on') {
        throw new FenceContradictedError(
          state.incidentId,
          state.bootId,
          'power-read-back-on',
          command.relayId,
        );
      }
      throw new IllegalTransitionError(
        command.type,
        state.status,
        'an inconclusive result after the power-off was confirmed',
      );
    case 'StartFence':
    case 'GiveUpFencing':
      throw new IllegalTransitionError(
        command.type,
        state.status,
        `power-off already confirmed by ${state.confirmedBy}`,
      );
    case 'EnterMaintenance':
      return [{ type: 'MaintenanceEntered', at: command.at, incidentId: state.incidentId }];
    case 'ExitMaintenance':
      throw new IllegalTransitionError(command.type, state.status, 'the host is not in maintenance');
    case 'ReopenSuspicion':
      throw new IllegalTransitionError(
        command.type,
        state.status,
        'the host is powered off; it returns through ReportAlive with a new boot',
      );
    default:
      return unreachable(command);
  }
}

function decideMaintenance(command: HostCommand, state: HostStateOf<'maintenance'>): HostEvent[] {
  switch (command.type) {
    case 'ReportSilent':
    case 'ReopenSuspicion':
      // Safety rule 7: a maintenance host is never suspected, but the silence is recorded.
      return [
        { type: 'SilenceIgnored', at: command.at, incidentId: command.incidentId, reason: 'maintenance' },
      ];
    case 'ReportAlive':
      if (command.bootId === state.bootId) return [];
      throw new IllegalTransitionError(
        command.type,
        state.status,
        'a maintenance host changes boot only through ExitMaintenance, which records the new boot',
      );
    case 'EnterMaintenance':
      return [];
    case 'ExitMaintenance':
      return [{ type: 'MaintenanceExited', at: command.at, bootId: command.bootId }];
    case 'StartFence':
    case 'RecordFenceResult':
    case 'GiveUpFencing':
    case 'OperatorConfirmsOff':
      throw new IllegalTransitionError(command.type, state.status, 'a maintenance host is never fenced');
    default:
      return unreachable(command);
  }
}

function cameBack(
  command: HostCommandOf<'ReportAlive'>,
  knownBootId: string,
  incidentId: string | null,
): HostEvent {
  return {
    type: 'HostCameBack',
    at: command.at,
    bootId: command.bootId,
    bootIdChanged: command.bootId !== knownBootId,
    incidentId,
  };
}

function fenceResult(command: HostCommandOf<'RecordFenceResult'>, incidentId: string): HostEvent {
  // Safety rule 1: only a power status read back as 'off' confirms; an acknowledged power-off proves nothing.
  if (command.readBack === 'off') {
    return {
      type: 'PowerOffConfirmed',
      at: command.at,
      incidentId,
      by: 'ipmi-read-back',
      relayId: command.relayId,
    };
  }
  return {
    type: 'FenceAttemptFailed',
    at: command.at,
    incidentId,
    relayId: command.relayId,
    readBack: command.readBack,
  };
}

function fenceFailed(command: HostCommandOf<'GiveUpFencing'>, incidentId: string): HostEvent {
  return { type: 'FenceFailed', at: command.at, incidentId, reason: command.reason };
}

function operatorConfirmed(command: HostCommandOf<'OperatorConfirmsOff'>, incidentId: string): HostEvent {
  return {
    type: 'PowerOffConfirmed',
    at: command.at,
    incidentId,
    by: 'operator',
    operator: command.operator,
  };
}

// Safety rule 4: a command for another incident than the open one is refused before anything else is looked at.
function refuseForeignIncident(command: HostCommand, state: HostState): void {
  const expected = 'incidentId' in state ? state.incidentId : undefined;
  const received = 'incidentId' in command ? command.incidentId : undefined;
  if (expected !== undefined && received !== undefined && received !== expected) {
    throw new StaleCommandError(command.type, expected, received);
  }
}

function sameIncident(state: HostState, event: HostEvent): boolean {
  const open = 'incidentId' in state ? state.incidentId : null;
  // A reopened suspicion carries a new incident id; the state must hold the one it replaces.
  const carried =
    event.type === 'SuspicionReopened'
      ? event.previousIncidentId
      : 'incidentId' in event
        ? event.incidentId
        : null;
  return open === null || carried === null || carried === open;
}

function hasStatus<S extends HostStatus>(state: HostState, statuses: readonly S[]): state is HostStateOf<S> {
  return (statuses as readonly HostStatus[]).includes(state.status);
}

function unreachable(value: never): never {
  throw new Error(`unhandled lifecycle variant: ${JSON.stringify(value)}`);
}
