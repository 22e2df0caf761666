import { CopyObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { deleteKey, getText, putJson, WriterSnapshot } from './output';

/**
 * What an interrupted attempt leaves behind at `<OUTPUT_S3_KEY>.checkpoint.json` (in the output store):
 * the offset of the first record not yet processed, the operation's partial state, the counters, and
 * the open output uploads. One PutObject writes it, so it is either all there or not at all.
 * `fingerprint` ties it to the input it was made from; a checkpoint for other input is ignored.
 */
export interface Fingerprint {
  operation: string;
  config: string;
  bucket: string;
  key: string;
  etag?: string;
  start: number;
  end: number;
  format: string;
}

export interface Checkpoint {
  version: 1;
  fingerprint: Fingerprint;
  /** Absolute offset (in the object, or the decompressed stream for gzip) of the next record. */
  offset: number;
  state: Record<string, unknown>;
  bytesRead: number;
  /** Time spent by earlier attempts, for the summary's duration and rate. */
  elapsedMs: number;
  csvHeader?: string[];
  writers: { rejects: WriterSnapshot; output?: WriterSnapshot };
  savedAt: string;
  attempts: number;
}

export function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return (
    a.operation === b.operation &&
    a.config === b.config &&
    a.bucket === b.bucket &&
    a.key === b.key &&
    a.etag === b.etag &&
    a.start === b.start &&
    a.end === b.end &&
    a.format === b.format
  );
}

const nonNegative = z.number().int().nonnegative();
const writerSchema = z.object({
  uploadId: z.string().min(1).optional(),
  parts: z.array(z.object({ PartNumber: z.number().int().positive(), ETag: z.string().min(1) })),
  pending: z.string(),
});
const checkpointSchema = z.object({
  version: z.literal(1),
  fingerprint: z.object({
    operation: z.string(),
    config: z.string(),
    bucket: z.string(),
    key: z.string(),
    etag: z.string().optional(),
    start: nonNegative,
    end: nonNegative,
    format: z.string(),
  }),
  offset: nonNegative,
  state: z.record(z.string(), z.unknown()),
  bytesRead: nonNegative,
  elapsedMs: z.number().nonnegative(),
  csvHeader: z.array(z.string()).optional(),
  writers: z.object({ rejects: writerSchema, output: writerSchema.optional() }),
  savedAt: z.string(),
  attempts: z.number().int().positive(),
});

/** A checkpoint object that is there but cannot be used (truncated, not JSON, wrong shape). */
export class CorruptCheckpointError extends Error {
  constructor(readonly bucket: string, readonly key: string, readonly problem: string) {
    super(`checkpoint s3://${bucket}/${key} is corrupt: ${problem}`);
    this.name = 'CorruptCheckpointError';
  }
}

/**
 * The checkpoint at the key, or undefined when there is none. Throws CorruptCheckpointError when the
 * object exists but is not a complete, well-formed checkpoint: the caller moves it aside and starts over
 * instead of failing every retry on it.
 */
export async function loadCheckpoint(s3: S3Client, bucket: string, key: string): Promise<Checkpoint | undefined> {
  const text = await getText(s3, bucket, key);
  if (text === undefined) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CorruptCheckpointError(bucket, key, `not JSON (${(err as Error).message})`);
  }
  const parsed = checkpointSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorruptCheckpointError(bucket, key, `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return doc as Checkpoint;
}

/** Moves a corrupt checkpoint to `<key>.corrupt-<time>` (kept for inspection) and returns that key. */
export async function quarantineCheckpoint(s3: S3Client, bucket: string, key: string): Promise<string> {
  const aside = `${key}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await s3.send(
    new CopyObjectCommand({ Bucket: bucket, Key: aside, CopySource: `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}` }),
  );
  await deleteKey(s3, bucket, key);
  return aside;
}

export async function saveCheckpoint(s3: S3Client, bucket: string, key: string, cp: Checkpoint): Promise<void> {
  await putJson(s3, bucket, key, cp);
}

export async function deleteCheckpoint(s3: S3Client, bucket: string, key: string): Promise<void> {
  await deleteKey(s3, bucket, key);
}
