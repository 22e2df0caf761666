import type { CompletionDeps } from './completion';
import type { JobRoutes } from './routing';
import type { SizingLimits } from './policy/sizing';
import type { QuotaSettings } from './quota';
import { BatchClient, JobStatus } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { S3Client } from '@aws-sdk/client-s3';
import type { RetryStrategyV2 } from '@smithy/types';

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

export const ACTIVE_STATUSES: readonly JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['SUCCEEDED', 'FAILED'];
export const ALL_STATUSES: readonly JobStatus[] = [...ACTIVE_STATUSES, ...TERMINAL_STATUSES];

export interface BatchJobClientOptions {
  /** Job queue name or ARN. */
  readonly jobQueue: string;
  /** Job definition name, `name:revision` or ARN. @default - none: only `submit` needs it */
  readonly jobDefinition?: string;
  /**
   * Queues and job definitions of operations placed elsewhere than the default (EC2, streaming worker
   * image), by `<runsOn>:<image>`: `{ 'FARGATE:ocr': { jobQueue, jobDefinition } }` (routing.ts). Status,
   * wait, cancel and result find jobs in these queues too.
   * @default - none: an operation placed elsewhere is refused with an error naming the route it needs
   */
  readonly routes?: JobRoutes;
  /** Bucket that receives `jobs/{jobId}/inputs.json` (and the idempotency records). */
  readonly inputBucket: string;
  /** @default - the input bucket */
  readonly outputBucket?: string;
  /** @default - the SDK's region chain (AWS_REGION, profile) */
  readonly region?: string;
  /**
   * Bring your own SDK clients (endpoint overrides, custom credentials). Give them `maxAttempts: 1`:
   * the client's retry strategy below already retries every call. @default - created here with maxAttempts 1
   */
  readonly clients?: { readonly batch?: BatchClient; readonly s3?: S3Client; readonly logs?: CloudWatchLogsClient };
  /** Whether the queue has a fair-share scheduling policy. @default - looked up once with DescribeJobQueues */
  readonly fairShare?: boolean;
  /** Retries after the first attempt of a throttled or transiently failed call (maxAttempts - 1). @default 8 */
  readonly maxRetries?: number;
  /**
   * The SDK v3 retry mode: `standard` (exponential backoff with full jitter) or `adaptive` (also
   * rate-limits this client while AWS throttles it; good for bulk submits). @default 'standard'
   */
  readonly retryMode?: 'standard' | 'adaptive';
  /** An SDK retry strategy (e.g. `new ConfiguredRetryStrategy(4, 100)` from @smithy/core/retry); wins over maxRetries and retryMode. */
  readonly retryStrategy?: RetryStrategyV2;
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
  /**
   * The stack's ceiling on `vcpus` / `memoryMiB` of one job (the submit Lambdas read it from
   * MAX_JOB_VCPUS / MAX_JOB_MEMORY_MIB). @default - only the bounds each operation declares
   */
  readonly sizingLimits?: SizingLimits;
  /**
   * Per-tenant admission quotas in the stack's quota table (quota.ts `quotaSettings`, or `quotaFromEnv`):
   * submit refuses the tenant's N+1st active job or submission of the minute with QuotaExceededError.
   * @default - no quotas
   */
  readonly quota?: QuotaSettings;
  /** Pause between polls of a held submit lock and of `logs({ follow })`; injected by tests. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
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
  /** Stops waiting (WaitAbortedError) when it fires; the job itself is not touched. */
  readonly signal?: AbortSignal;
  /**
   * The polling fallback of the completion webhook: once the job is terminal, record it and call its
   * CALLBACK_URL through the same completeJob the webhook runs (whichever comes first does it, once).
   * @default - nothing is recorded or called
   */
  readonly completion?: CompletionDeps;
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
  /** At most this many events in total (like `list`'s limit). @default - every event */
  readonly limit?: number;
  /** Poll interval while following. @default 2000 */
  readonly pollMs?: number;
}

export interface ListOptions {
  /** @default - every status */
  readonly status?: JobStatus;
  /** At most this many jobs in total. @default 100 */
  readonly limit?: number;
}
