import { type IncidentInput, type IncidentOutcome, IncidentOutcomeSchema } from '../../contracts/workflow';
import { priorityRank } from '../../core/model';
import type { AppContext } from '../context';
import type { DownPeriod, IncidentRecord, VmRecord } from '../ports';
import { listAdoptedLeftOf, listLeftDown } from '../recovery/left-down';
import { isRunning } from '../shared/capacity';
import { recordDownPeriods, runningAgainAt, silenceStart } from '../shared/downtime';
import { bootEnded, fencedHostIds, runningNow, storedHaSet } from '../shared/ha-set';
import { incidentOf } from '../shared/host-lifecycle';
import { closeIncident, incidentOpen, requireIncident } from '../shared/incidents';
import { compareIds } from '../shared/order';
import { plannedVmIds, storedPlan } from './plan-record';
import { markDownAll } from './scope';

/**
 * Close: the final outcome, which says the truth. An incident whose failed boot ended (fenced, or heard
 * again in a new boot) recovered only when every HA VM of its HA set (recorded when it opened) runs: a
 * start of this incident succeeded (the store's record of what relays confirmed), or its record has it
 * running now. Otherwise it partially recovered, naming the VMs still down. An incident that never fenced
 * takes the outcome the state machine names, else false-alarm when its host came back, else what it
 * already records.
 */
export async function close(
  ctx: AppContext,
  incident: IncidentInput,
  requested?: string,
): Promise<{ outcome: IncidentOutcome }> {
  const record = await requireIncident(ctx, incident.incidentId);
  if (record.fencedAt !== null) {
    // The failed host's VMs still recorded running there are the ones no wave brought back: down. (Done
    // before the close, so a repeated Close finishes it; a VM restarted elsewhere is recorded there.) Not
    // once the host runs a new boot: its own inventory says then what runs there. Down as of the fence,
    // which is what the mark knows: a report that saw the VM running on its new host after that, whose
    // write is still on the way (the start's result that let the waves end came in it), stays newer.
    const [left, host] = await Promise.all([
      ctx.ports.vms.listVms(incident.siteId, { hostId: incident.hostId }),
      ctx.ports.hosts.getHost(incident.siteId, incident.hostId),
    ]);
    if (host === null || !bootEnded(host, incident)) {
      await markDownAll(ctx, incident, left.filter(isRunning), record.fencedAt);
    }
  }
  if (record.closedAt !== null) return { outcome: record.outcome };
  const { outcome, detail, data, downtime } = await resolveOutcome(ctx, record, requested);
  // Down time first (repeat-safe): VM-level HA, taking over the VMs left down, ends their periods here.
  if (downtime !== undefined) await recordDownPeriods(ctx, record.incidentId, downtime);
  // VM-level HA takes over the HA VMs the incident leaves down (app/recovery), before the close: a
  // repeated Close lists what a crash cut short.
  if (outcome === 'partially-recovered') await listLeftDown(ctx, record, idsIn(data?.down));
  if (record.fencedAt === null) await listAdoptedLeftOf(ctx, record.incidentId);
  const { incident: closed } = await closeIncident(ctx, incident, outcome, detail, data);
  return { outcome: closed.outcome };
}

