import { DeleteObjectCommand, PutObjectCommand, PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { tagSet } from '../../../containers/worker/src/retention';
import { call, ClientContext, getText, isConditionFailure } from '../context';
import { submissionRecordKey } from '../lookup';
import { S3Location } from '../types';

/**
 * Job-id claims and the cleanup of a failed submission. A claim is the same `jobs/{jobId}/submit.lock`
 * object the idempotent path uses (idempotency.ts), written with If-None-Match: * so exactly one
 * submission owns a job id, and carrying the hash of the canonical request (requestHash) so a later
 * submit with the same id can tell a retry of the same request from a different one.
 */
export function claimKey(jobId: string): string {
  return `jobs/${jobId}/submit.lock`;
}

/** Claims a caller-chosen job id; false when another submission holds it (nothing written then). */
export async function claimJobId(ctx: ClientContext, jobId: string, requestHash: string, Tagging: string): Promise<boolean> {
  try {
    await call(ctx, 'PutObject', () =>
      ctx.s3.send(
        new PutObjectCommand({
          Bucket: ctx.inputBucket,
          Key: claimKey(jobId),
          Body: JSON.stringify({ requestHash, at: new Date().toISOString() }),
          IfNoneMatch: '*',
          Tagging,
        }),
      ),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** The request hash the job id's submission recorded (submission record first, then its claim); undefined for records written before hashes existed. */
export async function recordedRequestHash(ctx: ClientContext, jobId: string): Promise<string | undefined> {
  for (const key of [submissionRecordKey(jobId), claimKey(jobId)]) {
    const text = await getText(ctx, { bucket: ctx.inputBucket, key });
    if (text === undefined) continue;
    try {
      const hash = (JSON.parse(text) as { requestHash?: unknown }).requestHash;
      if (typeof hash === 'string') return hash;
    } catch {
      // An unreadable record tells nothing; try the next one.
    }
  }
  return undefined;
}

/**
 * A submission that did not become a job leaves nothing that looks current: when Batch certainly did
 * not take the job, its staged input is deleted; when the outcome is unknown (the last SubmitJob
 * failed on the network, so the job may exist) the input is kept for that job but re-tagged to
 * expire with the shortest lifecycle rule (1 day by default).
 */
export async function discardStagedInput(ctx: ClientContext, input: S3Location, jobId: string, outcomeUnknown: boolean): Promise<void> {
  try {
    if (outcomeUnknown) {
      const days = Math.min(...ctx.retentionDaysValues);
      await call(ctx, 'PutObjectTagging', () =>
        ctx.s3.send(
          new PutObjectTaggingCommand({
            Bucket: input.bucket,
            Key: input.key,
            Tagging: { TagSet: tagSet({ retentionDays: days, jobId }) },
          }),
        ),
      );
    } else {
      await call(ctx, 'DeleteObject', () => ctx.s3.send(new DeleteObjectCommand({ Bucket: input.bucket, Key: input.key })));
    }
  } catch (err) {
    // The submit's own error is what the caller needs; the lifecycle rule still expires the object.
    console.warn(JSON.stringify({ level: 'warn', message: `could not discard s3://${input.bucket}/${input.key}: ${(err as Error).message}` }));
  }
}
