import * as z from 'zod';

/**
 * Wire protocol between a site relay and the control plane (POST /v1/reports), v2: a report carries each
 * host's liveness and inventory digest, and the full inventory only of hosts whose digest changed or that
 * the control plane asked for. The control plane still answers v1 relays (every host's full inventory in
 * every report) during an upgrade. Documented in docs/protocol.md; this module is its single source of truth.
 */
export const PROTOCOL_VERSION = 2 as const;

/** The version before: still answered, so that relays can be upgraded after the control plane. */
export const PREVIOUS_PROTOCOL_VERSION = 1 as const;

/** Largest report body accepted, in bytes. */
export const MAX_REPORT_BYTES = 256 * 1024;

/**
 * Largest report a relay builds: room is left under MAX_REPORT_BYTES for what a string's length does not
 * count (multi-byte characters). Inventories that do not fit go in the reports that follow.
 */
export const REPORT_BUDGET_BYTES = 224 * 1024;

/** Most hosts one v2 report may carry: a steady host entry is under 100 bytes. */
export const MAX_REPORT_HOSTS = 2500;

const id = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'letters, digits, ".", "_" and "-" only, starting with a letter or digit',
  );

/** Identifier of a site, relay, host, VM or cluster. */
export const IdSchema = id;

/**
 * Identifier composed by the control plane from other ids (incidents, commands): the parts are joined
 * with ':', which plain ids cannot contain, so two different compositions never collide.
 */
export const RefSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits, ".", "_", ":" and "-" only');
const ref = RefSchema;

const epochMs = z.number().int().nonnegative();

/** Most fence levels a host may have (Pacemaker's topology allows 9). */
export const MAX_FENCE_LEVELS = 9;

export const VmPowerStateSchema = z.enum(['running', 'paused', 'shut-off', 'crashed']);
export type VmPowerState = z.infer<typeof VmPowerStateSchema>;

/**
 * Why a VM is in its state, as libvirt says it, in lower-case words joined by '-'. What the agent sends
 * (docs/protocol.md): for `shut-off`, `shutdown` (its guest shut down), `destroyed` (an operator stopped it),
 * `crashed`, `failed` (failed to start), `saved`, `migrated`, `from-snapshot`, `daemon`, `unknown`; for
 * `running`, only `in-shutdown` (the guest is shutting down); for `paused`, `pmsuspended` and libvirt's pause reasons
 * (`user`, `io-error`, `migration`…). Absent from agents that predate it.
 */
export const VmStateReasonSchema = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[a-z][a-z-]*$/, 'lower-case words joined by "-"');

/** A VM as the host agent sees it in libvirt. */
export const ObservedVmSchema = z.strictObject({
  id,
  cpus: z.number().int().positive().max(1024),
  memoryMiB: z
    .number()
    .int()
    .positive()
    .max(16 * 1024 * 1024),
  state: VmPowerStateSchema,
  reason: VmStateReasonSchema.optional(),
  /**
   * libvirt would start the VM by itself when its host boots (`virsh autostart`): for an HA VM that is a
   * misconfiguration (a fenced host that boots again would start a second copy). Absent: not known.
   */
  autostart: z.boolean().optional(),
});
export type ObservedVm = z.infer<typeof ObservedVmSchema>;

/** One host as a relay last heard it, with its whole inventory: a v1 report's host, and ingest's working form. */
export const HostObservationSchema = z.strictObject({
  hostId: id,
  cluster: id,
  /** Changes at every boot: tells a rebooted host from one that never went away. */
  bootId: z.string().min(1).max(64),
  /** Milliseconds since this relay last heard the host's agent, when the report was sent. */
  lastHeardMsAgo: z.number().int().nonnegative(),
  cpus: z.number().int().positive().max(4096),
  memoryMiB: z
    .number()
    .int()
    .positive()
    .max(64 * 1024 * 1024),
  vms: z.array(ObservedVmSchema).max(1000),
  /**
   * When the host's agent took this inventory (the agent's clock, ms since the epoch). A site's relays may
   * hold inventories of different ages (one missed a push, or got two out of order): the control plane
   * keeps, within a boot, the newest it has seen (app/ingest/inventory.ts). Absent from older relays.
   */
  takenAt: z.number().int().nonnegative().optional(),
  /**
   * The relay hears the host (its heartbeats count for liveness, `bootId` is the boot they announce) but
   * holds no inventory of what it runs now: a reboot or a change whose inventory push it missed, asked for
   * again. `vms` is then empty and means nothing; the control plane takes the host's liveness only, and its
   * VMs and boot from a fresh inventory (this relay's next report, or the other relay's).
   */
  stale: z.literal(true).optional(),
});
export type HostObservation = z.infer<typeof HostObservationSchema>;

