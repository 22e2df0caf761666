import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { BatchJobClient, JobInfo } from '../../lib/client';
import { callerOf, clientFromEnv, errorResponse, forbidden, json, notFound } from './shared';

/** The job, if it belongs to the caller's tenant; another tenant's job answers like a missing one. */
export async function ownJob(client: BatchJobClient, id: string, tenantId: string): Promise<JobInfo | undefined> {
  const info = await client.status(id);
  return info.tenantId === tenantId ? info : undefined;
}

export function jobView(info: JobInfo): Record<string, unknown> {
  const uri = (l?: { bucket: string; key: string }) => (l ? `s3://${l.bucket}/${l.key}` : undefined);
  return {
    jobId: info.jobId,
    status: info.status,
    statusReason: info.statusReason,
    exitCode: info.exitCode,
    operation: info.operation,
    createdAt: info.createdAt?.toISOString(),
    startedAt: info.startedAt?.toISOString(),
    stoppedAt: info.stoppedAt?.toISOString(),
    attempts: info.attempts,
    result: info.output
      ? { ...info.output, uri: uri(info.output), rejectsUri: `${uri(info.output)}.rejects.jsonl`, ready: info.status === 'SUCCEEDED' }
      : undefined,
  };
}

/** GET /jobs/{id}: status and result location of one of the caller's jobs. */
export async function getJob(event: APIGatewayProxyEvent, client: BatchJobClient): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  const id = event.pathParameters?.id ?? '';
  try {
    const info = await ownJob(client, id, caller.tenantId);
    return info ? json(200, jobView(info)) : notFound(id);
  } catch (err) {
    return errorResponse(err, id);
  }
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return getJob(event, clientFromEnv());
}
