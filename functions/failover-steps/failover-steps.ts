import type { AppContext } from '../../app/context';
import { runStep } from '../../app/failover/steps';
import { StepRequestSchema } from '../../contracts/workflow';
import { validate } from '../shared/http';

/**
 * The failover-steps Lambda without middleware. Errors propagate unchanged: Lambda reports `error.name` as
 * the error type, which Step Functions Retry/Catch match on (app/errors.ts sets it to the class name, the
 * bundle keeps names). An invalid request is a ValidationError, equally by name.
 */
export function makeFailoverStepsHandler(ctx: AppContext): (event: unknown) => Promise<unknown> {
  return async (event) => runStep(ctx, validate(StepRequestSchema, event, 'step request'));
}
