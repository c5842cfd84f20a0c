import type { StartVmCommand } from '../../contracts/relay-protocol';
import type { Vm } from '../../core/model';
import { comparePlacementOrder, type HostLoad } from '../../core/placement';
import type { HaPolicy } from '../../core/policy';
import {
  type HostFacts,
  recoveryTargets,
  restartVerdict,
  type StartScope,
  startScope,
} from '../../core/vm-recovery';
import type { AppContext } from '../context';
import { NoCapacityError } from '../errors';
import type { HostRecord, RecoveryStart, RelayRecord, SiteControl, VmRecord, VmRecovery } from '../ports';
import {
  coreVm,
  fencedIn,
  isRunning,
  placementLoads,
  reservationLimits,
  runsUnfenced,
} from '../shared/capacity';
import { endDownPeriod } from '../shared/downtime';
import { METRIC } from '../shared/metrics';
import { compareIds } from '../shared/order';
import { hearsHost, hostSilence, liveRelays } from '../shared/relays';
import {
  closeEpisode,
  draftOf,
  ensureVmIncident,
  hostPolicy,
  idle,
  onRetryList,
  orderedClock,
  type RecoveryDraft,
  saveRecovery,
  unlist,
  until,
  vmEvent,
  vmIncidentIdFor,
  vmPolicy,
} from './episode';

/**
 * VM-level HA's one loop: brings the VMs of a site's retry list back, one step per call, from what the
 * table says now. Ingest calls it when a report changes something that matters (a VM stopped or runs again,
 * a host freed room, a start's result came), the detector on every tick (timeouts, backoff, and the slow
 * retry of VMs nothing can take), the operator API when maintenance ends. Every step is a conditional write
 * of the VM's recovery; a pass that loses a race leaves the VM to the winner, and a pass that dies midway
 * leaves a state the next pass finishes (see each step).
 *
 * A restart tries the VM's own host first, then other hosts by placement, each start only after its
 * capacity is held (safety rule 5) and only where core startScope allows it (never two copies).
 */

/** What prompts a pass: the detector's tick honours the slow retry pace; anything else may free room. */
export type RecoveryTrigger = 'tick' | 'change';

/** What a pass did. */
export interface RecoveryOutcome {
  /** Start commands it put out (they need delivering). */
  readonly ordered: number;
  /** VMs it found running again and took off the list. */
  readonly resolved: number;
}

/** Runs one pass over `vmIds` of the site (those not on the list are only taken off the marker). */
export async function recoverVms(
  ctx: AppContext,
  args: {
    readonly control: SiteControl;
    readonly vmIds: readonly string[];
    readonly trigger: RecoveryTrigger;
    /** The relay whose report prompted the pass: it gets the commands when it hears the target. */
    readonly preferRelayId?: string;
  },
): Promise<RecoveryOutcome> {
  const { control, vmIds } = args;
  if (vmIds.length === 0) return { ordered: 0, resolved: 0 };
  ctx = orderedClock(ctx);
  const siteId = control.site.siteId;
  const read = await Promise.all([...new Set(vmIds)].map((vmId) => ctx.ports.vms.getVm(siteId, vmId)));
  const pass = new Pass(ctx, control, args.trigger, args.preferRelayId);
  // Highest priority (then largest) first: when room comes back, it goes to what matters most.
  const vms = read
    .filter((vm): vm is VmRecord => vm !== null)
    .sort((a, b) => comparePlacementOrder(coreVm(a), coreVm(b)));
  for (const vmId of vmIds) {
    if (!read.some((vm) => vm?.vmId === vmId)) await unlist(ctx, control, vmId);
  }
  let ordered = 0;
  let resolved = 0;
  for (const vm of vms) {
    const done = await recoverOne(pass, vm);
    if (done === 'ordered') ordered += 1;
    if (done === 'resolved') resolved += 1;
  }
  return { ordered, resolved };
}

type StepDone = 'ordered' | 'resolved' | 'waiting' | 'off-list';

/** One pass's shared reads (made only when a VM needs them) and the capacity it took so far. */
class Pass {
  readonly now: number;
  private reads: Promise<{ hosts: HostRecord[]; vms: VmRecord[] }> | undefined;
  /** Capacity this pass reserved, by host: its host reads predate those reservations. */
  readonly taken = new Map<string, { cpus: number; memoryMiB: number }>();

