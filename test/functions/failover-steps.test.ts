import type { Context } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { AppContext } from '../../app/context';
import { HaloError, IncidentSupersededError, NoCapacityError, ValidationError } from '../../app/errors';
import type { Ports } from '../../app/ports';
import type { IncidentInput } from '../../contracts/workflow';
import { makeFailoverStepsHandler } from '../../functions/failover-steps/failover-steps';
import { withHaloMiddleware } from '../../functions/shared/middleware';
import { powertools } from '../../functions/shared/powertools';
import { memoryContext, SITE, T0 } from './support';

const incident: IncidentInput = {
  incidentId: 'inc-1',
  siteId: SITE,
  hostId: 'node01',
  cluster: 'c1',
  bootId: 'boot-node01',
  openedAt: T0,
  timing: {
    confirmSilenceSeconds: 2,
    fenceAttemptTimeoutSeconds: 20,
    startTimeoutSeconds: 20,
    operatorTimeoutSeconds: 3600,
  },
  evidence: { relays: [{ relayId: 'relay-1', lastHeardMsAgo: 7000 }], silentAfterMs: 6000 },
};

const lambdaContext = { getRemainingTimeInMillis: () => 10_000 } as unknown as Context;

/** A context whose every store call rejects with `error`, whatever the step reads first. */
function failingContext(error: Error): AppContext {
  const { ctx } = memoryContext();
  const failing = new Proxy({}, { get: () => () => Promise.reject(error) });
  const stores = ['sites', 'relays', 'hosts', 'vms', 'incidents', 'commands'] as const;
  const ports = { ...ctx.ports, ...Object.fromEntries(stores.map((name) => [name, failing])) };
  return { ...ctx, ports: ports as unknown as Ports };
}

/** The rejection of a promise, for assertions on the error object itself. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('failover-steps handler', () => {
  const invalid: [string, unknown][] = [
    ['null', null],
    ['an unknown step', { step: 'reboot-everything', incident }],
    ['a missing incident', { step: 'suspect' }],
    ['an extra key', { step: 'suspect', incident, extra: 1 }],
    ['a bad incident id', { step: 'suspect', incident: { ...incident, incidentId: '../etc' } }],
    ['a callback step without a token', { step: 'dispatch-fence', incident, taskToken: '' }],
  ];

  for (const [name, payload] of invalid) {
    it(`rejects ${name} with a ValidationError (by name, for Step Functions)`, async () => {
      const { ctx, state } = memoryContext();
      const before = structuredClone(state);
      const error = await rejectionOf(makeFailoverStepsHandler(ctx)(payload));
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).name).toBe('ValidationError');
      expect((error as Error).message).toMatch(/^invalid step request/);
      expect(state).toEqual(before);
    });
  }

  it('names the offending path in the message (Step Functions shows only the message as Cause)', async () => {
    const { ctx } = memoryContext();
    const error = await rejectionOf(
      makeFailoverStepsHandler(ctx)({ step: 'suspect', incident: { ...incident, openedAt: -1 } }),
    );
    expect((error as Error).message).toMatch(/incident\.openedAt/);
  });

  it('lets an error thrown by a step through unchanged, keeping its class name', async () => {
    const thrown = new IncidentSupersededError('a newer incident owns node01');
    const ctx = failingContext(thrown);
    const error = await rejectionOf(makeFailoverStepsHandler(ctx)({ step: 'confirm-silence', incident }));
    expect(error).toBe(thrown);
    expect((error as Error).name).toBe('IncidentSupersededError');
  });

  it('a real step failing on missing data throws a named HaloError', async () => {
    const { ctx } = memoryContext();
    const error = await rejectionOf(makeFailoverStepsHandler(ctx)({ step: 'confirm-silence', incident }));
    expect(error).toBeInstanceOf(HaloError);
    expect((error as Error).name).toBe((error as object).constructor.name);
  });

  it('the middleware bundle does not wrap or rename step errors either', async () => {
    const thrown = new NoCapacityError('no survivor fits vm-1');
    const ctx = failingContext(thrown);
    const handler = withHaloMiddleware(makeFailoverStepsHandler(ctx), powertools);
    const error = await rejectionOf(handler({ step: 'confirm-silence', incident }, lambdaContext));
    expect(error).toBe(thrown);
    expect((error as Error).name).toBe('NoCapacityError');
  });
});
