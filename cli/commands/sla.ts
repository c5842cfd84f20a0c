import type * as z from 'zod';
import { SiteDowntimeSchema, type VmDowntimeSchema } from '../../contracts/operator-api';
import { parseAnswer } from '../api';
import { type CommandContext, writeJson, writeLines } from '../context';
import { UsageError } from '../errors';
import { EXIT, type ExitCode, plural, renderTable } from '../format';
import { siteIds, vmsOf } from '../lookup';
import { formatInstant, monthBounds, monthOf } from '../time';

/** The SLO when none is given: 99.95 % availability. */
export const DEFAULT_SLO_PERCENT = 99.95;

/** An average month (365.25 days / 12), so that a budget is the same every month: 21.9 min at 99.95 %. */
export const AVERAGE_MONTH_MS = (365.25 / 12) * 24 * 60 * 60 * 1000;

/** Minutes of down time a month allows at `sloPercent`. */
export function monthlyBudgetMinutes(sloPercent: number): number {
  return ((100 - sloPercent) / 100) * (AVERAGE_MONTH_MS / 60_000);
}

type VmDowntime = z.infer<typeof VmDowntimeSchema>;

/** One VM's month against its budget. */
export interface SlaRow {
  readonly siteId: string;
  readonly vmId: string;
  readonly downMinutes: number;
  readonly budgetMinutes: number;
  readonly periods: number;
  readonly breach: boolean;
}

/** The VMs with down time, worst first, each judged against the budget. */
export function slaRows(downtime: readonly VmDowntime[], budgetMinutes: number): SlaRow[] {
  return downtime
    .map((vm) => {
      const downMinutes = vm.downMs / 60_000;
      return {
        siteId: vm.siteId,
        vmId: vm.vmId,
        downMinutes,
        budgetMinutes,
        periods: vm.periods.length,
        breach: downMinutes > budgetMinutes,
      };
    })
    .sort((a, b) => b.downMinutes - a.downMinutes || a.vmId.localeCompare(b.vmId));
}

/**
 * `halo sla [--month YYYY-MM] [--site S] [--slo 99.95]`: per HA VM, the minutes it was down in the month
 * (UTC; up to now for the current month), from the down periods the control plane keeps in its incidents
 * (from the host's silence, or the VM's crash, to running again), against the SLO's monthly budget.
 * Exit 1 when a VM breached it.
 */
export async function slaCommand(
  ctx: CommandContext,
  options: { readonly month?: string | undefined; readonly site?: string | undefined; readonly slo: string },
): Promise<ExitCode> {
  const month = options.month ?? monthOf(ctx.time.now);
  const bounds = monthBounds(month);
  if (bounds === null) throw new UsageError(`--month: expected YYYY-MM, got ${month}`);
  if (bounds.from > ctx.time.now) throw new UsageError(`--month ${month} has not begun`);
  const slo = Number(options.slo);
  if (!Number.isFinite(slo) || slo <= 0 || slo >= 100)
    throw new UsageError(`--slo: a percentage between 0 and 100, got ${options.slo}`);
  const until = Math.min(bounds.to, ctx.time.now);
  const budget = monthlyBudgetMinutes(slo);
  const client = await ctx.client();
  const sites = await siteIds(client, options.site);
  const downtime: VmDowntime[] = [];
  for (const siteId of sites) {
    const body = await client.call('siteDowntime', {
      params: { siteId },
      query: { since: String(bounds.from), until: String(until) },
    });
    downtime.push(...parseAnswer(SiteDowntimeSchema, body, 'siteDowntime').vms.filter((v) => v.downMs > 0));
  }
  const haVms = (await vmsOf(client, options.site)).filter((v) => v.ha).length;
  const rows = slaRows(downtime, budget);
  const breaches = rows.filter((r) => r.breach);
  const code = breaches.length > 0 ? EXIT.checkFailed : EXIT.ok;
  if (ctx.json) {
    writeJson(ctx, {
      month,
      since: bounds.from,
      until,
      sloPercent: slo,
      budgetMinutes: budget,
      haVms,
      vms: rows,
      downtime,
    });
    return code;
  }
  const { style, time } = ctx;
  const period = until < bounds.to ? `${month} (until ${formatInstant(until, time.timeZone)})` : month;
  const lines = [`SLA ${period}: SLO ${slo} % — a budget of ${budget.toFixed(1)} min down per VM a month`];
  if (rows.length === 0) lines.push(`No VM was down: ${plural(haVms, 'HA VM')}, all within the SLO.`);
  else {
    const manySites = new Set(rows.map((r) => r.siteId)).size > 1;
    lines.push(
      '',
      ...renderTable(
        [
          ...(manySites ? [{ header: 'site' }] : []),
          { header: 'VM' },
          { header: 'down (min)', align: 'right' as const },
          { header: 'budget used', align: 'right' as const },
          { header: 'periods', align: 'right' as const },
          { header: 'SLO' },
        ],
        rows.map((r) => [
          ...(manySites ? [r.siteId] : []),
          r.vmId,
          r.downMinutes.toFixed(1),
          `${Math.round((r.downMinutes / r.budgetMinutes) * 100)}%`,
          String(r.periods),
          r.breach ? style.bad('BREACHED') : style.good('met'),
        ]),
      ),
      '',
      `${plural(rows.length, 'VM')} down at some point, ${breaches.length} over budget` +
        (breaches.length === 0 ? '' : `: ${style.bad(breaches.map((b) => b.vmId).join(', '))}`) +
        `; ${plural(haVms, 'HA VM')} in all.`,
    );
  }
  writeLines(ctx, lines);
  return code;
}
