import type { S3Client } from '@aws-sdk/client-s3';

/**
 * The retention tag every object the platform writes carries, so the staging buckets' lifecycle rules
 * (lib/storage/staging-buckets.ts: one rule per allowed `retention-days` value, filtered on exactly
 * that tag) expire it. Runtime code (worker, Lambdas, lib/client, the local runner) tags through this
 * module only; the tag names are the same strings as StagingBuckets.RETENTION_TAG / JOB_ID_TAG (a test
 * checks they agree, since constructs do not import runtime code).
 */
export const RETENTION_TAG = 'retention-days';
export const JOB_ID_TAG = 'job-id';
/** Environment variable the stacks set on workers and Lambdas: the stage's default retention in days. */
export const RETENTION_DAYS_ENV = 'RETENTION_DAYS';
/**
 * Used when RETENTION_DAYS is absent (a job or Lambda started by hand): the client's default
 * retentionDays and a value the default lifecycle rules expire. Never "keep forever".
 */
export const FALLBACK_RETENTION_DAYS = 30;
const MAX_RETENTION_DAYS = 3650;

/** The retention in days from RETENTION_DAYS; absent or empty: the fallback. Anything else invalid throws naming the variable. */
export function retentionDaysFrom(env: Record<string, string | undefined> = process.env): number {
  const raw = env[RETENTION_DAYS_ENV]?.trim();
  if (raw === undefined || raw === '') return FALLBACK_RETENTION_DAYS;
  const days = /^[1-9]\d{0,3}$/.test(raw) ? Number(raw) : NaN;
  if (!(days >= 1 && days <= MAX_RETENTION_DAYS)) {
    throw new Error(`${RETENTION_DAYS_ENV} (${JSON.stringify(raw)}) is invalid; allowed: a whole number of days from 1 to ${MAX_RETENTION_DAYS}`);
  }
  return days;
}

export interface RetentionTags {
  /** Value of the retention-days tag. */
  readonly retentionDays: number;
  /** Value of the job-id tag, when the writer works for one job. */
  readonly jobId?: string;
}

/** The tags as S3's `Tagging` header value (URL-encoded query string). */
export function taggingHeader(tags: RetentionTags): string {
  const params = new URLSearchParams({ [RETENTION_TAG]: String(tags.retentionDays) });
  if (tags.jobId) params.set(JOB_ID_TAG, tags.jobId);
  return params.toString();
}

/** The tags as a TagSet (PutObjectTagging, lib-storage Upload's `tags`). */
export function tagSet(tags: RetentionTags): { Key: string; Value: string }[] {
  return [{ Key: RETENTION_TAG, Value: String(tags.retentionDays) }, ...(tags.jobId ? [{ Key: JOB_ID_TAG, Value: tags.jobId }] : [])];
}

const MIDDLEWARE_NAME = 'cdkBatchPlatformRetentionTagging';
/** Commands that create an object and accept a Tagging header. */
const CREATING_COMMANDS = new Set(['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand']);

/**
 * Makes every object this client creates carry the retention tags: PutObject and
 * CreateMultipartUpload get a `Tagging` header (so does every upload of @aws-sdk/lib-storage through
 * this client), CopyObject gets `TaggingDirective: REPLACE` with it (a copy would otherwise keep the
 * source's tags, or none). A writer that sets its own `Tagging` keeps it (the completion record copies
 * the input's retention). Writing with a Tagging header needs s3:PutObjectTagging. Returns the client.
 */
export function tagWrites(client: S3Client, tags: RetentionTags): S3Client {
  const header = taggingHeader(tags);
  client.middlewareStack.remove(MIDDLEWARE_NAME);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (CREATING_COMMANDS.has(context.commandName ?? '')) {
        const input = args.input as { Tagging?: string; TaggingDirective?: string };
        if (input.Tagging === undefined) {
          const copy = context.commandName === 'CopyObjectCommand';
          return next({ ...args, input: { ...input, Tagging: header, ...(copy ? { TaggingDirective: 'REPLACE' } : {}) } as typeof args.input });
        }
      }
      return next(args);
    },
    { step: 'initialize', name: MIDDLEWARE_NAME },
  );
  return client;
}
