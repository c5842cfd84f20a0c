import type { AppContext } from '../context';
import { ConcurrentUpdateError } from '../errors';
import type { FailoverStart, SiteControl, VmRecord } from '../ports';
import { fencedIn, runsUnfenced } from '../shared/capacity';
import { endDownPeriod } from '../shared/downtime';
import type { AdoptedVm, HaSetIncident } from '../shared/ha-set';
import { closeIncident, incidentOpen } from '../shared/incidents';
import { draftOf, idle, onRetryList, type RecoveryDraft, saveRecovery, unlist } from './episode';

/**
 * HA VMs the failed host was being started with, that no report showed running there yet: a failover's
 * start there whose result said it runs, or VM-level HA's start (or its pin: a start that may still bring
 * it up there). Each may be running on the host as it goes silent, so only its fence makes it down for
 * sure, and the host's incident takes it over: it restarts it in its priority waves and says it is down
 * while it is. The takeover is a conditional write of the VM's recovery naming the incident (`handedTo`),
 * the one item every lister writes too (listForRestart refuses a VM handed to an open incident), so the VM
 * has one owner whatever the interleaving. From VM-level HA the VM also leaves the retry list and its
 * incident closes, handing over; VM-level HA can start it nowhere else meanwhile, since its start is bound
 * to this host, now suspect. A failover's start whose result is still out is taken only when the failover
 * claimed it on the recovery (claimFailoverStart): its next start, if that one fails, finds the VM handed
 * over and stops. Repeat-safe: a VM taken by a first call that died names this incident.
 */
export async function adoptStartsUnderWay(
  ctx: AppContext,
  incident: HaSetIncident,
  control: SiteControl,
  ran: ReadonlySet<string>,
): Promise<AdoptedVm[]> {
  const { siteId, hostId } = incident;
  const host = await ctx.ports.hosts.getHost(siteId, hostId);
  const held = Object.entries(host?.reservations ?? {}).map(([reservationId, r]) => ({
    reservationId,
    vmId: r.vmId,
  }));
  const ids = [...new Set([...held.map((r) => r.vmId), ...control.recovering])].filter((id) => !ran.has(id));
  if (ids.length === 0) return [];
  const records = (await Promise.all(ids.map((id) => ctx.ports.vms.getVm(siteId, id)))).filter(
    (vm): vm is VmRecord => vm?.ha === true,
  );
  const adopted: AdoptedVm[] = [];
  for (const record of records) {
    let vm: VmRecord | null = record;
    // A lost race re-reads the VM and judges it again.
    for (let round = 0; round < 3 && vm !== null; round++) {
      const judged = await judge(ctx, incident, control, vm, held);
      if (judged === 'keep') break;
      if (judged === 'conflict') {
        vm = await ctx.ports.vms.getVm(siteId, vm.vmId);
        continue;
      }
      adopted.push(judged);
      break;
    }
  }
  return adopted;
}

