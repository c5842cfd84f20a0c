import type { StartVmCommand } from '../../contracts/relay-protocol';
import type { VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { FenceNotConfirmedError, NoCapacityError, NoRelayAvailableError, VmHandedOverError } from '../errors';
import type { HostRecord } from '../ports';
import { claimFailoverStart } from '../recovery/adopt';
import { outcomeOf, settleTask } from '../shared/callbacks';
import { appendEvent } from '../shared/events';
import { compareIds } from '../shared/order';
import { clusterPolicy } from '../shared/policy';
import { byCommandPreference, hearsHost, liveRelays } from '../shared/relays';
import { capacityReservedEvent, type Reserved, readForReservation, reserveFor } from './reserve-capacity';

/** The start command a StartVm task put out. */
export interface StartDispatch {
  readonly commandId: string;
  readonly relayId: string | null;
  readonly notAfter: number;
}

/**
 * StartVm (callback task): holds the VM's capacity on the target (or, if it no longer fits, the next best
 * host) with one conditional write, then orders a live relay that hears that host to start the VM there.
 * Refused unless the failed host is confirmed off (safety rule 1), before anything is reserved; the start
 * goes out only once the reservation is held (rule 5), whatever the state machine sends. One command id per
 * attempt: a relay never gets two starts. An attempt that arrives with its reservation (a definition that
 * still has ReserveCapacity) is held to it.
 */
export async function dispatchStart(
  ctx: AppContext,
  attempt: VmAttempt,
  taskToken: string,
): Promise<StartDispatch> {
  const now = ctx.ports.clock.now();
  const reads = await readForReservation(ctx, attempt);
  const { record, control, siteHosts } = reads;
  if (record.fencedAt === null) {
    throw new FenceNotConfirmedError(
      `refusing to start ${attempt.vm.vmId}: ${attempt.hostId} is not confirmed powered off (safety rule 1)`,
    );
  }
  const reserved =
    attempt.reservationId === undefined
      ? await reserveFor(ctx, attempt, reads)
      : heldAlready(attempt, siteHosts, attempt.reservationId);
  const targetHostId = reserved.host.hostId;
  const commandId = `${attempt.incidentId}:start:${attempt.vm.vmId}:${attempt.attempt}`;
  // Claimed on the VM's recovery before the command goes out (app/recovery/adopt.ts): refused when the
  // incident of a host an earlier start went to took the VM over as that host fell silent.
  const taken = await claimFailoverStart(
    ctx,
    attempt.siteId,
    attempt.vm.vmId,
    { incidentId: attempt.incidentId, commandId, hostId: targetHostId },
    now,
  );
  if (taken !== null) {
    await ctx.ports.hosts.release(attempt.siteId, targetHostId, reserved.reservationId);
    throw new VmHandedOverError(
      `${attempt.vm.vmId} is not started by ${attempt.incidentId}: it was taken over (now ${taken.handedTo}) when the host its start went to fell silent`,
    );
  }
  const policy = clusterPolicy(ctx, control.clusters, record.cluster);
  // A relay that reports on time first: an overdue one may be dead, and its start would only time out.
  const relay = liveRelays(control.relays, now, policy)
    .filter((r) => hearsHost(r, targetHostId))
    .sort(byCommandPreference(now, policy, (a, b) => compareIds(a.relayId, b.relayId), control.relays))[0];
  if (relay === undefined) {
    // The reservation stays held until ReleaseCapacity (the catch of every other failure) frees it.
    throw new NoRelayAvailableError(`no live relay of site ${attempt.siteId} hears ${targetHostId}`);
  }
  const command: StartVmCommand = {
    kind: 'start-vm',
    commandId,
    incidentId: attempt.incidentId,
    hostId: targetHostId,
    vm: { id: attempt.vm.vmId, cpus: attempt.vm.cpus, memoryMiB: attempt.vm.memoryMiB },
    issuedAt: now,
    notAfter: now + policy.startTimeoutMs,
  };
  // The reservation's line goes out beside the command: the capacity is held either way.
  const noted = reserved.taken ? capacityReservedEvent(ctx, attempt, reserved) : Promise.resolve();
  noted.catch(() => {});
  const { created } = await ctx.ports.commands.create({
    siteId: attempt.siteId,
    relayId: relay.relayId,
    command,
    taskToken,
    createdAt: now,
  });
  if (!created) {
    // Step Functions ran this task again with a new token: the command stays the same (never a second
    // start), its result goes to the live token, and a result that already came is delivered at once.
    const existing = await ctx.ports.commands.adoptTaskToken(attempt.siteId, command.commandId, taskToken);
    await noted;
    if (existing?.result != null) await settleTask(ctx, taskToken, outcomeOf(existing, existing.result));
    return { commandId: command.commandId, relayId: existing?.relayId ?? null, notAfter: command.notAfter };
  }
  await Promise.all([
    noted,
    appendEvent(
      ctx,
      attempt.incidentId,
      'start-ordered',
      `start ${attempt.vm.vmId} on ${targetHostId} through relay ${relay.relayId} (attempt ${attempt.attempt})`,
      {
        vmId: attempt.vm.vmId,
        hostId: targetHostId,
        relayId: relay.relayId,
        commandId: command.commandId,
        attempt: attempt.attempt,
      },
    ),
  ]);
  return { commandId: command.commandId, relayId: relay.relayId, notAfter: command.notAfter };
}

/** The reservation an attempt says it holds: it must be on its target (rule 5), else NoCapacityError. */
function heldAlready(attempt: VmAttempt, hosts: readonly HostRecord[], reservationId: string): Reserved {
  const target = hosts.find((h) => h.hostId === attempt.targetHostId);
  if (target === undefined || !(reservationId in target.reservations)) {
    throw new NoCapacityError(
      `refusing to start ${attempt.vm.vmId} on ${attempt.targetHostId}: no capacity is reserved there (safety rule 5)`,
    );
  }
  return { host: target, reservationId, taken: false };
}