/** A host's inventory in a v2 report: what the relay holds of it, the relay's view of liveness apart. */
export const HostInventorySchema = HostObservationSchema.pick({
  cluster: true,
  bootId: true,
  cpus: true,
  memoryMiB: true,
  vms: true,
  takenAt: true,
});
export type HostInventory = z.infer<typeof HostInventorySchema>;

/** Hex digits of an inventory digest on the relay protocol: 128 bits. */
export const REPORT_DIGEST_HEX = 32;

/**
 * A host's inventory digest on the relay protocol: the first 32 hex digits of the inventory digest its
 * agent announces on the LAN (site/lan-protocol.ts inventoryDigest). Opaque to the control plane, which
 * keeps the one it took each host's inventory with and compares: both relays of a site hear the same
 * agent, so they report the same digest for the same inventory.
 */
export const ReportDigestSchema = z
  .string()
  .regex(new RegExp(`^[0-9a-f]{${REPORT_DIGEST_HEX}}$`), `${REPORT_DIGEST_HEX} lower-case hex digits`);

/**
 * One host in a v2 report: the relay's view of its liveness and the digest of what it runs now, in a few
 * tens of bytes; `inventory` only when the relay holds that inventory and the control plane has not taken
 * it from this relay yet, or asked for it (`inventoryWanted`). A digest without an inventory that is not
 * the one the control plane holds counts for liveness only, until the inventory comes.
 */
export const HostReportSchema = z.strictObject({
  hostId: id,
  lastHeardMsAgo: HostObservationSchema.shape.lastHeardMsAgo,
  digest: ReportDigestSchema,
  inventory: HostInventorySchema.optional(),
});
export type HostReport = z.infer<typeof HostReportSchema>;

/** Another relay of the site as this relay hears it on the LAN (relay heartbeats, LAN protocol). */
export const PeerRelaySchema = z.strictObject({
  relayId: id,
  /** Milliseconds since this relay last heard that relay on the LAN, when the report was sent. */
  lastHeardMsAgo: z.number().int().nonnegative(),
});
export type PeerRelay = z.infer<typeof PeerRelaySchema>;

/**
 * How much older than the newest seen an inventory of the same boot may be and still be taken for one out
 * of order (and dropped). Out-of-order inventories are seconds old; an agent whose clock was stepped back
 * further than this is believed again rather than ignored until its clock catches up.
 */
export const INVENTORY_REORDER_WINDOW_MS = 60_000;

/** Outcome of a command the relay carried out. */
export const CommandResultSchema = z.strictObject({
  commandId: ref,
  incidentId: ref,
  outcome: z.enum(['succeeded', 'failed']),
  /** For a fence: the power status read back from the BMC after the power-off. */
  powerState: z.enum(['off', 'on', 'unknown']).optional(),
  /**
   * For a fence: the fence level (1-based, in the relay's configured order) whose power status was read
   * back, and its driver. Absent from relays that predate fence levels.
   */
  level: z.number().int().positive().max(MAX_FENCE_LEVELS).optional(),
  driver: z.string().min(1).max(64).optional(),
  /**
   * Why the relay did not carry the command out, when it refused it on purpose: `stale-boot` for a fence
   * whose `bootId` is not the boot the relay hears alive (outcome `failed`, no power-off sent). Absent
   * otherwise, and from relays that predate it.
   */
  refused: z.enum(['stale-boot']).optional(),
  detail: z.string().max(1000).optional(),
  finishedAt: epochMs,
});
export type CommandResult = z.infer<typeof CommandResultSchema>;

