import { RemovalPolicy } from 'aws-cdk-lib';
import {
  type Attribute,
  AttributeType,
  BillingMode,
  ProjectionType,
  Table,
  TableEncryption,
} from 'aws-cdk-lib/aws-dynamodb';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { tableDefinition } from '../../adapters/dynamodb/table-definition';

/** Item-level actions only: no Scan, no table management; every access pattern is a key or begins_with query. */
const READ_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
];
const WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
];

function attribute(name: string): Attribute {
  const definition = tableDefinition.attributeDefinitions.find((a) => a.AttributeName === name);
  const type = definition?.AttributeType;
  if (type === undefined) throw new Error(`table-definition has no attribute definition for key ${name}`);
  const types: Record<string, AttributeType> = {
    S: AttributeType.STRING,
    N: AttributeType.NUMBER,
    B: AttributeType.BINARY,
  };
  const mapped = types[type];
  if (mapped === undefined) throw new Error(`unsupported key attribute type ${type} for ${name}`);
  return { name, type: mapped };
}

function keyOf(schema: readonly { AttributeName?: string; KeyType?: string }[] | undefined, kind: string) {
  const name = schema?.find((k) => k.KeyType === kind)?.AttributeName;
  return name === undefined ? undefined : attribute(name);
}

/** The single table, built from adapters/dynamodb/table-definition.ts so CDK and dynalite cannot drift. */
export class HaloTable extends Construct {
  /** The table. */
  readonly table: Table;
  /** Names of the table's global secondary indexes. */
  readonly indexNames: readonly string[];

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const partitionKey = keyOf(tableDefinition.keySchema, 'HASH');
    if (partitionKey === undefined) throw new Error('table-definition has no HASH key');
    const sortKey = keyOf(tableDefinition.keySchema, 'RANGE');
    this.table = new Table(this, 'Table', {
      partitionKey,
      ...(sortKey === undefined ? {} : { sortKey }),
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: tableDefinition.timeToLiveAttribute,
      // The table is the incident record and the enrolled relays' credentials: a stack deletion or a
      // replacing change must never take it along.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const indexNames: string[] = [];
    for (const gsi of tableDefinition.globalSecondaryIndexes) {
      const gsiPartitionKey = keyOf(gsi.KeySchema, 'HASH');
      if (gsi.IndexName === undefined || gsiPartitionKey === undefined) {
        throw new Error('table-definition has a GSI without a name or HASH key');
      }
      const gsiSortKey = keyOf(gsi.KeySchema, 'RANGE');
      if (gsi.Projection?.ProjectionType !== ProjectionType.ALL) {
        throw new Error(`GSI ${gsi.IndexName}: only projection ALL is mapped`);
      }
      this.table.addGlobalSecondaryIndex({
        indexName: gsi.IndexName,
        partitionKey: gsiPartitionKey,
        ...(gsiSortKey === undefined ? {} : { sortKey: gsiSortKey }),
        projectionType: ProjectionType.ALL,
      });
      indexNames.push(gsi.IndexName);
    }
    this.indexNames = indexNames;
  }

  /**
   * Grants item reads and writes on the table, and Query on the named indexes only (data-model.md:
   * only the operator API and the detector list sites or incidents through gsi1).
   */
  grantItemAccess(grantee: IGrantable, options: { queryIndexes?: readonly string[] } = {}): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: [...READ_ACTIONS, ...WRITE_ACTIONS], resources: [this.table.tableArn] }),
    );
    const indexes = options.queryIndexes ?? [];
    for (const index of indexes) {
      if (!this.indexNames.includes(index)) throw new Error(`unknown index ${index}`);
    }
    if (indexes.length > 0) {
      // Each index by name rather than `${tableArn}/index/*`: the grant says which index it needs.
      const arns = indexes.map((index) => `${this.table.tableArn}/index/${index}`);
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['dynamodb:Query'], resources: arns }),
      );
    }
  }
}
