import type {
  CommandResult,
  FenceLevelReadiness,
  ObservedVm,
  RelayCommand,
  VmPowerState,
} from '../contracts/relay-protocol';
import type { IncidentInput, IncidentOutcome, WorkflowResume } from '../contracts/workflow';
import type { HostState } from '../core/lifecycle';
import type { Priority } from '../core/model';
import type { HaPolicyInput } from '../core/policy';

/**
 * Ports of the control plane's use cases. Each store has a DynamoDB adapter (adapters/dynamodb) and an
 * in-memory one (adapters/memory) with identical semantics, checked by one shared conformance suite.
 *
 * Rules every implementation follows:
 * - every state change is a single-item conditional write (no transactions: dynalite has none);
 * - repeating a write with the same arguments is harmless (idempotent) and says so in its result;
 * - a lost race surfaces as a named error from app/errors.ts, never as a silent overwrite.
 */

/** Time is passed in, never read from the environment inside use cases. */
export interface Clock {
  now(): number;
  /**
   * Resolves after `ms` of this clock's time. Optional: a clock without it (a test's hand-advanced clock)
   * makes a step that would wait for evidence judge at once on what it has.
   */
  sleep?(ms: number): Promise<void>;
}

/** Random identifiers and secrets; seeded in tests and the simulator. */
export interface IdGenerator {
  /** A new unique id (URL-safe, ≤ 40 chars). */
  newId(prefix: string): string;
  /** A new secret for a relay credential (≥ 32 bytes of entropy, URL-safe). */
  newSecret(): string;
}

// ---------------------------------------------------------------- records

export interface SiteRecord {
  readonly siteId: string;
  readonly createdAt: number;
}

export interface ClusterRecord {
  readonly siteId: string;
  readonly clusterId: string;
  /** Per-cluster switch (safety rule 7). */
  readonly fencingEnabled: boolean;
  /** Overrides of the deployment's default policy for this cluster. */
  readonly policy: HaPolicyInput;
  readonly version: number;
}

export interface RelayRecord {
  readonly siteId: string;
  readonly relayId: string;
  /** sha256 of the relay's secret, hex; the secret itself is never stored. */
  readonly credentialHash: string;
  readonly revoked: boolean;
  /** Highest accepted report sequence number; -1 before the first report. */
  readonly lastSeq: number;
  /** Cloud time of the last accepted report; null before the first. */
  readonly lastSeenAt: number | null;
  /** Hosts this relay calls silent, with how long ago it last heard each (at lastSeenAt). */
  readonly silentHosts: Readonly<Record<string, number>>;
  /**
   * The `nextReportInMs` the response to the last accepted report asked for: the pace the relay keeps
   * until its next report, which ages its votes (app/shared/relays.ts). Absent before the first report
   * that recorded it.
   */
  readonly nextReportInMs?: number;
  /**
   * Hosts of the site the relay's last report did not list at all: it has not heard them since it started
   * (lost state, a LAN key or clock it cannot hear them with). Such a relay gives no evidence the host lives:
   * it does not outvote a relay that calls the host silent. Absent when it listed every host.
   */
  readonly unheardHosts?: readonly string[];
  /**
   * The site's other relays as this relay heard them on the LAN at its last report (relay id → how long
   * ago): how a relay that died is known at LAN speed, and which relays take turns (app/shared/relays.ts).
   * Absent from relays that report no peers.
   */
  readonly peers?: Readonly<Record<string, number>>;
  /** When the relay's current credential was issued. */
  readonly enrolledAt: number;
}

/** Compact per-host summary kept in one item per site, so ingest reads a whole site in one query. */
export interface HostSummary {
  /** Hash of the observed inventory (boot id, capacity, VMs); a change means the host item must be written. */
  readonly digest: string;
  readonly cluster: string;
  readonly status: HostState['status'];
  readonly incidentId: string | null;
  /**
   * Each relay's latest fence readiness of the host (relay id → ok), so the detector judges every host's
   * fenceability from the control items it reads anyway. Absent while no relay has reported readiness.
   */
  readonly fenceOk?: Readonly<Record<string, boolean>>;
  /** The boot and agent time of the inventory recorded: an older one of that boot is not taken again. */
  readonly bootId?: string;
  readonly takenAt?: number;
}

