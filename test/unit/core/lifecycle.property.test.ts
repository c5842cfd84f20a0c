import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decide,
  evolve,
  HOST_STATUSES,
  type HostCommand,
  type HostEvent,
  type HostState,
  initialHostState,
  LifecycleError,
  StaleCommandError,
} from '../../../core/lifecycle';

const RUNS = { seed: 42, numRuns: 500 };

// Small id sets so that matching and foreign incidents, known and new boots, all occur often.
const INCIDENTS = ['inc-1', 'inc-2'];
const BOOTS = ['boot-1', 'boot-2', 'boot-3'];
const RELAYS = ['relay-a', 'relay-b'];

const at = fc.nat({ max: 1_000_000 });
const incidentId = fc.constantFrom(...INCIDENTS);
const bootId = fc.constantFrom(...BOOTS);
const relayId = fc.constantFrom(...RELAYS);

// Fencing commands weigh more: a uniform mix leaves the fencing states too rarely visited to test them.
const arbCommand: fc.Arbitrary<HostCommand> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('ReportSilent' as const), at, incidentId }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('ReportAlive' as const), at, bootId }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('StartFence' as const), at, incidentId, relayId }) },
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('RecordFenceResult' as const),
      at,
      incidentId,
      relayId,
      readBack: fc.constantFrom('off' as const, 'on' as const, 'unknown' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('GiveUpFencing' as const),
      at,
      incidentId,
      reason: fc.constant('deadline passed'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('OperatorConfirmsOff' as const),
      at,
      incidentId: fc.option(incidentId, { nil: undefined }),
      operator: fc.constant('alice'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('EnterMaintenance' as const), at }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('ExitMaintenance' as const), at, bootId }) },
);

// size 'max': the default 'small' size would cap histories at about ten commands whatever maxLength says.
const arbCommands = fc.array(arbCommand, { maxLength: 60, size: 'max' });

/** One command applied: the state before, what decide answered, and each state the events led through. */
interface Step {
  readonly command: HostCommand;
  readonly before: HostState;
  readonly events: readonly HostEvent[];
  /** `states[i]` follows `events[i]`. */
  readonly states: readonly HostState[];
  readonly after: HostState;
  readonly error: LifecycleError | null;
}

// Frozen states make any mutation inside decide or evolve throw a TypeError, which the runner rethrows.
function frozen(state: HostState): HostState {
  if (state.status === 'fencing') Object.freeze(state.relaysTried);
  return Object.freeze(state);
}

/** Applies one command; rethrows anything that is not a LifecycleError, so properties see it as a failure. */
function step(state: HostState, command: HostCommand): Step {
  let events: HostEvent[];
  try {
    events = decide(command, state);
  } catch (error) {
    if (error instanceof LifecycleError)
      return { command, before: state, events: [], states: [], after: state, error };
    throw error;
  }
  // evolve must accept every event decide produced: no error of any kind is tolerated here.
  const states: HostState[] = [];
  let current = state;
  for (const event of events) {
    current = frozen(evolve(current, event));
    states.push(current);
  }
  return { command, before: state, events, states, after: current, error: null };
}

function run(commands: readonly HostCommand[]): Step[] {
  let state = frozen(initialHostState('boot-1'));
  const steps: Step[] = [];
  for (const command of commands) {
    const s = step(state, command);
    steps.push(s);
    state = s.after;
  }
  return steps;
}

function forEveryStep(check: (s: Step) => void): void {
  fc.assert(
    fc.property(arbCommands, (commands) => {
      for (const s of run(commands)) check(s);
    }),
    RUNS,
  );
}

describe('host lifecycle properties', () => {
  it('decide throws nothing but LifecycleErrors and evolve accepts every event decide produces', () => {
    // run() rethrows any other error, and evolve is called outside the catch.
    forEveryStep(() => undefined);
  });

  it('a host becomes fenced only through PowerOffConfirmed, from a read-back off or an operator (safety rule 1)', () => {
    forEveryStep((s) => {
      let previous = s.before;
      s.events.forEach((event, i) => {
        const next = s.states[i];
        if (next?.status === 'fenced' && previous.status !== 'fenced') {
          expect(event.type).toBe('PowerOffConfirmed');
          if (event.type === 'PowerOffConfirmed' && event.by === 'ipmi-read-back') {
            expect(s.command).toMatchObject({ type: 'RecordFenceResult', readBack: 'off' });
          } else {
            expect(s.command.type).toBe('OperatorConfirmsOff');
          }
        }
        if (next !== undefined) previous = next;
      });
    });
  });

  it("a fence result read back 'on' or 'unknown' never makes a host fenced", () => {
    forEveryStep((s) => {
      if (
        s.command.type === 'RecordFenceResult' &&
        s.command.readBack !== 'off' &&
        s.before.status !== 'fenced'
      ) {
        expect(s.after.status).not.toBe('fenced');
        expect(s.events.map((e) => e.type)).not.toContain('PowerOffConfirmed');
      }
    });
  });

  it('the state is always one of the six statuses, with consistent fencing bookkeeping', () => {
    forEveryStep((s) => {
      for (const state of [s.before, ...s.states]) {
        expect(HOST_STATUSES).toContain(state.status);
        if (state.status === 'fencing') {
          expect(new Set(state.relaysTried).size).toBe(state.relaysTried.length);
          expect(state.attempts).toBeGreaterThanOrEqual(state.relaysTried.length);
        }
      }
    });
  });

  it('a maintenance host is never suspected, fenced or being fenced (safety rule 7)', () => {
    forEveryStep((s) => {
      if (s.before.status === 'maintenance') {
        expect(['maintenance', 'up']).toContain(s.after.status);
        if (s.command.type === 'ReportSilent') expect(s.after).toEqual(s.before);
      }
    });
  });

  it('a command of another incident than the open one is always refused as stale (safety rule 4)', () => {
    forEveryStep((s) => {
      const open = 'incidentId' in s.before ? s.before.incidentId : undefined;
      const carried = 'incidentId' in s.command ? s.command.incidentId : undefined;
      if (open !== undefined && carried !== undefined && carried !== open) {
        expect(s.error).toBeInstanceOf(StaleCommandError);
      }
    });
  });

  it('repeating an accepted command changes nothing (safety rule 4), failed fence results aside', () => {
    forEveryStep((s) => {
      // Each failed result counts as an attempt; the caller dedupes deliveries by command id.
      const countsAttempts = s.command.type === 'RecordFenceResult' && s.command.readBack !== 'off';
      if (s.error !== null || countsAttempts) return;
      const repeat = step(s.after, s.command);
      expect(repeat.error).toBeNull();
      expect(repeat.after).toEqual(s.after);
    });
  });

  it('the generated histories reach every status and every event type', () => {
    const statuses = new Set<string>();
    const eventTypes = new Set<string>();
    for (const commands of fc.sample(arbCommands, RUNS)) {
      for (const s of run(commands)) {
        statuses.add(s.after.status);
        for (const event of s.events) eventTypes.add(event.type);
      }
    }
    expect([...statuses].sort()).toEqual([...HOST_STATUSES].sort());
    expect([...eventTypes].sort()).toEqual(
      [
        'AliveDuringFence',
        'FenceAttemptFailed',
        'FenceFailed',
        'FenceStarted',
        'HostCameBack',
        'HostSuspected',
        'MaintenanceEntered',
        'MaintenanceExited',
        'PowerOffConfirmed',
        'SilenceIgnored',
      ].sort(),
    );
  });
});
