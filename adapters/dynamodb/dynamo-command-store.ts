import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CommandRecord, CommandStatus, CommandStore } from '../../app/ports';
import type { CommandResult, RelayCommand } from '../../contracts/relay-protocol';
import {
  beginsWith,
  CONDITION_FAILED,
  type DynamoContext,
  type Item,
  type Key,
  keyOf,
  map,
  mapOrNull,
  num,
  numOrNull,
  putIfAbsent,
  queryAll,
  requireAttributes,
  str,
  strOrNull,
  unlessConditionFails,
} from './dynamo-support';
import { commandSk, idAfter, PK_PREFIX, SK_PREFIX, siteKey, TTL_ATTRIBUTE } from './table-definition';

/** How long a finished command is kept for the incident review before TTL deletes it. */
export const FINISHED_COMMAND_TTL_SECONDS = 7 * 24 * 60 * 60;

/**
 * Commands for relays, under their site's partition: looked up by ingest only while the site has open
 * incidents, completed once by the relay's result, then left to TTL.
 */
export class DynamoCommandStore implements CommandStore {
  constructor(private readonly ctx: DynamoContext) {}

  async create(
    command: Omit<CommandRecord, 'status' | 'deliveredAt' | 'result'>,
  ): Promise<{ created: boolean }> {
    const record: CommandRecord = { ...command, status: 'pending', deliveredAt: null, result: null };
    return { created: await putIfAbsent(this.ctx, commandToItem(record)) };
  }

  async listOpen(siteId: string, relayId: string): Promise<CommandRecord[]> {
    const query = beginsWith(siteKey(siteId), SK_PREFIX.command);
    const items = await queryAll(this.ctx, {
      ...query,
      FilterExpression: '#relayId = :relayId AND #status IN (:pending, :delivered)',
      ExpressionAttributeNames: {
        ...query.ExpressionAttributeNames,
        '#relayId': 'relayId',
        '#status': 'status',
      },
      ExpressionAttributeValues: {
        ...query.ExpressionAttributeValues,
        ':relayId': relayId,
        ':pending': 'pending',
        ':delivered': 'delivered',
      },
    });
    return inIssueOrder(items.map(commandFromItem));
  }

  async listForIncident(siteId: string, incidentId: string): Promise<CommandRecord[]> {
    const query = beginsWith(siteKey(siteId), SK_PREFIX.command);
    const items = await queryAll(this.ctx, {
      ...query,
      FilterExpression: '#command.#incidentId = :incidentId',
      ExpressionAttributeNames: {
        ...query.ExpressionAttributeNames,
        '#command': 'command',
        '#incidentId': 'incidentId',
      },
      ExpressionAttributeValues: { ...query.ExpressionAttributeValues, ':incidentId': incidentId },
    });
    return inIssueOrder(items.map(commandFromItem));
  }

  async adoptTaskToken(siteId: string, commandId: string, taskToken: string): Promise<CommandRecord | null> {
    const out = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(commandKey(siteId, commandId)),
          UpdateExpression: 'SET #taskToken = :taskToken',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#taskToken': 'taskToken' },
          ExpressionAttributeValues: { ':taskToken': taskToken },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    if (out === CONDITION_FAILED) return null;
    return commandFromItem(requireAttributes(out.Attributes, `command ${siteId}/${commandId}`));
  }

  async markDelivered(siteId: string, commandId: string, at: number): Promise<void> {
    // Only the first delivery counts: a command re-sent with every response keeps its first deliveredAt,
    // and a finished or unknown command is left alone (the failed condition is the expected no-op).
    await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(commandKey(siteId, commandId)),
          UpdateExpression: 'SET #status = :delivered, #deliveredAt = :at',
          ConditionExpression: '#status = :pending',
          ExpressionAttributeNames: { '#status': 'status', '#deliveredAt': 'deliveredAt' },
          ExpressionAttributeValues: { ':delivered': 'delivered', ':pending': 'pending', ':at': at },
        }),
      ),
    );
  }

  async complete(
    siteId: string,
    commandId: string,
    result: CommandResult,
    relayId: string,
  ): Promise<CommandRecord | null> {
    const status: CommandStatus = result.outcome;
    const expiresAt = Math.floor(this.ctx.clock.now() / 1000) + FINISHED_COMMAND_TTL_SECONDS;
    // Once only, only from the relay it was sent to, and only for the incident it was issued for (safety
    // rule 4: stale results of another incident change nothing). A failed condition is a repeat, a stray
    // or an unknown command: null, nothing changed (a missing item fails the condition, nothing is created).
    const out = await unlessConditionFails(
      this.ctx.client.send(
        new UpdateCommand({
          TableName: this.ctx.tableName,
          Key: keyOf(commandKey(siteId, commandId)),
          UpdateExpression: 'SET #status = :status, #result = :result, #expiresAt = :expiresAt',
          ConditionExpression:
            '#status IN (:pending, :delivered) AND #command.#incidentId = :incidentId AND #relayId = :relayId',
          ExpressionAttributeNames: {
            '#status': 'status',
            '#result': 'result',
            '#expiresAt': TTL_ATTRIBUTE,
            '#command': 'command',
            '#incidentId': 'incidentId',
            '#relayId': 'relayId',
          },
          ExpressionAttributeValues: {
            ':relayId': relayId,
            ':status': status,
            ':result': result,
            ':expiresAt': expiresAt,
            ':pending': 'pending',
            ':delivered': 'delivered',
            ':incidentId': result.incidentId,
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    if (out === CONDITION_FAILED) return null;
    return commandFromItem(requireAttributes(out.Attributes, `command ${siteId}/${commandId}`));
  }
}

/** Oldest first, then by id: the order a relay should carry commands out in. */
function inIssueOrder(commands: CommandRecord[]): CommandRecord[] {
  return commands.sort(
    (a, b) =>
      a.createdAt - b.createdAt ||
      (a.command.commandId < b.command.commandId ? -1 : a.command.commandId > b.command.commandId ? 1 : 0),
  );
}

function commandKey(siteId: string, commandId: string): Key {
  return { pk: siteKey(siteId), sk: commandSk(commandId) };
}

function commandToItem(command: CommandRecord): Item {
  return {
    ...keyOf(commandKey(command.siteId, command.command.commandId)),
    relayId: command.relayId,
    command: command.command,
    taskToken: command.taskToken,
    status: command.status,
    createdAt: command.createdAt,
    deliveredAt: command.deliveredAt,
    result: command.result,
  };
}

function commandFromItem(item: Item): CommandRecord {
  return {
    siteId: idAfter(PK_PREFIX.site, str(item, 'pk')),
    relayId: str(item, 'relayId'),
    command: map<RelayCommand>(item, 'command'),
    taskToken: strOrNull(item, 'taskToken'),
    status: str(item, 'status') as CommandStatus,
    createdAt: num(item, 'createdAt'),
    deliveredAt: numOrNull(item, 'deliveredAt'),
    result: mapOrNull<CommandResult>(item, 'result'),
  };
}
