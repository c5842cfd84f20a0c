import * as z from 'zod';
import { IdSchema } from './relay-protocol';

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
