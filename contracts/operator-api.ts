import * as z from 'zod';
import { HaPolicyInputSchema, HaPolicySchema } from './policy';
import {
  FenceLevelReadinessSchema,
  IdSchema,
  RefSchema,
  VmPowerStateSchema,
  VmStateReasonSchema,
} from './relay-protocol';

/**
 * Operator API v1 (IAM/SigV4 authorised). The route table is data so that the CDK API construct,
 * the handler's router and the local HTTP endpoint all serve exactly the same routes.
 */
export const OPERATOR_ROUTES = [
  { name: 'listSites', method: 'GET', path: '/v1/sites' },
  { name: 'listHosts', method: 'GET', path: '/v1/sites/{siteId}/hosts' },
  { name: 'listVms', method: 'GET', path: '/v1/sites/{siteId}/vms' },
  { name: 'capacityReport', method: 'GET', path: '/v1/sites/{siteId}/capacity' },
  { name: 'setVmMetadata', method: 'PUT', path: '/v1/sites/{siteId}/vms/{vmId}' },
  {
    name: 'setVmDownOnPurpose',
    method: 'PUT',
    path: '/v1/sites/{siteId}/vms/{vmId}/down-on-purpose',
  },
  { name: 'setMaintenance', method: 'PUT', path: '/v1/sites/{siteId}/hosts/{hostId}/maintenance' },
  { name: 'setFencing', method: 'PUT', path: '/v1/sites/{siteId}/clusters/{clusterId}/fencing' },
  {
    name: 'getClusterPolicy',
    method: 'GET',
    path: '/v1/sites/{siteId}/clusters/{clusterId}/policy',
  },
  {
    name: 'setClusterPolicy',
    method: 'PUT',
    path: '/v1/sites/{siteId}/clusters/{clusterId}/policy',
  },
  { name: 'listRelays', method: 'GET', path: '/v1/sites/{siteId}/relays' },
  { name: 'enrollRelay', method: 'POST', path: '/v1/sites/{siteId}/relays' },
  { name: 'revokeRelay', method: 'DELETE', path: '/v1/sites/{siteId}/relays/{relayId}' },
  { name: 'siteDowntime', method: 'GET', path: '/v1/sites/{siteId}/downtime' },
  { name: 'vmDowntime', method: 'GET', path: '/v1/sites/{siteId}/vms/{vmId}/downtime' },
  { name: 'listIncidents', method: 'GET', path: '/v1/incidents' },
  { name: 'getIncident', method: 'GET', path: '/v1/incidents/{incidentId}' },
  { name: 'confirmPowerOff', method: 'POST', path: '/v1/incidents/{incidentId}/confirm-power-off' },
  { name: 'listEvents', method: 'GET', path: '/v1/events' },
] as const;

/** The methods that only read: what the stack's read-only policy may invoke. */
export const READ_ONLY_METHODS: readonly string[] = ['GET'];

/**
 * The stack's outputs (CloudFormation output keys, stable and exported nowhere), which the CLI reads to
 * find a deployment: `aws cloudformation describe-stacks --stack-name Halo`.
 */
export const STACK_OUTPUTS = {
  /** Base URL of the HTTP API (operator routes and the relay report route), ending in `/`. */
  apiUrl: 'ApiUrl',
  alarmTopicArn: 'AlarmTopicArn',
  stateMachineArn: 'StateMachineArn',
  tableName: 'TableName',
  dashboardUrl: 'DashboardUrl',
  /** IAM managed policy allowing execute-api:Invoke on every GET operator route. */
  readOnlyPolicyArn: 'ReadOnlyPolicyArn',
  /** IAM managed policy allowing execute-api:Invoke on every operator route. */
  operatorPolicyArn: 'OperatorPolicyArn',
} as const;

/**
 * Local mode (`npm start -- --serve`): operator routes need `Authorization: Bearer <token>` with the
 * token printed at start and stored (mode 0600) in `$XDG_CONFIG_HOME/halo/local-token` (by default
 * `~/.config/halo/local-token`), or the file `HALO_LOCAL_TOKEN_FILE` names. Bodies must be
 * `Content-Type: application/json` (415), the `Host` must be loopback (421) and an `Origin`, if any, the
 * endpoint's own (403).
 */
export const LOCAL_TOKEN = {
  /** Environment variable naming the token file, for the server and the CLI alike. */
  fileEnv: 'HALO_LOCAL_TOKEN_FILE',
  /** The file under the user's configuration directory (XDG_CONFIG_HOME, else ~/.config). */
  relativePath: 'halo/local-token',
} as const;

