import { type Fenceability, fenceability, fenceVerdict } from '../../core/fenceability';
import type { HostRecord, HostSummary, RelayRecord } from '../ports';

/**
 * The relays whose readiness counts: enrolled and not revoked. A revoked relay is never sent a fence, so
 * its last word on a host says nothing about whether the site can fence it now.
 */
function countingRelays(relays: readonly RelayRecord[]): ReadonlySet<string> {
  return new Set(relays.filter((r) => !r.revoked).map((r) => r.relayId));
}

/** A host's fence verdict with its reason, from every counting relay's latest readiness on its record. */
export function hostFenceability(host: HostRecord, relays: readonly RelayRecord[]): Fenceability {
  const counting = countingRelays(relays);
  return fenceability(
    Object.entries(host.fenceReadiness)
      .filter(([relayId]) => counting.has(relayId))
      .map(([relayId, readiness]) => ({ relayId, ok: readiness.ok, levels: readiness.levels })),
  );
}

/** The same verdict from the site's summary of the host (no reason): what the detector reads every tick. */
export function summaryFenceable(summary: HostSummary, relays: readonly RelayRecord[]): boolean | null {
  const counting = countingRelays(relays);
  return fenceVerdict(
    Object.entries(summary.fenceOk ?? {})
      .filter(([relayId]) => counting.has(relayId))
      .map(([, ok]) => ok),
  );
}

/** Whether two summaries carry the same relay → ok entries (absent and empty alike). */
export function sameFenceOk(a: HostSummary | undefined, b: HostSummary): boolean {
  const left = a?.fenceOk ?? {};
  const right = b.fenceOk ?? {};
  const keys = Object.keys(right);
  return Object.keys(left).length === keys.length && keys.every((k) => left[k] === right[k]);
}
