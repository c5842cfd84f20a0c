import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  type Inventory,
  type InventoryCluster,
  InventoryError,
  parseInventory,
} from '../contracts/inventory';
import { assessCapacity, type CapacityReport, type FailoverPlan } from '../core/capacity';
import type { PlacementPolicy } from '../core/model';
import { hostLoad, type Placement, type Unplaced, type UnplacedReason } from '../core/placement';
import {
  EXIT,
  type ExitCode,
  formatGiB,
  formatMiB,
  formatNumber,
  formatPercent,
  type Io,
  listOf,
  plural,
  renderTable,
} from './format';

/** One-line usage of `halo plan`. */
export const PLAN_USAGE = 'halo plan <inventory.json> [--json]';

/** What `halo plan --help` prints. */
export const PLAN_HELP = `Usage: ${PLAN_USAGE}

N+1 report: for every host of every cluster in the inventory, plans where its HA VMs would
restart if it failed, and says whether each cluster survives the loss of any one host. A host
whose "fencing" says it cannot be fenced fails over only once an operator confirms it off. An
HA VM with "autostart": true (libvirt's, on some host) gets a warning line.

Options:
  --json      print each cluster's capacity report as JSON instead of tables
  -h, --help  show this help

Exit status: 0 when every cluster survives the loss of any one host without an operator,
1 when N+1 fails or some host cannot be fenced, 2 on a usage error or an unreadable or
invalid inventory. The autostart warning does not change it.
`;

const INDENT = '  ';

// Most VMs down first, then the larger memory shortfall, then the larger CPU shortfall.
const severity = (p: FailoverPlan): readonly number[] => [
  p.plan.unplaced.length,
  p.shortfall.memoryMiB,
  p.shortfall.cpus,
];

/** The failure that hurts most; on a tie, the first host in the inventory. */
function worstFailure(report: CapacityReport): FailoverPlan | undefined {
  let worst: FailoverPlan | undefined;
  for (const p of report.plans) {
    if (p.survives) continue;
    if (worst === undefined) {
      worst = p;
      continue;
    }
    const [a, b] = [severity(p), severity(worst)];
    const differs = a.findIndex((x, i) => x !== b[i]);
    if (differs >= 0 && (a[differs] ?? 0) > (b[differs] ?? 0)) worst = p;
  }
  return worst;
}

const BLOCKED_BY: Record<UnplacedReason, string> = {
  memory: 'memory fragmentation',
  cpu: 'CPU fragmentation',
  'anti-affinity': 'anti-affinity',
  'no-eligible-host': 'no eligible host',
};

function verdictLine(cluster: InventoryCluster, report: CapacityReport): string {
  const worst = worstFailure(report);
  if (worst === undefined) {
    return `${cluster.id}: N+1 OK — survives the loss of any one of ${plural(cluster.hosts.length, 'host')}`;
  }
  const down = plural(worst.plan.unplaced.length, 'VM');
  const { memoryMiB, cpus } = worst.shortfall;
  let line = `${cluster.id}: N+1 FAILS — losing ${worst.failedHostId} leaves ${down} down; `;
  if (memoryMiB > 0 || cpus > 0) {
    line += `${formatMiB(memoryMiB)} and ${formatNumber(cpus)} vCPU short`;
  } else {
    // Enough room in total yet VMs stay down: the operator needs to know it is placement, not capacity.
    const reasons = [...new Set(worst.plan.unplaced.map((u) => BLOCKED_BY[u.reason]))];
    line += `the other hosts have enough room in total, but ${listOf(reasons)} blocks placement`;
  }
  const others = report.plans.filter((p) => !p.survives && p !== worst).map((p) => p.failedHostId);
  if (others.length > 0) line += `; losing ${listOf(others)} also leaves VMs down`;
  return line;
}

/**
 * The automatic-failover line, only when some host cannot be fenced: its VMs have their place, but the
 * failover stops at the fence until an operator confirms the host off, which N+1 alone does not say.
 */
function failoverLine(cluster: InventoryCluster, report: CapacityReport): string[] {
  if (report.automaticFailover) return [];
  const hosts = report.notFenceable.map((h) => h.hostId);
  const those = hosts.length === 1 ? 'its failover waits' : 'their failovers wait';
  return [
    `${cluster.id}: NO AUTOMATIC FAILOVER for ${listOf(hosts)} — cannot be fenced; ${those} for an operator to confirm the power off`,
  ];
}

/**
 * The autostart warning, only when some HA VM has libvirt autostart on: whatever N+1 says, a fenced host
 * that boots again would start a second copy of a VM its failover restarted elsewhere. A warning only:
 * the exit status does not change for it.
 */
