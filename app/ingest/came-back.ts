import type { HostObservation } from '../../contracts/relay-protocol';
import { FenceContradictedError } from '../../core/lifecycle';
import type { AppContext } from '../context';
import type { SiteControl } from '../ports';
import { isRunning } from '../shared/capacity';
import { appendEvent, eventsOf } from '../shared/events';
import { transitionHost } from '../shared/host-lifecycle';
import { METRIC } from '../shared/metrics';
import { answerOperatorWait } from '../shared/operator-wait';
import { recordRunningTwice } from '../shared/split-brain';
import { occupies } from './digest';
import { COMES_BACK } from './reported-hosts';

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
      // The fenced boot heard again is AliveDuringFence, which records nothing: no write to plan.
      const sameBootFencing = state.status === 'fencing' && state.bootId === obs.bootId;
      if ((!COMES_BACK.has(state.status) && !rebootedUp) || sameBootFencing) return null;
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
        // The same boot resumes (nothing was restarted); a new boot means the failed one's VMs are down,
        // which HostRebooted restarts. Answered whenever it comes, even after the wait ended.
        await answerOperatorWait(ctx, event.incidentId, {
          decision: event.bootIdChanged ? 'host-rebooted' : 'host-came-back',
          by: `relay:${relayId}`,
          at: now,
        });
      }
    }
  } catch (error) {
    if (!(error instanceof FenceContradictedError)) throw error;
    await fenceContradicted(ctx, error, { siteId, obs, relayId });
  }
}

// Safety rule 6: the host was confirmed off, yet its fenced boot runs. Raised on every report while it lasts;
// the timeline records it once per boot.
async function fenceContradicted(
  ctx: AppContext,
  error: FenceContradictedError,
  at: { readonly siteId: string; readonly obs: HostObservation; readonly relayId: string },
): Promise<void> {
  const where = { hostId: at.obs.hostId, relayId: at.relayId };
  ctx.ports.metrics.count(METRIC.SplitBrainDetected);
  const seen = await eventsOf(ctx, error.incidentId, 'split-brain', (e) => e.data?.bootId === error.bootId);
  if (seen.length > 0) return;
  // The VMs it runs that a failover restarted elsewhere run twice now: kept for the lasting gauge.
  const records = new Map((await ctx.ports.vms.listVms(at.siteId)).map((vm) => [vm.vmId, vm]));
  for (const vm of at.obs.vms.filter(occupies)) {
    const record = records.get(vm.id);
    if (record === undefined || record.hostId === null || record.hostId === where.hostId) continue;
    if (!isRunning(record)) continue;
    await recordRunningTwice(ctx, at.siteId, vm.id, [record.hostId, where.hostId]);
  }
  await appendEvent(
    ctx,
    error.incidentId,
    'split-brain',
    `${where.hostId} was confirmed off but relay ${where.relayId} hears its fenced boot ${error.bootId} alive`,
    { hostId: where.hostId, relayId: where.relayId, bootId: error.bootId, evidence: error.evidence },
  );
}
