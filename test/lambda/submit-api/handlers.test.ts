import type { APIGatewayProxyEvent } from 'aws-lambda';
import { BatchJobClient } from '../../../lib/client';
import { cancelJob } from '../../../lambda/submit-api/cancel';
import { callerOf } from '../../../lambda/submit-api/shared';
import { getJob } from '../../../lambda/submit-api/status';
import { submitJob } from '../../../lambda/submit-api/submit';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';

let m: MotoBatch;
let client: BatchJobClient;

const ROLE_A = 'arn:aws:sts::111111111111:assumed-role/TenantA/session-1';
const ROLE_B = 'arn:aws:sts::222222222222:assumed-role/TenantB/session-9';

function event(options: { userArn?: string; apiKeyId?: string; body?: unknown; id?: string; headers?: Record<string, string> }): APIGatewayProxyEvent {
  return {
    body: options.body === undefined ? null : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    headers: options.headers ?? {},
    pathParameters: options.id ? { id: options.id } : null,
    requestContext: { identity: { userArn: options.userArn ?? null, apiKeyId: options.apiKeyId ?? null } },
  } as unknown as APIGatewayProxyEvent;
}

beforeAll(async () => {
  m = await createMotoBatch('api');
  client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false });
});

describe('tenant identity', () => {
  test('every session of one IAM role is one tenant; the user is the full session ARN', () => {
    expect(callerOf(event({ userArn: ROLE_A }))).toEqual({ tenantId: '111111111111:role:TenantA', userId: ROLE_A });
    expect(callerOf(event({ userArn: 'arn:aws:sts::111111111111:assumed-role/TenantA/other' }))?.tenantId).toBe('111111111111:role:TenantA');
  });

  test('an API key is a tenant', () => {
    expect(callerOf(event({ apiKeyId: 'abc123' }))).toEqual({ tenantId: 'apikey:abc123', userId: 'apikey/abc123' });
  });
});

describe('POST /jobs', () => {
  test('submits a valid request as the caller and answers 202 with the job id', async () => {
    const res = await submitJob(event({ userArn: ROLE_A, body: { operation: 'aggregate-defects', input: [{ segmentId: 'a' }] } }), client);
    expect(res.statusCode).toBe(202);
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ status: 'SUBMITTED', links: { self: `/jobs/${body.jobId}` } });
    const info = await client.status(body.jobId);
    expect(info).toMatchObject({ tenantId: '111111111111:role:TenantA', userId: ROLE_A, operation: 'aggregate-defects' });
  });

  test('answers 400 with every field error at once', async () => {
    const res = await submitJob(
      event({ userArn: ROLE_A, body: { operation: 'Bad Op', retentionDays: -1, callbackUrl: 'nope', tenantId: 'someone-else' } }),
      client,
    );
    expect(res.statusCode).toBe(400);
    const { errors } = JSON.parse(res.body) as { errors: { field: string; message: string; value?: unknown }[] };
    expect(errors.map((e) => e.field).sort()).toEqual(['callbackUrl', 'input', 'operation', 'retentionDays', 'tenantId']);
    expect(errors.find((e) => e.field === 'operation')).toMatchObject({ value: 'Bad Op', message: expect.stringMatching(/lower-case/) });
  });

  test('answers 400 for a body that is not a JSON object', async () => {
    const res = await submitJob(event({ userArn: ROLE_A, body: '[1,2' }), client);
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).errors[0].field).toBe('(body)');
  });

  test('an Idempotency-Key header returns the first job on a repeat (200)', async () => {
    const req = { userArn: ROLE_A, body: { operation: 'aggregate-defects', input: {} }, headers: { 'Idempotency-Key': 'k-1' } };
    const first = await submitJob(event(req), client);
    const second = await submitJob(event(req), client);
    expect([first.statusCode, second.statusCode]).toEqual([202, 200]);
    expect(JSON.parse(second.body).jobId).toBe(JSON.parse(first.body).jobId);
  });

  test('answers 403 without a caller identity', async () => {
    expect((await submitJob(event({ body: { operation: 'x', input: {} } }), client)).statusCode).toBe(403);
  });
});

describe('GET and DELETE /jobs/{id}', () => {
  let jobId: string;
  beforeAll(async () => {
    jobId = JSON.parse((await submitJob(event({ userArn: ROLE_A, body: { operation: 'aggregate-defects', input: {} } }), client)).body).jobId;
  });

  test('GET shows the owner its job status and result location', async () => {
    const res = await getJob(event({ userArn: ROLE_A, id: jobId }), client);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({
      jobId,
      status: 'SUCCEEDED',
      result: { bucket: m.bucket, key: `jobs/${jobId}/output/result.json`, uri: `s3://${m.bucket}/jobs/${jobId}/output/result.json`, ready: true },
    });
  });

  test("GET answers 404 for another tenant's job, by platform id and by Batch id", async () => {
    const info = await client.status(jobId);
    expect((await getJob(event({ userArn: ROLE_B, id: jobId }), client)).statusCode).toBe(404);
    expect((await getJob(event({ userArn: ROLE_B, id: info.batchJobId }), client)).statusCode).toBe(404);
  });

  test('GET answers 404 for an unknown job', async () => {
    expect((await getJob(event({ userArn: ROLE_A, id: 'nope' }), client)).statusCode).toBe(404);
  });

  test("DELETE answers 404 for another tenant's job and leaves it alone", async () => {
    const res = await cancelJob(event({ userArn: ROLE_B, id: jobId }), client);
    expect(res.statusCode).toBe(404);
    expect((await client.status(jobId)).statusReason).toBeUndefined();
  });

  test('DELETE of a finished job answers 409', async () => {
    const res = await cancelJob(event({ userArn: ROLE_A, id: jobId }), client);
    expect(res.statusCode).toBe(409);
    expect(JSON.parse(res.body).message).toMatch(/already SUCCEEDED/);
  });
});