export type OperatorRouteName = (typeof OPERATOR_ROUTES)[number]['name'];

/** The relay ingest route (relay bearer credential, not IAM). */
export const REPORT_ROUTE = { method: 'POST', path: '/v1/reports' } as const;

export const SetVmMetadataBodySchema = z.strictObject({
  ha: z.boolean(),
  priority: z.enum(['high', 'medium', 'low']).default('medium'),
  antiAffinity: IdSchema.nullable().default(null),
});

export const SetMaintenanceBodySchema = z.strictObject({ enabled: z.boolean() });

/**
 * `enabled: true`: the HA VM, which is down, stays down (VM-level HA stops retrying it) until it runs again;
 * `false` takes the mark back, and a VM still down goes back on the retry list.
 */
export const SetDownOnPurposeBodySchema = z.strictObject({ enabled: z.boolean() });

export const SetFencingBodySchema = z.strictObject({ enabled: z.boolean() });

export const EnrollRelayBodySchema = z.strictObject({ relayId: IdSchema });

export const ConfirmPowerOffBodySchema = z.strictObject({
  hostId: IdSchema,
  /** Who confirms; recorded in the incident's evidence. Defaults to the caller's IAM identity. */
  operator: z.string().min(1).max(200).optional(),
});

/**
 * An instant in a query string: epoch milliseconds (`1767225600000`) or an ISO 8601 date-time
 * (`2026-01-01T00:00:00Z`, `2026-01-01`); parsed to epoch milliseconds.
 */
export const InstantQuerySchema = z.string().transform((text, ctx) => {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    ctx.addIssue({ code: 'custom', message: `not epoch milliseconds or an ISO 8601 date: ${text}` });
    return z.NEVER;
  }
  return ms;
});

/** `GET /v1/incidents?siteId=&open=&since=&limit=`: newest first; `since`: opened at or after it. */
export const ListIncidentsQuerySchema = z.strictObject({
  siteId: IdSchema.optional(),
  since: InstantQuerySchema.optional(),
  open: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().positive().max(200).optional(),
});

const epochMs = z.number().int().nonnegative();

/** One relay's latest fence readiness of a host: `fenceReadiness.{relayId}` of each listed host. */
export const HostFenceReadinessSchema = z.strictObject({
  /** At least one level answered: this relay can fence the host. */
  ok: z.boolean(),
  /** The relay's clock when the check that found this state finished. */
  checkedAt: epochMs,
  /** When the control plane recorded it. */
  reportedAt: epochMs,
  levels: z.array(FenceLevelReadinessSchema),
});

/**
 * The verdict drawn from every (unrevoked) relay's readiness: `fenceable` true when any relay can fence
 * the host, false when every relay that checked cannot (`reason` names each level's error), null when no
 * relay has checked (relays older than fence readiness): unknown, not broken.
 */
export const HostFencingSchema = z.strictObject({
  fenceable: z.boolean().nullable(),
  reason: z.string().nullable(),
});

/**
 * The fence part of each host `GET /v1/sites/{siteId}/hosts` lists; the other fields are the host record
 * (app/ports.ts HostRecord), hence not strict.
 */
export const HostFenceViewSchema = z.object({
  hostId: IdSchema,
  fenceReadiness: z.record(IdSchema, HostFenceReadinessSchema),
  fencing: HostFencingSchema,
});

/**
 * Each VM `GET /v1/sites/{siteId}/vms` lists, as far as running and defined go: `hostId` is where it runs
 * while `state` is `running` or `paused` (at most one host), else where it was last seen (or last ran,
 * `down`); `definedOn` every host whose inventory lists it in any state (libvirt definitions), and of those
 * `autostartOn` the ones with libvirt autostart on; `reason` and `autostart` as `hostId` reported them
 * (null: not reported). `misconfigurations` says, one sentence each, what works against its HA, such as
 * autostart on an HA VM. The other fields are the VM record (app/ports.ts VmRecord), hence not strict.
 */
export const VmViewSchema = z.object({
  vmId: IdSchema,
  hostId: IdSchema.nullable(),
  state: z.enum([...VmPowerStateSchema.options, 'down']),
  reason: VmStateReasonSchema.nullable(),
  autostart: z.boolean().nullable(),
  definedOn: z.array(IdSchema),
  autostartOn: z.array(IdSchema),
  ha: z.boolean(),
  misconfigurations: z.array(z.string()),
});

