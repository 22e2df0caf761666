import { execFileSync } from 'child_process';
import { BatchClient, ListJobsCommand } from '@aws-sdk/client-batch';
import { CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand, GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  backoffDelay,
  BatchJobClient,
  BatchJobClientOptions,
  InvalidRequestError,
  JobNotFoundError,
  ResultNotReadyError,
  ThrottledError,
} from '../../../lib/client';
import { motoClientConfig, motoEndpoint, motoEnv } from '../../support/moto';
import { createMotoBatch, MotoBatch } from './moto-batch';
import { startThrottleProxy } from './throttle-proxy';

let m: MotoBatch;
const noWait = { sleep: async () => undefined, retryBaseMs: 1 };

function clientFor(extra: Partial<BatchJobClientOptions> = {}): BatchJobClient {
  return new BatchJobClient({
    jobQueue: m.jobQueue,
    jobDefinition: m.jobDefinition,
    inputBucket: m.bucket,
    clients: { batch: m.batch, s3: m.s3, logs: m.logs },
    fairShare: false,
    ...noWait,
    ...extra,
  });
}

/** A client whose SDK clients point at a closed port: any AWS call fails with ECONNREFUSED. */
function offlineClient(extra: Partial<BatchJobClientOptions> = {}): BatchJobClient {
  const dead = { ...motoClientConfig(), endpoint: 'http://127.0.0.1:9', maxAttempts: 1 };
  return new BatchJobClient({ jobQueue: 'q', jobDefinition: 'd', inputBucket: 'b', clients: { batch: new BatchClient(dead) }, maxRetries: 0, ...extra });
}

async function jobsNamed(name: string): Promise<number> {
  const res = await m.batch.send(new ListJobsCommand({ jobQueue: m.jobQueue, filters: [{ name: 'JOB_NAME', values: [name] }] }));
  return res.jobSummaryList?.length ?? 0;
}

beforeAll(async () => {
  m = await createMotoBatch('client');
});

