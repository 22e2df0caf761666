import type { APIGatewayProxyEvent } from 'aws-lambda';
import { BatchJobClient } from '../../../lib/client';
import { submitJob } from '../../../lambda/submit-api/submit';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';
import { createQuotaTable, recordingBatch, settingsWithClock } from '../../lib/client/moto-quota';

let m: MotoBatch;
let table: Awaited<ReturnType<typeof createQuotaTable>>;
const ROLE = 'arn:aws:sts::111111111111:assumed-role/QuotaTenant/session-1';
const TENANT = '111111111111:role:QuotaTenant';

function post(body: unknown, userArn = ROLE): APIGatewayProxyEvent {
  return { body: JSON.stringify(body), headers: {}, pathParameters: null, requestContext: { identity: { userArn, apiKeyId: null } } } as unknown as APIGatewayProxyEvent;
}

beforeAll(async () => {
  m = await createMotoBatch('api-sizing');
  table = await createQuotaTable('api');
});

describe('POST /jobs sizing', () => {
  test('vcpus / memoryMiB in bounds are applied as resourceRequirements (202)', async () => {
    const rec = recordingBatch();
    const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: { ...m, batch: rec.batch }, fairShare: false });
    const res = await submitJob(post({ operation: 'dissolve', input: [], vcpus: 8, memoryMiB: 16384 }), client);
    expect(res.statusCode).toBe(202);
    expect(rec.submitted[0].containerOverrides?.resourceRequirements).toEqual([
      { type: 'VCPU', value: '8' },
      { type: 'MEMORY', value: '16384' },
    ]);
  });

  test('out of bounds answers 400 naming field, value and the allowed range (the stack ceiling included)', async () => {
    const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, sizingLimits: { maxMemoryMiB: 16384 } });
    const res = await submitJob(post({ operation: 'dissolve', input: [], vcpus: 0.5, memoryMiB: 32768 }), client);
    expect(res.statusCode).toBe(400);
    const { errors } = JSON.parse(res.body) as { errors: { field: string; message: string; value?: string }[] };
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'vcpus', value: '0.5', message: expect.stringContaining('1 to 16 vCPUs for dissolve') }),
        expect.objectContaining({ field: 'memoryMiB', value: '32768', message: expect.stringContaining('8192 to 16384 MiB for dissolve (the stack allows at most 16384)') }),
      ]),
    );
  });
});

describe('POST /jobs quotas', () => {
  test('the N+1st active job of the caller\'s tenant answers 429 with Retry-After', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } });
    const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, quota: settings });
    expect((await submitJob(post({ operation: 'aggregate-defects', input: [] }), client)).statusCode).toBe(202);
    const res = await submitJob(post({ operation: 'aggregate-defects', input: [] }), client);
    expect(res.statusCode).toBe(429);
    expect(res.headers).toMatchObject({ 'retry-after': '30' });
    expect(JSON.parse(res.body)).toMatchObject({ error: 'QuotaExceeded', limit: 'maxActiveJobs', limitValue: 1, retryAfterSeconds: 30, message: expect.stringContaining(TENANT) });
  });

  test('the tenant is the caller: a tenantId in the body is refused, not used to pick another tenant\'s quota', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 0, submissionsPerMinute: 100 }, tenants: { other: { maxActiveJobs: 10 } } });
    const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, quota: settings });
    const res = await submitJob(post({ operation: 'aggregate-defects', input: [], tenantId: 'other' }), client);
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).errors[0]).toMatchObject({ field: 'tenantId', message: expect.stringMatching(/unknown field/) });
    expect((await submitJob(post({ operation: 'aggregate-defects', input: [] }), client)).statusCode).toBe(429);
  });

  test('submissions per minute: 429 with Retry-After = seconds to the next minute', async () => {
    const { settings } = settingsWithClock(table, { default: { maxActiveJobs: 100, submissionsPerMinute: 1 } });
    const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, quota: settings });
    const arn = 'arn:aws:sts::111111111111:assumed-role/RateTenant/s';
    expect((await submitJob(post({ operation: 'aggregate-defects', input: [] }, arn), client)).statusCode).toBe(202);
    const res = await submitJob(post({ operation: 'aggregate-defects', input: [] }, arn), client);
    expect(res.statusCode).toBe(429);
    expect(res.headers).toMatchObject({ 'retry-after': '50' });
  });
});