/**
 * The automatic-failover part of each cluster `GET /v1/sites/{siteId}/capacity` reports (beside core's
 * N+1 verdict and plans, hence not strict). `survivesAnyOneHostFailure` is about room alone;
 * `automaticFailover` is false when some host cannot be fenced, whose plan then `needsOperator`.
 */
export const ClusterFailoverViewSchema = z.object({
  clusterId: IdSchema,
  report: z.object({
    survivesAnyOneHostFailure: z.boolean(),
    automaticFailover: z.boolean(),
    notFenceable: z.array(z.strictObject({ hostId: IdSchema, reason: z.string() })),
    /** HA VMs with libvirt autostart on, and the host each runs on: a warning, changing neither verdict. */
    haVmsWithAutostart: z.array(z.strictObject({ vmId: IdSchema, hostId: IdSchema })),
    plans: z.array(
      z.object({
        failedHostId: IdSchema,
        needsOperator: z.boolean(),
        operatorReason: z.string().nullable(),
      }),
    ),
  }),
});

// ---------------------------------------------------------------- incidents

/**
 * An incident as the operator API returns it (`GET /v1/incidents`, `GET /v1/incidents/{id}`): the record
 * without its Step Functions task token, which only the workflow and the operator-answer path may hold
 * (`awaitingOperatorTask` says whether one is held). Not strict: the other fields are the record's
 * (app/ports.ts IncidentRecord).
 */
export const IncidentViewSchema = z.object({
  incidentId: RefSchema,
  siteId: IdSchema,
  kind: z.enum(['host', 'vm']),
  vmId: IdSchema.nullable(),
  hostId: IdSchema,
  cluster: IdSchema,
  openedAt: epochMs,
  outcome: z.string(),
  executionArn: z.string().nullable(),
  fencedAt: epochMs.nullable(),
  closedAt: epochMs.nullable(),
  awaitingOperatorTask: z.boolean(),
  /** The down periods of the VMs this incident is about, by VM (see VmDowntimePeriodSchema). */
  downtime: z.record(IdSchema, z.strictObject({ from: epochMs, to: epochMs.nullable() })),
});

