import type { AppContext } from '../context';
import type { SiteControl } from '../ports';
import { compareIds } from './order';

/**
 * A site's VMs running twice (safety rule 6), kept as `vmId@hostId` pairs in the site item's `runningTwice`
 * set, so that the detector's gauge costs no read beyond the control items. Ingest adds the pairs when it
 * sees a VM run on two hosts; a host's pair goes when that host no longer runs the VM (its next inventory)
 * or is confirmed off, and a VM left with one host is no longer running twice. Ids cannot hold '@'.
 */

/** The pair for one host running a VM. */
export function runningPair(vmId: string, hostId: string): string {
  return `${vmId}@${hostId}`;
}

/** A VM running on two hosts or more, with those hosts in id order. */
export interface RunningTwice {
  readonly vmId: string;
  readonly hosts: readonly string[];
}

/** The site's VMs running twice, in id order: each VM with two hosts or more among the pairs. */
export function vmsRunningTwice(control: Pick<SiteControl, 'runningTwice'>): RunningTwice[] {
  return byVm(control.runningTwice ?? [])
    .filter((vm) => vm.hosts.length > 1)
    .map((vm) => ({ vmId: vm.vmId, hosts: [...vm.hosts].sort(compareIds) }))
    .sort((a, b) => compareIds(a.vmId, b.vmId));
}

/** Records that the VM runs on each of these hosts at once. */
export async function recordRunningTwice(
  ctx: AppContext,
  siteId: string,
  vmId: string,
  hosts: readonly string[],
): Promise<void> {
  await ctx.ports.sites.setRunningTwice(
    siteId,
    hosts.map((hostId) => runningPair(vmId, hostId)),
    true,
  );
}

/**
 * Ends the host's pairs for the VMs it no longer runs (`stillRuns` false; all of them for a host confirmed
 * off), with the last pair of a VM left on one host. Writes nothing when the host has no pair.
 */
export async function endRunningTwice(
  ctx: AppContext,
  control: SiteControl,
  hostId: string,
  stillRuns: (vmId: string) => boolean,
): Promise<void> {
  const pairs = control.runningTwice ?? [];
  if (pairs.length === 0) return;
  const ended: string[] = [];
  for (const { vmId, hosts } of byVm(pairs)) {
    if (!hosts.includes(hostId) || stillRuns(vmId)) continue;
    const left = hosts.filter((h) => h !== hostId);
    ended.push(...(left.length > 1 ? [hostId] : hosts).map((h) => runningPair(vmId, h)));
  }
  await ctx.ports.sites.setRunningTwice(control.site.siteId, ended, false);
}

/** Every VM of the pairs with its hosts, one host or more. */
function byVm(pairs: readonly string[]): RunningTwice[] {
  const hostsOf = new Map<string, string[]>();
  for (const pair of pairs) {
    const at = pair.lastIndexOf('@');
    if (at <= 0) continue;
    const vmId = pair.slice(0, at);
    hostsOf.set(vmId, [...(hostsOf.get(vmId) ?? []), pair.slice(at + 1)]);
  }
  return [...hostsOf].map(([vmId, hosts]) => ({ vmId, hosts }));
}
