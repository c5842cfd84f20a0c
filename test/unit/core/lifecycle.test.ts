import { describe, expect, it } from 'vitest';
import {
  decide,
  evolve,
  FenceContradictedError,
  foldHostEvents,
  HOST_STATUSES,
  type HostCommand,
  type HostEvent,
  type HostState,
  IllegalTransitionError,
  initialHostState,
  isFenced,
  LifecycleError,
  StaleCommandError,
  UnexpectedEventError,
} from '../../../core/lifecycle';
import { deciderSpec } from './decider-spec';

const BOOT = 'boot-1';
const NEW_BOOT = 'boot-2';
const INC = 'inc-1';
const OTHER_INC = 'inc-2';
const RELAY_A = 'relay-a';
const RELAY_B = 'relay-b';
const AT = 1_000;

const given = deciderSpec({ decide, evolve, initialState: () => initialHostState(BOOT) });

const cmd = {
  silent: (incidentId = INC): HostCommand => ({ type: 'ReportSilent', at: AT, incidentId }),
  alive: (bootId = BOOT): HostCommand => ({ type: 'ReportAlive', at: AT, bootId }),
  startFence: (relayId = RELAY_A, incidentId = INC): HostCommand => ({
    type: 'StartFence',
    at: AT,
    incidentId,
    relayId,
  }),
  result: (readBack: 'off' | 'on' | 'unknown', relayId = RELAY_A, incidentId = INC): HostCommand => ({
    type: 'RecordFenceResult',
    at: AT,
    incidentId,
    relayId,
    readBack,
  }),
  giveUp: (incidentId = INC): HostCommand => ({
    type: 'GiveUpFencing',
    at: AT,
    incidentId,
    reason: 'deadline passed',
  }),
  operatorOff: (incidentId?: string): HostCommand => ({
    type: 'OperatorConfirmsOff',
    at: AT,
    incidentId,
    operator: 'alice',
  }),
  reopen: (incidentId = OTHER_INC): HostCommand => ({ type: 'ReopenSuspicion', at: AT, incidentId }),
  enterMaintenance: (): HostCommand => ({ type: 'EnterMaintenance', at: AT }),
  exitMaintenance: (bootId = BOOT): HostCommand => ({ type: 'ExitMaintenance', at: AT, bootId }),
};

const suspected: HostEvent[] = [{ type: 'HostSuspected', at: 100, incidentId: INC }];
const fencing: HostEvent[] = [
  ...suspected,
  { type: 'FenceStarted', at: 200, incidentId: INC, relayId: RELAY_A },
];
const awaitingOperator: HostEvent[] = [
  ...fencing,
  { type: 'FenceFailed', at: 300, incidentId: INC, reason: 'deadline passed' },
];
const fenced: HostEvent[] = [
  ...fencing,
  { type: 'PowerOffConfirmed', at: 300, incidentId: INC, by: 'ipmi-read-back', relayId: RELAY_A },
];
const maintenance: HostEvent[] = [{ type: 'MaintenanceEntered', at: 50, incidentId: null }];

const suspectState: HostState = { status: 'suspect', bootId: BOOT, incidentId: INC, since: 100 };
const fencingState: HostState = {
  status: 'fencing',
  bootId: BOOT,
  incidentId: INC,
  since: 200,
  attempts: 0,
  relaysTried: [],
};
const awaitingState: HostState = {
  status: 'awaiting-operator',
  bootId: BOOT,
  incidentId: INC,
  reason: 'deadline passed',
  since: 300,
};
const fencedByOperator: HostState = {
  status: 'fenced',
  bootId: BOOT,
  incidentId: INC,
  confirmedBy: 'operator',
  at: AT,
};