/** One fence level of a host as a readiness check found it (power read, nothing changed). */
export const FenceLevelReadinessSchema = z.strictObject({
  level: z.number().int().positive().max(MAX_FENCE_LEVELS),
  driver: z.string().min(1).max(64),
  /** The level answered a power-status read. */
  ok: z.boolean(),
  power: z.enum(['on', 'off']).nullable(),
  /** Why the level did not answer (redacted by the relay); null when ok. */
  error: z.string().max(500).nullable(),
});
export type FenceLevelReadiness = z.infer<typeof FenceLevelReadinessSchema>;

/**
 * Whether a relay could fence a host right now: every level's status read. Sent when it changes (and once
 * after a relay starts); the control plane keeps the latest per host and relay.
 */
export const FenceReadinessSchema = z.strictObject({
  hostId: id,
  /** The relay's clock when the check finished. */
  checkedAt: epochMs,
  /** At least one level answered: the relay can fence the host. No level configured is not ok. */
  ok: z.boolean(),
  levels: z.array(FenceLevelReadinessSchema).max(MAX_FENCE_LEVELS),
});
export type FenceReadiness = z.infer<typeof FenceReadinessSchema>;

/** Issues at each repeated host of a report, and at each VM a host lists twice (`vmsPath` of host h). */
function checkRepeats(
  hosts: readonly { readonly hostId: string; readonly vms?: readonly ObservedVm[] | undefined }[],
  vmsPath: (h: number) => (string | number)[],
  ctx: z.RefinementCtx,
): void {
  const hostAt = new Map<string, number>();
  hosts.forEach((host, h) => {
    const first = hostAt.get(host.hostId);
    if (first === undefined) hostAt.set(host.hostId, h);
    else {
      ctx.addIssue({
        code: 'custom',
        path: ['hosts', h, 'hostId'],
        message: `host ${host.hostId} is reported twice (first at hosts.${first})`,
      });
    }
    const vmAt = new Map<string, number>();
    (host.vms ?? []).forEach((vm, v) => {
      const firstVm = vmAt.get(vm.id);
      if (firstVm === undefined) vmAt.set(vm.id, v);
      else {
        ctx.addIssue({
          code: 'custom',
          path: [...vmsPath(h), v, 'id'],
          message: `VM ${vm.id} is listed twice by host ${host.hostId} (first at ${[...vmsPath(h), firstVm].join('.')})`,
        });
      }
    });
  });
}

/** What every report carries besides its hosts. */
const reportHeader = {
  siteId: id,
  relayId: id,
  /** Strictly increasing per relay; a report whose seq is not above the last accepted one is refused. */
  seq: z.number().int().nonnegative(),
  sentAt: epochMs,
  results: z.array(CommandResultSchema).max(1000).default([]),
  /** Fence readiness of hosts whose readiness changed since the relay last had it accepted. Optional. */
  fenceReadiness: z.array(FenceReadinessSchema).max(500).optional(),
};

/**
 * A v1 relay's batched report of its site: every host with its whole inventory. Each host appears once, and
 * each VM once in its host's list: a report with a repeated host or a VM listed twice by one host is refused
 * whole (its usage would count twice), with an issue at each repeat (`hosts.1.hostId`, `hosts.0.vms.3.id`)
 * naming the first. The same VM on two hosts is allowed: defined on both, or running on both, which is the
 * split brain ingest reports.
 */
export const RelayReportSchema = z
  .strictObject({
    protocol: z.literal(PREVIOUS_PROTOCOL_VERSION),
    ...reportHeader,
    hosts: z.array(HostObservationSchema).max(500),
  })
  .superRefine((report, ctx) => checkRepeats(report.hosts, (h) => ['hosts', h, 'vms'], ctx));
/** A v1 report (the name is v1's, from before v2; code that builds one for tests and warm-ups uses it). */
export type RelayReport = z.infer<typeof RelayReportSchema>;

