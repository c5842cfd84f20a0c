import * as z from 'zod';
import { IdSchema } from './relay-protocol';

/**
 * A simulator scenario: a site, its hosts and VMs, the faults to inject and when. Times are milliseconds
 * from the scenario's start. The same schema reads JSON and YAML files.
 */

const ms = z.number().int().nonnegative();
const positiveMs = z.number().int().positive();

/** Timing of the simulated site; every duration not given derives from `hostHeartbeatMs`. */
export const ScenarioTimingSchema = z
  .strictObject({
    hostHeartbeatMs: positiveMs.default(200),
    missedHeartbeats: z.number().int().positive().default(3),
    relayReportMs: positiveMs.default(500),
    incidentReportMs: positiveMs.optional(),
    relaySilentAfterMs: positiveMs.optional(),
    confirmSilenceMs: positiveMs.optional(),
    fenceAttemptTimeoutMs: positiveMs.optional(),
    fenceDeadlineMs: positiveMs.optional(),
    startTimeoutMs: positiveMs.optional(),
    /** How long a failover waits for an operator (HaPolicy.operatorTimeoutMs; a day when left out). */
    operatorTimeoutMs: positiveMs.optional(),
    /** How often the relay polls a BMC's power status after a power-off. */
    bmcPollMs: positiveMs.optional(),
    /** How long a simulated VM takes to boot once started. */
    vmBootMs: ms.optional(),
  })
  .default({ hostHeartbeatMs: 200, missedHeartbeats: 3, relayReportMs: 500 });
export type ScenarioTiming = z.infer<typeof ScenarioTimingSchema>;

/** Policy of the control plane for the scenario's clusters. */
export const ScenarioPolicySchema = z
  .strictObject({
    cpuOvercommit: z.number().positive().max(16).default(1),
    reserveMiB: z.number().int().nonnegative().default(0),
    reserveCpus: z.number().int().nonnegative().default(0),
    massSilenceShare: z.number().gt(0).max(1).default(0.5),
    fencingEnabled: z.boolean().default(true),
    maxStartAttempts: z.number().int().positive().optional(),
  })
  .default({ cpuOvercommit: 1, reserveMiB: 0, reserveCpus: 0, massSilenceShare: 0.5, fencingEnabled: true });
export type ScenarioPolicy = z.infer<typeof ScenarioPolicySchema>;

/**
 * How a site's LAN (agents ↔ relays) treats each message: a one-way delay of `delayMs` plus up to
 * `jitterMs` more (uniform, so messages overtake each other: reordering), and each transmission lost with
 * probability `lossPct` %. Heartbeats and the relays' requests are datagrams (UDP): a lost one is gone.
 * Inventories, definitions, start requests and their answers go over HTTP (TCP): a lost transmission is
 * resent after a retransmission timeout (200 ms, doubling), so it arrives late, and only a message that
 * cannot get through within the transport's HTTP timeout (3 s) is dropped.
 */
export const ScenarioLanSchema = z.strictObject({
  delayMs: ms.max(60_000).default(0),
  jitterMs: ms.max(60_000).default(0),
  lossPct: z.number().min(0).max(100).default(0),
});
export type ScenarioLan = z.infer<typeof ScenarioLanSchema>;

export const ScenarioSiteSchema = z.strictObject({
  id: IdSchema,
  relays: z.array(IdSchema).min(1),
  /** The site's LAN conditions from the start (and after every `lan-heal`); a perfect LAN when left out. */
  lan: ScenarioLanSchema.optional(),
  /**
   * How far each listed relay's clock is off the true time, in ms (positive: ahead). The relay's every
   * timestamp and deadline reads its own clock; agents and the control plane keep the true time. Beyond
   * the LAN protocol's 10 s window the relay's LAN messages, and the agents' to it, are refused as stale.
   */
  relayClockSkewMs: z.record(IdSchema, z.number().int().min(-3_600_000).max(3_600_000)).optional(),
});

