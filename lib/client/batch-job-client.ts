import { BatchClient } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { S3Client } from '@aws-sdk/client-s3';
import { ClientContext, publicError } from './context';
import { InvalidRequestError } from './errors';
import { jobIdForToken } from './idempotency';
import type { SizingLimits } from './policy/sizing';
import * as lookup from './lookup';
import * as results from './results';
import { checkJobRoutes, JobRoutes, routedQueues } from './routing';
import { DEFAULT_MAX_RETRIES, sdkRetryStrategy, sleep as realSleep } from './retry';
import { SubmitRequestInput } from './schema';
import * as submission from './submission';
import {
  BatchJobClientOptions,
  DEFAULT_JOB_NAME_PREFIX,
  DEFAULT_MAX_OVERRIDES_BYTES,
  DEFAULT_RETENTION_DAYS_VALUES,
  JobInfo,
  JobResult,
  JobSummaryInfo,
  ListOptions,
  LogEvent,
  LogsOptions,
  SubmittedJob,
  WaitOptions,
} from './types';
import * as waiting from './waiting';

export * from './types';

const DEFAULT_LOCK_STALE_MS = 60_000;
const DEFAULT_LOCK_WAIT_MS = 120_000;

/**
 * Submits and follows jobs of one job queue + job definition: stages inputs in S3 with the tags the
 * bucket lifecycle expires them by, sets the worker's environment contract, makes submits idempotent
 * with a client token, and retries AWS throttling with the SDK's standard or adaptive retry strategy.
 * Every error it throws is a BatchClientError (errors.ts): AWS failures arrive as AwsError with the
 * request id and a hint, each with the batchctl exit code it maps to.
 *
 * A facade: each method is one module (submission.ts + staging.ts + idempotency.ts, lookup.ts,
 * waiting.ts, results.ts) working on the shared ClientContext built here.
 */
export class BatchJobClient {
  public readonly jobQueue: string;
  public readonly jobDefinition?: string;
  /** Queues and job definitions of operations placed elsewhere (see BatchJobClientOptions.routes). */
  public readonly routes?: JobRoutes;
  public readonly inputBucket: string;
  public readonly outputBucket: string;
  public readonly jobNamePrefix: string;
  /** The stack's ceiling on `vcpus` / `memoryMiB` per job (the submit API and queue path check requests against it too). */
  public readonly sizingLimits: SizingLimits;
  private readonly ctx: ClientContext;

  constructor(options: BatchJobClientOptions) {
    for (const key of ['jobQueue', 'inputBucket'] as const) {
      if (!options[key]) throw new InvalidRequestError(`BatchJobClient: ${key} is required`, [{ field: key, message: 'is required' }]);
    }
    this.jobQueue = options.jobQueue;
    this.jobDefinition = options.jobDefinition;
    this.routes = options.routes === undefined ? undefined : checkJobRoutes(options.routes);
    this.inputBucket = options.inputBucket;
    this.outputBucket = options.outputBucket ?? options.inputBucket;
    this.jobNamePrefix = options.jobNamePrefix ?? DEFAULT_JOB_NAME_PREFIX;
    this.sizingLimits = options.sizingLimits ?? {};
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(this.jobNamePrefix)) {
      throw new InvalidRequestError('BatchJobClient: bad jobNamePrefix', [
        { field: 'jobNamePrefix', message: 'must be 1-32 letters, digits, - or _', value: this.jobNamePrefix },
      ]);
    }
    this.ctx = {
      jobQueue: this.jobQueue,
      jobDefinition: this.jobDefinition,
      routes: this.routes,
      jobQueues: routedQueues(this.jobQueue, this.routes),
      inputBucket: this.inputBucket,
      outputBucket: this.outputBucket,
      jobNamePrefix: this.jobNamePrefix,
      // One SDK retry strategy governs every call (see retry.ts), so SDK clients we create don't retry on their own.
      batch: options.clients?.batch ?? new BatchClient({ region: options.region, maxAttempts: 1 }),
      s3:
        options.clients?.s3 ??
        new S3Client({ region: options.region, maxAttempts: 1, forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' }),
      logs: options.clients?.logs ?? new CloudWatchLogsClient({ region: options.region, maxAttempts: 1 }),
      retryStrategy: options.retryStrategy ?? sdkRetryStrategy(options.retryMode ?? 'standard', (options.maxRetries ?? DEFAULT_MAX_RETRIES) + 1),
      sleep: options.sleep ?? realSleep,
      maxOverridesBytes: options.maxOverridesBytes ?? DEFAULT_MAX_OVERRIDES_BYTES,
      lockStaleMs: options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
      lockWaitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
      logGroupOverride: options.logGroupName,
      retentionDaysValues: options.retentionDaysValues ?? DEFAULT_RETENTION_DAYS_VALUES,
      sizingLimits: options.sizingLimits ?? {},
      quota: options.quota,
      fairShare: options.fairShare !== undefined ? Promise.resolve(options.fairShare) : undefined,
      routedFairShare: new Map(),
      logGroups: new Map(),
    };
  }

  /** The platform job id an idempotent submit with this client token (and tenant) gets. */
  public static jobIdForToken(clientToken: string, tenantId?: string): string {
    return jobIdForToken(clientToken, tenantId);
  }

  /**
   * Stages the input, then submits the job. With a `clientToken` the call is idempotent: the job id
   * is derived from the token (and tenant), and an earlier job with that id is returned instead of
   * a second one. See docs/submitting.md "Idempotency" for how concurrent identical submits are serialized.
   */
  public submit(request: SubmitRequestInput, options: submission.SubmitOptions = {}): Promise<SubmittedJob> {
    return this.guard('SubmitJob', () => submission.submit(this.ctx, request, options));
  }

  /** Current state of a job, by platform job id or Batch job id. */
  public status(jobId: string): Promise<JobInfo> {
    return this.guard('DescribeJobs', () => lookup.status(this.ctx, jobId));
  }

  /**
   * Polls until the job is SUCCEEDED (returned) or FAILED (JobFailedError), with a growing interval;
   * the fallback when a completion notification was lost. Throws WaitTimeoutError after timeoutMs.
   */
  public wait(jobId: string, options: WaitOptions = {}): Promise<JobInfo> {
    return this.guard('DescribeJobs', () => waiting.wait(this.ctx, jobId, options));
  }

  /** Downloads and parses the job's output, plus a summary of `<output>.rejects.jsonl`. */
  public result(jobId: string): Promise<JobResult> {
    return this.guard('GetObject', () => results.result(this.ctx, jobId));
  }

  /**
   * The job's log events in order, page by page. With `follow`, keeps polling until the job is
   * terminal, then drains what is left.
   */
  public async *logs(jobId: string, options: LogsOptions = {}): AsyncGenerator<LogEvent> {
    try {
      yield* results.logs(this.ctx, jobId, options);
    } catch (err) {
      throw publicError(this.ctx, err, 'GetLogEvents');
    }
  }

  /** Cancels a job: TerminateJob stops RUNNING jobs and cancels queued ones alike. */
  public cancel(jobId: string, reason = 'cancelled by user'): Promise<JobInfo> {
    return this.guard('TerminateJob', () => lookup.cancel(this.ctx, jobId, reason));
  }

  /** Jobs in the queue, newest first within each status, at most `limit` in total. */
  public list(options: ListOptions = {}): Promise<JobSummaryInfo[]> {
    return this.guard('ListJobs', () => results.list(this.ctx, options));
  }

  /** Every failure leaves the client as a typed BatchClientError. */
  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw publicError(this.ctx, err, operation);
    }
  }
}