  constructor(
    readonly ctx: AppContext,
    readonly control: SiteControl,
    readonly trigger: RecoveryTrigger,
    readonly preferRelayId: string | undefined,
  ) {
    this.now = ctx.ports.clock.now();
  }

  get siteId(): string {
    return this.control.site.siteId;
  }

  /** The site's hosts and VMs, read once per pass and only by a VM that is due. */
  inventory(): Promise<{ hosts: HostRecord[]; vms: VmRecord[] }> {
    this.reads ??= Promise.all([
      this.ctx.ports.hosts.listHosts(this.siteId),
      this.ctx.ports.vms.listVms(this.siteId),
    ]).then(([hosts, vms]) => ({ hosts, vms }));
    return this.reads;
  }

  /** What the control items say of a host, with the boot its record holds. */
  facts(hosts: readonly HostRecord[], hostId: string | null): HostFacts | null {
    const host = hosts.find((h) => h.hostId === hostId);
    if (host === undefined) return null;
    const policy = hostPolicy(this.ctx, this.control, host.hostId);
    const silence = hostSilence(this.control.relays, host.hostId, this.now, policy);
    return {
      hostId: host.hostId,
      status: host.lifecycle.status,
      heard: silence.live.length > 0 && !silence.silent,
      bootId: host.bootId,
    };
  }
}

async function recoverOne(pass: Pass, vm: VmRecord): Promise<StepDone> {
  const { ctx, control, now } = pass;
  const r = vm.recovery;
  if (r === undefined || !onRetryList(r)) {
    await unlist(ctx, control, vm.vmId);
    return 'off-list';
  }
  if (!vm.ha) {
    // Down time counts HA VMs only: no longer HA, its period ends here.
    if (r.downIncidentId) await endDownPeriod(ctx, r.downIncidentId, vm.vmId, now);
    await closeEpisode(
      ctx,
      vm,
      r.incidentId,
      'partially-recovered',
      `${vm.vmId} is no longer HA: not restarted`,
    );
    if ((await save(pass, vm, { ...idle(r), note: 'no longer HA' })) !== null)
      await unlist(ctx, control, vm.vmId);
    return 'off-list';
  }
  if (runsUnfenced(vm, fencedIn(control))) {
    // Only an observation after it went down proves it runs again: an older one is what it ran before.
    if (vm.observedAt < r.since) return 'waiting';
    // Nor one of a host in an incident now (read afresh): a relay may report the failed boot's last
    // inventory until its fence, and a fenced boot runs nothing.
    const { hosts } = await pass.inventory();
    const status = hosts.find((h) => h.hostId === vm.hostId)?.lifecycle.status;
    if (status === 'up' || status === 'maintenance' || status === undefined) return resolve(pass, vm, r);
    if (status !== 'fenced') return 'waiting';
  }
  const policy = vmPolicy(ctx, control, vm);
  if (r.status === 'starting') {
    const start = r.start;
    // The relay's result settles it through ingest; the detector steps in only once it is overdue.
    if (start !== null && now <= start.notAfter + policy.startTimeoutMs) return 'waiting';
    const next = await overdue(pass, vm, r, start);
    return next === null ? 'waiting' : tryRestart(pass, next, policy);
  }
  if (r.notBefore !== null && now < r.notBefore) return 'waiting';
  if (pass.trigger === 'tick' && r.notBefore === null && now < r.checkedAt + policy.vmRetryIntervalMs) {
    return 'waiting';
  }
  return tryRestart(pass, vm, policy);
}