export const ScenarioHostSchema = z.strictObject({
  id: IdSchema,
  site: IdSchema,
  cluster: IdSchema,
  cpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  maintenance: z.boolean().default(false),
  /** How long the host's BMC takes to answer each call (power status, power-off); 0 when left out. */
  bmcLatencyMs: ms.max(600_000).optional(),
});

export const ScenarioVmSchema = z.strictObject({
  id: IdSchema,
  host: IdSchema,
  cpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  ha: z.boolean().default(false),
  priority: z.enum(['high', 'medium', 'low']).default('medium'),
  antiAffinity: IdSchema.optional(),
  /** How long this VM takes to boot once started; `timing.vmBootMs` when left out. */
  bootMs: ms.max(600_000).optional(),
});

const at = { atMs: ms };
// Generic so that each fault keeps its literal `type`: with `type: string` the union cannot be narrowed.
const hostFault = <T extends string>(type: T) =>
  z.strictObject({ ...at, type: z.literal(type), host: IdSchema });

/** Every fault the simulator can inject, each with its target. */
export const ScenarioFaultSchema = z.discriminatedUnion('type', [
  hostFault('host-crash'),
  hostFault('host-isolate'),
  hostFault('host-recover'),
  hostFault('bmc-unreachable'),
  hostFault('bmc-ignores-off'),
  hostFault('power-loss'),
  hostFault('operator-confirms-off'),
  z.strictObject({ ...at, type: z.literal('relay-down'), relay: IdSchema }),
  z.strictObject({ ...at, type: z.literal('relay-up'), relay: IdSchema }),
  z.strictObject({ ...at, type: z.literal('uplink-down'), site: IdSchema }),
  z.strictObject({ ...at, type: z.literal('uplink-up'), site: IdSchema }),
  z.strictObject({ ...at, type: z.literal('vm-start-fails'), vm: IdSchema, host: IdSchema }),
  // The VM's process dies where it runs (libvirt: shut-off, reason crashed); its host stays healthy.
  z.strictObject({ ...at, type: z.literal('vm-crash'), vm: IdSchema }),
  // The VM's guest shuts itself down cleanly (shut-off, reason shutdown): down on purpose, left down.
  z.strictObject({ ...at, type: z.literal('vm-guest-shutdown'), vm: IdSchema }),
  // The site's LAN degrades (a congested or flapping switch): these conditions replace its own until
  // `lan-heal` gives them back.
  z.strictObject({ ...at, type: z.literal('lan-degrade'), site: IdSchema, ...ScenarioLanSchema.shape }),
  z.strictObject({ ...at, type: z.literal('lan-heal'), site: IdSchema }),
]);
export type ScenarioFault = z.infer<typeof ScenarioFaultSchema>;
export type ScenarioFaultType = ScenarioFault['type'];