/** Everything ingest needs about a site, from one query. */
export interface SiteControl {
  readonly site: SiteRecord;
  readonly clusters: readonly ClusterRecord[];
  readonly relays: readonly RelayRecord[];
  readonly hosts: Readonly<Record<string, HostSummary>>;
  /** Open incidents of the site (ids); commands are only looked up while this is non-empty. */
  readonly openIncidents: readonly string[];
  /**
   * The site's retry list: HA VMs down that must run again (VmRecord.recovery waiting or starting), in id
   * order. Read with the control items for free, so ingest and the detector know when to look.
   */
  readonly recovering: readonly string[];
  /**
   * VMs reported running on two hosts at once (safety rule 6) and still so, as `vmId@hostId` pairs, one
   * per host that runs the VM (app/shared/split-brain.ts): the detector's VmsRunningTwice gauge and its
   * tick report read them with the control items. Absent while there are none.
   */
  readonly runningTwice?: readonly string[];
}

/** One relay's latest fence-readiness check of a host, as ingest recorded it. */
export interface HostFenceReadiness {
  /** At least one level answered: this relay can fence the host. */
  readonly ok: boolean;
  /** The relay's clock when the check that found this state finished. */
  readonly checkedAt: number;
  /** Cloud time the report that carried it was accepted. */
  readonly reportedAt: number;
  readonly levels: readonly FenceLevelReadiness[];
}

export interface HostRecord {
  readonly siteId: string;
  readonly hostId: string;
  readonly cluster: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly bootId: string;
  readonly lifecycle: HostState;
  /** Sum over VMs the host reported running (or paused). */
  readonly usedCpus: number;
  readonly usedMiB: number;
  /** Capacity held for VM starts in flight (safety rule 5), by reservation id. */
  readonly reservations: Readonly<
    Record<string, { readonly vmId: string; readonly cpus: number; readonly memoryMiB: number }>
  >;
  /** Incidents opened for this host so far; the next incident id derives from it. */
  readonly incidentSeq: number;
  /**
   * Latest fence readiness by relay id (a site's relays each have their own fence configuration); empty
   * until a relay reports one. Written only when a relay reports a change.
   */
  readonly fenceReadiness: Readonly<Record<string, HostFenceReadiness>>;
  readonly digest: string;
  readonly observedAt: number;
  /** When the agent took the inventory recorded (its clock; absent when the relay did not say). */
  readonly takenAt?: number;
  /** Optimistic-lock counter, incremented by every write. */
  readonly version: number;
}

/** A host as first seen: what createHost takes (the store starts the counters and maps empty). */
export type NewHost = Omit<HostRecord, 'version' | 'reservations' | 'incidentSeq' | 'fenceReadiness'>;

/**
 * A VM: where it *runs* (`hostId` with an active `state`, running or paused: at most one host) apart from
 * where it is *defined* (`definedOn`: every host whose inventory lists it, in any state). An HA VM is
 * defined on several hosts of its cluster so that it can restart on any of them; their shut-off copies
 * never take the record from the host it is active on (app/ingest/inventory.ts).
 */
export interface VmRecord {
  readonly siteId: string;
  readonly vmId: string;
  /**
   * The host the record's state is about: where the VM runs while `state` is active, else where it was
   * last seen (or last ran, when `down`); null only for a VM registered but never seen.
   */
  readonly hostId: string | null;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly state: VmPowerState | 'down';
  /** libvirt's reason for `state`, as `hostId` reported it (`shutdown`, `destroyed`…); null: unknown. */
  readonly reason: string | null;
  /** libvirt autostart of the VM's definition on `hostId`, as reported; null: not reported. */
  readonly autostart: boolean | null;
  /**
   * Hosts whose latest inventory lists the VM, in any state (its libvirt definitions), in id order. Kept
   * as each host's inventory changes; empty for records written before it was kept, until then.
   */
  readonly definedOn: readonly string[];
  /**
   * Of the hosts it is defined on, those that report libvirt autostart on, in id order: any of them that
   * boots starts a copy by itself, which for an HA VM is a misconfiguration (a second copy after a fence).
   */
  readonly autostartOn: readonly string[];
  /** Operator-registered metadata agents cannot know. Unregistered VMs are not HA. */
  readonly ha: boolean;
  readonly priority: Priority;
  readonly antiAffinity: string | null;
  readonly observedAt: number;
  /**
   * VM-level HA's state of the VM (app/recovery): its restart budget and, while it is down and must run
   * again, where its recovery stands. Absent for a VM HA never had to act on. Written only by
   * `saveRecovery`, under its own version, so it never races the observation writes.
   */
  readonly recovery?: VmRecovery | undefined;
}

