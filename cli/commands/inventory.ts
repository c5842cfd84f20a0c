import { HOST_STATUSES } from '../../core/lifecycle';
import type { Host, Vm } from '../api';
import { type CommandContext, writeJson, writeLines } from '../context';
import { UsageError } from '../errors';
import { EXIT, type ExitCode, formatGiB, formatNumber, plural, renderTable } from '../format';
import { clusterIndex, hostsOf, vmsOf } from '../lookup';
import type { Style } from '../style';
import { formatAge } from '../time';

/** Filters shared by the listing commands. */
export interface ListFilters {
  readonly site?: string | undefined;
  readonly cluster?: string | undefined;
  readonly state?: string | undefined;
}

/** `--state a,b` as a set, each value checked against the known ones. */
export function stateFilter(
  text: string | undefined,
  known: readonly string[],
  what: string,
): Set<string> | null {
  if (text === undefined) return null;
  const states = text.split(',').map((s) => s.trim());
  for (const state of states)
    if (!known.includes(state))
      throw new UsageError(`--state: ${what} states are ${known.join(', ')}; got ${state}`);
  return new Set(states);
}

// ---------------------------------------------------------------- hosts

/** A host's lifecycle state, coloured by how much it needs attention. */
export function hostState(host: Host, style: Style): string {
  const status = host.lifecycle.status;
  if (status === 'up') return style.good(status);
  if (status === 'awaiting-operator') return style.bad(status);
  return style.warn(status);
}

/** Since when a host is in its state, when the state says (suspect, fencing, fenced, awaiting-operator). */
export function hostSince(host: Host, now: number): string {
  const since = host.lifecycle.since ?? host.lifecycle.at;
  return since === undefined ? '' : formatAge(since, now);
}

/** The fence verdict in a word or two: `yes`, `NO: why`, or `unknown` while no relay has checked. */
export function fenceCell(host: Host, style: Style): string {
  if (host.fencing.fenceable === null) return style.dim('unknown');
  if (host.fencing.fenceable) return 'yes';
  return style.bad(`NO: ${host.fencing.reason ?? 'no relay can fence it'}`);
}

/** Needs an operator: waiting for a confirmation, or no relay can fence it. */
export function hostNeedsAttention(host: Host): boolean {
  return host.lifecycle.status === 'awaiting-operator' || host.fencing.fenceable === false;
}

