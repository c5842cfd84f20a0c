import { renderTable } from '../../cli/format';
import { ConfigError } from '../config/config-file';
import type { RelaySettings } from '../config/relay-config';
import { fenceConfig } from './devices';
import { readLevel } from './readiness';
import { makeRedactor } from './redact';

/** One line of `check-bmc`: one level of one host, read (power status only). */
export interface BmcCheck {
  readonly host: string;
  readonly level: number;
  readonly driver: string;
  readonly ok: boolean;
  readonly power: 'on' | 'off' | null;
  readonly ms: number;
  readonly error: string | null;
}

/**
 * `halo-relay check-bmc`: reads the power status through every fence level of the named hosts (every
 * configured host when none is named), changing nothing. Hosts are read side by side, levels of one host
 * too; errors are redacted like everything else that leaves the relay.
 */
export async function checkBmc(settings: RelaySettings, hostIds: readonly string[]): Promise<BmcCheck[]> {
  const unknown = hostIds.filter((h) => settings.hosts[h] === undefined);
  if (unknown.length > 0) {
    throw new ConfigError(
      `no host ${unknown.join(', ')} in ${settings.configPath} (hosts: ${Object.keys(settings.hosts).join(', ')})`,
    );
  }
  const redact = makeRedactor(settings.credential, settings.secrets);
  const names = hostIds.length > 0 ? hostIds : Object.keys(settings.hosts).sort();
  const fence = fenceConfig(settings.hosts);
  const perHost = await Promise.all(
    names.map(async (host) => {
      const levels = fence[host] ?? [];
      const read = await Promise.all(levels.map((level, i) => readLevel(level, i, redact)));
      return read.map(
        (r): BmcCheck => ({
          host,
          level: r.level,
          driver: r.driver,
          ok: r.ok,
          power: r.power,
          ms: r.ms,
          error: r.error,
        }),
      );
    }),
  );
  return perHost.flat();
}

/** The human table of a check. */
export function renderChecks(checks: readonly BmcCheck[]): string {
  const lines = renderTable(
    [
      { header: 'host' },
      { header: 'level', align: 'right' },
      { header: 'driver' },
      { header: 'answer' },
      { header: 'power' },
      { header: 'ms', align: 'right' },
      { header: 'error' },
    ],
    checks.map((c) => [
      c.host,
      String(c.level),
      c.driver,
      c.ok ? 'ok' : 'FAILED',
      c.power ?? '-',
      String(c.ms),
      c.error ?? '',
    ]),
  );
  const failed = checks.filter((c) => !c.ok).length;
  const hostsFenceable = new Set(checks.filter((c) => c.ok).map((c) => c.host));
  const hosts = new Set(checks.map((c) => c.host));
  const summary =
    failed === 0
      ? `every level of ${hosts.size} host(s) answered`
      : `${failed} level(s) did not answer; ${hosts.size - hostsFenceable.size} host(s) cannot be fenced by any level`;
  return `${lines.join('\n')}\n\n${summary}\n`;
}
