import { createHash, randomUUID } from 'crypto';
import {
  BatchClient,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  JobDetail,
  JobStatus,
  JobSummary,
  KeyValuePair,
  ListJobsCommand,
  ListJobsCommandInput,
  SubmitJobCommand,
  SubmitJobCommandInput,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  BatchClientError,
  FieldError,
  InvalidRequestError,
  JobFailedError,
  JobNotFoundError,
  ResultNotReadyError,
  WaitTimeoutError,
} from './errors';
import {
  DEFAULT_MAX_RETRIES,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  RetryPolicy,
  sleep as realSleep,
  withRetry,
} from './retry';
import { JOB_ID_PATTERN, parseSubmitRequest, SubmitRequest, SubmitRequestInput } from './schema';

/**
 * ECS caps a task's container overrides at 8192 characters of JSON, and Batch forwards a job's
 * overrides to ECS RunTask after adding its own AWS_BATCH_* variables (job id, queue and compute
 * environment names, attempt). We keep 1 KiB for those, so a job never passes SubmitJob and then
 * dies in RUNNABLE with "Container Overrides length must be at most 8192".
 */
export const DEFAULT_MAX_OVERRIDES_BYTES = 8192 - 1024;
/** Batch's documented quota for one SubmitJob request ("Maximum job payload size"). */
export const MAX_SUBMIT_PAYLOAD_BYTES = 30 * 1024;
export const DEFAULT_JOB_NAME_PREFIX = 'job';
/**
 * The `retention-days` values the staging buckets have lifecycle rules for (StagingBuckets'
 * default `retentionDaysValues`); an object tagged with any other value would never expire.
 */
export const DEFAULT_RETENTION_DAYS_VALUES: readonly number[] = [1, 7, 30, 90, 365];
/** Where Batch writes job logs when a job definition names no log group. */
export const DEFAULT_BATCH_LOG_GROUP = '/aws/batch/job';
const DEFAULT_LOCK_STALE_MS = 60_000;
const DEFAULT_LOCK_WAIT_MS = 120_000;
const REJECTS_SAMPLE_SIZE = 5;
const BATCH_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d+)?$/i;

export const ACTIVE_STATUSES: readonly JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['SUCCEEDED', 'FAILED'];
export const ALL_STATUSES: readonly JobStatus[] = [...ACTIVE_STATUSES, ...TERMINAL_STATUSES];

export interface BatchJobClientOptions {
  /** Job queue name or ARN. */
  readonly jobQueue: string;
  /** Job definition name, `name:revision` or ARN. @default - none: only `submit` needs it */
  readonly jobDefinition?: string;
  /** Bucket that receives `jobs/{jobId}/inputs.json` (and the idempotency records). */
  readonly inputBucket: string;
  /** @default - the input bucket */
  readonly outputBucket?: string;
  /** @default - the SDK's region chain (AWS_REGION, profile) */
  readonly region?: string;
  /** Bring your own SDK clients (endpoint overrides, custom credentials). @default - created here with maxAttempts 1 */
  readonly clients?: { readonly batch?: BatchClient; readonly s3?: S3Client; readonly logs?: CloudWatchLogsClient };
  /** Whether the queue has a fair-share scheduling policy. @default - looked up once with DescribeJobQueues */
  readonly fairShare?: boolean;
  /** Retries of a throttled call. @default 8 */
  readonly maxRetries?: number;
  /** Base of the exponential backoff in ms. @default 100 */
  readonly retryBaseMs?: number;
  /** Cap of one backoff delay in ms. @default 20000 */
  readonly retryMaxDelayMs?: number;
  /** Batch job names are `<prefix>-<jobId>`. @default 'job' */
  readonly jobNamePrefix?: string;
  /** CloudWatch Logs group of the jobs. @default - the job definition's awslogs-group, else /aws/batch/job */
  readonly logGroupName?: string;
  /** Limit on the JSON size of the container overrides. @default 7168 (8 KiB ECS limit minus Batch's own variables) */
  readonly maxOverridesBytes?: number;
  /** A submit lock older than this is taken over (its holder died between lock and SubmitJob). @default 60000 */
  readonly lockStaleMs?: number;
  /** How long an idempotent submit waits for a concurrent identical submit to finish. @default 120000 */
  readonly lockWaitMs?: number;
  /** Accepted `retention-days` values: those the buckets' lifecycle rules expire. @default [1, 7, 30, 90, 365] */
  readonly retentionDaysValues?: readonly number[];
  /** Injected for tests. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Injected for tests (backoff jitter). @default Math.random */
  readonly random?: () => number;
}

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