/**
 * A v2 relay's batched report: every host it knows with its liveness and inventory digest, the inventory
 * only where the control plane lacks it, and the site's other relays as it hears them on the LAN.
 * Repeats are refused as in v1 (`hosts.0.inventory.vms.3.id`).
 */
export const RelayReportV2Schema = z
  .strictObject({
    protocol: z.literal(PROTOCOL_VERSION),
    ...reportHeader,
    hosts: z.array(HostReportSchema).max(MAX_REPORT_HOSTS),
    /**
     * The site's other relays this relay is configured to hear on the LAN, each with how long ago it last
     * heard it; one not heard since this relay started is left out. Absent: it is configured with none.
     * Relays that hear each other take turns reporting, and a relay its peers no longer hear is taken for
     * silent at once (docs/protocol.md "Relays take turns").
     */
    relays: z.array(PeerRelaySchema).max(16).optional(),
  })
  .superRefine((report, ctx) =>
    checkRepeats(
      report.hosts.map((h) => ({ hostId: h.hostId, vms: h.inventory?.vms })),
      (h) => ['hosts', h, 'inventory', 'vms'],
      ctx,
    ),
  );
export type RelayReportV2 = z.infer<typeof RelayReportV2Schema>;

/** A report of either version the control plane answers; `protocol` tells them apart. */
export const AnyRelayReportSchema = z.discriminatedUnion('protocol', [
  RelayReportV2Schema,
  RelayReportSchema,
]);
export type AnyRelayReport = z.infer<typeof AnyRelayReportSchema>;

/** Power a host off through its BMC and read the power status back. */
export const FenceCommandSchema = z.strictObject({
  kind: z.literal('fence'),
  commandId: ref,
  incidentId: ref,
  hostId: id,
  /**
   * The boot to power off (the one that went silent). A relay that hears the host alive in another boot
   * refuses before any power-off, with the result's `refused: 'stale-boot'`: the boot the fence was for
   * has ended, and powering off the new one would take down a healthy host. Absent from control planes
   * that predate it: the fence is then carried out whatever boot runs.
   */
  bootId: HostObservationSchema.shape.bootId.optional(),
  issuedAt: epochMs,
  /** After this the relay must not start the command any more; the cloud has moved on. */
  notAfter: epochMs,
});

/** Start a VM on a host through that host's agent. */
export const StartVmCommandSchema = z.strictObject({
  kind: z.literal('start-vm'),
  commandId: ref,
  incidentId: ref,
  hostId: id,
  vm: z.strictObject({ id, cpus: z.number().int().positive(), memoryMiB: z.number().int().positive() }),
  issuedAt: epochMs,
  notAfter: epochMs,
});

export const RelayCommandSchema = z.discriminatedUnion('kind', [FenceCommandSchema, StartVmCommandSchema]);
export type RelayCommand = z.infer<typeof RelayCommandSchema>;
export type FenceCommand = z.infer<typeof FenceCommandSchema>;
export type StartVmCommand = z.infer<typeof StartVmCommandSchema>;

/** The control plane's answer to an accepted report, in the report's protocol version. */
export const ReportResponseSchema = z.strictObject({
  protocol: z.union([z.literal(PROTOCOL_VERSION), z.literal(PREVIOUS_PROTOCOL_VERSION)]),
  acceptedSeq: z.number().int().nonnegative(),
  commands: z.array(RelayCommandSchema),
  /** When to send the next report at the latest; shorter while the site has an open incident. */
  nextReportInMs: z.number().int().positive(),
  /**
   * v2: hosts whose inventory the control plane wants with the next report: the digest reported is not the
   * one it holds (or it holds none), or the host is heard again after an incident called it silent.
   * Absent when none.
   */
  inventoryWanted: z.array(id).max(MAX_REPORT_HOSTS).optional(),
});
export type ReportResponse = z.infer<typeof ReportResponseSchema>;

/** Error body of every 4xx/5xx: a stable machine-readable code and a sentence for people. */
export const ErrorBodySchema = z.strictObject({
  error: z.string(),
  message: z.string(),
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