/** What put an HA VM on the retry list. */
export type RecoveryCause =
  /** It stopped unexpectedly on a healthy host (libvirt: crashed, failed, reason unknown). */
  | 'vm-crashed'
  /** Its host was heard again with a new boot before anyone called it silent. */
  | 'host-rebooted'
  /** A host incident closed without it running (unplaced, every start failed, unconfirmed). */
  | 'host-failover'
  /** An operator took back a down-on-purpose mark while it was down. */
  | 'operator';

/** The start command a recovery has out, and the capacity held for it (safety rule 5). */
/** A host failover's start of a VM (VmRecovery.failoverStart). */
export interface FailoverStart {
  readonly incidentId: string;
  readonly commandId: string;
  readonly hostId: string;
}

export interface RecoveryStart {
  readonly commandId: string;
  readonly hostId: string;
  readonly relayId: string;
  readonly reservationId: string;
  /** The command's notAfter: the relay does not start it later, and the agent refuses it later. */
  readonly notAfter: number;
  /** The relay's result: null while none came, `succeeded` while the VM is not yet seen running. */
  readonly result: 'succeeded' | null;
}

/**
 * One VM's recovery (VM-level HA). `waiting` and `starting` are the retry list; `idle` keeps only the
 * restart history the budget counts; `down-on-purpose` is an operator's word that it stays down until it
 * runs again.
 */
export interface VmRecovery {
  readonly status: 'waiting' | 'starting' | 'idle' | 'down-on-purpose';
  readonly cause: RecoveryCause;
  /** When the VM went down (this time): only an observation after it proves the VM runs again. */
  readonly since: number;
  /** The open VM incident of this episode (its timeline, its commands); null between episodes. */
  readonly incidentId: string | null;
  /** VM incidents opened for this VM so far; the next incident id derives from it. */
  readonly incidentSeq: number;
  /** When restarts went out, within the restart window: the budget (core restartVerdict). */
  readonly restarts: readonly number[];
  /** Start attempts of the current restart so far (in place first, then elsewhere). */
  readonly attempt: number;
  /** Hosts the current restart tried and failed on. */
  readonly triedHosts: readonly string[];
  /** Start commands of the current incident so far: numbers their ids, so none is ever reused. */
  readonly orders: number;
  readonly start: RecoveryStart | null;
  /** Only this host may be tried while it runs this boot: a start there may still be under way. */
  readonly pinned: { readonly hostId: string; readonly bootId: string } | null;
  /** Not before this instant (backoff, or a spent budget); null: as soon as a host can take it. */
  readonly notBefore: number | null;
  /** When placement was last tried: the detector retries at vmRetryIntervalMs from it. */
  readonly checkedAt: number;
  /** Why it waits, for the operator (e.g. the budget, no room); null while it does not. */
  readonly note: string | null;
  /** Who marked it down on purpose; null otherwise. */
  readonly by: string | null;
  /**
   * The incident whose `downtime` holds this episode's open down period (a host incident that left the VM
   * down, or the VM incident its stop opened), ended when the VM runs again; absent or null: none.
   */
  readonly downIncidentId?: string | null;
  /**
   * The host incident that took the VM over as it opened (its start there was under way or unseen: the
   * host may have been running it as it fell silent). While that incident is open nothing else lists the
   * VM for a restart: its close does, if it leaves the VM down. Absent or null: none.
   */
  readonly handedTo?: string | null;
  /**
   * The failover whose start a host incident took over (with `handedTo`): that failover starts the VM no
   * more, whatever becomes of the incident that took it. Absent or null: none.
   */
  readonly takenFrom?: string | null;
  /**
   * The latest start a host failover ordered for the VM, claimed on this item before its command goes out:
   * the one item a host incident taking the VM over writes too (app/recovery/adopt.ts), so that a failover
   * never starts a VM another incident took, nor is one taken from it after it moved on. Absent: none.
   */
  readonly failoverStart?: FailoverStart | null;
  /** Optimistic-lock counter of the recovery alone, incremented by every saveRecovery. */
  readonly version: number;
}

