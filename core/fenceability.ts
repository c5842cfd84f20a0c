/**
 * Whether a host can be fenced, from what the site's relays last found when they read its power status
 * through every fence level (a readiness check changes nothing on the host). A host no relay ever checked
 * is *unknown*, not broken: relays older than fence readiness never report it.
 */

/** One fence level as a relay's readiness check found it. */
export interface FenceLevelCheck {
  readonly level: number;
  readonly driver: string;
  /** The level answered a power-status read. */
  readonly ok: boolean;
  /** Why it did not answer; null when it did (or when the relay gave no reason). */
  readonly error: string | null;
}

/** One relay's latest readiness check of a host. */
export interface RelayFenceCheck {
  readonly relayId: string;
  /** At least one level answered: this relay can fence the host. */
  readonly ok: boolean;
  readonly levels: readonly FenceLevelCheck[];
}

/** A host's fence verdict: fenceable, not fenceable (with why), or unknown (null: never checked). */
export interface Fenceability {
  readonly fenceable: boolean | null;
  /** Why no relay can fence the host, level by level; null unless `fenceable` is false. */
  readonly reason: string | null;
}

/**
 * The verdict from each relay's latest `ok`: true when any relay can fence the host, false when every
 * relay that checked says it cannot, null when none checked.
 */
export function fenceVerdict(oks: readonly boolean[]): boolean | null {
  if (oks.length === 0) return null;
  return oks.some((ok) => ok);
}

/**
 * The verdict with its reason, from the latest check of every relay that counts (the caller leaves out
 * relays that can no longer fence, such as revoked ones). The reason names each relay's levels and their
 * errors, in relay id and level order, so the operator knows which BMC or PDU to look at.
 */
export function fenceability(checks: readonly RelayFenceCheck[]): Fenceability {
  const fenceable = fenceVerdict(checks.map((c) => c.ok));
  if (fenceable !== false) return { fenceable, reason: null };
  const reason = [...checks]
    .sort((a, b) => compare(a.relayId, b.relayId))
    .map((c) => `relay ${c.relayId}: ${levelsProblem(c.levels)}`)
    .join('; ');
  return { fenceable, reason };
}

function levelsProblem(levels: readonly FenceLevelCheck[]): string {
  if (levels.length === 0) return 'no fence level configured';
  return [...levels]
    .sort((a, b) => a.level - b.level)
    .map((l) => `level ${l.level} ${l.driver}: ${l.ok ? 'answered' : (l.error ?? 'no answer')}`)
    .join(', ');
}

// Plain code-unit order, as ids sort everywhere else (DynamoDB key order).
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
