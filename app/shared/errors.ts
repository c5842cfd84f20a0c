import {
  FenceContradictedError,
  IllegalTransitionError,
  LifecycleError,
  StaleCommandError,
} from '../../core/lifecycle';
import { ConflictError, HaloError, IncidentSupersededError } from '../errors';

/**
 * Maps the lifecycle's errors to the named errors of app/errors.ts that handlers and Step Functions match
 * on: a command for another incident means this one was superseded; an illegal transition is a conflict.
 */
export function toAppError(error: unknown): unknown {
  if (error instanceof StaleCommandError) return new IncidentSupersededError(error.message);
  if (error instanceof IllegalTransitionError) return new ConflictError(error.message);
  if (error instanceof FenceContradictedError) return new ConflictError(error.message);
  if (error instanceof LifecycleError) return new ConflictError(error.message);
  return error;
}

/** A one-line description of a Step Functions error output (`{ Error, Cause }`) or anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof HaloError || error instanceof Error) return `${error.name}: ${error.message}`;
  if (typeof error === 'object' && error !== null) {
    const record = error as Record<string, unknown>;
    const name = typeof record.Error === 'string' ? record.Error : undefined;
    const cause = typeof record.Cause === 'string' ? record.Cause : undefined;
    if (name !== undefined || cause !== undefined) return [name, cause].filter(Boolean).join(': ');
  }
  if (error === undefined || error === null) return 'no error detail';
  return typeof error === 'string' ? error : JSON.stringify(error);
}
