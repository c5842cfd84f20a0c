import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { AppContext } from '../../app/context';
import { recordReport } from '../../app/ingest/record-report';
import { AnyRelayReportSchema, MAX_REPORT_BYTES } from '../../contracts/relay-protocol';
import { errorResponse, type HttpResponse, header, json, parseJsonBody, validate } from '../shared/http';
import { type HandlerLogger, logger as sharedLogger } from '../shared/powertools';

/** The relay ingest endpoint (POST /v1/reports) without middleware: the Lambda and the local endpoint wrap it. */
export function makeIngestHandler(
  ctx: AppContext,
  logger: HandlerLogger = sharedLogger,
): (event: APIGatewayProxyEventV2) => Promise<HttpResponse> {
  return async (event) => {
    try {
      const report = validate(AnyRelayReportSchema, parseJsonBody(event, MAX_REPORT_BYTES), 'report');
      const response = await recordReport(ctx, { authorization: header(event, 'authorization'), report });
      return json(200, response);
    } catch (error) {
      return errorResponse(error, logger);
    }
  };
}