describe('submit', () => {
  test('stages the input at jobs/{jobId}/inputs.json with retention-days and job-id tags', async () => {
    const job = await clientFor().submit({ operation: 'aggregate-defects', input: [{ segmentId: 's1' }], retentionDays: 7 });
    const body = await m.s3.send(new GetObjectCommand({ Bucket: m.bucket, Key: `jobs/${job.jobId}/inputs.json` }));
    expect(JSON.parse(await body.Body!.transformToString())).toEqual([{ segmentId: 's1' }]);
    const tags = await m.s3.send(new GetObjectTaggingCommand({ Bucket: m.bucket, Key: job.input.key }));
    expect(Object.fromEntries(tags.TagSet!.map((t) => [t.Key, t.Value]))).toEqual({ 'retention-days': '7', 'job-id': job.jobId });
  });

  test('the job shows up in `aws batch describe-jobs` with the worker environment contract and job tags', async () => {
    const job = await clientFor().submit({
      operation: 'transform-records',
      input: { a: 1 },
      tenantId: 'tenant-a',
      userId: 'user-1',
      callbackUrl: 'https://example.com/hook',
      operationConfig: { drop: ['x'] },
      environment: { LOG_LEVEL: 'debug' },
    });
    const out = execFileSync('aws', ['batch', 'describe-jobs', '--jobs', job.batchJobId, '--endpoint-url', motoEndpoint(), '--output', 'json'], {
      env: { ...process.env, ...motoEnv() },
      encoding: 'utf8',
    });
    const detail = JSON.parse(out).jobs[0];
    const env = Object.fromEntries(detail.container.environment.map((kv: { name: string; value: string }) => [kv.name, kv.value]));
    expect(env).toMatchObject({
      JOB_ID: job.jobId,
      OPERATION: 'transform-records',
      INPUT_S3_BUCKET: m.bucket,
      INPUT_S3_KEY: `jobs/${job.jobId}/inputs.json`,
      OUTPUT_S3_BUCKET: m.bucket,
      OUTPUT_S3_KEY: `jobs/${job.jobId}/output/result.json`,
      TENANT_ID: 'tenant-a',
      USER_ID: 'user-1',
      CALLBACK_URL: 'https://example.com/hook',
      OPERATION_CONFIG: '{"drop":["x"]}',
      LOG_LEVEL: 'debug',
    });
    expect(detail.tags).toEqual({ 'job-id': job.jobId, 'tenant-id': 'tenant-a', 'user-id': 'user-1' });
    expect(detail.jobName).toBe(`job-${job.jobId}`);
  });

  test('an inputKey is passed through without staging anything', async () => {
    const job = await clientFor().submit({ operation: 'aggregate-defects', inputKey: 'datasets/defects.jsonl' });
    expect(job.input).toEqual({ bucket: m.bucket, key: 'datasets/defects.jsonl' });
    await expect(m.s3.send(new GetObjectCommand({ Bucket: m.bucket, Key: `jobs/${job.jobId}/inputs.json` }))).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  test('the same client token returns the same job and never creates a second one', async () => {
    const client = clientFor();
    const first = await client.submit({ operation: 'aggregate-defects', input: {}, clientToken: 'order-42' });
    const second = await client.submit({ operation: 'aggregate-defects', input: {}, clientToken: 'order-42' });
    expect(first.created).toBe(true);
    expect(second).toMatchObject({ created: false, jobId: first.jobId, batchJobId: first.batchJobId });
    expect(await jobsNamed(first.jobName)).toBe(1);
  });

  test('tags the idempotency lock and record like the input, so the bucket lifecycle expires them', async () => {
    const job = await clientFor().submit({ operation: 'aggregate-defects', input: {}, clientToken: 'tagged-1', retentionDays: 90 });
    for (const key of ['submit.lock', 'submission.json']) {
      const tags = await m.s3.send(new GetObjectTaggingCommand({ Bucket: m.bucket, Key: `jobs/${job.jobId}/${key}` }));
      expect(Object.fromEntries(tags.TagSet!.map((t) => [t.Key, t.Value]))).toEqual({ 'retention-days': '90', 'job-id': job.jobId });
    }
  });

  test('ten concurrent submits with one client token create one job (the S3 submit lock serializes them)', async () => {
    const client = clientFor({ sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))) });
    const jobs = await Promise.all(Array.from({ length: 10 }, () => client.submit({ operation: 'aggregate-defects', input: {}, clientToken: 'race-1' })));
    expect(new Set(jobs.map((j) => j.batchJobId)).size).toBe(1);
    expect(jobs.filter((j) => j.created)).toHaveLength(1);
    expect(await jobsNamed(jobs[0].jobName)).toBe(1);
  });

  test('the same client token from two tenants makes two jobs', async () => {
    const client = clientFor();
    const a = await client.submit({ operation: 'aggregate-defects', input: {}, clientToken: 'shared', tenantId: 'ta' });
    const b = await client.submit({ operation: 'aggregate-defects', input: {}, clientToken: 'shared', tenantId: 'tb' });
    expect(a.jobId).not.toBe(b.jobId);
  });

  test('a stale submit lock left by a crashed submitter is taken over', async () => {
    const jobId = BatchJobClient.jobIdForToken('crashed');
    await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `jobs/${jobId}/submit.lock`, Body: '{}' }));
    const job = await clientFor({ lockStaleMs: 0 }).submit({ operation: 'aggregate-defects', input: {}, clientToken: 'crashed' });
    expect(job).toMatchObject({ jobId, created: true });
  });

  test('retries SubmitJob throttled with HTTP 429 by a proxy in front of moto, and submits once', async () => {
    const proxy = await startThrottleProxy(motoEndpoint(), /^\/v1\/submitjob/, 3);
    try {
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      const delays: number[] = [];
      const job = await clientFor({
        clients: { batch, s3: m.s3, logs: m.logs },
        sleep: async (ms) => void delays.push(ms),
        retryBaseMs: 10,
        random: () => 0.999,
      }).submit({ operation: 'aggregate-defects', input: {}, clientToken: 'throttled-1' });
      expect(proxy.rejected()).toBe(3);
      expect(proxy.forwarded()).toBe(1);
      expect(delays).toEqual([9, 19, 39]); // full jitter at random=0.999: just under 10, 20, 40
      expect(await jobsNamed(job.jobName)).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  test('gives up with ThrottledError when throttling outlasts maxRetries', async () => {
    const proxy = await startThrottleProxy(motoEndpoint(), /^\/v1\/submitjob/, 100);
    try {
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      const err = await clientFor({ clients: { batch, s3: m.s3, logs: m.logs }, maxRetries: 2 })
        .submit({ operation: 'aggregate-defects', input: {} })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ThrottledError);
      expect(proxy.rejected()).toBe(3);
    } finally {
      await proxy.close();
    }
  });
});

