import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoStores } from '../../adapters/dynamodb';
import { type LocalDynalite, startDynalite } from '../../local/dynalite';
import { MetricsRecorder } from '../../local/metrics-recorder';
import { sharedStepsRuntime } from '../../local/steps-runtime';
import { newHost, newIncident, T0 } from '../support/store-fixtures';

/**
 * The failover steps on their own thread: what crosses the boundary (errors by name, callback completions,
 * metrics) arrives on the control plane's side intact, and each control plane's steps use its table only.
 */

let dynamo: LocalDynalite;

beforeAll(async () => {
  dynamo = await startDynalite({ thread: 'worker' });
  await dynamo.createTable('steps-a');
  await dynamo.createTable('steps-b');
});

afterAll(async () => {
  await dynamo.stop();
});

// Site s1, host h1 (up in its lifecycle: it came back) and its open incident.
const record = newIncident('s1:h1:1', T0);
const input = record.input;

/** In table `table`: h1 up again (no incident in its lifecycle) and the incident it had. */
async function seed(table: string): Promise<void> {
  const stores = createDynamoStores({ client: dynamo.client, tableName: table });
  await stores.hosts.createHost(newHost('h1'));
  await stores.incidents.create(record);
}

function sinks() {
  const completions: { token: string; output: unknown }[] = [];
  const metrics = new MetricsRecorder();
  return {
    completions,
    metrics,
    workflow: {
      sendTaskSuccess: async (token: string, output: unknown) => {
        completions.push({ token, output });
      },
      sendTaskFailure: async () => {},
    },
  };
}

describe('the steps runtime (failover steps on a worker thread)', () => {
  it('rejects with the error name the step threw, so that Retry/Catch match on it', async () => {
    const a = sinks();
    const plane = await sharedStepsRuntime().open({
      endpoint: dynamo.endpoint,
      tableName: 'steps-a',
      defaults: {},
      ...a,
    });
    try {
      await expect(plane.handler({ step: 'no-such-step' })).rejects.toMatchObject({
        name: 'ValidationError',
      });
      // The incident is not in this table: the step's NotFoundError, by name.
      await expect(plane.handler({ step: 'suspect', incident: input })).rejects.toMatchObject({
        name: 'NotFoundError',
      });
    } finally {
      plane.close();
    }
  });

  it('hands a callback completion and the metrics a step publishes back to its own control plane', async () => {
    await seed('steps-b');
    const a = sinks();
    const b = sinks();
    const runtime = sharedStepsRuntime();
    const planeA = await runtime.open({
      endpoint: dynamo.endpoint,
      tableName: 'steps-a',
      defaults: {},
      ...a,
    });
    const planeB = await runtime.open({
      endpoint: dynamo.endpoint,
      tableName: 'steps-b',
      defaults: {},
      ...b,
    });
    try {
      // h1 is up again in table b: AwaitOperator resolves its own wait at once (host-came-back).
      const out = await planeB.handler({ step: 'await-operator', incident: input, taskToken: 'tok-b' });

      expect(out).toEqual({ detail: expect.stringContaining('waiting for an operator') });
      expect(b.completions).toEqual([
        { token: 'tok-b', output: expect.objectContaining({ decision: 'host-came-back' }) },
      ]);
      expect(b.metrics.total('AwaitingOperator')).toBe(1);
      // Nothing of it reached the other control plane, whose table has no such incident.
      expect(a.completions).toEqual([]);
      expect(a.metrics.total('AwaitingOperator')).toBe(0);
      await expect(
        planeA.handler({ step: 'await-operator', incident: input, taskToken: 'tok-a' }),
      ).rejects.toMatchObject({ name: 'NotFoundError' });
    } finally {
      planeA.close();
      planeB.close();
    }
  });

  it('refuses steps of a control plane once it is closed', async () => {
    const plane = await sharedStepsRuntime().open({
      endpoint: dynamo.endpoint,
      tableName: 'steps-a',
      defaults: {},
      ...sinks(),
    });
    plane.close();
    await expect(plane.handler({ step: 'suspect', incident: input })).rejects.toThrow(/not open/);
  });
});