export interface SubmittedJob {
  /** Platform job id: the worker's JOB_ID and the `jobs/{jobId}/` prefix. */
  readonly jobId: string;
  /** Id that Batch gave the job. */
  readonly batchJobId: string;
  readonly jobName: string;
  readonly jobArn?: string;
  /** false when an identical earlier submit (same client token) was returned instead. */
  readonly created: boolean;
  readonly input: S3Location;
  readonly output: S3Location;
}

export interface JobInfo {
  readonly jobId: string;
  readonly batchJobId: string;
  readonly jobName: string;
  readonly jobArn?: string;
  readonly jobDefinition?: string;
  readonly status: JobStatus;
  readonly statusReason?: string;
  readonly exitCode?: number;
  readonly attempts: number;
  readonly createdAt?: Date;
  readonly startedAt?: Date;
  readonly stoppedAt?: Date;
  readonly logStreamName?: string;
  readonly operation?: string;
  readonly tenantId?: string;
  readonly userId?: string;
  readonly input?: S3Location;
  readonly output?: S3Location;
  readonly tags: Record<string, string>;
  /** Child progress of an array job. */
  readonly array?: { readonly size: number; readonly succeeded: number; readonly failed: number };
}

export interface JobSummaryInfo {
  readonly batchJobId: string;
  readonly jobName: string;
  /** Platform id when the name follows `<prefix>-<jobId>`. */
  readonly jobId?: string;
  readonly status: JobStatus;
  readonly statusReason?: string;
  readonly exitCode?: number;
  readonly createdAt?: Date;
  readonly stoppedAt?: Date;
}

export interface WaitOptions {
  /** @default 3600000 (1 hour) */
  readonly timeoutMs?: number;
  /** First polling interval; grows by 1.5x per poll. @default 2000 */
  readonly pollMs?: number;
  /** @default 30000 */
  readonly maxPollMs?: number;
  /** Called after every poll. */
  readonly onProgress?: (info: JobInfo) => void;
}

export interface JobResult {
  readonly jobId: string;
  readonly location: S3Location;
  readonly result: unknown;
  readonly rejects: { readonly location: S3Location; readonly count: number; readonly sample: unknown[] };
}

export interface LogEvent {
  readonly timestamp?: number;
  readonly message: string;
}

export interface LogsOptions {
  /** Keep reading until the job is SUCCEEDED or FAILED. @default false */
  readonly follow?: boolean;
  /** Events per GetLogEvents page (1-10000). @default - the API's (up to 1 MB / 10000 events) */
  readonly limit?: number;
  /** Poll interval while following. @default 2000 */
  readonly pollMs?: number;
}

export interface ListOptions {
  /** @default - every status */
  readonly status?: JobStatus;
  /** @default 100 */
  readonly limit?: number;
}

interface SubmissionRecord {
  readonly batchJobId: string;
  readonly jobName: string;
  readonly submittedAt: string;
}

/**
 * Submits and follows jobs of one job queue + job definition: stages inputs in S3 with the tags the
 * bucket lifecycle expires them by, sets the worker's environment contract, makes submits idempotent
 * with a client token, and retries AWS throttling with backoff and full jitter.
 */
export class BatchJobClient {
  public readonly jobQueue: string;
  public readonly jobDefinition?: string;
  public readonly inputBucket: string;
  public readonly outputBucket: string;
  public readonly jobNamePrefix: string;
  private readonly batch: BatchClient;
  private readonly s3: S3Client;
  private readonly logsClient: CloudWatchLogsClient;
  private readonly retry: RetryPolicy;
  private readonly maxOverridesBytes: number;
  private readonly lockStaleMs: number;
  private readonly lockWaitMs: number;
  private readonly logGroupOverride?: string;
  private readonly retentionDaysValues: readonly number[];
  private fairShare?: Promise<boolean>;
  private readonly logGroups = new Map<string, Promise<string>>();

