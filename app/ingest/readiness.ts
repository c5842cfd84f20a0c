import type { FenceLevelReadiness, FenceReadiness } from '../../contracts/relay-protocol';
import type { AppContext } from '../context';
import type { HostFenceReadiness, HostRecord, SiteControl } from '../ports';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';
import { sameFenceOk } from '../shared/fence-readiness';
import { summaryOf } from '../shared/host-lifecycle';
import { retryOnConflict } from '../shared/retry';

/**
 * Records the fence readiness a relay reported: on each host's record under the relay's id (a site's
 * relays each have their own fence configuration), and the relay's verdict in the site's summary of the
 * host, which the detector reads. Relays send a host's readiness only when it changes (and once after
 * they start), so this costs nothing on an ordinary report.
 *
 * Readiness alone never creates a host: for a host no relay has reported (no record) it is ignored. A
 * check older than the one held is ignored too, and one that finds what is held already writes nothing.
 * The summary goes last, and whenever it disagrees with the host: a report retried after a crash between
 * the two writes (the relay resends what was not accepted) repairs it.
 */
export async function recordFenceReadiness(
  ctx: AppContext,
  args: {
    /** The site's control items as this report found them (the summaries to compare with). */
    readonly control: SiteControl;
    readonly relayId: string;
    readonly readiness: readonly FenceReadiness[];
    readonly now: number;
  },
): Promise<void> {
  const { control, relayId, now } = args;
  const siteId = control.site.siteId;
  const { hosts, sites } = ctx.ports;
  await forEachConcurrently(latestPerHost(args.readiness), STEP_WRITE_CONCURRENCY, async (reported) => {
    const host = await retryOnConflict(async (): Promise<HostRecord | null> => {
      const current = await hosts.getHost(siteId, reported.hostId);
      if (current === null) return null;
      const held = current.fenceReadiness[relayId];
      if (held !== undefined && (held.checkedAt > reported.checkedAt || sameFinding(held, reported))) {
        return current;
      }
      const entry: HostFenceReadiness = {
        ok: reported.ok,
        checkedAt: reported.checkedAt,
        reportedAt: now,
        levels: reported.levels,
      };
      return hosts.saveFenceReadiness(siteId, reported.hostId, current.version, {
        ...current.fenceReadiness,
        [relayId]: entry,
      });
    });
    if (host === null) return;
    const summary = summaryOf(host);
    if (!sameFenceOk(control.hosts[host.hostId], summary)) {
      await sites.putHostSummary(siteId, host.hostId, summary);
    }
  });
}

/** One entry per host: the latest check when a report lists a host twice. */
function latestPerHost(readiness: readonly FenceReadiness[]): FenceReadiness[] {
  const latest = new Map<string, FenceReadiness>();
  for (const r of readiness) {
    const seen = latest.get(r.hostId);
    if (seen === undefined || r.checkedAt >= seen.checkedAt) latest.set(r.hostId, r);
  }
  return [...latest.values()];
}

/** The check found what is held already: the same verdict from the same levels with the same answers. */
function sameFinding(held: HostFenceReadiness, reported: FenceReadiness): boolean {
  return (
    held.ok === reported.ok &&
    held.levels.length === reported.levels.length &&
    held.levels.every((level, i) => sameLevel(level, reported.levels[i]))
  );
}

function sameLevel(a: FenceLevelReadiness, b: FenceLevelReadiness | undefined): boolean {
  return (
    b !== undefined &&
    a.level === b.level &&
    a.driver === b.driver &&
    a.ok === b.ok &&
    a.power === b.power &&
    a.error === b.error
  );
}
