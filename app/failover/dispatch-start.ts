import type { StartVmCommand } from '../../contracts/relay-protocol';
import type { VmAttempt } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { FenceNotConfirmedError, NoCapacityError, NoRelayAvailableError } from '../errors';
import { outcomeOf, settleTask } from '../shared/callbacks';
import { appendEvent } from '../shared/events';
import { requireIncident } from '../shared/incidents';
import { compareIds } from '../shared/order';
import { clusterPolicy } from '../shared/policy';
import { liveRelays } from '../shared/relays';
import { requireControl } from '../shared/site';

/** The start command a StartVm task put out. */
export interface StartDispatch {
  readonly commandId: string;
  readonly relayId: string | null;
  readonly notAfter: number;
}

/**
 * StartVm (callback task): orders a live relay that hears the target host to start the VM there. Refused
 * unless the failed host is confirmed off (safety rule 1) and the target holds the attempt's reservation
 * (rule 5), whatever the state machine sends. One command id per attempt: a relay never gets two starts.
 */
export async function dispatchStart(
  ctx: AppContext,
  attempt: VmAttempt,
  taskToken: string,
): Promise<StartDispatch> {
  const now = ctx.ports.clock.now();
  const [record, target, control] = await Promise.all([
    requireIncident(ctx, attempt.incidentId),
    ctx.ports.hosts.getHost(attempt.siteId, attempt.targetHostId),
    requireControl(ctx, attempt.siteId),
  ]);
  if (record.fencedAt === null) {
    throw new FenceNotConfirmedError(
      `refusing to start ${attempt.vm.vmId}: ${attempt.hostId} is not confirmed powered off (safety rule 1)`,
    );
  }
  const reservationId = attempt.reservationId;
  if (reservationId === undefined || target === null || !(reservationId in target.reservations)) {
    throw new NoCapacityError(
      `refusing to start ${attempt.vm.vmId} on ${attempt.targetHostId}: no capacity is reserved there (safety rule 5)`,
    );
  }
  const policy = clusterPolicy(ctx, control.clusters, record.cluster);
  const relay = liveRelays(control.relays, now, policy)
    .filter((r) => !(attempt.targetHostId in r.silentHosts))
    .sort((a, b) => compareIds(a.relayId, b.relayId))[0];
  if (relay === undefined) {
    throw new NoRelayAvailableError(`no live relay of site ${attempt.siteId} hears ${attempt.targetHostId}`);
  }
  const command: StartVmCommand = {
    kind: 'start-vm',
    commandId: `${attempt.incidentId}:start:${attempt.vm.vmId}:${attempt.attempt}`,
    incidentId: attempt.incidentId,
    hostId: attempt.targetHostId,
    vm: { id: attempt.vm.vmId, cpus: attempt.vm.cpus, memoryMiB: attempt.vm.memoryMiB },
    issuedAt: now,
    notAfter: now + policy.startTimeoutMs,
  };
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
    if (existing?.result != null) await settleTask(ctx, taskToken, outcomeOf(existing, existing.result));
    return { commandId: command.commandId, relayId: existing?.relayId ?? null, notAfter: command.notAfter };
  }
  await appendEvent(
    ctx,
    attempt.incidentId,
    'start-ordered',
    `start ${attempt.vm.vmId} on ${attempt.targetHostId} through relay ${relay.relayId} (attempt ${attempt.attempt})`,
    {
      vmId: attempt.vm.vmId,
      hostId: attempt.targetHostId,
      relayId: relay.relayId,
      commandId: command.commandId,
      attempt: attempt.attempt,
    },
  );
  return { commandId: command.commandId, relayId: relay.relayId, notAfter: command.notAfter };
}
