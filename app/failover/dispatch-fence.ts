import type { FenceCommand } from '../../contracts/relay-protocol';
import type { IncidentInput } from '../../contracts/workflow';
import type { HaPolicy } from '../../core/policy';
import type { AppContext } from '../context';
import { FenceDeadlinePassedError, NoRelayAvailableError } from '../errors';
import type { CommandRecord, RelayRecord } from '../ports';
import { outcomeOf, settleTask } from '../shared/callbacks';
import { appendEvent } from '../shared/events';
import { requireIncident } from '../shared/incidents';
import { compareIds } from '../shared/order';
import { byCommandPreference, liveRelays } from '../shared/relays';
import { rejectIfRebooted } from './host-rebooted';
import { loadScope, transitionIncidentHost } from './scope';

/** The fence command a Fence task put out. */
export interface FenceDispatch {
  readonly commandId: string;
  readonly relayId: string;
  readonly notAfter: number;
}

/**
 * Fence (callback task): orders a live relay to power the host off and read it back, carrying the task
 * token the relay's result completes. Each retry goes through a relay not yet tried for this incident, else
 * the one used longest ago. A redelivered task (same token) finds its command already out.
 */
export async function dispatchFence(
  ctx: AppContext,
  incident: IncidentInput,
  taskToken: string,
): Promise<FenceDispatch> {
  const now = ctx.ports.clock.now();
  const { commands } = ctx.ports;
  const [record, { control, policy }, all, host] = await Promise.all([
    requireIncident(ctx, incident.incidentId),
    loadScope(ctx, incident.siteId, incident.cluster),
    commands.listForIncident(incident.siteId, incident.incidentId),
    ctx.ports.hosts.getHost(incident.siteId, incident.hostId),
  ]);
  // The host boots again: its failed boot is gone, and a fence now would power off the new one.
  if (host !== null) rejectIfRebooted(host, incident);
  const fences = all.filter((c) => c.command.kind === 'fence');
  const sent = fences.find((c) => c.taskToken === taskToken);
  if (sent !== undefined) {
    return { commandId: sent.command.commandId, relayId: sent.relayId, notAfter: sent.command.notAfter };
  }
  // A read-back 'off' that came after its task had timed out still proves the host off: hand it to this
  // attempt at once instead of fencing again (or giving up at the deadline with the host already off).
  const confirmed = fences.find((c) => c.result?.outcome === 'succeeded' && c.result.powerState === 'off');
  if (confirmed?.result != null) {
    await settleTask(ctx, taskToken, outcomeOf(confirmed, confirmed.result));
    return {
      commandId: confirmed.command.commandId,
      relayId: confirmed.relayId,
      notAfter: confirmed.command.notAfter,
    };
  }
  const deadline = record.openedAt + policy.fenceDeadlineMs;
  if (now > deadline) {
    throw new FenceDeadlinePassedError(
      `fencing ${incident.hostId} gave up: the deadline (${policy.fenceDeadlineMs} ms after opening) passed ${now - deadline} ms ago`,
    );
  }
  const relay = pickRelay(liveRelays(control.relays, now, policy), fences, { now, policy });
  if (relay === undefined) {
    throw new NoRelayAvailableError(`no live relay at site ${incident.siteId} can fence ${incident.hostId}`);
  }
  const { summarized } = await transitionIncidentHost(
    ctx,
    incident,
    () => ({ type: 'StartFence', at: now, incidentId: incident.incidentId, relayId: relay.relayId }),
    host ?? undefined,
  );
  const command: FenceCommand = {
    kind: 'fence',
    commandId: `${incident.incidentId}:fence:${fences.length + 1}`,
    incidentId: incident.incidentId,
    hostId: incident.hostId,
    // The boot to power off: a relay that hears the host alive in another boot refuses (stale-boot).
    bootId: incident.bootId,
    issuedAt: now,
    notAfter: now + policy.fenceAttemptTimeoutMs,
  };
  const tried = fences.map((c) => c.relayId);
  // The command, its timeline line and the host's summary are independent writes: a retried step writes
  // the same command (its id counts the fences stored) and the same line (keyed by that id), so they go
  // side by side.
  const created = commands.create({
    siteId: incident.siteId,
    relayId: relay.relayId,
    command,
    taskToken,
    createdAt: now,
  });
  const noted = appendEvent(
    ctx,
    incident.incidentId,
    'fence-ordered',
    `fence attempt ${fences.length + 1} of ${incident.hostId} through relay ${relay.relayId}` +
      (tried.length === 0 ? '' : ` (tried before: ${tried.join(', ')})`) +
      `, until ${new Date(command.notAfter).toISOString()}`,
    {
      commandId: command.commandId,
      relayId: relay.relayId,
      attempt: fences.length + 1,
      notAfter: command.notAfter,
    },
  );
  await Promise.all([created, noted, summarized]);
  return { commandId: command.commandId, relayId: relay.relayId, notAfter: command.notAfter };
}

/**
 * A live relay not yet used for this incident's fences, else the one whose last fence is oldest; relays
 * that report on time before overdue ones (an overdue relay may have died with the host it last heard,
 * and its attempt would only time out).
 */
function pickRelay(
  live: readonly RelayRecord[],
  fences: readonly CommandRecord[],
  at: { readonly now: number; readonly policy: HaPolicy },
): RelayRecord | undefined {
  // -1 for a relay never used: before every real instant, so untried relays come first.
  const lastUse = (relayId: string): number =>
    Math.max(-1, ...fences.filter((c) => c.relayId === relayId).map((c) => c.createdAt));
  return [...live].sort(
    byCommandPreference(
      at.now,
      at.policy,
      (a, b) => lastUse(a.relayId) - lastUse(b.relayId) || compareIds(a.relayId, b.relayId),
      live,
    ),
  )[0];
}