async function judge(
  ctx: AppContext,
  incident: HaSetIncident,
  control: SiteControl,
  vm: VmRecord,
  held: readonly { readonly reservationId: string; readonly vmId: string }[],
): Promise<AdoptedVm | 'keep' | 'conflict'> {
  const { hostId } = incident;
  const r = vm.recovery;
  if (r?.handedTo === incident.incidentId) return { vm, from: null };
  // Running on a host not confirmed off: it runs there, whatever a start here did.
  if (vm.hostId !== hostId && runsUnfenced(vm, fencedIn(control))) return 'keep';
  if (r !== undefined && onRetryList(r)) {
    if (r.start?.hostId !== hostId && r.pinned?.hostId !== hostId) return 'keep';
    if ((await saveRecovery(ctx, vm, { ...idle(r), handedTo: incident.incidentId })) === null) {
      return 'conflict';
    }
    const detail = `${vm.vmId} was being started on ${hostId}, which fell silent: incident ${incident.incidentId} takes it over and restarts it after the fence`;
    if (r.downIncidentId) await endDownPeriod(ctx, r.downIncidentId, vm.vmId, incident.openedAt);
    if (r.incidentId !== null) {
      await closeIncident(
        ctx,
        { incidentId: r.incidentId, siteId: vm.siteId },
        'partially-recovered',
        detail,
        { vmId: vm.vmId, handedTo: incident.incidentId },
      );
    }
    await unlist(ctx, control, vm.vmId);
    return { vm, from: r.incidentId };
  }
  // A failover's start: the latest it claimed on the recovery (claimFailoverStart), else its reservation.
  const reservation = held.find((h) => h.vmId === vm.vmId);
  const claimed = r?.failoverStart ?? null;
  const owner =
    claimed?.incidentId ??
    (reservation === undefined ? null : failoverOf(reservation.reservationId, vm.vmId));
  if (owner === null || owner === incident.incidentId) return 'keep';
  if (claimed !== null && claimed.hostId !== hostId) return 'keep';
  const commands = await ctx.ports.commands.listForIncident(vm.siteId, owner);
  const start = commands
    .filter(
      (c) => c.command.kind === 'start-vm' && c.command.vm.id === vm.vmId && c.command.hostId === hostId,
    )
    .at(-1);
  // Its failover may still try another host only after a start that failed (or never went out); claimed, a
  // start whose result is out is taken too (the failover's next start finds the VM handed over).
  const mayRun =
    start?.status === 'succeeded' ||
    (claimed !== null && (start?.status === 'pending' || start?.status === 'delivered'));
  if (!mayRun) return 'keep';
  const next: RecoveryDraft = r === undefined ? freshIdle(incident.openedAt) : idle(r);
  if ((await saveRecovery(ctx, vm, { ...next, handedTo: incident.incidentId, takenFrom: owner })) === null)
    return 'conflict';
  return { vm, from: owner };
}

/** A first recovery, off the list: a VM VM-level HA never handled. */
function freshIdle(at: number): RecoveryDraft {
  return {
    status: 'idle',
    cause: 'host-failover',
    since: at,
    incidentId: null,
    incidentSeq: 0,
    restarts: [],
    attempt: 0,
    triedHosts: [],
    orders: 0,
    start: null,
    pinned: null,
    notBefore: null,
    checkedAt: 0,
    note: null,
    by: null,
    downIncidentId: null,
  };
}

/** The failover (host incident) whose reservation this is, or null for VM-level HA's. */
function failoverOf(reservationId: string, vmId: string): string | null {
  const suffix = `.${vmId}.`;
  const at = reservationId.lastIndexOf(suffix);
  if (at <= 0) return null;
  const incidentId = reservationId.slice(0, at);
  return incidentId.includes(':vm:') ? null : incidentId;
}

/**
 * Claims a host failover's start of a VM on its recovery, before the command goes out: refused (returns
 * the incident) when another host incident that is still open took the VM over; a repeat of the same
 * start is claimed already. Conditional on the recovery as read, so a takeover and a start never both win.
 */
export async function claimFailoverStart(
  ctx: AppContext,
  siteId: string,
  vmId: string,
  start: FailoverStart,
  now: number,
): Promise<{ handedTo: string } | null> {
  for (let round = 0; round < 5; round++) {
    const vm = await ctx.ports.vms.getVm(siteId, vmId);
    if (vm === null) return null;
    const r = vm.recovery;
    // Its own start was taken over: this failover is done with the VM, even once the taker closed.
    // (Once the taker left it down, VM-level HA has it: still not this failover's.)
    if (r?.takenFrom === start.incidentId) return { handedTo: r.handedTo ?? 'VM-level HA' };
    if (r?.handedTo && r.handedTo !== start.incidentId && (await incidentOpen(ctx, r.handedTo))) {
      return { handedTo: r.handedTo };
    }
    if (r?.failoverStart?.commandId === start.commandId && r.failoverStart.hostId === start.hostId)
      return null;
    const base: RecoveryDraft = r === undefined ? freshIdle(now) : draftOf(r);
    if ((await saveRecovery(ctx, vm, { ...base, failoverStart: start })) !== null) return null;
  }
  throw new ConcurrentUpdateError(`the recovery of ${vmId} kept changing while a failover claimed its start`);
}
