import type { IncidentInput } from '../../contracts/workflow';
import type { HostCommand } from '../../core/lifecycle';
import type { AppContext } from '../context';
import { FenceNotConfirmedError } from '../errors';
import { fenceLevelOf } from '../shared/callbacks';
import { isRunning } from '../shared/capacity';
import { appendEvent, eventsOf } from '../shared/events';
import { updateIncident } from '../shared/incidents';
import { METRIC, secondsBetween } from '../shared/metrics';
import { endRunningTwice } from '../shared/split-brain';
import { rejectIfRebooted } from './host-rebooted';
import { markDownAll, transitionIncidentHost } from './scope';

/** How the power-off was confirmed, as VerifyPowerOff or the operator's decision says. */
export interface FenceConfirmation {
  readonly by: 'ipmi-read-back' | 'operator';
  readonly detail: string;
}

/**
 * MarkFenced: records the host as fenced and its VMs that no failover brings back (not HA) as down. The HA
 * VMs are not written here, on the way to the first start: each one's record moves to its new host when a
 * relay reports it running there, and Close marks down whatever the waves left behind. The lifecycle
 * command is built from stored evidence only, never from the request: a fence command of this incident
 * whose result read `off`, or the operator's recorded confirmation. Without it nothing is marked (safety
 * rule 1).
 */
export async function markFenced(
  ctx: AppContext,
  incident: IncidentInput,
  confirmation: FenceConfirmation,
): Promise<{ fencedAt: number; vmsDown: number }> {
  const now = ctx.ports.clock.now();
  // One round of reads: the evidence, and the host and incident records the writes are conditional on.
  const [evidence, host, record, vms] = await Promise.all([
    confirmation.by === 'ipmi-read-back'
      ? readBackCommand(ctx, incident, now)
      : operatorCommand(ctx, incident, now),
    ctx.ports.hosts.getHost(incident.siteId, incident.hostId),
    ctx.ports.incidents.get(incident.incidentId),
    ctx.ports.vms.listVms(incident.siteId, { hostId: incident.hostId }),
  ]);
  // Powered off, then booted again before this step: the host is no longer the incident's to mark fenced,
  // and HostRebooted records the end of the failed boot instead (the new boot is its evidence).
  if (host !== null) rejectIfRebooted(host, incident);
  // The stored evidence says the host is off, so its VMs are down whatever else happens: marking them
  // (idempotent, conditional on each still being recorded there) goes out beside the host's transition.
  // fencedAt, which StartVm checks before any start, is written only once the host is marked fenced.
  const down = vms.filter((vm) => isRunning(vm) && !vm.ha);
  const marking = markDownAll(ctx, incident, down, now);
  // Settled here so that a failed transition does not leave the marking's rejection unhandled.
  marking.catch(() => {});
  const { summarized } = await transitionIncidentHost(
    ctx,
    incident,
    () => evidence.command,
    host ?? undefined,
  );
  const [{ incident: updated, changed }] = await Promise.all([
    updateIncident(
      ctx,
      incident.incidentId,
      (i) => (i.fencedAt === null ? { fencedAt: now } : null),
      record ?? undefined,
    ),
    marking,
    summarized,
  ]);
  const fencedAt = updated.fencedAt ?? now;
  // Confirmed off: whatever it ran twice it runs no more (the lasting split-brain gauge).
  const control = await ctx.ports.sites.loadControl(incident.siteId);
  if (control !== null) await endRunningTwice(ctx, control, incident.hostId, () => false);
  if (changed) {
    ctx.ports.metrics.seconds(METRIC.SecondsToFence, secondsBetween(updated.openedAt, fencedAt));
    await appendEvent(
      ctx,
      incident.incidentId,
      'fenced',
      `${incident.hostId} is fenced (${confirmation.by}: ${confirmation.detail}); ${down.length} non-HA VM(s) marked down`,
      { by: confirmation.by, ...evidence.level, vmsDown: down.map((vm) => vm.vmId) },
    );
  }
  return { fencedAt, vmsDown: down.length };
}

/** The lifecycle command the stored evidence proves, with the fence level that read the power back. */
interface FenceEvidence {
  readonly command: HostCommand;
  readonly level: { readonly level?: number; readonly driver?: string };
}

async function readBackCommand(
  ctx: AppContext,
  incident: IncidentInput,
  now: number,
): Promise<FenceEvidence> {
  const commands = await ctx.ports.commands.listForIncident(incident.siteId, incident.incidentId);
  const confirmed = commands.find(
    (c) =>
      c.command.kind === 'fence' &&
      c.command.hostId === incident.hostId &&
      c.status === 'succeeded' &&
      c.result?.powerState === 'off',
  );
  if (confirmed === undefined) {
    throw new FenceNotConfirmedError(
      `no fence of incident ${incident.incidentId} read the power back as off`,
    );
  }
  return {
    command: {
      type: 'RecordFenceResult',
      at: now,
      incidentId: incident.incidentId,
      relayId: confirmed.relayId,
      readBack: 'off',
    },
    level: confirmed.result === null ? {} : fenceLevelOf(confirmed.result),
  };
}

async function operatorCommand(
  ctx: AppContext,
  incident: IncidentInput,
  now: number,
): Promise<FenceEvidence> {
  const [confirmed] = await eventsOf(
    ctx,
    incident.incidentId,
    'power-off-confirmed',
    (e) => e.data?.by === 'operator',
  );
  const operator = confirmed?.data?.operator;
  if (typeof operator !== 'string') {
    throw new FenceNotConfirmedError(`no operator confirmed incident ${incident.incidentId}'s host off`);
  }
  return {
    command: { type: 'OperatorConfirmsOff', at: now, incidentId: incident.incidentId, operator },
    level: {},
  };
}
