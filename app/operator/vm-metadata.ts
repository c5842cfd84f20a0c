import type { Priority } from '../../core/model';
import type { AppContext } from '../context';
import type { VmRecord } from '../ports';
import { requireControl } from '../shared/site';

/** What an operator registers about a VM that agents cannot know (contracts SetVmMetadataBodySchema). */
export interface VmMetadata {
  readonly ha: boolean;
  readonly priority: Priority;
  readonly antiAffinity: string | null;
}

/** Sets a VM's HA flag, priority and anti-affinity group; a VM never observed gets a placeholder record. */
export async function setVmMetadata(
  ctx: AppContext,
  args: { readonly siteId: string; readonly vmId: string; readonly body: VmMetadata },
): Promise<VmRecord> {
  await requireControl(ctx, args.siteId);
  const { ha, priority, antiAffinity } = args.body;
  return ctx.ports.vms.setMetadata(args.siteId, args.vmId, { ha, priority, antiAffinity });
}