/** The VM runs again: its incident closes recovered and it leaves the list (its budget history stays). */
async function resolve(pass: Pass, vm: VmRecord, r: VmRecovery): Promise<StepDone> {
  const { ctx, control } = pass;
  const where = vm.hostId ?? 'a host';
  const start = r.start;
  // Seen running where its start went before the start's result came (they travel in one report, handled
  // side by side): the start worked. Whoever writes that into the recovery first says so, once: this pass,
  // or the relay's result (start-result.ts). Losing that write, the pass decides again on a fresh read.
  if (start !== null && start.result === null && start.hostId === vm.hostId && r.incidentId !== null) {
    const claimed = await save(pass, vm, { ...draftOf(r), start: { ...start, result: 'succeeded' } });
    if (claimed === null) {
      const fresh = await ctx.ports.vms.getVm(pass.siteId, vm.vmId);
      return fresh === null ? 'waiting' : recoverOne(pass, fresh);
    }
    await vmEvent(ctx, r.incidentId, vm.vmId, 'vm-started', `${vm.vmId} started on ${start.hostId}`, {
      hostId: start.hostId,
      commandId: start.commandId,
      attempt: r.attempt,
    });
    return resolve(pass, claimed, claimed.recovery as VmRecovery);
  }
  // Its down period ends when it was first seen running again (the observation that shows it running).
  if (r.downIncidentId) await endDownPeriod(ctx, r.downIncidentId, vm.vmId, vm.observedAt);
  await closeEpisode(ctx, vm, r.incidentId, 'recovered', `${vm.vmId} runs on ${where}`, {
    hostId: vm.hostId,
  });
  // Up somewhere else than its start went (someone started it by hand): that start's hold is moot, and a
  // late result of it will find the recovery idle, so it goes now (release is repeat-safe).
  if (start !== null && start.hostId !== vm.hostId) {
    await ctx.ports.hosts.release(pass.siteId, start.hostId, start.reservationId);
  }
  if ((await save(pass, vm, idle(r))) === null) return 'waiting';
  await unlist(ctx, control, vm.vmId);
  return 'resolved';
}

/** Writes the recovery decided on `vm` as read; null when another pass moved it meanwhile. */
function save(pass: Pass, vm: VmRecord, next: RecoveryDraft): Promise<VmRecord | null> {
  return saveRecovery(pass.ctx, vm, next);
}

/**
 * A start whose result is overdue. Its command (found by the incident) tells: never created (a pass died
 * before it went out) frees its capacity and does not count; a result the report that carried it could not
 * apply is applied now; no result at all, or a success that was never seen running, pins the VM to that
 * host, where a second start is harmless, until that host's boot ends. Returns the VM ready for its next
 * attempt, or null when another pass has it. Capacity is released before the recovery moves on (release is
 * repeat-safe), and the timeline line is written only by the pass whose write won.
 */
async function overdue(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  start: RecoveryStart | null,
): Promise<VmRecord | null> {
  const { ctx, siteId } = pass;
  if (start === null) return save(pass, vm, { ...draftOf(r), status: 'waiting' });
  const commands =
    r.incidentId === null ? [] : await ctx.ports.commands.listForIncident(siteId, r.incidentId);
  const command = commands.find((c) => c.command.commandId === start.commandId);
  const failed = command?.result?.outcome === 'failed' && start.result === null;
  if (command === undefined || failed) {
    await ctx.ports.hosts.release(siteId, start.hostId, start.reservationId);
    const saved = await save(pass, vm, {
      ...draftOf(r),
      status: 'waiting',
      start: null,
      // A start that never went out tried nothing.
      attempt: command === undefined ? Math.max(0, r.attempt - 1) : r.attempt,
      triedHosts: command === undefined ? r.triedHosts : [...r.triedHosts, start.hostId],
    });
    if (saved !== null && r.incidentId !== null) {
      await vmEvent(
        ctx,
        r.incidentId,
        vm.vmId,
        'start-failed',
        command === undefined
          ? `the start of ${vm.vmId} on ${start.hostId} never went out; its reservation is released`
          : `${vm.vmId} did not start on ${start.hostId}: ${command.result?.detail ?? 'failed'}; its reservation is released`,
        { hostId: start.hostId, commandId: start.commandId },
      );
    }
    return saved;
  }
  const { hosts } = await pass.inventory();
  const host = hosts.find((h) => h.hostId === start.hostId);
  const said = start.result === 'succeeded' || command.result?.outcome === 'succeeded';
  // The reservation stays: if the VM does come up there, the host's inventory ends it; a pinned restart
  // there replaces it.
  const saved = await save(pass, vm, {
    ...draftOf(r),
    status: 'waiting',
    start: null,
    pinned: host === undefined ? null : { hostId: host.hostId, bootId: host.bootId },
  });
  if (saved !== null && r.incidentId !== null) {
    await vmEvent(
      ctx,
      r.incidentId,
      vm.vmId,
      'start-unconfirmed',
      said
        ? `${vm.vmId} was reported started on ${start.hostId} but is not seen running; only ${start.hostId} may start it until its boot ends`
        : `no result for the start of ${vm.vmId} on ${start.hostId}: it may still come up there, so only ${start.hostId} may start it until its boot ends`,
      { hostId: start.hostId, commandId: start.commandId },
    );
  }
  return saved;
}

