import type { APIGatewayEventRequestContextV2, APIGatewayProxyEventV2WithRequestContext } from 'aws-lambda';
import * as z from 'zod';
import type { AppContext } from '../../app/context';
import { NotFoundError, UnauthorizedError } from '../../app/errors';
import {
  capacityReport,
  confirmPowerOff,
  enrollRelay,
  getClusterPolicy,
  getIncident,
  listEventFeed,
  listHosts,
  listIncidents,
  listRelays,
  listSites,
  listVms,
  revokeRelay,
  setClusterPolicy,
  setFencing,
  setMaintenance,
  setVmDownOnPurpose,
  setVmMetadata,
  siteDowntime,
  vmDowntime,
} from '../../app/operator';
import {
  ConfirmPowerOffBodySchema,
  DowntimeQuerySchema,
  EnrollRelayBodySchema,
  ListEventsQuerySchema,
  ListIncidentsQuerySchema,
  OPERATOR_ROUTES,
  type OperatorRouteName,
  SetClusterPolicyBodySchema,
  SetDownOnPurposeBodySchema,
  SetFencingBodySchema,
  SetMaintenanceBodySchema,
  SetVmMetadataBodySchema,
} from '../../contracts/operator-api';
import { IdSchema, RefSchema } from '../../contracts/relay-protocol';
import { errorResponse, type HttpResponse, json, noContent, parseJsonBody, validate } from '../shared/http';
import { type HandlerLogger, logger as sharedLogger } from '../shared/powertools';

/** An operator API event: HTTP API v2 with the IAM authorizer's identity (absent only if misconfigured). */
export type OperatorApiEvent = APIGatewayProxyEventV2WithRequestContext<
  APIGatewayEventRequestContextV2 & { authorizer?: { iam?: { userArn?: string | null } } }
>;

/** Operator bodies are a few fields; anything near this is not an operator request. */
const MAX_OPERATOR_BODY_BYTES = 16 * 1024;

/** What a route sees of the request, already narrowed to strings. */
interface OperatorRequest {
  readonly params: Readonly<Record<string, string | undefined>>;
  readonly query: Readonly<Record<string, string | undefined>>;
  /** IAM identity of the caller (user or role ARN). */
  readonly caller: string;
  /** The JSON body, parsed on demand: routes without a body never read it. */
  body(): unknown;
}

interface RouteResult {
  readonly status: 200 | 201 | 204;
  readonly body?: unknown;
}

type Route = (ctx: AppContext, req: OperatorRequest) => Promise<RouteResult>;

const SiteParams = z.object({ siteId: IdSchema });
const VmParams = z.object({ siteId: IdSchema, vmId: IdSchema });
const HostParams = z.object({ siteId: IdSchema, hostId: IdSchema });
const ClusterParams = z.object({ siteId: IdSchema, clusterId: IdSchema });
const RelayParams = z.object({ siteId: IdSchema, relayId: IdSchema });
// Incident ids are composed (site:host:n), so they are refs, not plain ids.
const IncidentParams = z.object({ incidentId: RefSchema });

const ok = (body: unknown): RouteResult => ({ status: 200, body });

