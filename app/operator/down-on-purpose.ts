import type { AppContext } from '../context';
import { ConflictError, NotFoundError } from '../errors';
import type { VmRecord } from '../ports';
import { listForRestart } from '../recovery/enqueue';
import {
  closeEpisode,
  draftOf,
  onRetryList,
  orderedClock,
  saveRecovery,
  unlist,
  vmEvent,
} from '../recovery/episode';
import { recoverVms } from '../recovery/recover';
import { isRunning } from '../shared/capacity';
import { endDownPeriod } from '../shared/downtime';
import { retryOnConflict } from '../shared/retry';
import { requireControl } from '../shared/site';

/**
 * An operator says an HA VM that is down stays down (`enabled`), or takes that back. Marked, the VM leaves
 * its site's retry list: VM-level HA stops retrying it, its open VM incident closes saying who marked it,
 * and it counts no more in HaVmsDown; the mark lasts until the VM runs again (a later unexpected stop is
 * restarted as ever). A VM that runs cannot be marked (stop it first), nor one whose start is under way
 * (its capacity is held for it until the start settles). Taken back, a VM still down goes back on the list
 * and its restart is tried at once.
 */
export async function setVmDownOnPurpose(
  given: AppContext,
  args: {
    readonly siteId: string;
    readonly vmId: string;
    readonly enabled: boolean;
    readonly caller: string;
  },
): Promise<VmRecord> {
  const ctx = orderedClock(given);
  const control = await requireControl(ctx, args.siteId);
  const now = ctx.ports.clock.now();
  const read = async (): Promise<VmRecord> => {
    const vm = await ctx.ports.vms.getVm(args.siteId, args.vmId);
    if (vm === null) throw new NotFoundError(`VM ${args.siteId}/${args.vmId} not found`);
    return vm;
  };
  if (!args.enabled) {
    const vm = await read();
    const r = vm.recovery;
    if (r?.status !== 'down-on-purpose') return vm;
    const cleared = await retryOnConflict(async () => {
      const current = await read();
      const mark = current.recovery;
      if (mark?.status !== 'down-on-purpose') return current;
      return ctx.ports.vms.saveRecovery(args.siteId, args.vmId, mark.version, {
        ...draftOf(mark),
        status: 'idle',
        note: null,
        by: null,
      });
    });
    if (!cleared.ha || isRunning(cleared) || cleared.hostId === null) return cleared;
    const host = await ctx.ports.hosts.getHost(args.siteId, cleared.hostId);
    await listForRestart(
      ctx,
      {
        vm: cleared,
        cause: 'operator',
        place: {
          hostId: cleared.hostId,
          cluster: host?.cluster ?? control.hosts[cleared.hostId]?.cluster ?? 'unknown',
          bootId: host?.bootId ?? 'unknown',
        },
        detail: `${args.caller} took back the down-on-purpose mark of ${cleared.vmId}, which is down: it is restarted`,
      },
      now,
    );
    await recoverVms(ctx, {
      control: { ...control, recovering: [...new Set([...control.recovering, cleared.vmId])] },
      vmIds: [cleared.vmId],
      trigger: 'change',
    });
    return read();
  }
  const vm = await read();
  if (isRunning(vm)) {
    throw new ConflictError(`${args.vmId} runs on ${vm.hostId ?? '?'}: stop it first, then mark it down`);
  }
  const r = vm.recovery;
  if (r?.status === 'down-on-purpose') return vm;
  if (r?.status === 'starting') {
    throw new ConflictError(
      `a start of ${args.vmId} on ${r.start?.hostId ?? '?'} is under way: mark it once that start has settled`,
    );
  }
  const note = `marked down on purpose by ${args.caller}`;
  // Down on purpose is not down time: the VM's period ends with the mark.
  if (r?.downIncidentId) await endDownPeriod(ctx, r.downIncidentId, vm.vmId, now);
  if (r !== undefined && onRetryList(r) && r.incidentId !== null) {
    await vmEvent(ctx, r.incidentId, vm.vmId, 'down-on-purpose', `${vm.vmId} is ${note}: it stays down`, {
      by: args.caller,
    });
  }
  await closeEpisode(ctx, vm, r?.incidentId ?? null, 'partially-recovered', `${vm.vmId} is ${note}`, {
    down: [vm.vmId],
  });
  const saved = await saveRecovery(ctx, vm, {
    status: 'down-on-purpose',
    cause: r?.cause ?? 'operator',
    since: r?.since ?? now,
    incidentId: null,
    incidentSeq: r?.incidentSeq ?? 0,
    restarts: r?.restarts ?? [],
    attempt: 0,
    triedHosts: [],
    orders: 0,
    start: null,
    pinned: null,
    notBefore: null,
    checkedAt: now,
    note,
    by: args.caller,
  });
  if (saved === null) throw new ConflictError(`${args.vmId}'s recovery moved meanwhile: try again`);
  await unlist(ctx, control, vm.vmId);
  return saved;
}