  constructor(options: BatchJobClientOptions) {
    for (const key of ['jobQueue', 'inputBucket'] as const) {
      if (!options[key]) throw new InvalidRequestError(`BatchJobClient: ${key} is required`, [{ field: key, message: 'is required' }]);
    }
    this.jobQueue = options.jobQueue;
    this.jobDefinition = options.jobDefinition;
    this.inputBucket = options.inputBucket;
    this.outputBucket = options.outputBucket ?? options.inputBucket;
    this.jobNamePrefix = options.jobNamePrefix ?? DEFAULT_JOB_NAME_PREFIX;
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(this.jobNamePrefix)) {
      throw new InvalidRequestError('BatchJobClient: bad jobNamePrefix', [
        { field: 'jobNamePrefix', message: 'must be 1-32 letters, digits, - or _', value: this.jobNamePrefix },
      ]);
    }
    // One retry policy (ours) governs every call, so SDK clients we create don't retry on their own.
    this.batch = options.clients?.batch ?? new BatchClient({ region: options.region, maxAttempts: 1 });
    this.s3 =
      options.clients?.s3 ??
      new S3Client({ region: options.region, maxAttempts: 1, forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' });
    this.logsClient = options.clients?.logs ?? new CloudWatchLogsClient({ region: options.region, maxAttempts: 1 });
    this.retry = {
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
      baseMs: options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS,
      maxDelayMs: options.retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS,
      sleep: options.sleep ?? realSleep,
      random: options.random ?? Math.random,
    };
    this.maxOverridesBytes = options.maxOverridesBytes ?? DEFAULT_MAX_OVERRIDES_BYTES;
    this.lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
    this.lockWaitMs = options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS;
    this.logGroupOverride = options.logGroupName;
    this.retentionDaysValues = options.retentionDaysValues ?? DEFAULT_RETENTION_DAYS_VALUES;
    if (options.fairShare !== undefined) this.fairShare = Promise.resolve(options.fairShare);
  }

  /** The platform job id an idempotent submit with this client token (and tenant) gets. */
  public static jobIdForToken(clientToken: string, tenantId?: string): string {
    return createHash('sha256').update(`${tenantId ?? ''}\n${clientToken}`).digest('hex').slice(0, 32);
  }

  /**
   * Stages the input, then submits the job. With a `clientToken` the call is idempotent: the job id
   * is derived from the token (and tenant), and an earlier job with that id is returned instead of
   * a second one. See README "Idempotency" for how concurrent identical submits are serialized.
   */
  public async submit(request: SubmitRequestInput): Promise<SubmittedJob> {
    let req: SubmitRequest;
    try {
      req = parseSubmitRequest(request);
    } catch (err) {
      // Report the retention check with the schema's errors, so a caller sees every problem at once.
      const retention = typeof request.retentionDays === 'number' ? this.retentionError(request.retentionDays) : undefined;
      if (err instanceof InvalidRequestError && retention && !err.errors.some((e) => e.field === 'retentionDays')) {
        throw new InvalidRequestError('invalid submit request', [...err.errors, retention]);
      }
      throw err;
    }
    if (!this.jobDefinition) {
      throw new InvalidRequestError('BatchJobClient: a jobDefinition is required to submit', [{ field: 'jobDefinition', message: 'is required to submit' }]);
    }
    const jobId = req.jobId ?? (req.clientToken ? BatchJobClient.jobIdForToken(req.clientToken, req.tenantId) : randomUUID().replace(/-/g, ''));
    const jobName = req.jobName ?? `${this.jobNamePrefix}-${jobId}`;
    const input = { bucket: this.inputBucket, key: req.inputKey ?? `jobs/${jobId}/inputs.json` };
    const output = { bucket: this.outputBucket, key: `jobs/${jobId}/output/result.json` };
    const params = this.buildSubmitJob(req, jobId, jobName, input, output);
    await this.checkFairShare(req);

    const idempotent = req.clientToken !== undefined;
    let lockHeld = false;
    if (idempotent) {
      const existing = (await this.findSubmitted(jobId, jobName)) ?? (await this.acquireLock(jobId, jobName, this.tagging(jobId, req.retentionDays)));
      if (existing) return { jobId, batchJobId: existing.jobId!, jobName, jobArn: existing.jobArn, created: false, input, output };
      lockHeld = true;
    }
    try {
      if (req.input !== undefined) {
        await this.call('PutObject', () =>
          this.s3.send(
            new PutObjectCommand({
              Bucket: input.bucket,
              Key: input.key,
              Body: JSON.stringify(req.input),
              ContentType: 'application/json',
              Tagging: this.tagging(jobId, req.retentionDays),
            }),
          ),
        );
      }
      const res = await withRetry('SubmitJob', this.retry, () => this.batch.send(new SubmitJobCommand(params)), {
        // A SubmitJob that failed on the network may still have created the job; only an idempotent
        // submit can look for it (by name) and so retry safely.
        retryTransient: idempotent,
        beforeRetry: idempotent ? async () => (await this.findByName(jobName)) as never : undefined,
      }).catch((err) => {
        throw this.mapError(err, 'SubmitJob');
      });
      const batchJobId = res.jobId!;
      if (idempotent) {
        await this.writeSubmissionRecord(jobId, { batchJobId, jobName, submittedAt: new Date().toISOString() }, this.tagging(jobId, req.retentionDays));
      }
      return { jobId, batchJobId, jobName, jobArn: res.jobArn, created: true, input, output };
    } catch (err) {
      if (lockHeld) {
        // Let a retry of the same token try again instead of waiting for a job that never came.
        await this.s3.send(new DeleteObjectCommand({ Bucket: this.inputBucket, Key: this.lockKey(jobId) })).catch(() => undefined);
      }
      throw err;
    }
  }

  /** Current state of a job, by platform job id or Batch job id. */
  public async status(jobId: string): Promise<JobInfo> {
    return toJobInfo(await this.resolve(jobId));
  }

  /**
   * Polls until the job is SUCCEEDED (returned) or FAILED (JobFailedError), with a growing interval;
   * the fallback when a completion notification was lost. Throws WaitTimeoutError after timeoutMs.
   */
  public async wait(jobId: string, options: WaitOptions = {}): Promise<JobInfo> {
    const timeoutMs = options.timeoutMs ?? 3_600_000;
    const maxPollMs = options.maxPollMs ?? 30_000;
    let delay = options.pollMs ?? 2000;
    const started = Date.now();
    for (;;) {
      const info = await this.status(jobId);
      options.onProgress?.(info);
      if (info.status === 'SUCCEEDED') return info;
      if (info.status === 'FAILED') throw new JobFailedError(info.jobId, info.statusReason, info.exitCode);
      const remaining = timeoutMs - (Date.now() - started);
      if (remaining <= 0) throw new WaitTimeoutError(jobId, timeoutMs, info.status);
      await this.retry.sleep(Math.min(delay, remaining));
      delay = Math.min(maxPollMs, Math.ceil(delay * 1.5));
    }
  }

  /** Downloads and parses the job's output, plus a summary of `<output>.rejects.jsonl`. */
  public async result(jobId: string): Promise<JobResult> {
    const info = await this.status(jobId);
    const location = info.output ?? { bucket: this.outputBucket, key: `jobs/${info.jobId}/output/result.json` };
    const text = await this.getText(location);
    if (text === undefined) {
      if (info.status === 'FAILED') throw new JobFailedError(info.jobId, info.statusReason, info.exitCode);
      throw new ResultNotReadyError(info.jobId, info.status, `s3://${location.bucket}/${location.key}`);
    }
    let result: unknown;
    try {
      result = JSON.parse(text);
    } catch {
      throw new Error(`s3://${location.bucket}/${location.key} is not one JSON document (${text.length} bytes); download it with \`aws s3 cp\``);
    }
    const rejectsLocation = { bucket: location.bucket, key: `${location.key}.rejects.jsonl` };
    return { jobId: info.jobId, location, result, rejects: { location: rejectsLocation, ...(await this.summarizeRejects(rejectsLocation)) } };
  }

  /**
   * The job's log events in order, page by page (GetLogEvents until the forward token repeats).
   * With `follow`, keeps polling until the job is terminal, then drains what is left.
   */
  public async *logs(jobId: string, options: LogsOptions = {}): AsyncGenerator<LogEvent> {
    const pollMs = options.pollMs ?? 2000;
    let info = await this.status(jobId);
    let terminalSeen = TERMINAL_STATUSES.includes(info.status);
    const logGroupName = await this.logGroupFor(info);
    let token: string | undefined;
    for (;;) {
      let page: { events?: { timestamp?: number; message?: string }[]; nextForwardToken?: string } | undefined;
      if (info.logStreamName) {
        try {
          page = await this.call('GetLogEvents', () =>
            this.logsClient.send(
              new GetLogEventsCommand({ logGroupName, logStreamName: info.logStreamName, startFromHead: true, nextToken: token, limit: options.limit }),
            ),
          );
        } catch (err) {
          if ((err as Error).name !== 'ResourceNotFoundException') throw err;
        }
      }
      for (const e of page?.events ?? []) yield { timestamp: e.timestamp, message: e.message ?? '' };
      const next = page?.nextForwardToken;
      if (page && next !== token) {
        token = next;
        continue;
      }
      // Caught up with what exists now.
      if (!options.follow || terminalSeen) return;
      await this.retry.sleep(pollMs);
      const previousStream = info.logStreamName;
      info = await this.status(jobId);
      if (info.logStreamName !== previousStream) token = undefined; // a retry attempt writes a new stream
      terminalSeen = TERMINAL_STATUSES.includes(info.status);
    }
  }

  /** Cancels a job: TerminateJob stops RUNNING jobs and cancels queued ones alike. */
  public async cancel(jobId: string, reason = 'cancelled by user'): Promise<JobInfo> {
    const detail = await this.resolve(jobId);
    await this.call('TerminateJob', () => this.batch.send(new TerminateJobCommand({ jobId: detail.jobId!, reason })));
    return this.status(detail.jobId!);
  }

  /** Jobs in the queue, newest first within each status, paginated until `limit`. */
  public async list(options: ListOptions = {}): Promise<JobSummaryInfo[]> {
    const limit = options.limit ?? 100;
    const out: JobSummaryInfo[] = [];
    // ListJobs without a status returns only RUNNING jobs, so "all" means one listing per status.
    for (const status of options.status ? [options.status] : ALL_STATUSES) {
      let nextToken: string | undefined;
      do {
        const page = await this.call('ListJobs', () =>
          this.batch.send(new ListJobsCommand({ jobQueue: this.jobQueue, jobStatus: status, nextToken, maxResults: Math.min(100, limit - out.length) })),
        );
        for (const s of page.jobSummaryList ?? []) {
          out.push(this.toSummary(s));
          if (out.length >= limit) return out;
        }
        nextToken = page.nextToken;
      } while (nextToken);
    }
    return out;
  }

  private buildSubmitJob(req: SubmitRequest, jobId: string, jobName: string, input: S3Location, output: S3Location): SubmitJobCommandInput {
    const env: Record<string, string | undefined> = {
      JOB_ID: jobId,
      OPERATION: req.operation,
      INPUT_S3_BUCKET: input.bucket,
      INPUT_S3_KEY: input.key,
      OUTPUT_S3_BUCKET: output.bucket,
      OUTPUT_S3_KEY: output.key,
      TENANT_ID: req.tenantId,
      USER_ID: req.userId,
      CALLBACK_URL: req.callbackUrl,
      OPERATION_CONFIG: req.operationConfig ? JSON.stringify(req.operationConfig) : undefined,
      ...req.environment,
    };
    const environment: KeyValuePair[] = Object.entries(env)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([name, value]) => ({ name, value }));
    const tags: Record<string, string> = { 'job-id': jobId };
    if (req.tenantId) tags['tenant-id'] = req.tenantId;
    if (req.userId) tags['user-id'] = req.userId;
    const params: SubmitJobCommandInput = {
      jobName,
      jobQueue: this.jobQueue,
      jobDefinition: this.jobDefinition,
      containerOverrides: { environment },
      tags,
      shareIdentifier: req.shareIdentifier,
      schedulingPriorityOverride: req.schedulingPriority,
      timeout: req.timeoutSeconds ? { attemptDurationSeconds: req.timeoutSeconds } : undefined,
    };
    const retention = this.retentionError(req.retentionDays);
    if (retention) throw new InvalidRequestError('invalid submit request', [retention]);
    if (jobName.length > 128) {
      throw new InvalidRequestError('invalid submit request', [{ field: 'jobName', message: 'the Batch job name would exceed 128 characters', value: jobName }]);
    }
    const overrideBytes = Buffer.byteLength(JSON.stringify(params.containerOverrides));
    if (overrideBytes > this.maxOverridesBytes) {
      throw new InvalidRequestError('invalid submit request', [
        {
          field: 'environment',
          message: `container overrides are ${overrideBytes} bytes of JSON; the limit is ${this.maxOverridesBytes} (ECS allows 8192 including Batch's own variables): move large values (operationConfig, environment) into the staged input`,
        },
      ]);
    }
    const payloadBytes = Buffer.byteLength(JSON.stringify(params));
    if (payloadBytes > MAX_SUBMIT_PAYLOAD_BYTES) {
      throw new InvalidRequestError('invalid submit request', [
        { field: '(request)', message: `the SubmitJob request is ${payloadBytes} bytes; Batch accepts at most ${MAX_SUBMIT_PAYLOAD_BYTES}` },
      ]);
    }
    return params;
  }

