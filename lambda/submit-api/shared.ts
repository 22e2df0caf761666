import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import {
  BatchJobClient,
  BatchJobClientOptions,
  FieldError,
  IdempotencyConflictError,
  InvalidRequestError,
  JobIdConflictError,
  JobNotFoundError,
  parseJobRoutes,
  QuotaExceededError,
  quotaFromEnv,
  sizingLimitsFromEnv,
  ThrottledError,
} from '../../lib/client';

/** Who is calling: the tenant owns jobs; the user is recorded on them. */
export interface Caller {
  readonly tenantId: string;
  readonly userId: string;
}

let client: BatchJobClient | undefined;

/** The handlers' BatchJobClient, from the environment the SubmitApi construct sets. */
export function clientFromEnv(overrides: Partial<BatchJobClientOptions> = {}): BatchJobClient {
  client ??= new BatchJobClient({
    jobQueue: required('JOB_QUEUE'),
    jobDefinition: required('JOB_DEFINITION'),
    routes: parseJobRoutes(process.env.JOB_ROUTES, 'JOB_ROUTES'),
    inputBucket: required('INPUT_BUCKET'),
    outputBucket: process.env.OUTPUT_BUCKET,
    fairShare: process.env.FAIR_SHARE === undefined ? undefined : process.env.FAIR_SHARE === 'true',
    jobNamePrefix: process.env.JOB_NAME_PREFIX,
    sizingLimits: sizingLimitsFromEnv(),
    quota: quotaFromEnv(),
    // An HTTP caller waits on us: give up on throttling sooner than a batch process would.
    maxRetries: 4,
    ...overrides,
  });
  return client;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the SubmitApi construct sets it on the function`);
  return value;
}

/** The submission policy's id alphabets (ASCII only; tenant ids without `/`, being one segment of the tenant's key prefix). */
function idSafe(value: string, slash: boolean, max: number): string {
  return value.replace(slash ? /[^A-Za-z0-9._:@+=/-]/g : /[^A-Za-z0-9._:@+=-]/g, '_').slice(0, max);
}
const tenantSafe = (value: string) => idSafe(value.replace(/\//g, ':'), false, 128);
const userSafe = (value: string) => idSafe(value, true, 256);

/**
 * The tenant of a request.
 * - IAM: the caller's principal without the session: `<account>:role:<name>` for an assumed role,
 *   `<account>:user:<name>` for a user, so every session of one role is one tenant.
 * - API key: `apikey:<api key id>`: each key is one tenant.
 * Tenant ids hold no `/`: each is one segment of its key prefix `tenants/<tenantId>/`.
 */
export function callerOf(event: APIGatewayProxyEvent): Caller | undefined {
  const identity = event.requestContext?.identity;
  const arn = identity?.userArn;
  if (arn) {
    const [, , , , account, resource = ''] = arn.split(':');
    const parts = resource.split('/');
    const principal = parts[0] === 'assumed-role' ? `role/${parts[1]}` : resource;
    return { tenantId: tenantSafe(`${account}/${principal}`), userId: userSafe(arn) };
  }
  if (identity?.apiKeyId) return { tenantId: tenantSafe(`apikey/${identity.apiKeyId}`), userId: userSafe(`apikey/${identity.apiKeyId}`) };
  return undefined;
}

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

export function badRequest(errors: FieldError[]): APIGatewayProxyResult {
  return json(400, { errors });
}

export const forbidden = (): APIGatewayProxyResult => json(403, { message: 'no caller identity on the request' });
export const notFound = (id: string): APIGatewayProxyResult => json(404, { message: `job ${id} not found` });

/** Typed client errors -> HTTP; anything else is logged and answered 500 without details. */
export function errorResponse(err: unknown, jobId?: string): APIGatewayProxyResult {
  if (err instanceof InvalidRequestError) return badRequest(err.errors.length ? err.errors : [{ field: '(request)', message: err.message }]);
  if (err instanceof JobNotFoundError) return notFound(jobId ?? err.jobId);
  if (err instanceof JobIdConflictError) return json(409, { error: 'JobIdConflict', message: err.message, jobId: err.jobId });
  if (err instanceof IdempotencyConflictError) return json(409, { error: 'IdempotencyConflict', message: err.message, jobId: err.jobId, links: { self: `/jobs/${err.jobId}` } });
  if (err instanceof QuotaExceededError) {
    return json(
      429,
      { error: 'QuotaExceeded', message: err.message, limit: err.limit, limitValue: err.limitValue, retryAfterSeconds: err.retryAfterSeconds },
      { 'retry-after': String(err.retryAfterSeconds) },
    );
  }
  if (err instanceof ThrottledError) return json(429, { message: 'AWS Batch is throttling submissions; retry later' }, { 'retry-after': '5' });
  console.error(JSON.stringify({ level: 'error', message: (err as Error).message, stack: (err as Error).stack }));
  return json(500, { message: 'internal error' });
}