async function resolveOutcome(
  ctx: AppContext,
  record: IncidentRecord,
  requested: string | undefined,
): Promise<{
  outcome: IncidentOutcome;
  detail: string;
  data?: Record<string, unknown>;
  /** Each HA VM's down period, once the failed boot ended (app/shared/downtime.ts). */
  downtime?: Record<string, DownPeriod>;
}> {
  if (record.fencedAt !== null) {
    const [events, commands, siteVms, siteHosts] = await Promise.all([
      ctx.ports.incidents.listEvents(record.incidentId),
      ctx.ports.commands.listForIncident(record.siteId, record.incidentId),
      ctx.ports.vms.listVms(record.siteId),
      ctx.ports.hosts.listHosts(record.siteId),
    ]);
    const host = siteHosts.find((h) => h.hostId === record.hostId) ?? null;
    const fenced = fencedHostIds(siteHosts);
    const plan = storedPlan(events);
    const started = new Set(
      commands.flatMap((c) =>
        c.command.kind === 'start-vm' && c.status === 'succeeded' ? [c.command.vm.id] : [],
      ),
    );
    const records = new Map(siteVms.map((vm) => [vm.vmId, vm]));
    const failed = { hostId: record.hostId, host, bootId: record.bootId };
    // The set recorded at opening; incidents opened before it was recorded judge by their plan.
    // In priority order (then by id), as the waves start them: what is down reads most urgent first.
    const set =
      storedHaSet(events)
        ?.slice()
        .sort((a, b) => priorityRank(a.priority) - priorityRank(b.priority) || compareIds(a.vmId, b.vmId))
        .map((vm) => vm.vmId) ??
      (plan === null ? [] : [...plannedVmIds(plan), ...plan.unplaced.map((u) => u.vmId)]);
    // A start that succeeded counts, unless its target has since reported the VM stopped by a failure
    // (crashed within a report of its start): down, left to VM-level HA like any VM the waves left down.
    const lastStart = new Map(
      commands.flatMap((c) =>
        c.command.kind === 'start-vm' && c.status === 'succeeded'
          ? [[c.command.vm.id, c.command] as const]
          : [],
      ),
    );
    const crashedSinceStart = (vmId: string): boolean => {
      const start = lastStart.get(vmId);
      const vm = records.get(vmId);
      return (
        start !== undefined &&
        vm !== undefined &&
        vm.hostId === start.hostId &&
        stoppedByFailure(vm) &&
        vm.observedAt > start.issuedAt
      );
    };
    // A start that succeeded on a host that has since fallen silent itself (in an incident of its own now):
    // the VM may have died with it. That incident has it when it opened after the start (it took it over,
    // app/recovery/adopt.ts) or saw it running there: handed over. Otherwise down, and VM-level HA takes it
    // pinned to that host (listLeftDown), which lets nothing start it elsewhere before that host is fenced.
    const targetIncident = (vmId: string): string | null => {
      const start = lastStart.get(vmId);
      if (start === undefined || start.hostId === record.hostId) return null;
      const target = siteHosts.find((h) => h.hostId === start.hostId);
      return target === undefined ? null : incidentOf(target.lifecycle);
    };
    // Taken over (VmRecovery.handedTo) by another incident still open, whatever this one's start did.
    const takers = await openTakers(
      ctx,
      record.incidentId,
      set.map((vmId) => records.get(vmId)),
    );
    const handedOver = (vmId: string): boolean => {
      if (takers.has(vmId)) return true;
      const taker = targetIncident(vmId);
      const vm = records.get(vmId);
      if (taker === null || vm === undefined) return false;
      const target = lastStart.get(vmId)?.hostId;
      return vm.hostId === target && isRunning(vm);
    };
    const runs = (vmId: string): boolean =>
      runningNow(records.get(vmId), failed, fenced) !== null ||
      (started.has(vmId) && !crashedSinceStart(vmId) && targetIncident(vmId) === null);
    const handed = set.filter((vmId) => !runs(vmId) && handedOver(vmId));
    const down = set.filter((vmId) => !runs(vmId) && !handed.includes(vmId));
    const unplaced = plan?.unplaced.map((u) => u.vmId) ?? [];
    // A VM handed over to another incident is not running yet either: this incident did not bring it back.
    const recovered = plan !== null && down.length === 0 && handed.length === 0;
    const observed = new Map(
      set.flatMap((vmId) => {
        const vm = records.get(vmId);
        return vm !== undefined && runningNow(vm, failed, fenced) !== null
          ? [[vmId, vm.observedAt] as const]
          : [];
      }),
    );
    const ranAgain = runningAgainAt(events, observed);
    const from = silenceStart(record);
    const now = ctx.ports.clock.now();
    const downtime = Object.fromEntries(
      set.map((vmId): [string, DownPeriod] => [
        vmId,
        { from, to: runs(vmId) ? (ranAgain.get(vmId) ?? now) : handed.includes(vmId) ? now : null },
      ]),
    );
    return {
      downtime,
      outcome: recovered ? 'recovered' : 'partially-recovered',
      detail:
        plan === null
          ? 'the host was fenced but no placement was planned'
          : `${set.length - down.length - handed.length} of ${set.length} HA VM(s) run again` +
            (handed.length === 0
              ? ''
              : `; handed over to the incident of the host they were started on, which fell silent: ${handed.join(', ')}`) +
            (down.length === 0 ? '' : `; down: ${down.join(', ')}`),
      data: { started: [...started], down, unplaced, haVms: set, ...(handed.length === 0 ? {} : { handed }) },
    };
  }
  const named = IncidentOutcomeSchema.safeParse(requested);
  if (named.success && named.data !== 'in-progress') {
    return { outcome: named.data, detail: 'no VM was restarted: the host was never confirmed off' };
  }
  const host = await ctx.ports.hosts.getHost(record.siteId, record.hostId);
  if (host !== null && incidentOf(host.lifecycle) !== record.incidentId) {
    return {
      outcome: 'false-alarm',
      detail: `${record.hostId} came back (${host.lifecycle.status}) before any fence`,
    };
  }
  // Still this incident's and never fenced: like a suppressed fence, the host stays suspect for the detector.
  return {
    outcome: record.outcome === 'in-progress' ? 'fencing-suppressed' : record.outcome,
    detail: `no VM was restarted: ${record.hostId} was never confirmed off`,
  };
}

/** The VM ids of an outcome's `down` list. */
function idsIn(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** libvirt says the VM failed: `crashed`, or shut off because it crashed or failed to run. */
function stoppedByFailure(vm: VmRecord): boolean {
  return (
    vm.state === 'crashed' || (vm.state === 'shut-off' && (vm.reason === 'crashed' || vm.reason === 'failed'))
  );
}

/**
 * The VMs of `vms` another incident took over (VmRecovery.handedTo): from this one (`takenFrom`: its
 * start there was taken, whatever the taker did since), or any the taker still holds (open).
 */
async function openTakers(
  ctx: AppContext,
  incidentId: string,
  vms: readonly (VmRecord | undefined)[],
): Promise<Set<string>> {
  const handed = vms.flatMap((vm) => {
    const to = vm?.recovery?.handedTo;
    const fromHere = vm?.recovery?.takenFrom === incidentId;
    return vm !== undefined && to && to !== incidentId ? [{ vmId: vm.vmId, to, fromHere }] : [];
  });
  const open = await Promise.all(
    handed.map(async ({ to, fromHere }) => fromHere || (await incidentOpen(ctx, to))),
  );
  return new Set(handed.filter((_, i) => open[i] === true).map(({ vmId }) => vmId));
}
