import { execFileSync } from 'child_process';
import { BatchClient, ListJobsCommand } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand, GetObjectTaggingCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import {
  AwsError,
  BatchJobClient,
  BatchJobClientOptions,
  InvalidRequestError,
  JobAlreadyFinishedError,
  JobFailedError,
  JobNotFoundError,
  OutputNotFoundError,
  ResultNotReadyError,
  ThrottledError,
  WaitAbortedError,
  WaitTimeoutError,
} from '../../../lib/client';
import { motoClientConfig, motoEndpoint, motoEnv } from '../../support/moto';
import { createMotoBatch, MotoBatch } from './moto-batch';
import { startRewriteProxy } from './rewrite-proxy';
import { startThrottleProxy } from './throttle-proxy';

let m: MotoBatch;
/** No pauses: lock polls don't sleep and the SDK retry strategy backs off 1 ms. */
const noWait = () => ({ sleep: async () => undefined, retryStrategy: new ConfiguredRetryStrategy(9, 1) });

function clientFor(extra: Partial<BatchJobClientOptions> = {}): BatchJobClient {
  return new BatchJobClient({
    jobQueue: m.jobQueue,
    jobDefinition: m.jobDefinition,
    inputBucket: m.bucket,
    clients: { batch: m.batch, s3: m.s3, logs: m.logs },
    fairShare: false,
    ...noWait(),
    ...extra,
  });
}