/**
 * The next start of a VM that is due: within its restart budget (a new restart) or its attempts (a restart
 * under way), where startScope allows, on the first target that holds its capacity.
 */
async function tryRestart(pass: Pass, vm: VmRecord, policy: HaPolicy): Promise<StepDone> {
  const { ctx, now } = pass;
  let current = vm;
  let r = vm.recovery as VmRecovery;
  if (r.attempt >= policy.maxStartAttempts) {
    // Every attempt of this restart failed: the next restart is a new one, under the budget.
    const saved = await save(pass, vm, { ...draftOf(r), attempt: 0, triedHosts: [] });
    if (saved === null) return 'waiting';
    if (r.incidentId !== null) {
      await vmEvent(
        ctx,
        r.incidentId,
        vm.vmId,
        'restart-failed',
        `every start of ${vm.vmId} failed (${r.attempt} attempt(s), on ${r.triedHosts.join(', ') || 'no host'})`,
        { attempts: r.attempt, triedHosts: r.triedHosts },
      );
    }
    current = saved;
    r = saved.recovery as VmRecovery;
  }
  if (r.attempt === 0) {
    const verdict = restartVerdict(r.restarts, now, policy);
    if (!verdict.allowed) return budgetSpent(pass, current, r, verdict.until, policy);
    if (verdict.at > now) return backoff(pass, current, r, verdict.at);
  }
  const { hosts, vms } = await pass.inventory();
  const lastHost = pass.facts(hosts, current.hostId);
  const pinnedHost = r.pinned === null ? null : pass.facts(hosts, r.pinned.hostId);
  const vmState = isRunning(current) && lastHost?.status === 'fenced' ? 'down' : current.state;
  const scope = startScope({ vmState, lastHost, pin: r.pinned, pinnedHost });
  if (scope.kind === 'none') return blocked(pass, current, r, scope.reason, policy);
  const targets = targetsFor(pass, current, scope, hosts, vms, policy);
  if (targets.length === 0) return unplaced(pass, current, r, policy, 'no host of its cluster can take it');
  return dispatch(pass, current, r, { targets, hosts, policy, pinned: scope.kind === 'pinned' });
}

/** Target hosts for the VM, best first, in the cluster of the host it is bound to. */
function targetsFor(
  pass: Pass,
  vm: VmRecord,
  scope: StartScope,
  hosts: readonly HostRecord[],
  vms: readonly VmRecord[],
  policy: HaPolicy,
): string[] {
  const anchor = scope.kind === 'pinned' ? scope.hostId : vm.hostId;
  const cluster = hosts.find((h) => h.hostId === anchor)?.cluster;
  if (cluster === undefined) return [];
  const candidates = hosts.filter((h) => h.cluster === cluster);
  const loads = placementLoads(candidates, vms).map((load) => withoutOwnHolds(pass, load, candidates, vm));
  const r = vm.recovery as VmRecovery;
  const placed: Vm = { ...coreVm(vm), ha: true };
  return recoveryTargets({ vm: placed, scope, loads, policy, tried: r.triedHosts });
}

/**
 * A host's load without what it holds for this very VM (an earlier start's reservation, which a start
 * here replaces) and with what this pass reserved since it read the host.
 */
function withoutOwnHolds(pass: Pass, load: HostLoad, hosts: readonly HostRecord[], vm: VmRecord): HostLoad {
  const host = hosts.find((h) => h.hostId === load.id);
  let usedCpus = load.usedCpus;
  let usedMiB = load.usedMiB;
  for (const held of Object.values(host?.reservations ?? {})) {
    if (held.vmId !== vm.vmId) continue;
    usedCpus -= held.cpus;
    usedMiB -= held.memoryMiB;
  }
  const taken = pass.taken.get(load.id);
  return {
    ...load,
    usedCpus: usedCpus + (taken?.cpus ?? 0),
    usedMiB: usedMiB + (taken?.memoryMiB ?? 0),
  };
}

