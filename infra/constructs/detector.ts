import { Duration, Stack } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { acknowledgeFunctionVersions } from '../nag';

/** The detector function's timeout: one 55 s loop plus slack, just over the one-minute schedule. */
export const DETECTOR_TIMEOUT = Duration.seconds(70);
/** How long the detector loops inside one invocation (DETECTOR_RUN_SECONDS). */
export const DETECTOR_RUN_SECONDS = 55;

/** Properties of the {@link Detector}. */
export interface DetectorProps {
  readonly detectorFunction: IFunction;
}

/**
 * Invokes the detector every minute through EventBridge Scheduler (schedules run at most once a minute;
 * the function loops at the policy's resolution inside the invocation).
 */
export class Detector extends Construct {
  /** The schedule. */
  readonly schedule: Schedule;

  constructor(scope: Construct, id: string, props: DetectorProps) {
    super(scope, id);
    const role = new Role(this, 'SchedulerRole', {
      description: 'Lets EventBridge Scheduler invoke the Halo detector',
      // Confused-deputy guard: only schedules of this account may assume the role.
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    });
    this.schedule = new Schedule(this, 'Schedule', {
      description: 'Halo detector tick: finds silent relays and partitioned sites',
      schedule: ScheduleExpression.rate(Duration.minutes(1)),
      target: new LambdaInvoke(props.detectorFunction, {
        role,
        // A late or retried tick would overlap the next one; the next minute's tick is the retry.
        retryAttempts: 0,
        maxEventAge: Duration.seconds(60),
      }),
    });
    acknowledgeFunctionVersions(
      role,
      props.detectorFunction,
      'Added by the Scheduler Lambda target: lambda:InvokeFunction on the detector and its versions/aliases (`arn:*`); nothing but the one detector function.',
    );
  }
}