describe('submit refuses before calling AWS', () => {
  test('a fair-share queue without a share identifier', async () => {
    const err = await offlineClient({ fairShare: true }).submit({ operation: 'aggregate-defects', input: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect((err as InvalidRequestError).errors).toEqual([expect.objectContaining({ field: 'shareIdentifier' })]);
  });

  test('container overrides over the size limit', async () => {
    // The policy caps operationConfig at 4096 bytes; a lower overrides limit shows the overall check.
    const err = await offlineClient({ fairShare: false, maxOverridesBytes: 2048 })
      .submit({ operation: 'transform-records', input: {}, operationConfig: { set: { big: 'x'.repeat(3000) } } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect((err as InvalidRequestError).errors[0]).toMatchObject({ field: 'environment', message: expect.stringMatching(/bytes of JSON; the limit is 2048/) });
  });

  test('bad fields, each reported with its field and value', async () => {
    const err = await offlineClient({ fairShare: false })
      .submit({
        operation: 'Bad Op',
        retentionDays: 0,
        callbackUrl: 'ftp://x',
        tenantId: 'a;b',
        environment: { AWS_BATCH_X: '1', JOB_ID: 'x' },
      } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    const fields = (err as InvalidRequestError).errors.map((e) => e.field).sort();
    expect(fields).toEqual(['callbackUrl', 'environment.AWS_BATCH_X', 'environment.JOB_ID', 'input', 'operation', 'retentionDays', 'tenantId']);
    expect((err as InvalidRequestError).errors.find((e) => e.field === 'operation')?.value).toBe('Bad Op');
  });

  test('a fair-share queue found by DescribeJobQueues without a share identifier', async () => {
    const batch = new BatchClient({ ...motoClientConfig(), maxAttempts: 1 });
    const { CreateSchedulingPolicyCommand } = await import('@aws-sdk/client-batch');
    const policy = await batch.send(new CreateSchedulingPolicyCommand({ name: `client-fs-${Date.now()}`, fairsharePolicy: { shareDecaySeconds: 60 } }));
    const fair = await createMotoBatch('clientfs', { schedulingPolicyArn: policy.arn });
    const client = new BatchJobClient({ jobQueue: fair.jobQueue, jobDefinition: fair.jobDefinition, inputBucket: fair.bucket, clients: fair });
    await expect(client.submit({ operation: 'aggregate-defects', input: {} })).rejects.toThrow(/uses fair-share scheduling: a shareIdentifier is required/);
    const job = await client.submit({ operation: 'aggregate-defects', input: {}, shareIdentifier: 'tenantA' });
    expect(job.created).toBe(true);
  });
});

describe('following a job', () => {
  test('status finds a job by platform job id and by Batch job id', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {}, tenantId: 't1' });
    const byPlatform = await client.status(job.jobId);
    const byBatch = await client.status(job.batchJobId);
    expect(byPlatform).toMatchObject({ jobId: job.jobId, batchJobId: job.batchJobId, operation: 'aggregate-defects', tenantId: 't1' });
    expect(byBatch.jobId).toBe(job.jobId);
  });

  test('status of an unknown job throws JobNotFoundError', async () => {
    await expect(clientFor().status('does-not-exist')).rejects.toBeInstanceOf(JobNotFoundError);
  });

  test('wait returns once the job is SUCCEEDED and reports progress', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const seen: string[] = [];
    const info = await client.wait(job.jobId, { pollMs: 1, onProgress: (i) => seen.push(i.status) });
    expect(info.status).toBe('SUCCEEDED');
    expect(seen).toContain('SUCCEEDED');
  });

  test('result parses the output document and summarizes the rejects file', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const doc = { operation: 'aggregate-defects', records: 3, rejected: 7 };
    await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: job.output.key, Body: JSON.stringify(doc) }));
    const rejects = Array.from({ length: 7 }, (_, i) => JSON.stringify({ offset: i * 10, reason: 'bad json' })).join('\n');
    await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `${job.output.key}.rejects.jsonl`, Body: `${rejects}\n` }));
    const res = await client.result(job.jobId);
    expect(res.result).toEqual(doc);
    expect(res.rejects.count).toBe(7);
    expect(res.rejects.sample).toHaveLength(5);
    expect(res.rejects.sample[0]).toEqual({ offset: 0, reason: 'bad json' });
  });

  test('result before the output exists throws ResultNotReadyError', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    await expect(client.result(job.jobId)).rejects.toBeInstanceOf(ResultNotReadyError);
  });

  test("logs pages through every event of the job's stream in the job definition's log group", async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const info = await client.status(job.jobId);
    await m.logs.send(new CreateLogGroupCommand({ logGroupName: m.logGroup })).catch(() => undefined);
    await m.logs.send(new CreateLogStreamCommand({ logGroupName: m.logGroup, logStreamName: info.logStreamName }));
    const now = Date.now();
    await m.logs.send(
      new PutLogEventsCommand({
        logGroupName: m.logGroup,
        logStreamName: info.logStreamName,
        logEvents: Array.from({ length: 25 }, (_, i) => ({ timestamp: now + i, message: `line ${i}` })),
      }),
    );
    const messages: string[] = [];
    for await (const e of client.logs(job.jobId, { limit: 10, follow: true, pollMs: 1 })) messages.push(e.message);
    expect(messages).toEqual(Array.from({ length: 25 }, (_, i) => `line ${i}`));
  });

  test('cancel terminates the job with the reason', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const info = await client.cancel(job.jobId, 'not needed any more');
    expect(info.statusReason).toBe('not needed any more');
  });

  test('list returns jobs of the queue by status up to the limit', async () => {
    const client = clientFor();
    await client.submit({ operation: 'aggregate-defects', input: {} });
    await client.submit({ operation: 'aggregate-defects', input: {} });
    const jobs = await client.list({ status: 'SUCCEEDED', limit: 2 });
    expect(jobs).toHaveLength(2);
    expect(jobs.every((j) => j.status === 'SUCCEEDED' && j.jobId && j.jobName === `job-${j.jobId}`)).toBe(true);
  });
});

describe('backoff', () => {
  test('full jitter stays within [0, min(cap, base * 2^attempt))', () => {
    const policy = { baseMs: 100, maxDelayMs: 1000, random: () => 0.999 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, policy))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(3, { ...policy, random: () => 0 })).toBe(0);
  });
});

test('submit refuses a retention-days value the bucket lifecycle rules do not expire', async () => {
  const err = await offlineClient({ fairShare: false }).submit({ operation: 'aggregate-defects', input: {}, retentionDays: 14 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InvalidRequestError);
  expect((err as InvalidRequestError).errors[0]).toMatchObject({ field: 'retentionDays', value: 14, message: expect.stringMatching(/1, 7, 30, 90, 365/) });
});

test('submit reports an unexpiring retention-days value together with the schema errors', async () => {
  const err = await offlineClient({ fairShare: false }).submit({ operation: 'Bad', input: {}, retentionDays: 14 }).catch((e: unknown) => e);
  expect((err as InvalidRequestError).errors.map((e) => e.field)).toEqual(['operation', 'retentionDays']);
});
