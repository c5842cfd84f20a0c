import { type HostStatus, LifecycleError } from '../../core/lifecycle';
import type { AppContext } from '../context';
import { ConflictError } from '../errors';
import { recoverAfterCapacityChange } from '../recovery/triggers';
import { appendEvent } from '../shared/events';
import { transitionHost } from '../shared/host-lifecycle';

/** A host's status after a maintenance change, and who asked for it. */
export interface MaintenanceResult {
  readonly siteId: string;
  readonly hostId: string;
  readonly status: HostStatus;
  readonly by: string;
}

/**
 * Puts a host into maintenance or takes it out (safety rule 7: a maintenance host is never suspected or
 * fenced). What the lifecycle refuses, such as entering maintenance while a fence is in flight, is a
 * ConflictError with the lifecycle's reason. Leaving maintenance records the host's last reported boot.
 */
export async function setMaintenance(
  ctx: AppContext,
  args: {
    readonly siteId: string;
    readonly hostId: string;
    readonly enabled: boolean;
    readonly caller: string;
  },
): Promise<MaintenanceResult> {
  const at = ctx.ports.clock.now();
  let change: Awaited<ReturnType<typeof transitionHost>>;
  try {
    change = await transitionHost(ctx, args.siteId, args.hostId, (host) => ({
      command: args.enabled
        ? { type: 'EnterMaintenance', at }
        : { type: 'ExitMaintenance', at, bootId: host.bootId },
    }));
  } catch (error) {
    if (error instanceof LifecycleError) throw new ConflictError(error.message);
    throw error;
  }
  for (const event of change.events) {
    if (event.type !== 'MaintenanceEntered' || event.incidentId === null) continue;
    await appendEvent(
      ctx,
      event.incidentId,
      'maintenance',
      `${args.hostId} was put into maintenance by ${args.caller}: this incident no longer acts on it`,
      { by: args.caller },
    );
  }
  // Out of maintenance, the host takes VMs again: HA VMs left down for lack of room try it at once.
  if (!args.enabled && change.before.status === 'maintenance' && change.host.lifecycle.status === 'up') {
    const control = await ctx.ports.sites.loadControl(args.siteId);
    if (control !== null && control.recovering.length > 0) await recoverAfterCapacityChange(ctx, control);
  }
  return { siteId: args.siteId, hostId: args.hostId, status: change.host.lifecycle.status, by: args.caller };
}
