import { ConcurrentUpdateError, NotFoundError } from '../../app/errors';
import type {
  ClusterRecord,
  CommandRecord,
  HostRecord,
  HostSummary,
  IncidentEvent,
  IncidentRecord,
  RelayRecord,
  SiteRecord,
  VmRecord,
} from '../../app/ports';

/**
 * What the in-memory stores hold: the equivalent of the DynamoDB table, one map per entity. Stores share
 * it because, as in the table, one read (a site's control items) spans several entities.
 *
 * Every method of the stores does all its work synchronously between awaits, so each write is atomic
 * just as a single-item conditional write is.
 */
export interface MemoryState {
  /** By siteId; `openIncidents` and `recovering` live on the site, as in the table. */
  readonly sites: Map<
    string,
    {
      site: SiteRecord;
      openIncidents: Set<string>;
      recovering: Set<string>;
      /** `vmId@hostId` pairs; created at the first pair. */
      runningTwice?: Set<string>;
    }
  >;
  /** By rowKey(siteId, clusterId). */
  readonly clusters: Map<string, ClusterRecord>;
  /** By rowKey(siteId, relayId). */
  readonly relays: Map<string, RelayRecord>;
  /** By siteId, then hostId. */
  readonly hostSummaries: Map<string, Map<string, HostSummary>>;
  /** By rowKey(siteId, hostId). */
  readonly hosts: Map<string, HostRecord>;
  /** By rowKey(siteId, vmId). */
  readonly vms: Map<string, VmRecord>;
  /** By incidentId. */
  readonly incidents: Map<string, IncidentRecord>;
  /** By incidentId, then eventKey(at, kind). */
  readonly events: Map<string, Map<string, IncidentEvent>>;
  /** By rowKey(siteId, commandId). */
  readonly commands: Map<string, CommandRecord>;
}

/** An empty store state. */
export function createMemoryState(): MemoryState {
  return {
    sites: new Map(),
    clusters: new Map(),
    relays: new Map(),
    hostSummaries: new Map(),
    hosts: new Map(),
    vms: new Map(),
    incidents: new Map(),
    events: new Map(),
    commands: new Map(),
  };
}

/** Key of a row inside a site (ids never contain `/`). */
export function rowKey(siteId: string, id: string): string {
  return `${siteId}/${id}`;
}

/**
 * A deep copy: records go in and come out as copies, so no caller can change stored state by mutating
 * what it passed or got back (the DynamoDB store has that property by serialization).
 */
export function copy<T>(value: T): T {
  return clonePlain(value) as T;
}

/**
 * Records are plain data (what DynamoDB items hold: objects, arrays, strings, numbers, booleans, null), and
 * a recursive copy of plain data is several times faster than structuredClone, which the simulator feels
 * on every read. Anything else (a Map, a Date, a class instance) still goes through structuredClone.
 *
 * Each level is copied whole first (an object spread, an array slice: V8 copies a known shape in one go),
 * then only its nested objects and arrays are replaced by their copies: the same result as copying key
 * by key, in about half the time and with no [key, value] pair allocated per property.
 */
function clonePlain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out: unknown[] = value.slice();
    for (let i = 0; i < out.length; i++) {
      const item = out[i];
      if (item !== null && typeof item === 'object') out[i] = clonePlain(item);
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return structuredClone(value);
  const out: Record<string, unknown> = { ...value };
  for (const key of Object.keys(out)) {
    const item = out[key];
    if (item !== null && typeof item === 'object') out[key] = clonePlain(item);
  }
  return out;
}

/** Plain code-unit string order: what DynamoDB's sort-key order is for the ASCII ids used here. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Values of `map` whose key starts with `siteId/`, copied, in id order (as a sort-key query returns them). */
export function rowsOfSite<T>(map: ReadonlyMap<string, T>, siteId: string): T[] {
  const prefix = rowKey(siteId, '');
  return [...map.entries()]
    .filter(([key]) => key.startsWith(prefix))
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([, value]) => copy(value));
}

/**
 * Checks an optimistic-lock write: throws NotFoundError for a missing record and ConcurrentUpdateError
 * when its version moved, as the DynamoDB stores do when `version = :expected` fails.
 */
export function checkVersion<T extends { readonly version: number }>(
  current: T | undefined,
  expectedVersion: number,
  what: string,
): T {
  if (current === undefined) throw new NotFoundError(`${what} not found`);
  if (current.version !== expectedVersion) {
    throw new ConcurrentUpdateError(
      `${what} changed: expected version ${expectedVersion}, found ${current.version}`,
    );
  }
  return current;
}

/** The fields of `patch` that are not undefined (undefined means "leave as is", null clears). */
export function definedFields<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
