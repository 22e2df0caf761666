import type { S3Client } from '@aws-sdk/client-s3';
import { deleteKey, getJson, putJson, WriterSnapshot } from './output';

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

export async function loadCheckpoint(s3: S3Client, bucket: string, key: string): Promise<Checkpoint | undefined> {
  const cp = await getJson<Checkpoint>(s3, bucket, key);
  if (cp && cp.version !== 1) return undefined;
  return cp;
}

export async function saveCheckpoint(s3: S3Client, bucket: string, key: string, cp: Checkpoint): Promise<void> {
  await putJson(s3, bucket, key, cp);
}

export async function deleteCheckpoint(s3: S3Client, bucket: string, key: string): Promise<void> {
  await deleteKey(s3, bucket, key);
}
