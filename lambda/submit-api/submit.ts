import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { BatchJobClient, FieldError, InvalidRequestError, validateSubmitRequest } from '../../lib/client';
import { badRequest, callerOf, clientFromEnv, errorResponse, forbidden, json } from './shared';

/** Fields a caller may send; tenant and user come from the identity, never the body. */
const API_FIELDS = new Set([
  'operation',
  'input',
  'callbackUrl',
  'retentionDays',
  'shareIdentifier',
  'schedulingPriority',
  'operationConfig',
  'clientToken',
  'jobId',
  'environment',
  'timeoutSeconds',
  'vcpus',
  'memoryMiB',
]);

/**
 * POST /jobs: 202 with the job id, 200 when the Idempotency-Key/clientToken was seen before with the
 * same request, 409 when that key came with another request (IdempotencyConflict, with the original
 * job id) or the chosen jobId is taken (JobIdConflict), 400 with every field error of the schema and
 * the submission policy (lib/client/policy), including `vcpus` / `memoryMiB` outside what the
 * operation and the stack allow; 429 with Retry-After when the caller's tenant is at a quota.
 */
export async function submitJob(event: APIGatewayProxyEvent, client: BatchJobClient): Promise<APIGatewayProxyResult> {
  const caller = callerOf(event);
  if (!caller) return forbidden();
  let body: unknown;
  try {
    body = JSON.parse(event.body ?? '');
  } catch {
    return badRequest([{ field: '(body)', message: 'the body must be a JSON object' }]);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return badRequest([{ field: '(body)', message: 'the body must be a JSON object' }]);
  const fields = body as Record<string, unknown>;
  const errors: FieldError[] = Object.keys(fields)
    .filter((k) => !API_FIELDS.has(k))
    .map((k) => ({ field: k, message: `unknown field (allowed: ${[...API_FIELDS].join(', ')})` }));
  const allowed = Object.fromEntries(Object.entries(fields).filter(([k]) => API_FIELDS.has(k)));
  const headerToken = Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === 'idempotency-key')?.[1];
  const request = { ...allowed, clientToken: allowed.clientToken ?? headerToken, tenantId: caller.tenantId, userId: caller.userId };
  try {
    validateSubmitRequest(request, { sizingLimits: client.sizingLimits });
  } catch (err) {
    if (!(err instanceof InvalidRequestError)) throw err;
    errors.push(...err.errors);
  }
  if (errors.length) return badRequest(errors);
  try {
    const job = await client.submit(request as Parameters<BatchJobClient['submit']>[0]);
    return json(job.created ? 202 : 200, {
      jobId: job.jobId,
      status: job.created ? 'SUBMITTED' : 'ALREADY_SUBMITTED',
      links: { self: `/jobs/${job.jobId}` },
    });
  } catch (err) {
    return errorResponse(err);
  }
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return submitJob(event, clientFromEnv());
}