/** How many hosts are in each state, in lifecycle order: `3 up, 1 awaiting-operator`. */
export function countByState(hosts: readonly Host[]): string {
  const order = (status: string) => {
    const at = (HOST_STATUSES as readonly string[]).indexOf(status);
    return at === -1 ? HOST_STATUSES.length : at;
  };
  const counts = new Map<string, number>();
  for (const h of hosts) counts.set(h.lifecycle.status, (counts.get(h.lifecycle.status) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => order(a) - order(b))
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
}

/** The host table of `halo hosts` (the site column only when there are several sites). */
export function hostTable(hosts: readonly Host[], ctx: CommandContext, indent = ''): string[] {
  const manySites = new Set(hosts.map((h) => h.siteId)).size > 1;
  const { style } = ctx;
  return renderTable(
    [
      ...(manySites ? [{ header: 'site' }] : []),
      { header: 'host' },
      { header: 'cluster' },
      { header: 'state' },
      { header: 'since' },
      { header: 'vCPU used', align: 'right' as const },
      { header: 'memory used', align: 'right' as const },
      { header: 'fenceable' },
    ],
    hosts.map((h) => [
      ...(manySites ? [h.siteId] : []),
      h.hostId,
      h.cluster,
      hostState(h, style),
      hostSince(h, ctx.time.now),
      `${formatNumber(h.usedCpus)} / ${h.cpus}`,
      `${formatGiB(h.usedMiB)} / ${formatGiB(h.memoryMiB)}`,
      fenceCell(h, style),
    ]),
    indent,
  );
}

/** `halo hosts [--site S] [--cluster C] [--state S]`: exit 1 when a listed host needs an operator. */
export async function hostsCommand(ctx: CommandContext, filters: ListFilters): Promise<ExitCode> {
  const states = stateFilter(filters.state, HOST_STATUSES, 'host');
  const client = await ctx.client();
  const hosts = (await hostsOf(client, filters.site)).filter(
    (h) =>
      (filters.cluster === undefined || h.cluster === filters.cluster) &&
      (states === null || states.has(h.lifecycle.status)),
  );
  const code = hosts.some(hostNeedsAttention) ? EXIT.checkFailed : EXIT.ok;
  if (ctx.json) {
    writeJson(ctx, hosts);
    return code;
  }
  if (hosts.length === 0) {
    writeLines(ctx, ['no hosts match']);
    return code;
  }
  const summary = countByState(hosts);
  writeLines(ctx, [...hostTable(hosts, ctx), '', `${plural(hosts.length, 'host')}: ${summary}`]);
  return code;
}

// ---------------------------------------------------------------- VMs

const RUNNING = new Set(['running', 'paused']);

/** Every VM state the API reports. */
export const VM_STATES = ['running', 'paused', 'shut-off', 'crashed', 'down'] as const;

/**
 * An HA VM that is down and owed a restart: on the retry list, or down with its fenced host (a failover
 * under way), or crashed. One shut down by its guest, or marked down on purpose, is not owed.
 */
export function haVmDown(vm: Vm): boolean {
  if (!vm.ha || RUNNING.has(vm.state)) return false;
  const recovery = vm.recovery?.status;
  if (recovery === 'down-on-purpose') return false;
  return recovery === 'waiting' || recovery === 'starting' || vm.state === 'down' || vm.state === 'crashed';
}

/** What the control plane is doing about a VM, in a few words. */
export function vmNote(vm: Vm): string {
  const notes: string[] = [];
  const recovery = vm.recovery;
  if (recovery?.status === 'down-on-purpose')
    notes.push(`down on purpose${recovery.by ? ` (${recovery.by})` : ''}`);
  else if (recovery?.status === 'waiting' || recovery?.status === 'starting')
    notes.push(`${recovery.status}: ${recovery.note ?? recovery.cause}`);
  notes.push(...(vm.misconfigurations ?? []));
  return notes.join('; ');
}

function vmStateCell(vm: Vm, style: Style): string {
  const state = vm.reason ? `${vm.state} (${vm.reason})` : vm.state;
  if (haVmDown(vm)) return style.bad(state);
  return RUNNING.has(vm.state) ? state : style.dim(state);
}

/** The VM table of `halo vms`; `clusterOf` gives each VM's cluster from its host. */
export function vmTable(
  vms: readonly Vm[],
  clusterOf: (siteId: string, hostId: string | null) => string | null,
  ctx: CommandContext,
  indent = '',
): string[] {
  const manySites = new Set(vms.map((v) => v.siteId)).size > 1;
  return renderTable(
    [
      ...(manySites ? [{ header: 'site' }] : []),
      { header: 'VM' },
      { header: 'host' },
      { header: 'cluster' },
      { header: 'state' },
      { header: 'HA' },
      { header: 'anti-affinity' },
      { header: 'vCPU', align: 'right' as const },
      { header: 'memory', align: 'right' as const },
      { header: 'notes' },
    ],
    vms.map((v) => [
      ...(manySites ? [v.siteId] : []),
      v.vmId,
      v.hostId ?? '',
      clusterOf(v.siteId, v.hostId) ?? '',
      vmStateCell(v, ctx.style),
      v.ha ? v.priority : '-',
      v.antiAffinity ?? '',
      String(v.cpus),
      formatGiB(v.memoryMiB),
      vmNote(v),
    ]),
    indent,
  );
}

/** `halo vms [--site S] [--cluster C] [--state S] [--ha]`: exit 1 when a listed HA VM is down. */
export async function vmsCommand(
  ctx: CommandContext,
  filters: ListFilters & { readonly ha?: boolean | undefined },
): Promise<ExitCode> {
  const states = stateFilter(filters.state, VM_STATES, 'VM');
  const client = await ctx.client();
  const [vms, hosts] = await Promise.all([vmsOf(client, filters.site), hostsOf(client, filters.site)]);
  const clusterOf = clusterIndex(hosts);
  const shown = vms.filter(
    (v) =>
      (filters.cluster === undefined || clusterOf(v.siteId, v.hostId) === filters.cluster) &&
      (states === null || states.has(v.state)) &&
      (filters.ha !== true || v.ha),
  );
  const down = shown.filter(haVmDown);
  const code = down.length > 0 ? EXIT.checkFailed : EXIT.ok;
  if (ctx.json) {
    writeJson(ctx, shown);
    return code;
  }
  if (shown.length === 0) {
    writeLines(ctx, ['no VMs match']);
    return code;
  }
  const ha = shown.filter((v) => v.ha).length;
  const tail =
    `${plural(shown.length, 'VM')}, ${ha} HA` +
    (down.length > 0 ? `, ${ctx.style.bad(`${down.length} HA down`)}` : '');
  writeLines(ctx, [...vmTable(shown, clusterOf, ctx), '', tail]);
  return code;
}