/** What an incident is about: a host that fell silent (the failover workflow), or one VM (VM-level HA). */
export type IncidentKind = 'host' | 'vm';

/** An answer to an incident's wait for an operator. */
export interface OperatorAnswer {
  /** The operator confirmed the host off, or the host was heard again, in its failed boot or a new one. */
  readonly decision: 'confirmed-off' | 'host-came-back' | 'host-rebooted';
  /** The operator, or `relay:<id>` for a host heard again. */
  readonly by: string;
  readonly at: number;
}

export interface IncidentRecord {
  readonly incidentId: string;
  readonly siteId: string;
  /** Absent on records written before VM incidents existed: `host`. */
  readonly kind?: IncidentKind | undefined;
  /** The VM of a `vm` incident; absent for host incidents. */
  readonly vmId?: string | undefined;
  /** The failed host; for a `vm` incident, the host the VM stopped on (or last ran on). */
  readonly hostId: string;
  readonly cluster: string;
  readonly bootId: string;
  readonly openedAt: number;
  readonly outcome: IncidentOutcome;
  /** The failover execution's input; null for a `vm` incident, which runs no execution. */
  readonly input: IncidentInput | null;
  readonly executionArn: string | null;
  readonly fencedAt: number | null;
  readonly closedAt: number | null;
  /** Task token of AwaitOperator while the incident waits for an operator. */
  readonly operatorTaskToken: string | null;
  /**
   * The first answer to the incident's wait for an operator (app/shared/operator-wait.ts): whoever writes
   * it decides what happens next, so a confirmation racing the wait's end is acted on once. Absent or
   * null while none came.
   */
  readonly operatorAnswer?: OperatorAnswer | null;
  /** When AwaitOperator stopped waiting without an answer (OperatorTimedOut); absent or null otherwise. */
  readonly operatorWaitEndedAt?: number | null;
  /**
   * The down periods of the HA VMs this incident is about, by VM id (app/shared/downtime.ts): for a host
   * incident, each VM of its HA set from the host's silence to when it ran again (null: not yet), written
   * when it closes; for a VM incident that opened an episode, the VM from its stop. A VM left down is
   * closed later, by VM-level HA, when it runs again. Absent: none recorded.
   */
  readonly downtime?: Readonly<Record<string, DownPeriod>>;
  readonly version: number;
}

/** One VM's down period: from when it went down to when it was seen running again (null: still down). */
export interface DownPeriod {
  readonly from: number;
  readonly to: number | null;
}

/** A place in the fleet-wide event feed: the (at, incidentId, kind, key) of the last event read. */
export interface FeedPosition {
  readonly at: number;
  readonly incidentId: string;
  readonly kind: string;
  readonly key: string;
}