/** The budget is spent: the episode ends partially recovered; the VM waits, listed, for the window. */
async function budgetSpent(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  allowedAt: number,
  policy: HaPolicy,
): Promise<StepDone> {
  const note =
    `restart budget spent: ${policy.vmRestartLimit} restart(s) within ${Math.round(policy.vmRestartWindowMs / 60_000)} min; ` +
    `it stays down until ${new Date(allowedAt).toISOString()} (or an operator starts it)`;
  return endEpisode(
    pass,
    vm,
    r,
    { ...draftOf(r), status: 'waiting', orders: 0, notBefore: allowedAt, checkedAt: pass.now, note },
    {
      kind: 'restart-budget-exhausted',
      detail: `${vm.vmId}: ${note}`,
      data: { restarts: r.restarts, retryAt: allowedAt },
      closing: `${vm.vmId} stays down: ${note}`,
    },
  );
}

/**
 * Ends the episode with the VM still down and listed: the recovery is written first, still naming the
 * incident, so that of two passes deciding the same only the one whose write won says so on the timeline;
 * then the line, the close, and the recovery without the incident. A pass that reads the recovery with
 * that decision already written leaves the line to the pass that wrote it. A pass that dies midway leaves
 * a recovery naming an incident that is open (the next decision closes it) or closed (the next start opens
 * a new one).
 */
async function endEpisode(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  next: RecoveryDraft,
  line: {
    readonly kind: 'restart-budget-exhausted' | 'vm-unplaced';
    readonly detail: string;
    readonly data: Readonly<Record<string, unknown>>;
    readonly closing: string;
  },
): Promise<StepDone> {
  const { ctx } = pass;
  // Read after another pass recorded this very decision and before it took the incident off the recovery
  // (a detector tick on a VM just listed, then the pass of the report that listed it): that pass says it;
  // this one only finishes what it may have left, the close and the recovery without the incident.
  const decided = r.incidentId !== null && r.status === 'waiting' && r.note === next.note;
  // Still numbering the incident's commands: a start another pass sends meanwhile must not reuse an id.
  const first = await save(pass, vm, { ...next, incidentId: r.incidentId, orders: r.orders });
  if (first === null || r.incidentId === null) return 'waiting';
  if (!decided) {
    await vmEvent(ctx, r.incidentId, vm.vmId, line.kind, line.detail, line.data);
    if (line.kind === 'vm-unplaced') ctx.ports.metrics.count(METRIC.VmsUnplaced);
  }
  await closeEpisode(ctx, vm, r.incidentId, 'partially-recovered', line.closing, { down: [vm.vmId] });
  await save(pass, first, { ...next, incidentId: null });
  return 'waiting';
}

/** A restart must wait for its backoff: said once on the timeline, then the detector's tick picks it up. */
async function backoff(pass: Pass, vm: VmRecord, r: VmRecovery, at: number): Promise<StepDone> {
  const { ctx, now } = pass;
  const note = `restart ${r.restarts.length + 1} within the window waits for its backoff, ${until(at, now)}`;
  if (r.notBefore === at) return 'waiting';
  const saved = await save(pass, vm, { ...draftOf(r), notBefore: at, note });
  if (saved !== null && r.incidentId !== null) {
    await vmEvent(ctx, r.incidentId, vm.vmId, 'restart-scheduled', `${vm.vmId}: ${note}`, { at });
  }
  return 'waiting';
}

/** Nothing may start it now (startScope): noted, and looked at again at the slow pace or on a change. */
async function blocked(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  reason: string,
  policy: HaPolicy,
): Promise<StepDone> {
  const note = `waits: ${reason}`;
  // Written at most once per retry interval for the same reason: the tick gates on checkedAt, and a
  // report's change that finds it blocked for the same reason has nothing new to say.
  if (r.note === note && pass.now < r.checkedAt + policy.vmRetryIntervalMs) return 'waiting';
  await save(pass, vm, { ...draftOf(r), notBefore: null, checkedAt: pass.now, note });
  return 'waiting';
}

/**
 * No host can take it now: the episode ends partially recovered (the host incident that left it down, if
 * it came from one, already said so), and the VM waits, listed, for room: capacity changes retry it at
 * once, the detector at the slow pace.
 */
