import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Clock, Ports } from '../../app/ports';
import { DynamoCommandStore } from './dynamo-command-store';
import { DynamoHostStore } from './dynamo-host-store';
import { DynamoIncidentStore } from './dynamo-incident-store';
import { DynamoRelayStore } from './dynamo-relay-store';
import { DynamoSiteStore } from './dynamo-site-store';
import type { DynamoContext } from './dynamo-support';
import { DynamoVmStore } from './dynamo-vm-store';

export { createDocumentClient, isConditionalCheckFailed } from './dynamo-support';
export { createTableInput, tableDefinition } from './table-definition';

/** Every store port, as one object to spread into `Ports`. */
export type Stores = Pick<Ports, 'sites' | 'relays' | 'hosts' | 'vms' | 'incidents' | 'commands'>;

const systemClock: Clock = { now: () => Date.now() };

/**
 * Builds all DynamoDB stores on one table. The client should come from `createDocumentClient` (optional
 * fields are then omitted instead of rejected). The clock only dates TTLs; it defaults to the system clock.
 */
export function createDynamoStores(options: {
  client: DynamoDBDocumentClient;
  tableName: string;
  clock?: Clock;
}): Stores {
  const ctx: DynamoContext = {
    client: options.client,
    tableName: options.tableName,
    clock: options.clock ?? systemClock,
  };
  return {
    sites: new DynamoSiteStore(ctx),
    relays: new DynamoRelayStore(ctx),
    hosts: new DynamoHostStore(ctx),
    vms: new DynamoVmStore(ctx),
    incidents: new DynamoIncidentStore(ctx),
    commands: new DynamoCommandStore(ctx),
  };
}
