import type { HostObservation } from '../../contracts/relay-protocol';
import { FenceContradictedError, type HostStatus } from '../../core/lifecycle';
import type { AppContext } from '../context';
import type { SiteControl } from '../ports';
import { appendEvent, eventsOf } from '../shared/events';
import { transitionHost } from '../shared/host-lifecycle';
import { METRIC } from '../shared/metrics';
import { resolveOperatorWait } from '../shared/operator-wait';

/** Statuses a host leaves when a relay hears it again; not `fencing`: a half-dead host is fenced anyway. */
const COMES_BACK: ReadonlySet<HostStatus> = new Set(['suspect', 'awaiting-operator', 'fenced']);

/**
 * Records that heard hosts are alive where their lifecycle says otherwise (a false alarm, a recovery, a
 * reboot after a fence), or where an up host runs a boot its lifecycle does not know yet. A host awaiting
 * the operator resolves that wait with `host-came-back`. A fenced host alive in the fenced boot
 * contradicts the fence: the split-brain alarm goes, and the report carries on.
 */
export async function recordHostsAlive(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly relayId: string;
    readonly heard: readonly HostObservation[];
    readonly rebooted: readonly HostObservation[];
    readonly now: number;
  },
): Promise<void> {
  const { control, heard, rebooted } = args;
  const rebootedIds = new Set(rebooted.map((obs) => obs.hostId));
  for (const obs of heard) {
    const status = control.hosts[obs.hostId]?.status;
    if (status === undefined || !(COMES_BACK.has(status) || rebootedIds.has(obs.hostId))) continue;
    await hostAlive(ctx, { ...args, obs });
  }
}

async function hostAlive(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly relayId: string;
    readonly obs: HostObservation;
    readonly now: number;
  },
): Promise<void> {
  const { control, relayId, obs, now } = args;
  const siteId = control.site.siteId;
  try {
    const change = await transitionHost(ctx, siteId, obs.hostId, (host) => {
      const state = host.lifecycle;
      const rebootedUp = state.status === 'up' && state.bootId !== obs.bootId;
      if (!COMES_BACK.has(state.status) && !rebootedUp) return null;
      return { command: { type: 'ReportAlive', at: now, bootId: obs.bootId } };
    });
    for (const event of change.events) {
      if (event.type !== 'HostCameBack' || event.incidentId === null) continue;
      await appendEvent(
        ctx,
        event.incidentId,
        'host-came-back',
        `relay ${relayId} hears ${obs.hostId} again (${event.bootIdChanged ? 'new boot' : 'same boot'} ${obs.bootId}), after it was ${change.before.status}`,
        { relayId, bootId: obs.bootId, bootIdChanged: event.bootIdChanged, was: change.before.status },
      );
      if (change.before.status === 'awaiting-operator') {
        await resolveOperatorWait(ctx, event.incidentId, {
          decision: 'host-came-back',
          by: `relay:${relayId}`,
          at: now,
        });
      }
    }
  } catch (error) {
    if (!(error instanceof FenceContradictedError)) throw error;
    await fenceContradicted(ctx, error, { hostId: obs.hostId, relayId });
  }
}

// Safety rule 6: the host was confirmed off, yet its fenced boot runs. Raised on every report while it lasts;
// the timeline records it once per boot.
async function fenceContradicted(
  ctx: AppContext,
  error: FenceContradictedError,
  where: { readonly hostId: string; readonly relayId: string },
): Promise<void> {
  ctx.ports.metrics.count(METRIC.SplitBrainDetected);
  const seen = await eventsOf(ctx, error.incidentId, 'split-brain', (e) => e.data?.bootId === error.bootId);
  if (seen.length > 0) return;
  await appendEvent(
    ctx,
    error.incidentId,
    'split-brain',
    `${where.hostId} was confirmed off but relay ${where.relayId} hears its fenced boot ${error.bootId} alive`,
    { hostId: where.hostId, relayId: where.relayId, bootId: error.bootId, evidence: error.evidence },
  );
}
