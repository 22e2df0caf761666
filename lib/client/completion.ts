import { JobDetail } from '@aws-sdk/client-batch';
import { GetObjectTaggingCommand, paginateListObjectsV2, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RETENTION_TAG, taggingHeader } from '../../containers/worker/src/retention';
import { CallbackDelivery, deliverCallback, DeliveryOutcome } from './callback';
import { isConditionFailure, isNotFound } from './context';
import { toJobInfo } from './lookup';
import { S3Location } from './types';

/**
 * What happens once per job when it reaches SUCCEEDED or FAILED, whoever notices first: the
 * completion webhook (SNS) or the polling fallback (BatchJobClient.wait with `completion`). Both call
 * completeJob with the job's Batch description; the job record `jobs/{jobId}/completion.json` is
 * created with If-None-Match, so only the first caller records it and calls the job's CALLBACK_URL.
 */

export const COMPLETION_RECORD_NAME = 'completion.json';
/** Objects listed by name in the record and the callback; the totals always count all of them. */
export const MAX_LISTED_OBJECTS = 100;
/** When the job's input carries no retention-days tag (a job submitted by hand). */
export const DEFAULT_COMPLETION_RETENTION_DAYS = 30;

export function completionRecordKey(jobId: string): string {
  return `jobs/${jobId}/${COMPLETION_RECORD_NAME}`;
}

/** The job record: where the result is, how big, and what happened. Also the callback's body. */
export interface CompletionSummary {
  readonly jobId: string;
  readonly batchJobId: string;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly statusReason?: string;
  readonly exitCode?: number;
  readonly operation?: string;
  readonly tenantId?: string;
  readonly userId?: string;
  /** `s3://<bucket>/jobs/<jobId>/output/` */
  readonly resultLocation?: string;
  readonly result?: {
    readonly objects: number;
    readonly bytes: number;
    /** The first MAX_LISTED_OBJECTS keys with their sizes. */
    readonly listed: readonly { readonly key: string; readonly bytes: number }[];
  };
  readonly startedAt?: string;
  readonly stoppedAt?: string;
  readonly completedAt: string;
}

export interface CompletionDeps {
  readonly s3: S3Client;
  /** Enables the callback; without it a job with a CALLBACK_URL is recorded, not called. */
  readonly callback?: CallbackDelivery;
  /** @default 30 */
  readonly defaultRetentionDays?: number;
  readonly now?: () => Date;
}

export interface CompletionResult {
  readonly outcome: 'recorded' | 'duplicate' | 'not-terminal' | 'not-a-platform-job';
  readonly summary?: CompletionSummary;
  readonly callback?: DeliveryOutcome;
}

function environmentOf(detail: JobDetail): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of detail.container?.environment ?? []) if (kv.name && kv.value !== undefined) env[kv.name] = kv.value;
  return env;
}

const isoOf = (d: Date | undefined) => (d ? d.toISOString() : undefined);

async function resultOf(s3: S3Client, bucket: string, prefix: string): Promise<NonNullable<CompletionSummary['result']>> {
  let objects = 0;
  let bytes = 0;
  const listed: { key: string; bytes: number }[] = [];
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
    for (const o of page.Contents ?? []) {
      objects++;
      bytes += o.Size ?? 0;
      if (listed.length < MAX_LISTED_OBJECTS) listed.push({ key: o.Key!, bytes: o.Size ?? 0 });
    }
  }
  return { objects, bytes, listed };
}

async function retentionOf(s3: S3Client, input: S3Location | undefined, fallback: number): Promise<number> {
  if (!input) return fallback;
  try {
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: input.bucket, Key: input.key }));
    const days = Number(tags.TagSet?.find((t) => t.Key === RETENTION_TAG)?.Value);
    return Number.isInteger(days) && days > 0 ? days : fallback;
  } catch (err) {
    if (isNotFound(err)) return fallback;
    throw err;
  }
}

/**
 * Records a finished job once and calls its CALLBACK_URL once. `detail` is the job's DescribeJobs
 * entry: its environment (set at submit, after the submission policy) is the only source of the
 * callback URL and the output location — never the notification that triggered the call.
 */
export async function completeJob(deps: CompletionDeps, detail: JobDetail): Promise<CompletionResult> {
  if (detail.status !== 'SUCCEEDED' && detail.status !== 'FAILED') return { outcome: 'not-terminal' };
  const env = environmentOf(detail);
  const info = toJobInfo(detail);
  if (!env.JOB_ID || !info.output) return { outcome: 'not-a-platform-job' };
  const now = deps.now ?? (() => new Date());
  const prefix = `jobs/${env.JOB_ID}/output/`;
  const summary: CompletionSummary = {
    jobId: env.JOB_ID,
    batchJobId: info.batchJobId,
    status: detail.status,
    statusReason: info.statusReason,
    exitCode: info.exitCode,
    operation: info.operation,
    tenantId: info.tenantId,
    userId: info.userId,
    resultLocation: `s3://${info.output.bucket}/${prefix}`,
    result: await resultOf(deps.s3, info.output.bucket, prefix),
    startedAt: isoOf(info.startedAt),
    stoppedAt: isoOf(info.stoppedAt),
    completedAt: now().toISOString(),
  };
  const retentionDays = await retentionOf(deps.s3, info.input, deps.defaultRetentionDays ?? DEFAULT_COMPLETION_RETENTION_DAYS);
  try {
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: info.output.bucket,
        Key: completionRecordKey(env.JOB_ID),
        Body: JSON.stringify(summary),
        ContentType: 'application/json',
        IfNoneMatch: '*',
        Tagging: taggingHeader({ retentionDays, jobId: env.JOB_ID }),
      }),
    );
  } catch (err) {
    if (isConditionFailure(err)) return { outcome: 'duplicate' };
    throw err;
  }
  if (!env.CALLBACK_URL || !deps.callback) return { outcome: 'recorded', summary };
  const callback = await deliverCallback(env.CALLBACK_URL, { type: 'job.completed', ...summary }, deps.callback);
  return { outcome: 'recorded', summary, callback };
}
