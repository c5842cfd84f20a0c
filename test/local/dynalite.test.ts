import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { startLocalControlPlane } from '../../local/control-plane';
import { startDynalite } from '../../local/dynalite';

describe('dynalite on a worker thread', () => {
  it('serves the one table with conditional writes, and stop() ends the thread', async () => {
    // given dynalite started on its own thread with the table created
    const dynamo = await startDynalite({ thread: 'worker' });
    try {
      await dynamo.createTable('halo-worker-test');

      // when an item is put only if absent, twice
      const put = () =>
        dynamo.client.send(
          new PutCommand({
            TableName: 'halo-worker-test',
            Item: { pk: 'SITE#s1', sk: 'HOST#h1', v: 1 },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      await put();

      // then the second is refused as DynamoDB refuses it, and the item reads back
      await expect(put()).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
      const { Item } = await dynamo.client.send(
        new GetCommand({ TableName: 'halo-worker-test', Key: { pk: 'SITE#s1', sk: 'HOST#h1' } }),
      );
      expect(Item).toEqual({ pk: 'SITE#s1', sk: 'HOST#h1', v: 1 });
    } finally {
      await dynamo.stop();
    }

    // when stopped, then nothing listens on its port any more
    await expect(fetch(dynamo.endpoint, { method: 'POST' })).rejects.toThrow();
  });
});

describe('control planes sharing one dynalite', () => {
  it('each gets a table of its own, deleted at stop, and the server outlives them', async () => {
    const dynamo = await startDynalite({ thread: 'worker' });
    try {
      // given two control planes on the same server
      const [a, b] = await Promise.all([
        startLocalControlPlane({ dynamo, detectorTickMs: 0 }),
        startLocalControlPlane({ dynamo, detectorTickMs: 0 }),
      ]);
      expect(a.tableName).not.toBe(b.tableName);

      // when a relay enrols on one, then the other has never heard of its site
      const enrolled = await a.operator('enrollRelay', {
        params: { siteId: 'dc1' },
        body: { relayId: 'r1' },
      });
      expect(enrolled.status).toBe(201);
      expect(await a.ctx.ports.sites.loadControl('dc1')).not.toBeNull();
      expect(await b.ctx.ports.sites.loadControl('dc1')).toBeNull();

      // when the first stops, then its table is gone and the second still works on the same server
      await a.stop();
      const { TableNames } = await dynamo.raw.send(new ListTablesCommand({}));
      expect(TableNames).toEqual([b.tableName]);
      expect(
        (await b.operator('enrollRelay', { params: { siteId: 'dc2' }, body: { relayId: 'r1' } })).status,
      ).toBe(201);
      await b.stop();
    } finally {
      await dynamo.stop();
    }
  });
});