describe('host lifecycle', () => {
  it('starts up with the boot it was registered with', () => {
    expect(initialHostState(BOOT)).toEqual({ status: 'up', bootId: BOOT });
  });

  describe('given an up host', () => {
    it('when all live relays report it silent, then it is suspected in that incident', () => {
      given([])
        .when(cmd.silent())
        .then([{ type: 'HostSuspected', at: AT, incidentId: INC }])
        .andState({ status: 'suspect', bootId: BOOT, incidentId: INC, since: AT });
    });

    it('when it reports alive with its known boot, then nothing new is recorded', () => {
      given([]).when(cmd.alive()).then([]).andState({ status: 'up', bootId: BOOT });
    });

    it('when it reports alive with a new boot, then the unnoticed reboot is recorded', () => {
      given([])
        .when(cmd.alive(NEW_BOOT))
        .then([{ type: 'HostCameBack', at: AT, bootId: NEW_BOOT, bootIdChanged: true, incidentId: null }])
        .andState({ status: 'up', bootId: NEW_BOOT });
    });

    it('when it enters maintenance, then it is in maintenance with its boot', () => {
      given([])
        .when(cmd.enterMaintenance())
        .then([{ type: 'MaintenanceEntered', at: AT, incidentId: null }])
        .andState({ status: 'maintenance', bootId: BOOT });
    });

    it('when ExitMaintenance repeats its known boot, then nothing new is recorded', () => {
      given([]).when(cmd.exitMaintenance()).then([]);
    });

    it('when ExitMaintenance names another boot, then it is an illegal transition', () => {
      given([]).when(cmd.exitMaintenance(NEW_BOOT)).thenThrows(IllegalTransitionError, 'illegal-transition');
    });

    it.each([
      ['StartFence', cmd.startFence()],
      ['RecordFenceResult', cmd.result('off')],
      ['GiveUpFencing', cmd.giveUp()],
      ['OperatorConfirmsOff', cmd.operatorOff()],
    ])('when %s arrives without an incident, then it is an illegal transition', (_, command) => {
      given([]).when(command).thenThrows(IllegalTransitionError);
    });
  });

  describe('given a suspect host', () => {
    it('when the same incident reports it silent again, then nothing new is recorded (idempotent)', () => {
      given(suspected).when(cmd.silent()).then([]).andState(suspectState);
    });

    it('when another incident reports it silent, then the command is refused as stale', () => {
      given(suspected).when(cmd.silent(OTHER_INC)).thenThrows(StaleCommandError, 'stale-command');
    });

    it('when it reports alive with the same boot, then it was a false alarm', () => {
      given(suspected)
        .when(cmd.alive())
        .then([{ type: 'HostCameBack', at: AT, bootId: BOOT, bootIdChanged: false, incidentId: INC }])
        .andState({ status: 'up', bootId: BOOT });
    });

    it('when it reports alive with a new boot, then it came back after a reboot', () => {
      given(suspected)
        .when(cmd.alive(NEW_BOOT))
        .then([{ type: 'HostCameBack', at: AT, bootId: NEW_BOOT, bootIdChanged: true, incidentId: INC }])
        .andState({ status: 'up', bootId: NEW_BOOT });
    });

    it('when a fence starts, then it is being fenced with no failed attempt yet', () => {
      given(suspected)
        .when(cmd.startFence())
        .then([{ type: 'FenceStarted', at: AT, incidentId: INC, relayId: RELAY_A }])
        .andState({ ...fencingState, since: AT });
    });

    it('when a fence starts for another incident, then it is refused as stale', () => {
      given(suspected).when(cmd.startFence(RELAY_A, OTHER_INC)).thenThrows(StaleCommandError);
    });

    it('when a fence result arrives before any fence started, then it is an illegal transition', () => {
      given(suspected).when(cmd.result('off')).thenThrows(IllegalTransitionError);
    });

    it('when fencing is given up before any attempt (no relay can fence), then the operator is awaited', () => {
      given(suspected)
        .when(cmd.giveUp())
        .then([{ type: 'FenceFailed', at: AT, incidentId: INC, reason: 'deadline passed' }])
        .andState({ ...awaitingState, since: AT });
    });

    it('when an operator confirms it off for its incident, then it is fenced by the operator', () => {
      given(suspected)
        .when(cmd.operatorOff(INC))
        .then([{ type: 'PowerOffConfirmed', at: AT, incidentId: INC, by: 'operator', operator: 'alice' }])
        .andState(fencedByOperator);
    });

    it('when an operator confirms off for another incident, then it is refused as stale', () => {
      given(suspected).when(cmd.operatorOff(OTHER_INC)).thenThrows(StaleCommandError);
    });

    it('when it enters maintenance, then the incident ends and it keeps its boot', () => {
      given(suspected)
        .when(cmd.enterMaintenance())
        .then([{ type: 'MaintenanceEntered', at: AT, incidentId: INC }])
        .andState({ status: 'maintenance', bootId: BOOT });
    });

    it('when ExitMaintenance arrives, then it is an illegal transition', () => {
      given(suspected).when(cmd.exitMaintenance()).thenThrows(IllegalTransitionError);
    });
  });

  describe('given a host being fenced', () => {
    it('when a relay reads its power back as off, then it is fenced by IPMI read-back', () => {
      given(fencing)
        .when(cmd.result('off'))
        .then([
          { type: 'PowerOffConfirmed', at: AT, incidentId: INC, by: 'ipmi-read-back', relayId: RELAY_A },
        ])
        .andState({ status: 'fenced', bootId: BOOT, incidentId: INC, confirmedBy: 'ipmi-read-back', at: AT });
    });

    it.each(['on', 'unknown'] as const)(
      'when the power reads back %s, then the attempt failed and it stays fencing',
      (readBack) => {
        given(fencing)
          .when(cmd.result(readBack))
          .then([{ type: 'FenceAttemptFailed', at: AT, incidentId: INC, relayId: RELAY_A, readBack }])
          .andState({ ...fencingState, attempts: 1, relaysTried: [RELAY_A] });
      },
    );

    it('when one relay fails twice, then both attempts count but the relay is listed once', () => {
      const failedOnA: HostEvent = {
        type: 'FenceAttemptFailed',
        at: 250,
        incidentId: INC,
        relayId: RELAY_A,
        readBack: 'on',
      };
      given([...fencing, failedOnA])
        .when(cmd.result('unknown'))
        .then([
          { type: 'FenceAttemptFailed', at: AT, incidentId: INC, relayId: RELAY_A, readBack: 'unknown' },
        ])
        .andState({ ...fencingState, attempts: 2, relaysTried: [RELAY_A] });
    });

    it('when a fence result arrives for another incident, then it is refused as stale', () => {
      given(fencing)
        .when(cmd.result('off', RELAY_A, OTHER_INC))
        .thenThrows(StaleCommandError);
    });

    it('when the workflow retries through another relay, then a new attempt starts and the state holds', () => {
      given(fencing)
        .when(cmd.startFence(RELAY_B))
        .then([{ type: 'FenceStarted', at: AT, incidentId: INC, relayId: RELAY_B }])
        .andState(fencingState);
    });

    it('when fencing is given up, then the operator is awaited', () => {
      given(fencing)
        .when(cmd.giveUp())
        .then([{ type: 'FenceFailed', at: AT, incidentId: INC, reason: 'deadline passed' }])
        .andState({ ...awaitingState, since: AT });
    });

    it('when the host reports alive in the boot being fenced, then that is recorded and the fence goes on', () => {
      given(fencing)
        .when(cmd.alive())
        .then([{ type: 'AliveDuringFence', at: AT, incidentId: INC, bootId: BOOT, bootIdChanged: false }])
        .andState(fencingState);
    });

    it('when the host reports alive in a new boot, then it is up: the boot being fenced has ended', () => {
      given(fencing)
        .when(cmd.alive(NEW_BOOT))
        .then([{ type: 'HostCameBack', at: AT, bootId: NEW_BOOT, bootIdChanged: true, incidentId: INC }])
        .andState({ status: 'up', bootId: NEW_BOOT });
    });

    it('when an operator confirms it off without naming the incident, then it is fenced by the operator', () => {
      given(fencing)
        .when(cmd.operatorOff())
        .then([{ type: 'PowerOffConfirmed', at: AT, incidentId: INC, by: 'operator', operator: 'alice' }])
        .andState(fencedByOperator);
    });

    it('when silence is reported again for the incident, then nothing new is recorded', () => {
      given(fencing).when(cmd.silent()).then([]).andState(fencingState);
    });

    it('when it is put into maintenance, then it is refused: a fence is in flight', () => {
      given(fencing).when(cmd.enterMaintenance()).thenThrows(IllegalTransitionError);
    });

    it('when ExitMaintenance arrives, then it is an illegal transition', () => {
      given(fencing).when(cmd.exitMaintenance()).thenThrows(IllegalTransitionError);
    });
  });

  describe('given a host awaiting the operator', () => {
    it('when the operator confirms it off, then it is fenced by the operator', () => {
      given(awaitingOperator)
        .when(cmd.operatorOff(INC))
        .then([{ type: 'PowerOffConfirmed', at: AT, incidentId: INC, by: 'operator', operator: 'alice' }])
        .andState(fencedByOperator);
    });

    it('when an operator confirms off for another incident, then it is refused as stale', () => {
      given(awaitingOperator).when(cmd.operatorOff(OTHER_INC)).thenThrows(StaleCommandError);
    });

    it('when the host reports alive, then it is up again (nothing was restarted)', () => {
      given(awaitingOperator)
        .when(cmd.alive())
        .then([{ type: 'HostCameBack', at: AT, bootId: BOOT, bootIdChanged: false, incidentId: INC }])
        .andState({ status: 'up', bootId: BOOT });
    });

    it('when it enters maintenance, then it is in maintenance with its boot', () => {
      given(awaitingOperator)
        .when(cmd.enterMaintenance())
        .then([{ type: 'MaintenanceEntered', at: AT, incidentId: INC }])
        .andState({ status: 'maintenance', bootId: BOOT });
    });

    it('when fencing is given up again, then nothing new is recorded (idempotent)', () => {
      given(awaitingOperator).when(cmd.giveUp()).then([]).andState(awaitingState);
    });

    it('when a new fence is started, then it is an illegal transition', () => {
      given(awaitingOperator).when(cmd.startFence(RELAY_B)).thenThrows(IllegalTransitionError);
    });

    it('when a late result reads the power back as off, then it is fenced by IPMI read-back', () => {
      given(awaitingOperator)
        .when(cmd.result('off', RELAY_B))
        .then([
          { type: 'PowerOffConfirmed', at: AT, incidentId: INC, by: 'ipmi-read-back', relayId: RELAY_B },
        ])
        .andState({ status: 'fenced', bootId: BOOT, incidentId: INC, confirmedBy: 'ipmi-read-back', at: AT });
    });

    it('when a late result is inconclusive, then it is recorded and the operator is still awaited', () => {
      given(awaitingOperator)
        .when(cmd.result('unknown', RELAY_B))
        .then([
          { type: 'FenceAttemptFailed', at: AT, incidentId: INC, relayId: RELAY_B, readBack: 'unknown' },
        ])
        .andState(awaitingState);
    });

    it('when ExitMaintenance arrives, then it is an illegal transition', () => {
      given(awaitingOperator).when(cmd.exitMaintenance()).thenThrows(IllegalTransitionError);
    });
  });

  describe('given a fenced host', () => {
    it('when it reports alive with a new boot, then it rebooted after the fence and rejoins', () => {
      given(fenced)
        .when(cmd.alive(NEW_BOOT))
        .then([{ type: 'HostCameBack', at: AT, bootId: NEW_BOOT, bootIdChanged: true, incidentId: INC }])
        .andState({ status: 'up', bootId: NEW_BOOT });
    });

    it('when the fenced boot reports alive, then the fence is contradicted (split-brain signal)', () => {
      given(fenced).when(cmd.alive(BOOT)).thenThrows(FenceContradictedError, 'fence-contradicted');
    });

    it('when the power is read back off again for the incident, then nothing new is recorded (idempotent)', () => {
      given(fenced).when(cmd.result('off', RELAY_B)).then([]);
    });

    it('when a result for another incident arrives, then it is refused as stale', () => {
      given(fenced)
        .when(cmd.result('off', RELAY_A, OTHER_INC))
        .thenThrows(StaleCommandError);
    });

    it('when the power is read back on, then the fence is contradicted', () => {
      given(fenced).when(cmd.result('on', RELAY_B)).thenThrows(FenceContradictedError);
    });

    it('when an inconclusive result arrives after the confirmation, then it is an illegal transition', () => {
      given(fenced).when(cmd.result('unknown', RELAY_B)).thenThrows(IllegalTransitionError);
    });

    it('when an operator confirms it off as well, then nothing new is recorded (idempotent)', () => {
      given(fenced).when(cmd.operatorOff(INC)).then([]);
    });

    it('when silence is reported for its incident, then nothing new is recorded; for another, it is stale', () => {
      given(fenced).when(cmd.silent()).then([]);
      given(fenced).when(cmd.silent(OTHER_INC)).thenThrows(StaleCommandError);
    });

    it('when it enters maintenance, then it is in maintenance with no known boot (it is powered off)', () => {
      given(fenced)
        .when(cmd.enterMaintenance())
        .then([{ type: 'MaintenanceEntered', at: AT, incidentId: INC }])
        .andState({ status: 'maintenance', bootId: null });
    });

    it.each([
      ['StartFence', cmd.startFence(RELAY_B)],
      ['GiveUpFencing', cmd.giveUp()],
      ['ExitMaintenance', cmd.exitMaintenance()],
    ])('when %s arrives, then it is an illegal transition', (_, command) => {
      given(fenced).when(command).thenThrows(IllegalTransitionError);
    });
  });

  describe('given a host in maintenance', () => {
    it('when all relays report it silent, then the silence is ignored and recorded (safety rule 7)', () => {
      given(maintenance)
        .when(cmd.silent())
        .then([{ type: 'SilenceIgnored', at: AT, incidentId: INC, reason: 'maintenance' }])
        .andState({ status: 'maintenance', bootId: BOOT });
    });

    it('when it exits maintenance, then it is up with the boot it reports', () => {
      given(maintenance)
        .when(cmd.exitMaintenance(NEW_BOOT))
        .then([{ type: 'MaintenanceExited', at: AT, bootId: NEW_BOOT }])
        .andState({ status: 'up', bootId: NEW_BOOT });
    });

    it('when it enters maintenance again, then nothing new is recorded (idempotent)', () => {
      given(maintenance).when(cmd.enterMaintenance()).then([]);
    });

    it('when it reports alive with its known boot, then nothing new is recorded', () => {
      given(maintenance).when(cmd.alive()).then([]);
    });

    it('when it reports alive with a new boot, then it is an illegal transition (exit records the boot)', () => {
      given(maintenance).when(cmd.alive(NEW_BOOT)).thenThrows(IllegalTransitionError);
    });

    it.each([
      ['StartFence', cmd.startFence()],
      ['RecordFenceResult', cmd.result('off')],
      ['GiveUpFencing', cmd.giveUp()],
      ['OperatorConfirmsOff', cmd.operatorOff()],
    ])('when %s arrives, then it is refused: maintenance hosts are never fenced', (_, command) => {
      given(maintenance).when(command).thenThrows(IllegalTransitionError);
    });
  });

  describe('ReopenSuspicion (a still-silent host whose incident closed without a fence)', () => {
    it('given a suspect host, when a new incident reopens it, then it is suspect in the new incident from now', () => {
      given(suspected)
        .when(cmd.reopen())
        .then([{ type: 'SuspicionReopened', at: AT, incidentId: OTHER_INC, previousIncidentId: INC }])
        .andState({ status: 'suspect', bootId: BOOT, incidentId: OTHER_INC, since: AT });
    });

    it('given it was reopened already, when the same reopening repeats, then nothing new is recorded', () => {
      const reopened: HostEvent[] = [
        ...suspected,
        { type: 'SuspicionReopened', at: 200, incidentId: OTHER_INC, previousIncidentId: INC },
      ];
      given(reopened).when(cmd.reopen()).then([]);
    });

    it('given a maintenance host, then the silence is ignored (safety rule 7)', () => {
      given(maintenance)
        .when(cmd.reopen())
        .then([{ type: 'SilenceIgnored', at: AT, incidentId: OTHER_INC, reason: 'maintenance' }])
        .andState({ status: 'maintenance', bootId: BOOT });
    });

    it.each([
      ['up', [] as HostEvent[]],
      ['fencing', fencing],
      ['awaiting-operator', awaitingOperator],
      ['fenced', fenced],
    ])('given a host that is %s, then it is an illegal transition', (_, history) => {
      given(history).when(cmd.reopen()).thenThrows(IllegalTransitionError, 'illegal-transition');
    });

    it('evolve refuses a reopening that does not replace the open incident', () => {
      const event: HostEvent = {
        type: 'SuspicionReopened',
        at: AT,
        incidentId: 'inc-3',
        previousIncidentId: OTHER_INC,
      };
      expect(() => evolve(suspectState, event)).toThrow(UnexpectedEventError);
    });
  });

  describe('errors', () => {
    it('an illegal transition names the command and the status, and carries both', () => {
      const error = catchError(() =>
        decide(cmd.enterMaintenance(), foldHostEvents(initialHostState(BOOT), fencing)),
      );
      expect(error).toBeInstanceOf(IllegalTransitionError);
      expect(error).toBeInstanceOf(LifecycleError);
      expect(error).toMatchObject({
        name: 'IllegalTransitionError',
        code: 'illegal-transition',
        commandType: 'EnterMaintenance',
        status: 'fencing',
      });
      expect((error as Error).message).toMatch(/EnterMaintenance.*fencing/);
    });

    it('a stale command names both incidents', () => {
      const error = catchError(() => decide(cmd.silent(OTHER_INC), suspectState));
      expect(error).toMatchObject({
        name: 'StaleCommandError',
        code: 'stale-command',
        expectedIncidentId: INC,
        receivedIncidentId: OTHER_INC,
      });
      expect(error).toBeInstanceOf(LifecycleError);
    });

    it('a contradicted fence says which evidence contradicts it', () => {
      const state = foldHostEvents(initialHostState(BOOT), fenced);
      expect(catchError(() => decide(cmd.alive(BOOT), state))).toMatchObject({
        name: 'FenceContradictedError',
        evidence: 'same-boot-alive',
        bootId: BOOT,
        incidentId: INC,
      });
      expect(catchError(() => decide(cmd.result('on', RELAY_B), state))).toMatchObject({
        evidence: 'power-read-back-on',
        relayId: RELAY_B,
      });
    });
  });

  describe('evolve', () => {
    it('refuses an event that cannot follow the state: a power-off confirmation on an up host', () => {
      const event: HostEvent = {
        type: 'PowerOffConfirmed',
        at: AT,
        incidentId: INC,
        by: 'operator',
        operator: 'alice',
      };
      expect(() => evolve(initialHostState(BOOT), event)).toThrow(UnexpectedEventError);
    });

    it('refuses an event of another incident', () => {
      const event: HostEvent = { type: 'FenceStarted', at: AT, incidentId: OTHER_INC, relayId: RELAY_A };
      expect(() => evolve(suspectState, event)).toThrow(UnexpectedEventError);
    });

    it('does not mutate the state it is given', () => {
      const state = Object.freeze({ ...fencingState, relaysTried: Object.freeze([RELAY_A]) });
      const next = evolve(state, {
        type: 'FenceAttemptFailed',
        at: AT,
        incidentId: INC,
        relayId: RELAY_B,
        readBack: 'on',
      });
      expect(next).toMatchObject({ attempts: 1, relaysTried: [RELAY_A, RELAY_B] });
      expect(state).toMatchObject({ attempts: 0, relaysTried: [RELAY_A] });
    });
  });

  describe('helpers', () => {
    it('foldHostEvents replays a history onto a state', () => {
      expect(foldHostEvents(initialHostState(BOOT), awaitingOperator)).toEqual(awaitingState);
    });

    it('isFenced is true only for fenced hosts', () => {
      expect(isFenced(foldHostEvents(initialHostState(BOOT), fenced))).toBe(true);
      expect(isFenced(foldHostEvents(initialHostState(BOOT), fencing))).toBe(false);
    });

    it('HOST_STATUSES lists the six statuses', () => {
      expect([...HOST_STATUSES].sort()).toEqual(
        ['awaiting-operator', 'fenced', 'fencing', 'maintenance', 'suspect', 'up'].sort(),
      );
    });
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
