import { CfnElement, Stack } from 'aws-cdk-lib';
import type { HttpApi, HttpStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { OPERATOR_ROUTES, READ_ONLY_METHODS } from '../../contracts/operator-api';
import { acknowledge } from '../nag';

type Route = (typeof OPERATOR_ROUTES)[number];

/** Properties of the {@link OperatorAccess}. */
export interface OperatorAccessProps {
  readonly api: HttpApi;
  readonly stage: HttpStage;
}

/**
 * Two IAM managed policies over the operator routes (contracts/operator-api.ts), for a provider to attach to
 * its own roles, users or groups: **read-only**, execute-api:Invoke on every GET route (status, hosts, VMs,
 * relays, policy, incidents, events, down time), so that a viewer can watch but never confirm a power-off,
 * change maintenance, fencing, policy or HA metadata, or enrol a relay; and **operator**, every route. The
 * relay report route is in neither: relays authenticate with their own credential.
 */
export class OperatorAccess extends Construct {
  readonly readOnly: ManagedPolicy;
  readonly operator: ManagedPolicy;

  constructor(scope: Construct, id: string, props: OperatorAccessProps) {
    super(scope, id);
    // A path parameter becomes `*`: IAM has no finer wildcard.
    const pathOf = (route: Route): string => route.path.replace(/\{[^}]+\}/g, '*');
    const arnOf = (route: Route): string =>
      props.api.arnForExecuteApi(route.method, pathOf(route), props.stage.stageName);
    const readRoutes = OPERATOR_ROUTES.filter((route) => READ_ONLY_METHODS.includes(route.method));
    this.readOnly = new ManagedPolicy(this, 'ReadOnly', {
      description: 'Halo operator API, read-only: every GET route (no confirmation, no change)',
      statements: [
        new PolicyStatement({ actions: ['execute-api:Invoke'], resources: readRoutes.map(arnOf) }),
      ],
    });
    this.operator = new ManagedPolicy(this, 'Operator', {
      description:
        'Halo operator API, operator: every route (confirm power-off, maintenance, policy, relays…)',
      statements: [
        new PolicyStatement({ actions: ['execute-api:Invoke'], resources: OPERATOR_ROUTES.map(arnOf) }),
      ],
    });
    const reason =
      'Each resource is one operator route of this API and stage; its `*` stands for a path parameter (site, host, VM, cluster, relay or incident id), which IAM cannot constrain further. Which routes is the point of the policy.';
    const cfn = props.api.node.defaultChild;
    if (!(cfn instanceof CfnElement)) throw new Error('the HTTP API has no CloudFormation resource');
    const apiId = Stack.of(this).getLogicalId(cfn);
    // cdk-nag 3 acknowledges one finding at a time: each wildcard route is named, so a new one still fails.
    for (const route of OPERATOR_ROUTES.filter((r) => pathOf(r).includes('*'))) {
      const resource = `arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${props.stage.stageName}/${route.method}${pathOf(route)}`;
      const policies = READ_ONLY_METHODS.includes(route.method)
        ? [this.readOnly, this.operator]
        : [this.operator];
      for (const policy of policies) acknowledge(policy, `AwsSolutions-IAM5[Resource::${resource}]`, reason);
    }
  }
}
