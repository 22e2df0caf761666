import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { BatchJobClient, TERMINAL_STATUSES } from '../../lib/client';
import { callerOf, clientFromEnv, errorResponse, forbidden, json, notFound } from './shared';
import { jobView, ownJob } from './status';

/** DELETE /jobs/{id}: cancels one of the caller's jobs (202), 409 when it already finished. */
export async function cancelJob(event: APIGatewayProxyEvent, client: BatchJobClient): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  const id = event.pathParameters?.id ?? '';
  try {
    const info = await ownJob(client, id, caller.tenantId);
    if (!info) return notFound(id);
    if (TERMINAL_STATUSES.includes(info.status)) return json(409, { message: `job ${info.jobId} already ${info.status}`, job: jobView(info) });
    const after = await client.cancel(info.batchJobId, `cancelled through the submit API by ${caller.userId}`);
    return json(202, { ...jobView(after), cancelRequested: true });
  } catch (err) {
    return errorResponse(err, id);
  }
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return cancelJob(event, clientFromEnv());
}
