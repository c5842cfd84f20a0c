import { type App, CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** Registers cdk-nag's AWS Solutions checks; any unacknowledged finding fails the synth. */
export function addNagChecks(app: App): void {
  // cdk-nag 3 is a policy-validation plugin, not an Aspect (Aspects.of(app).add crashes with v3).
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/**
 * Acknowledges one cdk-nag finding on `scope` and everything below it. `id` is a rule id, or a rule id
 * with its finding (`AwsSolutions-IAM5[Resource::*]`): cdk-nag 3 has no prefix matching, so each finding
 * is acknowledged on its own and a new wildcard in the same policy still fails the synth.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < 20) throw new Error(`acknowledgement of ${id} needs a real reason`);
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * Acknowledges the IAM5 finding on `<function ARN>:*`, the versions-and-aliases resource CDK adds next to
 * a function's ARN whenever it grants lambda:InvokeFunction on it. Nothing to do for an imported function
 * (tests build the workflow around one): it has no resource and no logical id.
 */
export function acknowledgeFunctionVersions(scope: IConstruct, fn: IConstruct, reason: string): void {
  const cfn = fn.node.defaultChild;
  if (!(cfn instanceof CfnElement)) return;
  acknowledge(scope, `AwsSolutions-IAM5[Resource::<${Stack.of(cfn).getLogicalId(cfn)}.Arn>:*]`, reason);
}