export const ScenarioSchema = z
  .strictObject({
    name: z.string().min(1).max(200),
    timing: ScenarioTimingSchema,
    policy: ScenarioPolicySchema,
    sites: z.array(ScenarioSiteSchema).min(1),
    hosts: z.array(ScenarioHostSchema).min(1),
    vms: z.array(ScenarioVmSchema).default([]),
    faults: z.array(ScenarioFaultSchema).default([]),
    durationMs: positiveMs.max(3_600_000),
  })
  .superRefine((s, ctx) => {
    const unique = (ids: readonly string[], path: string, what: string) => {
      const seen = new Set<string>();
      ids.forEach((id, i) => {
        if (seen.has(id))
          ctx.addIssue({ code: 'custom', path: [path, i, 'id'], message: `duplicate ${what} id "${id}"` });
        seen.add(id);
      });
    };
    unique(
      s.sites.map((x) => x.id),
      'sites',
      'site',
    );
    unique(
      s.hosts.map((x) => x.id),
      'hosts',
      'host',
    );
    unique(
      s.vms.map((x) => x.id),
      'vms',
      'VM',
    );
    const relays = new Set<string>();
    s.sites.forEach((site, i) => {
      site.relays.forEach((r, j) => {
        if (relays.has(r))
          ctx.addIssue({
            code: 'custom',
            path: ['sites', i, 'relays', j],
            message: `relay "${r}" is listed twice`,
          });
        relays.add(r);
      });
    });
    s.sites.forEach((site, i) => {
      for (const r of Object.keys(site.relayClockSkewMs ?? {})) {
        if (!site.relays.includes(r))
          ctx.addIssue({
            code: 'custom',
            path: ['sites', i, 'relayClockSkewMs', r],
            message: `"${r}" is not a relay of site "${site.id}"`,
          });
      }
    });
    const sites = new Set(s.sites.map((x) => x.id));
    const hosts = new Map(s.hosts.map((h) => [h.id, h]));
    s.hosts.forEach((h, i) => {
      if (!sites.has(h.site))
        ctx.addIssue({ code: 'custom', path: ['hosts', i, 'site'], message: `unknown site "${h.site}"` });
    });
    const vms = new Set(s.vms.map((v) => v.id));
    s.vms.forEach((v, i) => {
      if (!hosts.has(v.host))
        ctx.addIssue({ code: 'custom', path: ['vms', i, 'host'], message: `unknown host "${v.host}"` });
    });
    s.faults.forEach((f, i) => {
      if (f.atMs > s.durationMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['faults', i, 'atMs'],
          message: `after the scenario ends (durationMs ${s.durationMs})`,
        });
      }
      if ('host' in f && !hosts.has(f.host)) {
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'host'], message: `unknown host "${f.host}"` });
      }
      if ('relay' in f && !relays.has(f.relay)) {
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'relay'], message: `unknown relay "${f.relay}"` });
      }
      if ('site' in f && !sites.has(f.site)) {
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'site'], message: `unknown site "${f.site}"` });
      }
      if ('vm' in f && !vms.has(f.vm))
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'vm'], message: `unknown VM "${f.vm}"` });
    });
  });
export type Scenario = z.infer<typeof ScenarioSchema>;

/** Outcomes the report gives each incident. */
export const ReportOutcomeSchema = z.enum([
  'recovered',
  'partially-recovered',
  'false-alarm',
  'fencing-suppressed',
  'awaiting-operator',
  'in-progress',
]);

/**
 * Rules the simulator checks continuously: the safety rules, and two availability rules (`ha-vm-down`: an
 * HA VM left down past its bound with nothing to excuse it; `false-recovered`: an incident closed
 * `recovered` while one of its HA VMs ran nowhere). README, "Local mode and the simulator", has the bounds.
 */
export const ViolationRuleSchema = z.enum([
  'split-brain',
  'restart-before-fence',
  'over-capacity',
  'priority-order',
  'non-ha-restarted',
  'ha-vm-down',
  'false-recovered',
]);
export type ViolationRule = z.infer<typeof ViolationRuleSchema>;

/** The report a scenario run writes. */
export const ScenarioReportSchema = z.strictObject({
  scenario: z.string(),
  seed: z.number().int().optional(),
  hosts: z.record(z.string(), z.strictObject({ power: z.enum(['on', 'off']), state: z.string() })),
  vms: z.record(
    z.string(),
    z.strictObject({
      runningOn: z.array(z.string()),
      /** Ms of scenario time the VM ran nowhere (from its first fault to the end, whatever the reason). */
      downMs: z.number().nonnegative(),
    }),
  ),
  incidents: z.array(
    z.strictObject({
      host: z.string(),
      /** `vm`: one VM's incident (VM-level HA: it stopped on a healthy host); absent: a host's. */
      kind: z.enum(['host', 'vm']).optional(),
      /** The VM of a `vm` incident. */
      vm: z.string().optional(),
      outcome: ReportOutcomeSchema,
      openedAtMs: z.number(),
      fencedAtMs: z.number().nullable(),
      /** When nothing more happened by itself: closed, or left waiting for an operator; null if neither. */
      settledAtMs: z.number().nullable(),
      starts: z.array(z.strictObject({ vm: z.string(), host: z.string(), atMs: z.number() })),
      unplaced: z.array(z.string()),
    }),
  ),
  violations: z.array(z.strictObject({ rule: ViolationRuleSchema, detail: z.string() })),
});
export type ScenarioReport = z.infer<typeof ScenarioReportSchema>;