  private retentionError(days: number): FieldError | undefined {
    if (this.retentionDaysValues.includes(days)) return undefined;
    return { field: 'retentionDays', message: `the staging buckets expire objects tagged retention-days ${this.retentionDaysValues.join(', ')} only`, value: days };
  }

  private async checkFairShare(req: SubmitRequest): Promise<void> {
    this.fairShare ??= this.call('DescribeJobQueues', () => this.batch.send(new DescribeJobQueuesCommand({ jobQueues: [this.jobQueue] }))).then(
      (res) => {
        const queue = res.jobQueues?.[0];
        if (!queue) throw new InvalidRequestError(`job queue ${this.jobQueue} does not exist`, [{ field: 'jobQueue', message: 'not found', value: this.jobQueue }]);
        return Boolean(queue.schedulingPolicyArn);
      },
    );
    let fair: boolean;
    try {
      fair = await this.fairShare;
    } catch (err) {
      this.fairShare = undefined; // don't cache a failed lookup
      throw err;
    }
    if (fair && !req.shareIdentifier) {
      throw new InvalidRequestError('invalid submit request', [
        { field: 'shareIdentifier', message: `job queue ${this.jobQueue} uses fair-share scheduling: a shareIdentifier is required` },
      ]);
    }
    if (!fair && req.shareIdentifier) {
      throw new InvalidRequestError('invalid submit request', [
        { field: 'shareIdentifier', message: `job queue ${this.jobQueue} has no fair-share scheduling policy: Batch rejects a shareIdentifier`, value: req.shareIdentifier },
      ]);
    }
  }

