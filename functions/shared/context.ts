import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createDocumentClient, createDynamoStores } from '../../adapters/dynamodb';
import { CryptoIds } from '../../adapters/node/crypto-ids';
import { Sha256Hasher } from '../../adapters/node/sha256-hasher';
import { SystemClock } from '../../adapters/node/system-clock';
import { PowertoolsMetrics } from '../../adapters/powertools/powertools-metrics';
import { SfnWorkflow } from '../../adapters/sfn/sfn-workflow';
import type { AppContext } from '../../app/context';
import { parsePolicy } from './policy';
import { type Powertools, powertools } from './powertools';

/** The part of every function's environment the context needs (see functions/env.ts). */
export interface ContextEnv {
  readonly TABLE_NAME: string;
  readonly HALO_POLICY: string;
  /** Absent in failover-steps, which never starts executions. */
  readonly STATE_MACHINE_ARN?: string;
}

/** SDK clients, injectable so tests can hand in mocked ones. */
export interface ContextClients {
  readonly dynamodb?: DynamoDBClient;
  readonly sfn?: SFNClient;
}

/**
 * The one factory of AppContext for Lambda: DynamoDB stores, the Step Functions workflow, Powertools
 * metrics, the system clock, crypto ids and the sha256 hasher. Call it once per container, at module load.
 */
export function createAppContext(
  env: ContextEnv,
  tools: Powertools = powertools,
  clients: ContextClients = {},
): AppContext {
  const defaults = parsePolicy(env.HALO_POLICY);
  const clock = new SystemClock();
  // removeUndefinedValues: optional fields are omitted rather than rejected by the marshaller.
  const document = createDocumentClient(clients.dynamodb ?? new DynamoDBClient({}));
  const stores = createDynamoStores({ client: document, tableName: env.TABLE_NAME, clock });
  const workflow = new SfnWorkflow({
    client: clients.sfn ?? new SFNClient({}),
    stateMachineArn: env.STATE_MACHINE_ARN,
    logger: tools.logger,
  });
  return {
    ports: {
      ...stores,
      clock,
      ids: new CryptoIds(),
      workflow,
      metrics: new PowertoolsMetrics(tools.metrics),
    },
    hasher: new Sha256Hasher(),
    defaults,
  };
}