/** One line of an incident's timeline. */
export interface IncidentEvent {
  readonly incidentId: string;
  readonly at: number;
  /** Stable kind, e.g. `suspected`, `fence-ordered`, `power-off-confirmed`, `vm-started`. */
  readonly kind: string;
  /**
   * What the event is about when a kind can happen for several things at once (a VM, a command), so two
   * VMs started in the same millisecond are two events. Identity is (at, kind, key); empty when unused.
   */
  readonly key?: string;
  readonly detail: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

export type CommandStatus = 'pending' | 'delivered' | 'succeeded' | 'failed' | 'expired';

export interface CommandRecord {
  readonly siteId: string;
  /** The relay that must carry it out. */
  readonly relayId: string;
  readonly command: RelayCommand;
  /**
   * Step Functions task token completed by the relay's result; null for a start VM-level HA sent, whose
   * result goes to the VM's recovery instead (app/recovery).
   */
  readonly taskToken: string | null;
  readonly status: CommandStatus;
  readonly createdAt: number;
  readonly deliveredAt: number | null;
  readonly result: CommandResult | null;
}

// ---------------------------------------------------------------- stores

export interface SiteStore {
  /** Creates the site; repeating it is harmless. */
  putSite(site: SiteRecord): Promise<{ created: boolean }>;
  listSites(): Promise<SiteRecord[]>;
  /**
   * Site, clusters, relays and host summaries in one read; null for an unknown site. Eventually
   * consistent unless `consistent` (twice the read cost), which sees every write acknowledged before it.
   */
  loadControl(siteId: string, options?: { readonly consistent?: boolean }): Promise<SiteControl | null>;
  /** Creates the cluster with defaults (fencing enabled) if missing; repeat-safe. */
  ensureCluster(siteId: string, clusterId: string): Promise<ClusterRecord>;
  /** Sets fencing on/off or policy overrides; conditional on the version read. */
  updateCluster(
    siteId: string,
    clusterId: string,
    expectedVersion: number,
    patch: { fencingEnabled?: boolean; policy?: HaPolicyInput },
  ): Promise<ClusterRecord>;
  /** Records a host's summary (one map entry of the site's control item). */
  putHostSummary(siteId: string, hostId: string, summary: HostSummary): Promise<void>;
  /** Adds or removes an open incident of the site (set semantics, repeat-safe). */
  setIncidentOpen(siteId: string, incidentId: string, open: boolean): Promise<void>;
  /** Puts a VM on the site's retry list or takes it off (`recovering`; set semantics, repeat-safe). */
  setRecovering(siteId: string, vmId: string, on: boolean): Promise<void>;
  /** Adds or removes `vmId@hostId` pairs of the site's `runningTwice` (set semantics, repeat-safe). */
  setRunningTwice(siteId: string, pairs: readonly string[], on: boolean): Promise<void>;
}

export interface RelayStore {
  /** Enrolls a relay; fails with RelayExistsError if an unrevoked relay of that id exists. */
  enroll(relay: {
    siteId: string;
    relayId: string;
    credentialHash: string;
    at: number;
  }): Promise<RelayRecord>;
  /** Revokes the credential; later reports with it are refused. Repeat-safe. */
  revoke(siteId: string, relayId: string, at: number): Promise<void>;
  getRelay(siteId: string, relayId: string): Promise<RelayRecord | null>;
  /**
   * The one liveness write per report: accepted only if the relay exists, is not revoked, the credential
   * hash matches and `seq` is above the last accepted one. Throws UnknownRelayError, RelayRevokedError,
   * BadCredentialError or StaleSequenceError (a replay) otherwise, and then changes nothing.
   */
  acceptReport(
    siteId: string,
    relayId: string,
    report: {
      seq: number;
      at: number;
      credentialHash: string;
      silentHosts: Record<string, number>;
      /** The pace the response to this report asks for; stored with the rest (left as it was if absent). */
      nextReportInMs?: number;
      /** Hosts of the site the report does not list (RelayRecord.unheardHosts); none when absent or empty. */
      unheardHosts?: readonly string[];
      /** The peer relays the report lists (RelayRecord.peers); removed when absent. */
      peers?: Readonly<Record<string, number>>;
    },
  ): Promise<RelayRecord>;
}

export interface HostStore {
  getHost(siteId: string, hostId: string): Promise<HostRecord | null>;
  listHosts(siteId: string, cluster?: string): Promise<HostRecord[]>;
  /** Creates a host first seen, in state `up`, with no reservations or fence readiness. Repeat-safe. */
  createHost(host: NewHost): Promise<HostRecord>;
  /**
   * Writes the observed inventory and usage; conditional on the version read. `reservations`, when given,
   * replaces the held ones in the same write: a VM that now counts in the usage drops its reservation
   * atomically, so it is never counted twice.
   */
  saveInventory(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    inventory: Pick<
      HostRecord,
      'cpus' | 'memoryMiB' | 'bootId' | 'usedCpus' | 'usedMiB' | 'digest' | 'observedAt' | 'cluster'
    > & { readonly reservations?: HostRecord['reservations']; readonly takenAt?: number },
  ): Promise<HostRecord>;
  /**
   * Replaces the host's fence readiness (every relay's entry: the caller read the others); conditional
   * on the version read, like every host write.
   */
  saveFenceReadiness(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    fenceReadiness: HostRecord['fenceReadiness'],
  ): Promise<HostRecord>;
  /** Applies a lifecycle state (from core decide/evolve); conditional on the version read. */
  setLifecycle(
    siteId: string,
    hostId: string,
    expectedVersion: number,
    lifecycle: HostState,
    opts?: { incidentSeq?: number },
  ): Promise<HostRecord>;
  /**
   * Holds capacity for one VM start. One conditional write: succeeds only if used + reserved + this stays
   * within the limits given (memory hard limit, CPUs × overcommit, minus reserve). Returns `already` if this
   * reservation id is held already. Throws NoCapacityError when it does not fit. `seen`, the host as the
   * caller just read it, spares the first read: a stale one only costs the write's version check a retry.
   */
  reserve(
    siteId: string,
    hostId: string,
    reservation: { id: string; vmId: string; cpus: number; memoryMiB: number },
    limits: { memoryMiB: number; cpus: number },
    seen?: HostRecord,
  ): Promise<'reserved' | 'already'>;
  /** Releases a reservation; repeat-safe (`released` or `absent`). */
  release(siteId: string, hostId: string, reservationId: string): Promise<'released' | 'absent'>;
}

export interface VmStore {
  getVm(siteId: string, vmId: string): Promise<VmRecord | null>;
  listVms(siteId: string, filter?: { hostId?: string }): Promise<VmRecord[]>;
  /**
   * Writes what `hostId` reported of the VM (host, size, state, reason, autostart), keeps operator metadata
   * (ha, priority, antiAffinity), and records in the same write whether the host lists it (`listed`, true
   * unless told otherwise: adds or removes `hostId` in `definedOn`, and in `autostartOn` as `vm.autostart`
   * says). Conditional: an observation older than the stored one is dropped, and so is an inactive one
   * (shut-off, crashed) from a host other than the one the record has it active on, since a definition
   * elsewhere says nothing about where the VM runs. Returns whether it was written. `overActiveOn` names
   * a host confirmed powered off (fenced) on which the record may still have the VM active: an inactive
   * observation takes the record from that host too (nothing runs there), and only from that one.
   */
  saveObserved(
    siteId: string,
    hostId: string,
    vm: ObservedVm,
    at: number,
    options?: { readonly listed?: boolean; readonly overActiveOn?: string },
  ): Promise<boolean>;
  /**
   * Records only whether `hostId` lists the VM and with autostart on (`definedOn`, `autostartOn`), for a
   * host whose observation does not take the record. Set semantics, repeat-safe; changes nothing for a
   * VM without a record.
   */
  setListing(
    siteId: string,
    vmId: string,
    hostId: string,
    listing: { readonly listed: boolean; readonly autostart: boolean },
  ): Promise<void>;
  /** Operator metadata; creates a placeholder VM record if the VM was never observed. */
  setMetadata(
    siteId: string,
    vmId: string,
    meta: { ha: boolean; priority: Priority; antiAffinity: string | null },
  ): Promise<VmRecord>;
  /**
   * Sets state `down` (its host is fenced; hostId kept as where it last ran, libvirt's reason cleared), only
   * if still recorded on `hostId`.
   */
  markDown(siteId: string, vmId: string, hostId: string, at: number): Promise<void>;
  /**
   * Writes the VM's recovery, conditional on the recovery's version read (`null`: the VM has none yet) and
   * touching nothing else of the item; returns the record after it. Throws ConcurrentUpdateError when the
   * recovery moved, NotFoundError for a VM without a record.
   */
  saveRecovery(
    siteId: string,
    vmId: string,
    expectedVersion: number | null,
    recovery: Omit<VmRecovery, 'version'>,
  ): Promise<VmRecord>;
}

export interface IncidentStore {
  /** Creates the incident; if it exists, returns it with created=false (repeat-safe). */
  create(incident: Omit<IncidentRecord, 'version'>): Promise<{ created: boolean; incident: IncidentRecord }>;
  get(incidentId: string): Promise<IncidentRecord | null>;
  /** Newest first; open ones only when asked; with `since`, only those opened at or after it. */
  list(filter?: {
    siteId?: string;
    openOnly?: boolean;
    since?: number;
    limit?: number;
  }): Promise<IncidentRecord[]>;
  /** Conditional on the version read; throws ConcurrentUpdateError when it moved. */
  update(
    incidentId: string,
    expectedVersion: number,
    patch: Partial<
      Pick<
        IncidentRecord,
        | 'outcome'
        | 'executionArn'
        | 'fencedAt'
        | 'closedAt'
        | 'operatorTaskToken'
        | 'operatorAnswer'
        | 'operatorWaitEndedAt'
        | 'downtime'
      >
    >,
  ): Promise<IncidentRecord>;
  /** Appends to the timeline; an event with the same (at, kind) is stored once. */
  appendEvent(event: IncidentEvent): Promise<void>;
  /** The timeline in time order; with `fromAt`, only events at or after that instant (a watcher's tail). */
  listEvents(incidentId: string, options?: { readonly fromAt?: number }): Promise<IncidentEvent[]>;
  /**
   * The events of every incident in feed order (at, incidentId, kind, key), from `fromAt` (inclusive) or
   * strictly after `after`, at most `limit`: the operator's fleet-wide feed. Events stored before the feed
   * existed are not in it.
   */
  listFeed(options: {
    readonly fromAt?: number;
    readonly after?: FeedPosition;
    readonly limit: number;
  }): Promise<IncidentEvent[]>;
}

export interface CommandStore {
  /** Stores a command with its task token; repeat-safe by commandId. */
  create(command: Omit<CommandRecord, 'status' | 'deliveredAt' | 'result'>): Promise<{ created: boolean }>;
  /**
   * Points an existing command at a new task token (Step Functions ran the dispatching task again, so the
   * old token is dead) and returns it; null if no such command exists.
   */
  adoptTaskToken(siteId: string, commandId: string, taskToken: string): Promise<CommandRecord | null>;
  /** Commands for this relay still pending or delivered and not finished. */
  listOpen(siteId: string, relayId: string): Promise<CommandRecord[]>;
  listForIncident(siteId: string, incidentId: string): Promise<CommandRecord[]>;
  markDelivered(siteId: string, commandId: string, at: number): Promise<void>;
  /**
   * Records the result `relayId` reported. Returns the record the first time (its task token must then be
   * completed) and null for a repeated or unknown result, or one from a relay the command was not sent
   * to, which changes nothing.
   */
  complete(
    siteId: string,
    commandId: string,
    result: CommandResult,
    relayId: string,
  ): Promise<CommandRecord | null>;
}

// ---------------------------------------------------------------- workflow

export interface WorkflowPort {
  /**
   * Starts the failover execution named after the incident. Starting the same incident again returns the
   * existing execution (StartExecution is idempotent for the same name and input).
   */
  startIncident(input: IncidentInput): Promise<{ executionArn: string }>;
  /**
   * Starts an execution that resumes an incident's failover once its first execution stopped waiting for
   * an operator (a late confirmation, or the host heard in a new boot then). Named after the incident and
   * the resume point: starting it again returns the same execution.
   */
  resumeIncident(input: IncidentInput, resume: WorkflowResume): Promise<{ executionArn: string }>;
  /** Completes a callback task (relay result, operator decision). */
  sendTaskSuccess(taskToken: string, output: unknown): Promise<void>;
  sendTaskFailure(taskToken: string, error: string, cause: string): Promise<void>;
}

/** Operational metrics (Powertools in AWS, an in-memory recorder in tests). */
export interface MetricsPort {
  count(name: string, value?: number, dimensions?: Record<string, string>): void;
  seconds(name: string, value: number, dimensions?: Record<string, string>): void;
}

/** Everything a use case may need; built once per process by a factory. */
export interface Ports {
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly sites: SiteStore;
  readonly relays: RelayStore;
  readonly hosts: HostStore;
  readonly vms: VmStore;
  readonly incidents: IncidentStore;
  readonly commands: CommandStore;
  readonly workflow: WorkflowPort;
  readonly metrics: MetricsPort;
}