/** One entry per OPERATOR_ROUTES name: parse params, query and body with the contract schemas, call one use case. */
const ROUTES: { readonly [K in OperatorRouteName]: Route } = {
  listSites: async (ctx) => ok(await listSites(ctx)),
  listHosts: async (ctx, req) => ok(await listHosts(ctx, validate(SiteParams, req.params, 'path'))),
  listVms: async (ctx, req) => ok(await listVms(ctx, validate(SiteParams, req.params, 'path'))),
  capacityReport: async (ctx, req) => ok(await capacityReport(ctx, validate(SiteParams, req.params, 'path'))),
  setVmMetadata: async (ctx, req) => {
    const { siteId, vmId } = validate(VmParams, req.params, 'path');
    const body = validate(SetVmMetadataBodySchema, req.body(), 'body');
    return ok(await setVmMetadata(ctx, { siteId, vmId, body }));
  },
  setVmDownOnPurpose: async (ctx, req) => {
    const { siteId, vmId } = validate(VmParams, req.params, 'path');
    const { enabled } = validate(SetDownOnPurposeBodySchema, req.body(), 'body');
    return ok(await setVmDownOnPurpose(ctx, { siteId, vmId, enabled, caller: req.caller }));
  },
  setMaintenance: async (ctx, req) => {
    const { siteId, hostId } = validate(HostParams, req.params, 'path');
    const { enabled } = validate(SetMaintenanceBodySchema, req.body(), 'body');
    return ok(await setMaintenance(ctx, { siteId, hostId, enabled, caller: req.caller }));
  },
  setFencing: async (ctx, req) => {
    const { siteId, clusterId } = validate(ClusterParams, req.params, 'path');
    const { enabled } = validate(SetFencingBodySchema, req.body(), 'body');
    return ok(await setFencing(ctx, { siteId, clusterId, enabled, caller: req.caller }));
  },
  enrollRelay: async (ctx, req) => {
    const { siteId } = validate(SiteParams, req.params, 'path');
    const { relayId } = validate(EnrollRelayBodySchema, req.body(), 'body');
    return { status: 201, body: await enrollRelay(ctx, { siteId, relayId }) };
  },
  revokeRelay: async (ctx, req) => {
    await revokeRelay(ctx, validate(RelayParams, req.params, 'path'));
    return { status: 204 };
  },
  listIncidents: async (ctx, req) => {
    const query = validate(ListIncidentsQuerySchema, req.query, 'query');
    const open = query.open === undefined ? undefined : query.open === 'true';
    return ok(
      await listIncidents(ctx, { siteId: query.siteId, open, since: query.since, limit: query.limit }),
    );
  },
  getIncident: async (ctx, req) => ok(await getIncident(ctx, validate(IncidentParams, req.params, 'path'))),
  getClusterPolicy: async (ctx, req) =>
    ok(await getClusterPolicy(ctx, validate(ClusterParams, req.params, 'path'))),
  setClusterPolicy: async (ctx, req) => {
    const { siteId, clusterId } = validate(ClusterParams, req.params, 'path');
    const body = validate(SetClusterPolicyBodySchema, req.body(), 'body');
    return ok(
      await setClusterPolicy(ctx, {
        siteId,
        clusterId,
        override: body.override,
        expectedVersion: body.expectedVersion,
        caller: req.caller,
      }),
    );
  },
  listRelays: async (ctx, req) => ok(await listRelays(ctx, validate(SiteParams, req.params, 'path'))),
  siteDowntime: async (ctx, req) => {
    const { siteId } = validate(SiteParams, req.params, 'path');
    const query = validate(DowntimeQuerySchema, req.query, 'query');
    return ok(await siteDowntime(ctx, { siteId, since: query.since, until: query.until }));
  },
  vmDowntime: async (ctx, req) => {
    const { siteId, vmId } = validate(VmParams, req.params, 'path');
    const query = validate(DowntimeQuerySchema, req.query, 'query');
    return ok(await vmDowntime(ctx, { siteId, vmId, since: query.since, until: query.until }));
  },
  listEvents: async (ctx, req) => {
    const query = validate(ListEventsQuerySchema, req.query, 'query');
    return ok(await listEventFeed(ctx, query));
  },
  confirmPowerOff: async (ctx, req) => {
    const { incidentId } = validate(IncidentParams, req.params, 'path');
    const body = validate(ConfirmPowerOffBodySchema, req.body(), 'body');
    // The IAM identity is the default witness: an operator may name themselves, never be anonymous.
    const operator = body.operator ?? req.caller;
    return ok(await confirmPowerOff(ctx, { incidentId, hostId: body.hostId, operator }));
  },
};

/** API Gateway route keys (`GET /v1/sites/{siteId}/hosts`) to route names, from the contract's route table. */
export const OPERATOR_ROUTE_KEYS: ReadonlyMap<string, OperatorRouteName> = new Map(
  OPERATOR_ROUTES.map((route) => [`${route.method} ${route.path}`, route.name]),
);

/** The operator API (IAM-authorised) without middleware, routed by `event.routeKey`. */
export function makeOperatorApiHandler(
  ctx: AppContext,
  logger: HandlerLogger = sharedLogger,
): (event: OperatorApiEvent) => Promise<HttpResponse> {
  return async (event) => {
    try {
      const name = OPERATOR_ROUTE_KEYS.get(event.routeKey);
      if (name === undefined) throw new NotFoundError(`no route ${event.routeKey}`);
      const caller = event.requestContext.authorizer?.iam?.userArn;
      // Fail closed: every route is IAM-authorised, so a request without an identity reached us by mistake.
      if (!caller) throw new UnauthorizedError('no caller identity on the request');
      const request: OperatorRequest = {
        params: event.pathParameters ?? {},
        query: event.queryStringParameters ?? {},
        caller,
        body: () => parseJsonBody(event, MAX_OPERATOR_BODY_BYTES),
      };
      const result = await ROUTES[name](ctx, request);
      return result.status === 204 ? noContent() : json(result.status, result.body ?? null);
    } catch (error) {
      return errorResponse(error, logger);
    }
  };
}
