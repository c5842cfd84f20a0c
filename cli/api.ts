import * as z from 'zod';
import type { CapacityReport } from '../core/capacity';
import type { OperatorClient } from './client';
import { CliError } from './errors';
import { EXIT } from './format';

/**
 * What the CLI reads of the operator API's answers. The schemas are loose (unknown fields pass, optional
 * ones may be missing) so that a control plane a little older or newer than the CLI still works; a
 * missing field the CLI needs is one clear error instead of a crash somewhere in the rendering.
 */

const ms = z.number();
const id = z.string();

export const SiteSchema = z.looseObject({ siteId: id, createdAt: ms });
export type Site = z.infer<typeof SiteSchema>;

export const HostSchema = z.looseObject({
  siteId: id,
  hostId: id,
  cluster: id,
  cpus: z.number(),
  memoryMiB: z.number(),
  bootId: z.string(),
  lifecycle: z.looseObject({
    status: z.string(),
    bootId: z.string().nullable().optional(),
    incidentId: z.string().optional(),
    since: ms.optional(),
    at: ms.optional(),
    reason: z.string().optional(),
    confirmedBy: z.unknown().optional(),
    attempts: z.number().optional(),
  }),
  usedCpus: z.number(),
  usedMiB: z.number(),
  observedAt: ms,
  fencing: z.looseObject({ fenceable: z.boolean().nullable(), reason: z.string().nullable() }),
});
export type Host = z.infer<typeof HostSchema>;

export const VmSchema = z.looseObject({
  siteId: id,
  vmId: id,
  hostId: id.nullable(),
  cpus: z.number(),
  memoryMiB: z.number(),
  state: z.string(),
  reason: z.string().nullable().optional(),
  ha: z.boolean(),
  priority: z.enum(['high', 'medium', 'low']),
  antiAffinity: z.string().nullable(),
  observedAt: ms,
  definedOn: z.array(id).optional(),
  misconfigurations: z.array(z.string()).optional(),
  recovery: z
    .object({
      status: z.string(),
      cause: z.string(),
      since: ms,
      note: z.string().nullable().optional(),
      by: z.string().nullable().optional(),
      incidentId: z.string().nullable().optional(),
    })
    .optional(),
});
export type Vm = z.infer<typeof VmSchema>;

const EvidenceSchema = z.looseObject({
  relays: z.array(z.looseObject({ relayId: id, lastHeardMsAgo: z.number() })),
  silentAfterMs: z.number(),
  overdueRelays: z.array(z.looseObject({ relayId: id, reportAgeMs: z.number() })).optional(),
});

export const IncidentSchema = z.looseObject({
  incidentId: z.string(),
  siteId: id,
  kind: z.enum(['host', 'vm']).nullable().optional(),
  vmId: id.nullable().optional(),
  hostId: id,
  cluster: id,
  openedAt: ms,
  outcome: z.string(),
  input: z.looseObject({ evidence: EvidenceSchema.optional() }).nullable().optional(),
  executionArn: z.string().nullable(),
  fencedAt: ms.nullable(),
  closedAt: ms.nullable(),
  operatorAnswer: z.looseObject({ decision: z.string(), by: z.string(), at: ms }).nullable().optional(),
  operatorWaitEndedAt: ms.nullable().optional(),
});
export type Incident = z.infer<typeof IncidentSchema>;