function autostartLine(cluster: InventoryCluster, report: CapacityReport): string[] {
  const vms = report.haVmsWithAutostart.map((v) => `${v.vmId} (on ${v.hostId})`);
  if (vms.length === 0) return [];
  return [
    `${cluster.id}: WARNING — libvirt autostart is on for ${vms.length === 1 ? 'HA VM' : 'HA VMs'} ${listOf(vms, 8)}: ` +
      'a fenced host that boots again would start a second copy; turn it off (virsh autostart --disable)',
  ];
}

function hostTable(
  cluster: InventoryCluster,
  policy: PlacementPolicy,
  report: CapacityReport,
  labels: ReadonlyMap<string, string>,
): string[] {
  const plans = new Map(report.plans.map((p) => [p.failedHostId, p]));
  const rows = cluster.hosts.map((host) => {
    const load = hostLoad(host);
    const cpuLimit = (host.cpus - policy.reserveCpus) * policy.cpuOvercommit;
    const plan = plans.get(host.id);
    const haCount = host.vms.filter((vm) => vm.ha).length;
    let verdict = '';
    if (plan !== undefined) {
      if (!plan.survives)
        verdict = `FAILS: ${plan.plan.unplaced.length} of ${plural(haCount, 'HA VM')} stay down`;
      else verdict = haCount === 0 ? 'OK: no HA VMs' : `OK: all ${plural(haCount, 'HA VM')} restart`;
      if (plan.needsOperator) verdict += ', after an operator (cannot be fenced)';
    }
    return [
      labels.get(host.id) ?? (host.maintenance ? `${host.id} (maintenance)` : host.id),
      `${formatNumber(load.usedCpus)} / ${formatNumber(cpuLimit)}`,
      formatPercent(cpuLimit > 0 ? load.usedCpus / cpuLimit : 1),
      `${formatGiB(load.usedMiB)} / ${formatGiB(host.memoryMiB)}`,
      formatPercent(load.usedMiB / host.memoryMiB),
      plan === undefined ? '' : `${formatGiB(plan.demand.memoryMiB)}, ${formatNumber(plan.demand.cpus)} vCPU`,
      verdict,
    ];
  });
  return renderTable(
    [
      { header: 'host' },
      { header: 'vCPU used / limit', align: 'right' },
      { header: '', align: 'right' },
      { header: 'memory used / total', align: 'right' },
      { header: '', align: 'right' },
      { header: 'HA demand', align: 'right' },
      { header: 'if it fails' },
    ],
    rows,
    INDENT,
  );
}

/** Core's reason repeats the wave and size, which have their own columns here. */
function shortReason(p: Placement): string {
  const prefix = `${p.priority} wave: ${p.memoryMiB} MiB/${p.cpus} vCPU; `;
  return p.reason.startsWith(prefix) ? p.reason.slice(prefix.length) : p.reason;
}

function placementTable(placements: readonly Placement[]): string[] {
  return renderTable(
    [
      { header: 'order', align: 'right' },
      { header: 'wave' },
      { header: 'VM' },
      { header: 'memory', align: 'right' },
      { header: 'vCPU', align: 'right' },
      { header: 'target' },
      { header: 'reason' },
    ],
    placements.map((p) => [
      String(p.order),
      p.priority,
      p.vmId,
      `${p.memoryMiB} MiB`,
      String(p.cpus),
      `→ ${p.hostId}`,
      shortReason(p),
    ]),
    INDENT,
  );
}

function unplacedTable(unplaced: readonly Unplaced[]): string[] {
  return renderTable(
    [
      { header: 'VM' },
      { header: 'wave' },
      { header: 'memory', align: 'right' },
      { header: 'vCPU', align: 'right' },
      { header: 'why' },
      { header: 'detail' },
    ],
    unplaced.map((u) => [u.vmId, u.priority, `${u.memoryMiB} MiB`, String(u.cpus), u.reason, u.detail]),
    INDENT,
  );
}

