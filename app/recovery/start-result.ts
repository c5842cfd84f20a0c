import type { CommandResult } from '../../contracts/relay-protocol';
import type { AppContext } from '../context';
import type { CommandRecord, SiteControl } from '../ports';
import { isRunning } from '../shared/capacity';
import { draftOf, orderedClock, saveRecovery, vmEvent } from './episode';
import { type RecoveryOutcome, recoverVms } from './recover';

/**
 * A relay's result for a start VM-level HA sent (a command without a task token), recorded once by the
 * command store. Applied only while the VM's recovery still waits for that very start: a late result of a
 * start the recovery has moved past changes nothing (the host's inventory tells what runs).
 *
 * Succeeded: the VM is not taken off the list yet. Only an observation of it running does that (ingest,
 * then recoverVms), since a VM that starts and dies before the next heartbeat leaves an inventory that
 * never changed. Failed: its capacity goes back (safety rule 5) and the next attempt goes out at once, in
 * the same report's response when the reporting relay hears the next host.
 */
export async function recordRecoveryStart(
  given: AppContext,
  args: {
    readonly control: SiteControl;
    readonly record: CommandRecord;
    readonly result: CommandResult;
    readonly relayId: string;
  },
): Promise<RecoveryOutcome> {
  const ctx = orderedClock(given);
  const { control, record, result } = args;
  const { command } = record;
  const none = { ordered: 0, resolved: 0 };
  if (command.kind !== 'start-vm') return none;
  const siteId = control.site.siteId;
  const vm = await ctx.ports.vms.getVm(siteId, command.vm.id);
  const r = vm?.recovery;
  const start = r?.start;
  if (vm == null || r === undefined || r.status !== 'starting' || start?.commandId !== command.commandId) {
    return none;
  }
  const said = result.detail === undefined ? result.outcome : `${result.outcome}: ${result.detail}`;
  if (result.outcome === 'succeeded') {
    if (start.result === null) {
      const saved = await saveRecovery(ctx, vm, { ...draftOf(r), start: { ...start, result: 'succeeded' } });
      // Only the write that won says so: a pass that found it running meanwhile said it already.
      if (saved !== null && r.incidentId !== null) {
        await vmEvent(
          ctx,
          r.incidentId,
          vm.vmId,
          'vm-started',
          `${vm.vmId} started on ${start.hostId} (attempt ${r.attempt}, relay ${args.relayId}: ${said})`,
          { hostId: start.hostId, commandId: start.commandId, attempt: r.attempt },
        );
      }
    }
    // Seen running already (the heartbeat came before the result): the list lets it go now.
    return isRunning(vm) && vm.observedAt >= r.since
      ? recoverVms(ctx, { control, vmIds: [vm.vmId], trigger: 'change', preferRelayId: args.relayId })
      : none;
  }
  await ctx.ports.hosts.release(siteId, start.hostId, start.reservationId);
  if (r.incidentId !== null) {
    await vmEvent(
      ctx,
      r.incidentId,
      vm.vmId,
      'start-failed',
      `${vm.vmId} did not start on ${start.hostId} (attempt ${r.attempt}): ${said}; its reservation is released`,
      { hostId: start.hostId, commandId: start.commandId, attempt: r.attempt },
    );
  }
  const saved = await saveRecovery(ctx, vm, {
    ...draftOf(r),
    status: 'waiting',
    start: null,
    triedHosts: [...r.triedHosts, start.hostId],
    // A pin stays: a failed start there does not prove an earlier one (hung, holding libvirt's lock) will
    // not still bring the VM up. Only the end of that host's boot, or its fence, does.
    notBefore: null,
  });
  if (saved === null) return none;
  return recoverVms(ctx, { control, vmIds: [vm.vmId], trigger: 'change', preferRelayId: args.relayId });
}