async function unplaced(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  policy: HaPolicy,
  why: string,
): Promise<StepDone> {
  const note = `${why}; retried when capacity changes, and every ${Math.round(policy.vmRetryIntervalMs / 1000)} s`;
  return endEpisode(
    pass,
    vm,
    r,
    {
      ...draftOf(r),
      status: 'waiting',
      orders: 0,
      attempt: 0,
      triedHosts: [],
      notBefore: null,
      checkedAt: pass.now,
      note,
    },
    {
      kind: 'vm-unplaced',
      detail: `${vm.vmId} (${vm.priority}) stays down: ${note}`,
      data: { triedHosts: r.triedHosts },
      closing: `${vm.vmId} stays down: ${note}`,
    },
  );
}

/**
 * Sends one start: the incident (opened if the episode has none), the capacity on the first target that
 * holds it (safety rule 5), the recovery naming the start (the claim: a pass that dies after it leaves a
 * start the overdue path settles), then the command for a live relay that hears the target.
 */
async function dispatch(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  plan: {
    readonly targets: readonly string[];
    readonly hosts: readonly HostRecord[];
    readonly policy: HaPolicy;
    readonly pinned: boolean;
  },
): Promise<StepDone> {
  const { ctx, siteId, now } = pass;
  const { hosts, policy } = plan;
  const episode = await episodeFor(pass, vm, r);
  const n = episode.orders + 1;
  const reservationId = `${episode.incidentId}.${vm.vmId}.${n}`;
  const commandId = `${episode.incidentId}:start:${vm.vmId}:${n}`;
  const reservation = { id: reservationId, vmId: vm.vmId, cpus: vm.cpus, memoryMiB: vm.memoryMiB };
  let target: HostRecord | undefined;
  for (const hostId of plan.targets) {
    const host = hosts.find((h) => h.hostId === hostId);
    if (host === undefined || host.lifecycle.status !== 'up') continue;
    // What the host still holds for this VM (an earlier start there) gives way to this start's hold.
    for (const [id, held] of Object.entries(host.reservations)) {
      if (held.vmId === vm.vmId && id !== reservationId) await ctx.ports.hosts.release(siteId, hostId, id);
    }
    try {
      await ctx.ports.hosts.reserve(siteId, hostId, reservation, reservationLimits(host, policy), host);
      target = host;
      break;
    } catch (error) {
      if (!(error instanceof NoCapacityError)) throw error;
    }
  }
  if (target === undefined)
    return unplaced(pass, vm, r, policy, 'no host of its cluster has room for it now');
  // A pass that died after reserving under this id elsewhere left that hold behind: only one may stand.
  for (const host of hosts) {
    if (host.hostId !== target.hostId && reservationId in host.reservations) {
      await ctx.ports.hosts.release(siteId, host.hostId, reservationId);
    }
  }
  const relay = relayFor(pass, target.hostId, policy);
  if (relay === undefined) {
    await ctx.ports.hosts.release(siteId, target.hostId, reservationId);
    return blocked(pass, vm, r, `no live relay hears ${target.hostId}`, policy);
  }
  // Read again for each start: the relay carries a response's commands out in issue order, which is the
  // pass's (highest priority first).
  const issuedAt = ctx.ports.clock.now();
  const start: RecoveryStart = {
    commandId,
    hostId: target.hostId,
    relayId: relay.relayId,
    reservationId,
    notAfter: issuedAt + policy.startTimeoutMs,
    result: null,
  };
  const firstOfRestart = r.attempt === 0;
  const claimed = await save(pass, vm, {
    ...draftOf(r),
    status: 'starting',
    incidentId: episode.incidentId,
    incidentSeq: episode.incidentSeq,
    orders: n,
    attempt: r.attempt + 1,
    restarts: firstOfRestart
      ? [...r.restarts.filter((at) => at > now - policy.vmRestartWindowMs), now]
      : r.restarts,
    start,
    pinned: plan.pinned ? r.pinned : null,
    notBefore: null,
    checkedAt: now,
    note: null,
  });
  if (claimed === null) {
    // Another pass moved the VM on; its start may hold this very reservation id on this host.
    const fresh = (await ctx.ports.vms.getVm(siteId, vm.vmId))?.recovery?.start;
    if (fresh?.reservationId !== reservationId || fresh.hostId !== target.hostId) {
      await ctx.ports.hosts.release(siteId, target.hostId, reservationId);
    }
    return 'waiting';
  }
  const taken = pass.taken.get(target.hostId) ?? { cpus: 0, memoryMiB: 0 };
  pass.taken.set(target.hostId, { cpus: taken.cpus + vm.cpus, memoryMiB: taken.memoryMiB + vm.memoryMiB });
  if (episode.fresh) await openedFor(pass, vm, r, episode.incidentId, hosts);
  const command: StartVmCommand = {
    kind: 'start-vm',
    commandId,
    incidentId: episode.incidentId,
    hostId: target.hostId,
    vm: { id: vm.vmId, cpus: vm.cpus, memoryMiB: vm.memoryMiB },
    issuedAt,
    notAfter: start.notAfter,
  };
  await ctx.ports.commands.create({
    siteId,
    relayId: relay.relayId,
    command,
    taskToken: null,
    createdAt: issuedAt,
  });
  const where =
    target.hostId === vm.hostId ? 'in place' : plan.pinned ? 'where its last start went' : 'elsewhere';
  await vmEvent(
    ctx,
    episode.incidentId,
    vm.vmId,
    'start-ordered',
    `start ${vm.vmId} on ${target.hostId} (${where}) through relay ${relay.relayId}, attempt ${r.attempt + 1}` +
      ` of restart ${firstOfRestart ? r.restarts.filter((at) => at > now - policy.vmRestartWindowMs).length + 1 : r.restarts.length};` +
      ` ${vm.memoryMiB} MiB / ${vm.cpus} vCPU reserved`,
    { hostId: target.hostId, relayId: relay.relayId, commandId, reservationId, attempt: r.attempt + 1 },
  );
  if (firstOfRestart) ctx.ports.metrics.count(METRIC.VmRestarts);
  return 'ordered';
}

