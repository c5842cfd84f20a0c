import type { StepRequest } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { toAppError } from '../shared/errors';
import { awaitOperator } from './await-operator';
import { checkFencingPolicy } from './check-fencing-policy';
import { close } from './close';
import { confirmSilence } from './confirm-silence';
import { dispatchFence } from './dispatch-fence';
import { dispatchStart } from './dispatch-start';
import { falseAlarm } from './false-alarm';
import { fenceFailed } from './fence-failed';
import { fencingSuppressed } from './fencing-suppressed';
import { hostRebooted } from './host-rebooted';
import { markFenced } from './mark-fenced';
import { operatorTimedOut } from './operator-timed-out';
import { pickNextHost } from './pick-next-host';
import { planPlacementStep } from './plan-placement';
import { releaseCapacity } from './release-capacity';
import { reserveCapacity } from './reserve-capacity';
import { startUnconfirmed } from './start-unconfirmed';
import { suspect } from './suspect';
import { verifyPowerOff } from './verify-power-off';
import { vmStarted } from './vm-started';
import { vmUnplaced } from './vm-unplaced';

/**
 * Runs one step of the failover state machine (contracts/workflow.ts). Every step is idempotent, since
 * Step Functions may deliver a task twice; errors are the named classes of app/errors.ts, whose `name`
 * the state machine's Retry/Catch match.
 */
export async function runStep(ctx: AppContext, request: StepRequest): Promise<unknown> {
  try {
    return await dispatch(ctx, request);
  } catch (error) {
    throw toAppError(error);
  }
}

function dispatch(ctx: AppContext, request: StepRequest): Promise<unknown> {
  switch (request.step) {
    case 'suspect':
      return suspect(ctx, request.incident);
    case 'confirm-silence':
      return confirmSilence(ctx, request.incident);
    case 'false-alarm':
      return falseAlarm(ctx, request.incident, request.silence);
    case 'check-fencing-policy':
      return checkFencingPolicy(ctx, request.incident);
    case 'fencing-suppressed':
      return fencingSuppressed(ctx, request.incident, request.policy);
    case 'dispatch-fence':
      return dispatchFence(ctx, request.incident, request.taskToken);
    case 'verify-power-off':
      return verifyPowerOff(ctx, request.incident, request.fence);
    case 'fence-failed':
      return fenceFailed(ctx, request.incident, request.error);
    case 'await-operator':
      return awaitOperator(ctx, request.incident, request.taskToken);
    case 'mark-fenced':
      return markFenced(ctx, request.incident, request.confirmation);
    case 'operator-timed-out':
      return operatorTimedOut(ctx, request.incident);
    case 'host-rebooted':
      return hostRebooted(ctx, request.incident);
    case 'plan-placement':
      return planPlacementStep(ctx, request.incident);
    case 'reserve-capacity':
      return reserveCapacity(ctx, request.attempt);
    case 'dispatch-start':
      return dispatchStart(ctx, request.attempt, request.taskToken);
    case 'vm-started':
      return vmStarted(ctx, request.attempt, request.result);
    case 'release-capacity':
      return releaseCapacity(ctx, request.attempt, request.error);
    case 'pick-next-host':
      return pickNextHost(ctx, request.attempt);
    case 'vm-unplaced':
      return vmUnplaced(ctx, request.attempt, request.error);
    case 'start-unconfirmed':
      return startUnconfirmed(ctx, request.attempt, request.error);
    case 'close':
      return close(ctx, request.incident, request.outcome);
    default:
      return unreachable(request);
  }
}

function unreachable(value: never): never {
  throw new Error(`unhandled step: ${JSON.stringify(value)}`);
}