/** A client whose SDK clients point at a closed port: any AWS call fails with ECONNREFUSED. */
function offlineClient(extra: Partial<BatchJobClientOptions> = {}): BatchJobClient {
  const dead = { ...motoClientConfig(), endpoint: 'http://127.0.0.1:9', maxAttempts: 1 };
  const clients = { batch: new BatchClient(dead), s3: new S3Client(dead), logs: new CloudWatchLogsClient(dead) };
  return new BatchJobClient({ jobQueue: 'q', jobDefinition: 'd', inputBucket: 'b', clients, maxRetries: 0, ...extra });
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

  test("retries SubmitJob throttled with HTTP 429 by a proxy in front of moto with the SDK's standard strategy, and submits once", async () => {
    const proxy = await startThrottleProxy(motoEndpoint(), /^\/v1\/submitjob/, 2);
    try {
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      // No retryStrategy given: the default StandardRetryStrategy (maxRetries 8) with its own backoff.
      const job = await clientFor({ clients: { batch, s3: m.s3, logs: m.logs }, retryStrategy: undefined }).submit({
        operation: 'aggregate-defects',
        input: {},
        clientToken: 'throttled-1',
      });
      expect(proxy.rejected()).toBe(2);
      expect(proxy.forwarded()).toBe(1);
      expect(await jobsNamed(job.jobName)).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  test('an injected SDK retry strategy decides the backoff of each retry', async () => {
    const proxy = await startThrottleProxy(motoEndpoint(), /^\/v1\/submitjob/, 3);
    try {
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      const attempts: number[] = [];
      const retryStrategy = new ConfiguredRetryStrategy(5, (attempt) => {
        attempts.push(attempt);
        return 1;
      });
      const job = await clientFor({ clients: { batch, s3: m.s3, logs: m.logs }, retryStrategy }).submit({ operation: 'aggregate-defects', input: {} });
      expect(attempts).toEqual([1, 2, 3]);
      expect(proxy.forwarded()).toBe(1);
      expect(await jobsNamed(job.jobName)).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  test("retryMode 'adaptive' rides out throttling too", async () => {
    const proxy = await startThrottleProxy(motoEndpoint(), /^\/v1\/submitjob/, 1);
    try {
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      const job = await clientFor({ clients: { batch, s3: m.s3, logs: m.logs }, retryStrategy: undefined, retryMode: 'adaptive' }).submit({
        operation: 'aggregate-defects',
        input: {},
      });
      expect(proxy.rejected()).toBe(1);
      expect(await jobsNamed(job.jobName)).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  test('gives up with ThrottledError when throttling outlasts the attempts', async () => {
    const proxy = await startThrottleProxy(motoEndpoint(), /^\/v1\/submitjob/, 100);
    try {
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      const err = await clientFor({ clients: { batch, s3: m.s3, logs: m.logs }, retryStrategy: new ConfiguredRetryStrategy(3, 1) })
        .submit({ operation: 'aggregate-defects', input: {} })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ThrottledError);
      expect(err).toMatchObject({ exitCode: 5, code: 'THROTTLED', requestId: 'throttled-3' });
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
    for await (const e of client.logs(job.jobId, { follow: true, pollMs: 1 })) messages.push(e.message);
    expect(messages).toEqual(Array.from({ length: 25 }, (_, i) => `line ${i}`));
    const first: string[] = [];
    for await (const e of client.logs(job.jobId, { limit: 10 })) first.push(e.message);
    expect(first).toEqual(Array.from({ length: 10 }, (_, i) => `line ${i}`));
  });

  test('cancel of a finished job is refused with JobAlreadyFinishedError', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const err = await client.cancel(job.jobId, 'not needed any more').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobAlreadyFinishedError);
    expect(err).toMatchObject({ exitCode: 6, message: expect.stringMatching(/already finished \(SUCCEEDED\)/) });
  });

  test('status through a client of another queue does not find the job, by either id', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const other = await createMotoBatch('otherq');
    const elsewhere = clientFor({ jobQueue: other.jobQueue });
    await expect(elsewhere.status(job.batchJobId)).rejects.toBeInstanceOf(JobNotFoundError);
    await expect(elsewhere.status(job.jobId)).rejects.toBeInstanceOf(JobNotFoundError);
    expect((await clientFor({ jobQueue: m.jobQueueArn }).status(job.batchJobId)).jobId).toBe(job.jobId);
  });

  test('result of a SUCCEEDED job without output says so (OutputNotFoundError), not "wait first"', async () => {
    const client = clientFor();
    const job = await client.submit({ operation: 'aggregate-defects', input: {} });
    const err = await client.result(job.jobId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputNotFoundError);
    expect((err as Error).message).toMatch(/SUCCEEDED but s3:\/\/.* does not exist/);
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

describe('typed errors', () => {
  test('a missing bucket is an AwsError with the request id, the operation and a hint naming the bucket', async () => {
    const err = await clientFor({ inputBucket: 'no-such-bucket-here' }).submit({ operation: 'aggregate-defects', input: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsError);
    expect(err).toMatchObject({ awsCode: 'NoSuchBucket', operation: 'PutObject', exitCode: 5, httpStatusCode: 404 });
    expect((err as AwsError).requestId).toMatch(/\S/);
    expect((err as AwsError).hint).toMatch(/no-such-bucket-here does not exist.*--input-bucket/);
  });

  test('an unreachable endpoint is an AwsError with a network hint', async () => {
    const err = await offlineClient().status('job-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsError);
    expect(err).toMatchObject({ exitCode: 5, message: expect.stringMatching(/ECONNREFUSED/), hint: expect.stringMatching(/could not reach the AWS endpoint/) });
  });
});

describe('jobs that are not SUCCEEDED (DescribeJobs rewritten by a proxy in front of moto)', () => {
  async function withStatus<T>(status: string, fn: (client: BatchJobClient, jobId: string) => Promise<T>, reason?: string): Promise<T> {
    const job = await clientFor().submit({ operation: 'aggregate-defects', input: {} });
    const proxy = await startRewriteProxy(motoEndpoint());
    try {
      proxy.setStatus(status, reason);
      const batch = new BatchClient({ ...motoClientConfig(), endpoint: proxy.endpoint, maxAttempts: 1 });
      return await fn(clientFor({ clients: { batch, s3: m.s3, logs: m.logs } }), job.jobId);
    } finally {
      await proxy.close();
    }
  }

  test('wait on a FAILED job throws JobFailedError with the reason', async () => {
    const err = await withStatus('FAILED', (c, id) => c.wait(id, { pollMs: 10 }).catch((e: unknown) => e), 'Essential container exited');
    expect(err).toBeInstanceOf(JobFailedError);
    expect((err as Error).message).toMatch(/Essential container exited/);
  });

  test('wait on a RUNNING job times out with WaitTimeoutError naming the last status', async () => {
    const err = await withStatus('RUNNING', (c, id) => c.wait(id, { pollMs: 10, maxPollMs: 20, timeoutMs: 200 }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect(err).toMatchObject({ lastStatus: 'RUNNING', exitCode: 4 });
  });

  test('wait({ signal }) stops with WaitAbortedError when the signal fires', async () => {
    const err = await withStatus('RUNNABLE', (c, id) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 800);
      return c.wait(id, { pollMs: 10, maxPollMs: 20, signal: controller.signal }).catch((e: unknown) => e);
    });
    expect(err).toBeInstanceOf(WaitAbortedError);
    expect(err).toMatchObject({ lastStatus: 'RUNNABLE' });
  });

  test('result of a RUNNING job is ResultNotReadyError (conflict)', async () => {
    const err = await withStatus('RUNNING', (c, id) => c.result(id).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(ResultNotReadyError);
    expect(err).toMatchObject({ exitCode: 6 });
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
