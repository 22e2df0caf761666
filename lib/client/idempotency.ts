import { randomUUID, createHash } from 'crypto';
import { JobSummary } from '@aws-sdk/client-batch';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { call, ClientContext, isConditionFailure, isNotFound } from './context';
import { findSubmitted, SubmissionRecord, submissionRecordKey } from './lookup';

/** The platform job id an idempotent submit with this client token (and tenant) gets. */
export function jobIdForToken(clientToken: string, tenantId?: string): string {
  return createHash('sha256').update(`${tenantId ?? ''}\n${clientToken}`).digest('hex').slice(0, 32);
}

function lockKey(jobId: string): string {
  return `jobs/${jobId}/submit.lock`;
}

/**
 * Serializes identical submits: the first to create `jobs/{jobId}/submit.lock` (PutObject with
 * If-None-Match: *, atomic in S3) submits; the others wait until its job is visible and return it.
 * A lock older than lockStaleMs with no job behind it is taken over with If-Match on its ETag,
 * so exactly one waiter inherits it. Returns an existing job, or undefined when we hold the lock.
 */
export async function acquireLock(ctx: ClientContext, jobId: string, jobName: string, Tagging: string, requestHash?: string): Promise<JobSummary | undefined> {
  const Key = lockKey(jobId);
  const body = () => JSON.stringify({ owner: randomUUID(), at: new Date().toISOString(), requestHash });
  const deadline = Date.now() + ctx.lockWaitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await call(ctx, 'PutObject', () => ctx.s3.send(new PutObjectCommand({ Bucket: ctx.inputBucket, Key, Body: body(), IfNoneMatch: '*', Tagging })));
      return undefined;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    const existing = await findSubmitted(ctx, jobId, jobName);
    if (existing) return existing;
    const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.inputBucket, Key })).catch((err) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (head?.LastModified && Date.now() - head.LastModified.getTime() > ctx.lockStaleMs) {
      try {
        await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.inputBucket, Key, Body: body(), IfMatch: head.ETag, Tagging }));
        return undefined;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`another submit with the same client token holds s3://${ctx.inputBucket}/${Key} and its job did not appear within ${ctx.lockWaitMs} ms; retry later`);
    }
    if (head) await ctx.sleep(Math.max(50, Math.min(2000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2)));
  }
}

/** Lets a retry of the same token try again instead of waiting for a job that never came. */
export async function releaseLock(ctx: ClientContext, jobId: string): Promise<void> {
  await ctx.s3.send(new DeleteObjectCommand({ Bucket: ctx.inputBucket, Key: lockKey(jobId) })).catch(() => undefined);
}

export async function writeSubmissionRecord(ctx: ClientContext, jobId: string, record: SubmissionRecord, Tagging: string): Promise<void> {
  await call(ctx, 'PutObject', () =>
    ctx.s3.send(
      new PutObjectCommand({
        Bucket: ctx.inputBucket,
        Key: submissionRecordKey(jobId),
        Body: JSON.stringify(record),
        ContentType: 'application/json',
        Tagging,
      }),
    ),
  );
}
