import type { StartPin } from '../../core/vm-recovery';
import type { AppContext } from '../context';
import type { RecoveryCause, VmRecord } from '../ports';
import { recordDownPeriods } from '../shared/downtime';
import { incidentOpen } from '../shared/incidents';
import { retryOnConflict } from '../shared/retry';
import {
  ensureVmIncident,
  onRetryList,
  orderedClock,
  type VmIncidentPlace,
  vmEvent,
  vmIncidentIdFor,
} from './episode';

/** What puts a VM on the retry list, and what its incident (if it opens one) says. */
export interface DownVm {
  readonly vm: VmRecord;
  readonly cause: RecoveryCause;
  /** Where it went down: the host its incident is about. */
  readonly place: VmIncidentPlace;
  /** A start that may still bring it up on one host (a host incident's unconfirmed start). */
  readonly pinned?: StartPin | null;
  /**
   * The host incident that recorded the VM's down period and left it down (its period is ended when the
   * VM runs again); a VM that stopped by itself has its own incident record it.
   */
  readonly downIncidentId?: string;
  /** The first line of its incident's timeline (`vm-stopped`), when it opens one. */
  readonly detail: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * Puts an HA VM that is down on its site's retry list: the site's marker first (so that a pass that dies
 * after it finds the VM again), then the VM's recovery (status `waiting`, its restart history kept for the
 * budget), then the marker again (a concurrent unlist may have cleared it in between; see unlist). A VM
 * that stopped by itself (crashed, or its host rebooted) opens its VM incident here, with the stop as its
 * first line; one left down by a host incident has that incident's timeline already, and opens
 * one only when a start goes out. A VM already listed is left as it is, so a repeated call (a report
 * redone after a crash) changes nothing. An operator's down-on-purpose mark does not hold it back: the VM
 * ran since (it could not have stopped otherwise). Returns whether this call listed it.
 *
 * Called before the observation that shows the VM down is written: `since` (now) is later than that
 * observation's time, so the record still showing it running says nothing about it running again.
 */
export async function listForRestart(given: AppContext, down: DownVm, at: number): Promise<boolean> {
  const ctx = orderedClock(given);
  const { siteId, vmId } = down.vm;
  await ctx.ports.sites.setRecovering(siteId, vmId, true);
  const opens = down.cause !== 'host-failover';
  let first = true;
  const outcome = await retryOnConflict(async () => {
    // The record the caller just read serves the first attempt; a lost race reads it again.
    const vm = first ? down.vm : ((await ctx.ports.vms.getVm(siteId, vmId)) ?? down.vm);
    first = false;
    const prior = vm.recovery;
    if (prior !== undefined && onRetryList(prior)) {
      return { listedNow: false, vm, incidentId: prior.incidentId };
    }
    // Taken over by a host incident still open (app/recovery/adopt.ts): its close lists it if left down.
    if (
      prior?.handedTo &&
      prior.handedTo !== down.downIncidentId &&
      (await incidentOpen(ctx, prior.handedTo))
    ) {
      return { listedNow: false, vm, incidentId: null };
    }
    const incidentSeq = (prior?.incidentSeq ?? 0) + (opens ? 1 : 0);
    const incidentId = opens ? vmIncidentIdFor(siteId, vmId, incidentSeq) : null;
    const saved = await ctx.ports.vms.saveRecovery(siteId, vmId, prior?.version ?? null, {
      handedTo: null,
      // A failover whose start was taken over stays done with the VM (app/recovery/adopt.ts).
      ...(prior?.takenFrom ? { takenFrom: prior.takenFrom } : {}),
      status: 'waiting',
      cause: down.cause,
      since: at,
      incidentId,
      incidentSeq,
      restarts: prior?.restarts ?? [],
      attempt: 0,
      triedHosts: [],
      orders: 0,
      start: null,
      pinned: down.pinned ?? null,
      notBefore: null,
      // Due at once: the pass right after this one (or the detector's next tick) tries it.
      checkedAt: 0,
      note: null,
      by: null,
      downIncidentId: opens ? incidentId : (down.downIncidentId ?? null),
    });
    return { listedNow: true, vm: saved, incidentId };
  });
  // Again once listed: a pass taking the VM off the list (it ran until now) may have cleared the marker
  // between the first write and this one (see unlist).
  if (outcome.listedNow) await ctx.ports.sites.setRecovering(siteId, vmId, true);
  // Also on a repeat: a call that died after the recovery named the incident left it to be made.
  if (opens && outcome.incidentId !== null && outcome.vm.recovery?.cause === down.cause) {
    const opened = await ensureVmIncident(ctx, outcome.vm, outcome.incidentId, down.place, at);
    // The stop starts the VM's down period (app/shared/downtime.ts); repeat-safe like the opening.
    if (opened !== null && outcome.vm.recovery?.downIncidentId === outcome.incidentId) {
      await recordDownPeriods(ctx, outcome.incidentId, { [vmId]: { from: at, to: null } }, opened.incident);
    }
    if (opened?.created === true) {
      await vmEvent(ctx, outcome.incidentId, vmId, 'vm-stopped', down.detail, {
        hostId: down.place.hostId,
        cause: down.cause,
        ...down.data,
      });
    }
  }
  return outcome.listedNow;
}