  /** Every object the client writes carries the tags the bucket lifecycle rules expire it by. */
  private tagging(jobId: string, retentionDays: number): string {
    return new URLSearchParams({ 'retention-days': String(retentionDays), 'job-id': jobId }).toString();
  }

  private lockKey(jobId: string): string {
    return `jobs/${jobId}/submit.lock`;
  }

  /**
   * Serializes identical submits: the first to create `jobs/{jobId}/submit.lock` (PutObject with
   * If-None-Match: *, atomic in S3) submits; the others wait until its job is visible and return it.
   * A lock older than lockStaleMs with no job behind it is taken over with If-Match on its ETag,
   * so exactly one waiter inherits it. Returns an existing job, or undefined when we hold the lock.
   */
  private async acquireLock(jobId: string, jobName: string, Tagging: string): Promise<JobSummary | undefined> {
    const Key = this.lockKey(jobId);
    const body = () => JSON.stringify({ owner: randomUUID(), at: new Date().toISOString() });
    const deadline = Date.now() + this.lockWaitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.call('PutObject', () => this.s3.send(new PutObjectCommand({ Bucket: this.inputBucket, Key, Body: body(), IfNoneMatch: '*', Tagging })));
        return undefined;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
      const existing = await this.findSubmitted(jobId, jobName);
      if (existing) return existing;
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.inputBucket, Key })).catch((err) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (head?.LastModified && Date.now() - head.LastModified.getTime() > this.lockStaleMs) {
        try {
          await this.s3.send(new PutObjectCommand({ Bucket: this.inputBucket, Key, Body: body(), IfMatch: head.ETag, Tagging }));
          return undefined;
        } catch (err) {
          if (!isConditionFailure(err)) throw err;
        }
      }
      if (Date.now() > deadline) {
        throw new Error(`another submit with the same client token holds s3://${this.inputBucket}/${Key} and its job did not appear within ${this.lockWaitMs} ms; retry later`);
      }
      if (head) await this.retry.sleep(Math.max(50, Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + this.retry.random() / 2)));
    }
  }

  private async writeSubmissionRecord(jobId: string, record: SubmissionRecord, Tagging: string): Promise<void> {
    await this.call('PutObject', () =>
      this.s3.send(
        new PutObjectCommand({
          Bucket: this.inputBucket,
          Key: `jobs/${jobId}/submission.json`,
          Body: JSON.stringify(record),
          ContentType: 'application/json',
          Tagging,
        }),
      ),
    );
  }

  /** An earlier submit of this platform job id: the S3 record first (one GET), else a ListJobs by name. */
  private async findSubmitted(jobId: string, jobName: string): Promise<JobSummary | undefined> {
    const record = await this.readSubmissionRecord(jobId);
    if (record) {
      const detail = await this.describe(record.batchJobId);
      if (detail) return detail as JobSummary;
    }
    return this.findByName(jobName);
  }

  private async readSubmissionRecord(jobId: string): Promise<SubmissionRecord | undefined> {
    const text = await this.getText({ bucket: this.inputBucket, key: `jobs/${jobId}/submission.json` });
    return text === undefined ? undefined : (JSON.parse(text) as SubmissionRecord);
  }

  /** Newest job of that exact name in the queue, any status (a JOB_NAME filter ignores jobStatus). */
  private async findByName(jobName: string): Promise<JobSummary | undefined> {
    let best: JobSummary | undefined;
    let nextToken: string | undefined;
    do {
      const input: ListJobsCommandInput = { jobQueue: this.jobQueue, filters: [{ name: 'JOB_NAME', values: [jobName] }], nextToken };
      const page = await this.call('ListJobs', () => this.batch.send(new ListJobsCommand(input)));
      for (const s of page.jobSummaryList ?? []) {
        if (s.jobName?.toLowerCase() !== jobName.toLowerCase()) continue;
        if (!best || (s.createdAt ?? 0) > (best.createdAt ?? 0)) best = s;
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return best;
  }

  private async describe(batchJobId: string): Promise<JobDetail | undefined> {
    const res = await this.call('DescribeJobs', () => this.batch.send(new DescribeJobsCommand({ jobs: [batchJobId] })));
    return res.jobs?.[0];
  }

  /** Finds a job by Batch job id (or ARN) or by platform job id. */
  private async resolve(id: string): Promise<JobDetail> {
    if (BATCH_UUID.test(id) || id.startsWith('arn:')) {
      const detail = await this.describe(id);
      if (detail) return detail;
    }
    if (JOB_ID_PATTERN.test(id)) {
      const found = await this.findSubmitted(id, `${this.jobNamePrefix}-${id}`);
      if (found?.jobId) {
        const detail = 'jobQueue' in found ? (found as JobDetail) : await this.describe(found.jobId);
        if (detail) return detail;
      }
    }
    throw new JobNotFoundError(id);
  }

  private async logGroupFor(info: JobInfo): Promise<string> {
    if (this.logGroupOverride) return this.logGroupOverride;
    const def = info.jobDefinition ?? this.jobDefinition;
    if (!def) return DEFAULT_BATCH_LOG_GROUP;
    let group = this.logGroups.get(def);
    if (!group) {
      group = this.call('DescribeJobDefinitions', () => this.batch.send(new DescribeJobDefinitionsCommand({ jobDefinitions: [def] }))).then((res) => {
        const log = res.jobDefinitions?.[0]?.containerProperties?.logConfiguration;
        return (log?.logDriver === 'awslogs' && log.options?.['awslogs-group']) || DEFAULT_BATCH_LOG_GROUP;
      });
      this.logGroups.set(def, group);
    }
    return group;
  }

  private async summarizeRejects(location: S3Location): Promise<{ count: number; sample: unknown[] }> {
    let res;
    try {
      res = await this.call('GetObject', () => this.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key })));
    } catch (err) {
      if (isNotFound(err)) return { count: 0, sample: [] };
      throw err;
    }
    let count = 0;
    let pending = '';
    const sample: unknown[] = [];
    const take = (line: string) => {
      if (!line.trim()) return;
      count++;
      if (sample.length < REJECTS_SAMPLE_SIZE) {
        try {
          sample.push(JSON.parse(line));
        } catch {
          sample.push(line.slice(0, 1024));
        }
      }
    };
    // Streamed: a rejects file can be as large as the input.
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
      pending += Buffer.from(chunk).toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(take);
    }
    take(pending);
    return { count, sample };
  }

  private async getText(location: S3Location): Promise<string | undefined> {
    try {
      const res = await this.call('GetObject', () => this.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key })));
      return await res.Body!.transformToString('utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private toSummary(s: JobSummary): JobSummaryInfo {
    const prefix = `${this.jobNamePrefix}-`;
    return {
      batchJobId: s.jobId!,
      jobName: s.jobName!,
      jobId: s.jobName?.startsWith(prefix) ? s.jobName.slice(prefix.length) : undefined,
      status: s.status!,
      statusReason: s.statusReason,
      exitCode: s.container?.exitCode,
      createdAt: toDate(s.createdAt),
      stoppedAt: toDate(s.stoppedAt),
    };
  }

  private call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(operation, this.retry, fn);
  }

  private mapError(err: unknown, operation: string): unknown {
    if (err instanceof BatchClientError) return err;
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    if (e?.name === 'ClientException' || e?.$metadata?.httpStatusCode === 400) {
      return new InvalidRequestError(`${operation} rejected the request: ${e.message}`, [], { cause: err });
    }
    return err;
  }
}

