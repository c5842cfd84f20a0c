import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
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
