import { DescribeJobsCommand, JobDetail, JobSummary, paginateListJobs, TerminateJobCommand } from '@aws-sdk/client-batch';
import { call, ClientContext, getText, retrying, toDate } from './context';
import { JobAlreadyFinishedError, JobNotFoundError } from './errors';
import { JOB_ID_PATTERN } from './schema';
import { JobInfo, JobSummaryInfo, TERMINAL_STATUSES } from './types';

const BATCH_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d+)?$/i;

/** What an idempotent submit writes to `jobs/{jobId}/submission.json` once Batch has the job. */
export interface SubmissionRecord {
  readonly batchJobId: string;
  readonly jobName: string;
  readonly submittedAt: string;
  /** requestHash of the submitted request (policy/index.ts), to refuse a reused token with another payload. */
  readonly requestHash?: string;
}

export function submissionRecordKey(jobId: string): string {
  return `jobs/${jobId}/submission.json`;
}

/** Current state of a job, by platform job id or Batch job id. */
export async function status(ctx: ClientContext, jobId: string): Promise<JobInfo> {
  return toJobInfo(await resolve(ctx, jobId));
}

/**
 * Cancels a job: TerminateJob stops RUNNING jobs and cancels queued ones alike. A job that already
 * finished is refused (JobAlreadyFinishedError) instead of "cancelling" it with no effect.
 */
export async function cancel(ctx: ClientContext, jobId: string, reason: string): Promise<JobInfo> {
  const detail = await resolve(ctx, jobId);
  if (TERMINAL_STATUSES.includes(detail.status!)) throw new JobAlreadyFinishedError(toJobInfo(detail).jobId, detail.status!);
  await call(ctx, 'TerminateJob', () => ctx.batch.send(new TerminateJobCommand({ jobId: detail.jobId!, reason })));
  return status(ctx, detail.jobId!);
}

export async function describe(ctx: ClientContext, batchJobId: string): Promise<JobDetail | undefined> {
  const res = await call(ctx, 'DescribeJobs', () => ctx.batch.send(new DescribeJobsCommand({ jobs: [batchJobId] })));
  return res.jobs?.[0];
}

/** Finds a job of the client's queue by Batch job id (or ARN) or by platform job id; a job of another queue is not found. */
export async function resolve(ctx: ClientContext, id: string): Promise<JobDetail> {
  if (BATCH_UUID.test(id) || id.startsWith('arn:')) {
    const detail = await describe(ctx, id);
    if (detail && inQueue(ctx, detail)) return detail;
  }
  if (JOB_ID_PATTERN.test(id)) {
    const found = await findSubmitted(ctx, id, `${ctx.jobNamePrefix}-${id}`);
    if (found?.jobId) {
      const detail = 'jobQueue' in found ? (found as JobDetail) : await describe(ctx, found.jobId);
      if (detail && inQueue(ctx, detail)) return detail;
    }
  }
  throw new JobNotFoundError(id, ctx.jobQueue);
}

/** Whether a job belongs to the client's queue or a routed one (given by name or ARN; Batch reports the ARN). */
export function inQueue(ctx: ClientContext, detail: JobDetail): boolean {
  const queue = detail.jobQueue ?? '';
  return ctx.jobQueues.some((q) => queue === q || queue.endsWith(`:job-queue/${q}`));
}

/** An earlier submit of this platform job id: the S3 record first (one GET), else a ListJobs by name. */
export async function findSubmitted(ctx: ClientContext, jobId: string, jobName: string): Promise<JobSummary | undefined> {
  const record = await readSubmissionRecord(ctx, jobId);
  if (record) {
    const detail = await describe(ctx, record.batchJobId);
    if (detail) return detail as JobSummary;
  }
  return findByName(ctx, jobName);
}

async function readSubmissionRecord(ctx: ClientContext, jobId: string): Promise<SubmissionRecord | undefined> {
  const text = await getText(ctx, { bucket: ctx.inputBucket, key: submissionRecordKey(jobId) });
  return text === undefined ? undefined : (JSON.parse(text) as SubmissionRecord);
}

/** Newest job of that exact name in the client's queue and the routed ones, any status (a JOB_NAME filter ignores jobStatus). */
export async function findByName(ctx: ClientContext, jobName: string): Promise<JobSummary | undefined> {
  let best: JobSummary | undefined;
  for (const jobQueue of ctx.jobQueues) {
    const pages = paginateListJobs({ client: retrying(ctx, ctx.batch, 'ListJobs') }, { jobQueue, filters: [{ name: 'JOB_NAME', values: [jobName] }] });
    for await (const page of pages) {
      for (const s of page.jobSummaryList ?? []) {
        if (s.jobName?.toLowerCase() !== jobName.toLowerCase()) continue;
        if (!best || (s.createdAt ?? 0) > (best.createdAt ?? 0)) best = s;
      }
    }
  }
  return best;
}

export function toJobInfo(d: JobDetail): JobInfo {
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

export function toSummary(ctx: ClientContext, s: JobSummary): JobSummaryInfo {
  const prefix = `${ctx.jobNamePrefix}-`;
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
