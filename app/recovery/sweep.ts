import type { AppContext } from '../context';
import type { SiteControl, VmRecord } from '../ports';
import { hostIncidentOpen } from '../shared/incidents';
import { hostSilence } from '../shared/relays';
import { listForRestart } from './enqueue';
import { hostPolicy, onRetryList } from './episode';
import { type RecoveryOutcome, recoverVms } from './recover';

/** libvirt's words for a VM that failed, as opposed to one stopped for an unknown reason. */
const FAILED = new Set(['crashed', 'failed']);

/**
 * Ingest lists a VM when a report shows it stop (the edge). A stop it could not act on is caught here, on
 * the detector's capacity pass (every few minutes, when it reads every VM anyway): a crash reported in the
 * very report that brought its host back from suspicion (that host was still its incident's then), or a VM
 * registered HA after it crashed. Only explicit failures count (libvirt `crashed`, or `shut-off` because it
 * crashed or failed), on a host that is up and heard, for a stop newer than anything its recovery handled;
 * a VM an operator marked down on purpose stays down.
 */
export async function listMissedStops(ctx: AppContext, control: SiteControl): Promise<RecoveryOutcome> {
  const now = ctx.ports.clock.now();
  const missed = (await ctx.ports.vms.listVms(control.site.siteId)).filter((vm) =>
    missedStop(ctx, control, vm, now),
  );
  const listed: string[] = [];
  for (const vm of missed) {
    const hostId = vm.hostId as string;
    const summary = control.hosts[hostId];
    const placed = await listForRestart(
      ctx,
      {
        vm,
        cause: 'vm-crashed',
        place: { hostId, cluster: summary?.cluster ?? 'unknown', bootId: 'unknown' },
        detail: `${vm.vmId} is found stopped on ${hostId} (${vm.state}${vm.reason === null ? '' : `, ${vm.reason}`}) and was not being restarted`,
        data: { state: vm.state, reason: vm.reason, foundBy: 'detector' },
      },
      now,
    );
    if (placed) listed.push(vm.vmId);
  }
  if (listed.length === 0) return { ordered: 0, resolved: 0 };
  return recoverVms(ctx, {
    control: { ...control, recovering: [...new Set([...control.recovering, ...listed])].sort() },
    vmIds: listed,
    trigger: 'change',
  });
}

function missedStop(ctx: AppContext, control: SiteControl, vm: VmRecord, now: number): boolean {
  if (!vm.ha || vm.hostId === null) return false;
  const failed =
    vm.state === 'crashed' || (vm.state === 'shut-off' && vm.reason !== null && FAILED.has(vm.reason));
  if (!failed) return false;
  const r = vm.recovery;
  if (r !== undefined && (onRetryList(r) || r.status === 'down-on-purpose' || vm.observedAt <= r.since)) {
    return false;
  }
  if (control.hosts[vm.hostId]?.status !== 'up' || hostIncidentOpen(control, vm.hostId)) return false;
  const silence = hostSilence(control.relays, vm.hostId, now, hostPolicy(ctx, control, vm.hostId));
  return silence.live.length > 0 && !silence.silent;
}
