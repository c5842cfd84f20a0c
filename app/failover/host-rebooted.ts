import type { IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { FenceNotConfirmedError, HostRebootedError } from '../errors';
import type { HostRecord } from '../ports';
import { toAppError } from '../shared/errors';
import { appendEvent } from '../shared/events';
import { bootEnded } from '../shared/ha-set';
import { incidentOf, transitionHost } from '../shared/host-lifecycle';
import { updateIncident } from '../shared/incidents';
import { METRIC, secondsBetween } from '../shared/metrics';

/**
 * Throws HostRebootedError when the incident's host is heard in another boot than the incident's: the step
 * that finds it hands the failover to HostRebooted instead of fencing (or waiting for an operator).
 */
export function rejectIfRebooted(host: HostRecord, incident: IncidentInput): void {
  if (!bootEnded(host, incident)) return;
  throw new HostRebootedError(
    `${incident.hostId} is heard again in boot ${host.bootId}, not the failed boot ${incident.bootId}`,
  );
}

/**
 * HostRebooted: the host was heard again in a new boot before its failed boot was confirmed off. A boot id
 * is the kernel's and changes only when the host boots, so the failed boot has ended, and every VM process
 * it ran with it: the new boot runs none of them (HA VMs have libvirt autostart off; one it did start is
 * recorded running and is not started again). The incident therefore restarts the failed boot's HA set
 * without a fence, and never powers the new boot off. The evidence is the host's stored inventory, from a
 * relay that heard the new boot, never the request. Records the boot's end as the incident's `fencedAt`
 * (restarts may begin; StartVm checks it) and ends the lifecycle's part if ingest has not yet.
 */
export async function hostRebooted(
  ctx: AppContext,
  incident: IncidentInput,
): Promise<{ fencedAt: number; bootId: string; detail: string }> {
  const now = ctx.ports.clock.now();
  const { siteId, hostId, incidentId } = incident;
  const host = await ctx.ports.hosts.getHost(siteId, hostId);
  if (host === null || !bootEnded(host, incident)) {
    // Nothing proves the failed boot gone: no VM may start (safety rule 1); the execution fails loudly.
    throw new FenceNotConfirmedError(
      `${hostId} is not heard in a new boot (boot ${host?.bootId ?? 'unknown'}): nothing restarts without a fence`,
    );
  }
  const bootId = host.bootId;
  try {
    await transitionHost(
      ctx,
      siteId,
      hostId,
      (current) =>
        incidentOf(current.lifecycle) === incidentId && current.lifecycle.bootId !== current.bootId
          ? { command: { type: 'ReportAlive', at: now, bootId: current.bootId } }
          : null,
      host,
    );
  } catch (error) {
    throw toAppError(error);
  }
  const { incident: updated, changed } = await updateIncident(ctx, incidentId, (i) =>
    i.fencedAt === null
      ? {
          fencedAt: now,
          // The wait for an operator, if any, is over: the host answered.
          ...(i.operatorTaskToken === null ? {} : { operatorTaskToken: null }),
          ...(i.outcome === 'awaiting-operator' ? { outcome: 'in-progress' as const } : {}),
        }
      : null,
  );
  const fencedAt = updated.fencedAt ?? now;
  const detail =
    `${hostId} is heard again in boot ${bootId} (the incident's was ${incident.bootId}): the failed boot ` +
    'has ended with every VM it ran, so its HA VMs restart without a fence and the new boot is not powered off';
  if (changed) {
    ctx.ports.metrics.seconds(METRIC.SecondsToFence, secondsBetween(updated.openedAt, fencedAt));
    await appendEvent(ctx, incidentId, 'boot-ended', detail, {
      failedBootId: incident.bootId,
      bootId,
    });
  }
  return { fencedAt, bootId, detail };
}