export const IncidentEventSchema = z.looseObject({
  at: ms,
  kind: z.string(),
  key: z.string().optional(),
  detail: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type IncidentEvent = z.infer<typeof IncidentEventSchema>;

export const IncidentDetailSchema = z.looseObject({
  incident: IncidentSchema,
  events: z.array(IncidentEventSchema),
  executionArn: z.string().nullable(),
});
export type IncidentDetail = z.infer<typeof IncidentDetailSchema>;

const PlanSchema = z.looseObject({
  failedHostId: id,
  survives: z.boolean(),
  needsOperator: z.boolean(),
  operatorReason: z.string().nullable(),
  plan: z.looseObject({
    placements: z.array(z.unknown()),
    unplaced: z.array(z.unknown()),
    skipped: z.array(z.unknown()),
  }),
});

/** Core's CapacityReport, checked on the fields the renderers read before it is trusted as one. */
const CapacityReportSchema = z
  .object({
    survivesAnyOneHostFailure: z.boolean(),
    automaticFailover: z.boolean(),
    plans: z.array(PlanSchema),
    notFenceable: z.array(z.looseObject({ hostId: id, reason: z.string() })),
    haVmsWithAutostart: z.array(z.looseObject({ vmId: id, hostId: id })),
    worstShortfall: z.looseObject({ cpus: z.number(), memoryMiB: z.number() }),
  })
  .transform((report) => report as unknown as CapacityReport);

export const SiteCapacitySchema = z.looseObject({
  siteId: id,
  clusters: z.array(z.looseObject({ clusterId: id, report: CapacityReportSchema })),
});
export type SiteCapacity = z.infer<typeof SiteCapacitySchema>;

export const MaintenanceResultSchema = z.looseObject({
  siteId: id,
  hostId: id,
  status: z.string(),
  by: z.string(),
});
export const FencingResultSchema = z.looseObject({
  cluster: z.looseObject({ siteId: id, clusterId: id, fencingEnabled: z.boolean() }),
  by: z.string(),
});
export const EnrolledRelaySchema = z.looseObject({ relayId: id, credential: z.string() });
export const ConfirmedSchema = z.looseObject({
  decision: z.string(),
  by: z.string(),
  at: ms,
  incidentId: z.string(),
  hostId: id,
});

/** Parses an answer, or fails naming the route: the control plane and the CLI disagree on its shape. */
export function parseAnswer<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue === undefined ? '' : ` at ${issue.path.join('.') || '(top)'}: ${issue.message}`;
  throw new CliError(
    `unexpected answer from ${what}${where} (is the control plane a different version?)`,
    EXIT.unreachable,
  );
}

/** Every site. */
export async function listSites(client: OperatorClient): Promise<Site[]> {
  return parseAnswer(z.array(SiteSchema), await client.call('listSites'), 'listSites');
}

/** The hosts of a site. */
export async function listHosts(client: OperatorClient, siteId: string): Promise<Host[]> {
  return parseAnswer(
    z.array(HostSchema),
    await client.call('listHosts', { params: { siteId } }),
    'listHosts',
  );
}

/** The VMs of a site. */
export async function listVms(client: OperatorClient, siteId: string): Promise<Vm[]> {
  return parseAnswer(z.array(VmSchema), await client.call('listVms', { params: { siteId } }), 'listVms');
}

/** A site's N+1 report, per cluster. */
export async function capacityReport(client: OperatorClient, siteId: string): Promise<SiteCapacity> {
  const body = await client.call('capacityReport', { params: { siteId } });
  return parseAnswer(SiteCapacitySchema, body, 'capacityReport');
}

/** Incidents newest first (at most 200, the route's limit). */
export async function listIncidents(
  client: OperatorClient,
  query: {
    readonly siteId?: string | undefined;
    readonly open?: boolean | undefined;
    /** Opened at or after (epoch ms). */
    readonly since?: number | undefined;
  } = {},
): Promise<Incident[]> {
  const body = await client.call('listIncidents', {
    query: {
      limit: '200',
      siteId: query.siteId,
      open: query.open === undefined ? undefined : String(query.open),
      since: query.since === undefined ? undefined : String(query.since),
    },
  });
  return parseAnswer(z.array(IncidentSchema), body, 'listIncidents');
}

/** One incident with its timeline. */
export async function getIncident(client: OperatorClient, incidentId: string): Promise<IncidentDetail> {
  const body = await client.call('getIncident', { params: { incidentId } });
  return parseAnswer(IncidentDetailSchema, body, 'getIncident');
}
