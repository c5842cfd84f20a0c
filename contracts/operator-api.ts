import * as z from 'zod';
import {
  FenceLevelReadinessSchema,
  IdSchema,
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
  { name: 'enrollRelay', method: 'POST', path: '/v1/sites/{siteId}/relays' },
  { name: 'revokeRelay', method: 'DELETE', path: '/v1/sites/{siteId}/relays/{relayId}' },
  { name: 'listIncidents', method: 'GET', path: '/v1/incidents' },
  { name: 'getIncident', method: 'GET', path: '/v1/incidents/{incidentId}' },
  { name: 'confirmPowerOff', method: 'POST', path: '/v1/incidents/{incidentId}/confirm-power-off' },
] as const;

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

export const ListIncidentsQuerySchema = z.strictObject({
  siteId: IdSchema.optional(),
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