/** The incident a start goes out under: the episode's, or a new one when it has none open. */
async function episodeFor(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
): Promise<{ incidentId: string; incidentSeq: number; orders: number; fresh: boolean }> {
  if (r.incidentId !== null) {
    const incident = await pass.ctx.ports.incidents.get(r.incidentId);
    // Missing: a pass died after naming it; it is created once the start is claimed.
    if (incident === null || incident.closedAt === null) {
      return {
        incidentId: r.incidentId,
        incidentSeq: r.incidentSeq,
        orders: r.orders,
        fresh: incident === null,
      };
    }
  }
  const incidentSeq = r.incidentSeq + 1;
  return {
    incidentId: vmIncidentIdFor(pass.siteId, vm.vmId, incidentSeq),
    incidentSeq,
    orders: 0,
    fresh: true,
  };
}

/** Opens the incident a start made necessary, with why the VM is down as its first line. */
async function openedFor(
  pass: Pass,
  vm: VmRecord,
  r: VmRecovery,
  incidentId: string,
  hosts: readonly HostRecord[],
): Promise<void> {
  const { ctx, now } = pass;
  const host = hosts.find((h) => h.hostId === vm.hostId);
  const place = {
    hostId: vm.hostId ?? 'unknown',
    cluster: host?.cluster ?? 'unknown',
    bootId: host?.bootId ?? 'unknown',
  };
  const opened = await ensureVmIncident(ctx, vm, incidentId, place, now);
  if (opened?.created !== true) return;
  const why = r.note === null ? '' : ` (${r.note})`;
  await vmEvent(
    ctx,
    incidentId,
    vm.vmId,
    'vm-stopped',
    `${vm.vmId} has been down since ${new Date(r.since).toISOString()} (${r.cause}); retrying${why}`,
    { hostId: vm.hostId, cause: r.cause, since: r.since },
  );
}

/** A live relay that hears the host: the one whose report prompted the pass if it does, else by id. */
function relayFor(pass: Pass, hostId: string, policy: HaPolicy): RelayRecord | undefined {
  const hearing = liveRelays(pass.control.relays, pass.now, policy)
    .filter((relay) => hearsHost(relay, hostId))
    .sort((a, b) => compareIds(a.relayId, b.relayId));
  return hearing.find((relay) => relay.relayId === pass.preferRelayId) ?? hearing[0];
}