/** One line of an incident's timeline (app/ports.ts IncidentEvent). */
export const IncidentEventSchema = z.object({
  incidentId: RefSchema,
  at: epochMs,
  kind: z.string(),
  key: z.string().optional(),
  detail: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export const IncidentListSchema = z.array(IncidentViewSchema);

/** `GET /v1/incidents/{incidentId}`. */
export const IncidentDetailSchema = z.object({
  incident: IncidentViewSchema,
  events: z.array(IncidentEventSchema),
  executionArn: z.string().nullable(),
});

// ---------------------------------------------------------------- event feed

/**
 * `GET /v1/events?since=&limit=&after=&siteId=`: incident events across every incident, oldest first
 * (newest last). `since` (epoch ms or ISO 8601; default: 24 hours ago) is inclusive; `after` is the `next`
 * cursor of the previous page, which takes precedence over `since`. With `siteId`, a page may hold fewer
 * than `limit` events and still have a `next`.
 */
export const ListEventsQuerySchema = z.strictObject({
  since: InstantQuerySchema.optional(),
  after: z.string().min(1).max(1000).optional(),
  limit: z.coerce.number().int().positive().max(1000).optional(),
  siteId: IdSchema.optional(),
});

/** One event of the feed: the incident's event with what the incident is about. */
export const FeedEventSchema = IncidentEventSchema.extend({
  siteId: IdSchema,
  incidentKind: z.enum(['host', 'vm']),
  hostId: IdSchema,
  vmId: IdSchema.nullable(),
});

export const EventFeedSchema = z.strictObject({
  events: z.array(FeedEventSchema),
  /** Pass as `after` for the next page; null when this page reached the newest event. */
  next: z.string().nullable(),
});

// ---------------------------------------------------------------- relays

/**
 * Each relay `GET /v1/sites/{siteId}/relays` lists (never its credential hash). `hostsHeard` are the
 * hosts its last accepted report listed as heard within their silence threshold, `hostsSilent` those it
 * called silent, with how long it had not heard each then, `hostsUnheard` those it did not list at all. `live`: reported within the policy's relay
 * silence; `onTime`: also within the pace its last response asked for (its votes count).
 */
export const RelayViewSchema = z.strictObject({
  siteId: IdSchema,
  relayId: IdSchema,
  status: z.enum(['enrolled', 'revoked']),
  enrolledAt: epochMs,
  /** Cloud time of its last accepted report; null before the first. */
  lastReportAt: epochMs.nullable(),
  /** Milliseconds since then, at the time of the request; null before the first report. */
  lastReportAgeMs: z.number().int().nonnegative().nullable(),
  /** Sequence number of its last accepted report; null before the first. */
  seq: z.number().int().nonnegative().nullable(),
  /** The report interval its last response asked for; null when not recorded. */
  nextReportInMs: z.number().int().positive().nullable(),
  live: z.boolean(),
  onTime: z.boolean(),
  hostsHeard: z.array(IdSchema),
  hostsSilent: z.array(z.strictObject({ hostId: IdSchema, lastHeardMsAgo: z.number().int().nonnegative() })),
  /** Hosts of the site its last report did not list at all (not heard since it started); absent: none. */
  hostsUnheard: z.array(IdSchema).optional(),
});
export const RelayListSchema = z.array(RelayViewSchema);

// ---------------------------------------------------------------- cluster policy

/**
 * `PUT /v1/sites/{siteId}/clusters/{clusterId}/policy`: replaces the cluster's run-time override (an empty
 * object removes it). The override is `cdk.json`'s `halo:policy` schema (contracts/policy.ts); deployment-
 * wide keys (DEPLOYMENT_WIDE_POLICY_KEYS) are refused, and the effective policy (defaults + override) must
 * resolve (core/policy.ts), else 400 naming the field. `expectedVersion`, the `version` a GET returned,
 * makes the write conditional on nobody having changed the cluster since (409 otherwise); without it the
 * write is still conditional on the version the handler read.
 */
export const SetClusterPolicyBodySchema = z.strictObject({
  override: HaPolicyInputSchema,
  expectedVersion: z.number().int().positive().optional(),
});

/** A cluster's policy: `GET`/`PUT /v1/sites/{siteId}/clusters/{clusterId}/policy`. */
export const ClusterPolicyViewSchema = z.strictObject({
  siteId: IdSchema,
  clusterId: IdSchema,
  /** What the control plane acts on for this cluster: the defaults with the override spread over them. */
  effective: HaPolicySchema,
  /** The deployment's defaults (`halo:policy`), as written. */
  defaults: HaPolicyInputSchema,
  /** The cluster's run-time override, as written (empty: none). */
  override: HaPolicyInputSchema,
  /** The keys the override sets, in POLICY_KEYS order. */
  overridden: z.array(z.string()),
  /** The cluster record's version, for a conditional PUT. */
  version: z.number().int().positive(),
  fencingEnabled: z.boolean(),
});

// ---------------------------------------------------------------- down time

/**
 * `GET /v1/sites/{siteId}/downtime` and `GET /v1/sites/{siteId}/vms/{vmId}/downtime`, `?since=&until=`
 * (epoch ms or ISO 8601; default: the last 30 days up to now): the window the totals count in.
 */
export const DowntimeQuerySchema = z.strictObject({
  since: InstantQuerySchema.optional(),
  until: InstantQuerySchema.optional(),
});

/**
 * One period an HA VM was down, as the incident about it recorded it: from its host's silence (the last
 * time a relay heard the host) or its crash, to when it was seen running again (null: still down).
 * `downMs` counts only the part inside the query's window (to `until` while it lasts).
 */
export const VmDowntimePeriodSchema = z.strictObject({
  vmId: IdSchema,
  incidentId: RefSchema,
  /** `host`: its host failed; `vm`: the VM stopped by itself on a healthy host (or its host rebooted). */
  cause: z.enum(['host', 'vm']),
  hostId: IdSchema,
  from: epochMs,
  to: epochMs.nullable(),
  downMs: z.number().int().nonnegative(),
});

/** One VM's down time within the window. */
export const VmDowntimeSchema = z.strictObject({
  siteId: IdSchema,
  vmId: IdSchema,
  since: epochMs,
  until: epochMs,
  /** Sum of the periods' `downMs` (overlapping periods counted once). */
  downMs: z.number().int().nonnegative(),
  periods: z.array(VmDowntimePeriodSchema),
});

/** Every VM of the site with down time in the window (VMs never down are not listed), by VM id. */
export const SiteDowntimeSchema = z.strictObject({
  siteId: IdSchema,
  since: epochMs,
  until: epochMs,
  vms: z.array(VmDowntimeSchema),
});