function toJobInfo(d: JobDetail): JobInfo {
  const env: Record<string, string> = {};
  for (const kv of d.container?.environment ?? []) if (kv.name && kv.value !== undefined) env[kv.name] = kv.value;
  const tags = d.tags ?? {};
  const lastAttempt = d.attempts?.[d.attempts.length - 1];
  const summary = d.arrayProperties?.statusSummary;
  return {
    jobId: env.JOB_ID ?? tags['job-id'] ?? d.jobId!,
    batchJobId: d.jobId!,
    jobName: d.jobName!,
    jobArn: d.jobArn,
    jobDefinition: d.jobDefinition,
    status: d.status!,
    statusReason: d.statusReason ?? d.container?.reason,
    exitCode: d.container?.exitCode ?? lastAttempt?.container?.exitCode,
    attempts: d.attempts?.length ?? 0,
    createdAt: toDate(d.createdAt),
    startedAt: toDate(d.startedAt),
    stoppedAt: toDate(d.stoppedAt),
    logStreamName: d.container?.logStreamName ?? lastAttempt?.container?.logStreamName,
    operation: env.OPERATION,
    tenantId: env.TENANT_ID ?? tags['tenant-id'],
    userId: env.USER_ID ?? tags['user-id'],
    input: env.INPUT_S3_BUCKET && env.INPUT_S3_KEY ? { bucket: env.INPUT_S3_BUCKET, key: env.INPUT_S3_KEY } : undefined,
    output: env.OUTPUT_S3_BUCKET && env.OUTPUT_S3_KEY ? { bucket: env.OUTPUT_S3_BUCKET, key: env.OUTPUT_S3_KEY } : undefined,
    tags,
    array:
      d.arrayProperties?.size !== undefined
        ? { size: d.arrayProperties.size, succeeded: summary?.SUCCEEDED ?? 0, failed: summary?.FAILED ?? 0 }
        : undefined,
  };
}

function toDate(ms: number | undefined): Date | undefined {
  return ms === undefined ? undefined : new Date(ms);
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** 412 PreconditionFailed, or 409 ConditionalRequestConflict when two conditional writes race. */
function isConditionFailure(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 412 || e?.$metadata?.httpStatusCode === 409 || e?.name === 'PreconditionFailed';
}
