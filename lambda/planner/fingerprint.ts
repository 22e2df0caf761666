import { createHash } from 'crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ManifestChunk, runPrefix } from './run-layout';

/**
 * Chunk fingerprints: the SHA-256 of exactly the bytes a chunk's result depends on, so a retry after
 * the input was fixed can prove that a finished chunk's bytes are unchanged before it reuses the
 * chunk's result (docs/chunked-processing.md, "Runs: progress and retry").
 *
 * What a chunk's result depends on, by format (the chunk rule: a chunk owns every record whose first
 * byte is in [startByte, endByte)):
 * - JSON lines and CSV: the bytes [startByte - 1, endByte) - the byte before the start tells the
 *   engine whether the first line is its own - provided the range ends at a record end (byte
 *   endByte - 1 is a newline) or at the object's end; otherwise (a boundary inside a record longer
 *   than the planner's window) the chunk reads past its end and gets no fingerprint, so it always
 *   reruns. CSV chunks also depend on the header line.
 * - JSON arrays: the bytes [startByte, endByte) (boundaries are element starts at depth 1).
 * - gzip: the whole object (one whole-object chunk).
 * Whether the range ends at the object's end is hashed too: the same bytes followed by more bytes
 * are not the same last chunk.
 */
export const fingerprintsKey = (runId: string): string => `${runPrefix(runId)}fingerprints.json`;

/** The largest CSV header line a fingerprint covers (the planner's read window). */
const MAX_HEADER_BYTES = 64 * 1024;

export interface ChunkFingerprint {
  readonly index: number;
  readonly bucket: string;
  readonly key: string;
  readonly startByte: number;
  readonly endByte: number;
  /** ETag of the object version the bytes were read from. */
  readonly etag: string;
  readonly sha256: string;
}

/** Content of `runs/{runId}/fingerprints.json`, written by the aggregator of a run that did not succeed. */
export interface FingerprintFile {
  readonly schemaVersion: 1;
  readonly runId: string;
  readonly recordedAt: string;
  readonly chunks: readonly ChunkFingerprint[];
}

/** The object version a fingerprint is computed against. */
export interface FingerprintInput {
  readonly bucket: string;
  readonly key: string;
  readonly size: number;
  readonly etag?: string;
}

/** The object is no longer the version the fingerprint must describe (its ETag changed). */
export class InputChangedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputChanged';
  }
}

type ChunkShape = Pick<ManifestChunk, 'startByte' | 'endByte' | 'format' | 'gzip'>;

/**
 * SHA-256 of the bytes `chunk`'s result depends on in `input` (the version with `input.etag`), or
 * undefined when the chunk's result depends on bytes outside its range (it then always reruns).
 * Throws InputChangedError when the object's ETag is no longer `input.etag`.
 */
export async function chunkFingerprint(s3: S3Client, input: FingerprintInput, chunk: ChunkShape): Promise<string | undefined> {
  const hash = createHash('sha256');
  const atEnd = chunk.endByte === input.size;
  hash.update(JSON.stringify({ format: chunk.format, gzip: chunk.gzip, startByte: chunk.startByte, endByte: chunk.endByte, atEnd }));
  if (chunk.gzip) {
    if (chunk.startByte !== 0 || !atEnd) return undefined;
    await hashRange(s3, input, 0, input.size, hash);
    return hash.digest('hex');
  }
  if (chunk.format === 'json-array') {
    await hashRange(s3, input, chunk.startByte, chunk.endByte, hash);
    return hash.digest('hex');
  }
  if (chunk.format === 'csv' && chunk.startByte > 0) {
    const head = await readRange(s3, input, 0, Math.min(input.size, MAX_HEADER_BYTES));
    const nl = head.indexOf(0x0a);
    if (nl < 0) return undefined;
    hash.update(head.subarray(0, nl + 1));
  }
  const from = Math.max(0, chunk.startByte - 1);
  const last = await hashRange(s3, input, from, chunk.endByte, hash);
  if (!atEnd && last !== 0x0a) return undefined;
  return hash.digest('hex');
}

/** Streams [from, to) into `hash`; returns the last byte (undefined for an empty range). */
async function hashRange(s3: S3Client, input: FingerprintInput, from: number, to: number, hash: ReturnType<typeof createHash>): Promise<number | undefined> {
  if (to <= from) return undefined;
  const res = await get(s3, input, from, to);
  let last: number | undefined;
  let seen = 0;
  for await (const part of res.Body as AsyncIterable<Uint8Array>) {
    // A server that ignores Range would send the whole object: never hash more than asked.
    const keep = Math.min(part.byteLength, to - from - seen);
    if (keep <= 0) break;
    const slice = part.subarray(0, keep);
    hash.update(slice);
    seen += keep;
    last = slice[slice.length - 1];
  }
  if (seen !== to - from) throw new InputChangedError(`s3://${input.bucket}/${input.key}: expected ${to - from} bytes at ${from}, read ${seen}`);
  return last;
}

async function readRange(s3: S3Client, input: FingerprintInput, from: number, to: number): Promise<Buffer> {
  if (to <= from) return Buffer.alloc(0);
  const res = await get(s3, input, from, to);
  const bytes = await res.Body!.transformToByteArray();
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, to - from));
}

async function get(s3: S3Client, input: FingerprintInput, from: number, to: number) {
  let res;
  try {
    res = await s3.send(
      new GetObjectCommand({ Bucket: input.bucket, Key: input.key, Range: `bytes=${from}-${to - 1}`, ...(input.etag ? { IfMatch: input.etag } : {}) }),
    );
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412) {
      throw new InputChangedError(`s3://${input.bucket}/${input.key} changed since it was planned (ETag is no longer ${input.etag})`);
    }
    throw err;
  }
  // Servers that ignore If-Match (some local S3 servers) still report the ETag they served.
  if (input.etag && res.ETag && res.ETag !== input.etag) {
    throw new InputChangedError(`s3://${input.bucket}/${input.key} changed since it was planned (ETag ${res.ETag}, planned ${input.etag})`);
  }
  return res;
}
