import { expect } from 'vitest';

/** The three functions of a decider, as the spec drives them. */
export interface Decider<State, Command, Event> {
  readonly decide: (command: Command, state: State) => Event[];
  readonly evolve: (state: State, event: Event) => State;
  readonly initialState: () => State;
}

/** What a `then` leaves to check: the state after the given and the new events. */
export interface ThenResult<State> {
  readonly state: State;
  andState(expected: State): void;
}

/** The `when` step: run the command, then assert events or an error. */
export interface WhenStep<State, Event> {
  then(expectedEvents: readonly Event[]): ThenResult<State>;
  thenThrows(errorClass: abstract new (...args: never[]) => Error, code?: string): void;
}

/**
 * Builds `given(events).when(command).then(events)` / `.thenThrows(ErrorClass)` for a decider.
 * The `then` method is never awaited: it is the specification's vocabulary, not a promise.
 */
export function deciderSpec<State, Command, Event>(decider: Decider<State, Command, Event>) {
  return function given(history: readonly Event[]) {
    const state = history.reduce(decider.evolve, decider.initialState());
    return {
      state,
      when(command: Command): WhenStep<State, Event> {
        const run = (): Event[] => decider.decide(command, state);
        return {
          // biome-ignore lint/suspicious/noThenProperty: given/when/then is the spec's vocabulary and this object is never awaited.
          then(expectedEvents) {
            const events = run();
            expect(events).toEqual(expectedEvents);
            const after = events.reduce(decider.evolve, state);
            return {
              state: after,
              andState(expected) {
                expect(after).toEqual(expected);
              },
            };
          },
          thenThrows(errorClass, code) {
            let thrown: unknown;
            try {
              run();
            } catch (error) {
              thrown = error;
            }
            expect(thrown, 'expected the command to throw').toBeInstanceOf(errorClass);
            if (code !== undefined) expect(thrown).toHaveProperty('code', code);
          },
        };
      },
    };
  };
}