function failoverSection(failover: FailoverPlan): string[] {
  const { plan, demand, spare, shortfall } = failover;
  const lines = [
    '',
    `If ${failover.failedHostId} fails: HA demand ${formatGiB(demand.memoryMiB)} and ${formatNumber(demand.cpus)} vCPU; ` +
      `the other hosts have ${formatGiB(spare.memoryMiB)} and ${formatNumber(spare.cpus)} vCPU spare` +
      (shortfall.memoryMiB > 0 || shortfall.cpus > 0
        ? ` (${formatGiB(shortfall.memoryMiB)} and ${formatNumber(shortfall.cpus)} vCPU short)`
        : ''),
  ];
  if (failover.operatorReason !== null) {
    lines.push(`${INDENT}Needs an operator first: ${failover.operatorReason}`);
  }
  if (plan.placements.length > 0) {
    lines.push(`${INDENT}Restarts (${plural(plan.placements.length, 'VM')}, high wave first):`);
    lines.push(...placementTable(plan.placements));
  } else {
    lines.push(`${INDENT}No VM restarts.`);
  }
  if (plan.unplaced.length > 0) {
    lines.push(`${INDENT}Stays down (${plural(plan.unplaced.length, 'VM')}):`);
    lines.push(...unplacedTable(plan.unplaced));
  }
  if (plan.skipped.length > 0) {
    const ids = plan.skipped.map((s) => s.vmId);
    lines.push(`${INDENT}Not HA, not restarted: ${listOf(ids, 8)}.`);
  }
  return lines;
}

/**
 * The human-readable N+1 report of one cluster: verdict, host table, then each host's failover plan.
 * `labels` names hosts in the table (the live plan shows why a host takes nothing: `node01 (fenced)`).
 */
export function renderClusterReport(
  cluster: InventoryCluster,
  policy: PlacementPolicy,
  report: CapacityReport,
  labels: ReadonlyMap<string, string> = new Map(),
): string[] {
  return [
    verdictLine(cluster, report),
    ...failoverLine(cluster, report),
    ...autostartLine(cluster, report),
    '',
    ...hostTable(cluster, policy, report, labels),
    ...report.plans.flatMap(failoverSection),
  ];
}

function describePolicy(policy: PlacementPolicy): string {
  return (
    `policy: CPU overcommit ${formatNumber(policy.cpuOvercommit)}×, ` +
    `reserve per host ${policy.reserveMiB} MiB and ${formatNumber(policy.reserveCpus)} CPU`
  );
}

/** The file's text, or why it cannot be read in a few words. */
async function readText(file: string): Promise<{ text: string } | { problem: string }> {
  try {
    return { text: await readFile(file, 'utf8') };
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    if (code === 'ENOENT') return { problem: 'no such file' };
    if (code === 'EISDIR') return { problem: 'it is a directory' };
    if (code === 'EACCES') return { problem: 'permission denied' };
    return { problem: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * `halo plan <inventory.json> [--json]`: prints the N+1 report of every cluster in the inventory to `io`.
 * Returns 0 when every cluster survives any one host failure without an operator, 1 when one does not
 * (room short, or a host that cannot be fenced), 2 on bad usage or input.
 */
export async function planCommand(args: readonly string[], io: Io): Promise<ExitCode> {
  let parsed: { values: { json?: boolean; help?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    });
  } catch (error) {
    // parseArgs appends a long hint on quoting; its first sentence says what is wrong.
    const message = error instanceof Error ? (error.message.split('. ')[0] ?? error.message) : String(error);
    io.stderr(`halo plan: ${message}\nUsage: ${PLAN_USAGE}\n`);
    return EXIT.usage;
  }
  if (parsed.values.help === true) {
    io.stdout(PLAN_HELP);
    return EXIT.ok;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    const problem = file === undefined ? 'missing the inventory file' : `unexpected argument ${extra[0]}`;
    io.stderr(`halo plan: ${problem}\nUsage: ${PLAN_USAGE}\n`);
    return EXIT.usage;
  }

  const read = await readText(file);
  if ('problem' in read) {
    io.stderr(`halo plan: cannot read ${file}: ${read.problem}\n`);
    return EXIT.usage;
  }
  let inventory: Inventory;
  try {
    inventory = parseInventory(read.text, file);
  } catch (error) {
    if (!(error instanceof InventoryError)) throw error;
    io.stderr(`${error.message}\n`);
    return EXIT.usage;
  }

  const { policy } = inventory;
  const results = inventory.clusters.map((cluster) => ({
    cluster,
    report: assessCapacity(cluster.hosts, policy),
  }));
  // A host no relay can fence fails the check like broken N+1: its failover would not happen unattended.
  const allSurvive = results.every((r) => r.report.survivesAnyOneHostFailure && r.report.automaticFailover);

  if (parsed.values.json === true) {
    const json = { policy, clusters: results.map((r) => ({ id: r.cluster.id, report: r.report })) };
    io.stdout(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    const lines = [describePolicy(policy)];
    for (const { cluster, report } of results)
      lines.push('', ...renderClusterReport(cluster, policy, report));
    io.stdout(`${lines.join('\n')}\n`);
  }
  return allSurvive ? EXIT.ok : EXIT.checkFailed;
}
