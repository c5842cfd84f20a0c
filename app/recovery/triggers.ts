import type { AppContext } from '../context';
import type { SiteControl } from '../ports';
import { type RecoveryOutcome, recoverVms } from './recover';

/** What a report's inventory told VM-level HA (app/ingest/inventory.ts InventoryRecovery). */
export interface ReportRecovery {
  readonly listed: readonly string[];
  readonly running: readonly string[];
  readonly capacityFreed: boolean;
}

/**
 * After a report's inventory and lifecycle writes: the VMs it put on the retry list get their first
 * restart at once, the listed VMs it shows running leave the list, and when it may have freed room, every
 * listed VM is looked at again. A report that changed none of that costs nothing more (the list comes with
 * the control items already read).
 */
export async function recoverAfterReport(
  ctx: AppContext,
  args: { readonly control: SiteControl; readonly relayId: string; readonly found: ReportRecovery },
): Promise<RecoveryOutcome> {
  const { found } = args;
  const recovering = [...new Set([...args.control.recovering, ...found.listed])].sort();
  const vmIds = found.capacityFreed ? recovering : [...new Set([...found.listed, ...found.running])];
  if (vmIds.length === 0) return { ordered: 0, resolved: 0 };
  return recoverVms(ctx, {
    control: { ...args.control, recovering },
    vmIds,
    trigger: 'change',
    preferRelayId: args.relayId,
  });
}

/**
 * The detector's tick over one site: every listed VM is looked at, but only what is due acts (an overdue
 * start, a backoff or budget that ended, the slow retry of a VM nothing could take); the rest costs one
 * read of its item.
 */
export async function recoverOnTick(ctx: AppContext, control: SiteControl): Promise<RecoveryOutcome> {
  return recoverVms(ctx, { control, vmIds: control.recovering, trigger: 'tick' });
}

/** Room may have come back on a site outside any report (maintenance ended): every listed VM tries now. */
export async function recoverAfterCapacityChange(
  ctx: AppContext,
  control: SiteControl,
): Promise<RecoveryOutcome> {
  return recoverVms(ctx, { control, vmIds: control.recovering, trigger: 'change' });
}

/** How many HA VMs are down and listed to run again, over the sites' control items (the HaVmsDown gauge). */
export function haVmsDown(controls: readonly SiteControl[]): number {
  return controls.reduce((sum, control) => sum + control.recovering.length, 0);
}
