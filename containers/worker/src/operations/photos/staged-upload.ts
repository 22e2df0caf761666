import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';

/**
 * The archive's bytes leave the worker one fixed-size part at a time, each as an ordinary object
 * (`<key>.parts/00001`, ...), and become the archive at the end in one short multipart upload whose
 * parts are server-side copies of those objects (UploadPartCopy) plus a last part (the tail and the
 * ZIP central directory). Why not one multipart upload open for the whole run (lib-storage Upload):
 * an open upload cannot be handed to the next attempt by lib-storage, and must not outlive a SIGTERM;
 * staged objects survive an interruption, are listed in the checkpoint, and are deleted on success and
 * on failure. The only multipart upload lasts for the copies and is aborted on every error path.
 *
 * Memory: one part being filled plus at most `queueSize` parts being uploaded.
 */
export interface StagedPart {
  number: number;
  key: string;
  etag: string;
  size: number;
}

export const DEFAULT_QUEUE_SIZE = 2;
/** S3's limit of parts in a multipart upload; the last one is the tail. */
const MAX_PARTS = 10_000;

export function partKey(prefix: string, n: number): string {
  return `${prefix}${String(n).padStart(5, '0')}`;
}

export class StagedParts {
  readonly parts: StagedPart[];
  private buf: Buffer;
  private filled = 0;
  private readonly inflight = new Set<Promise<void>>();
  private failure?: unknown;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly partSize: number,
    private readonly queueSize = DEFAULT_QUEUE_SIZE,
    resume?: { parts: StagedPart[]; tail: Buffer },
  ) {
    this.parts = resume ? resume.parts.map((p) => ({ ...p })) : [];
    this.buf = Buffer.allocUnsafe(partSize);
    if (resume) {
      resume.tail.copy(this.buf, 0);
      this.filled = resume.tail.length;
    }
  }

  /** Copies `data` into the current part; waits while `queueSize` parts are in flight (backpressure). */
  async write(data: Buffer): Promise<void> {
    let pos = 0;
    while (pos < data.length) {
      if (this.failure) throw this.failure;
      const n = Math.min(data.length - pos, this.partSize - this.filled);
      data.copy(this.buf, this.filled, pos, pos + n);
      this.filled += n;
      pos += n;
      if (this.filled === this.partSize) await this.ship();
    }
  }

  private async ship(): Promise<void> {
    while (this.inflight.size >= this.queueSize) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
    if (this.parts.length + 1 >= MAX_PARTS) {
      throw new Error(`archive needs more than ${MAX_PARTS} parts of ${this.partSize} bytes; raise partSizeMb`);
    }
    const body = this.buf;
    this.buf = Buffer.allocUnsafe(this.partSize);
    this.filled = 0;
    const part: StagedPart = { number: this.parts.length + 1, key: partKey(this.prefix, this.parts.length + 1), etag: '', size: body.length };
    this.parts.push(part);
    const p: Promise<void> = this.s3
      .send(new PutObjectCommand({ Bucket: this.bucket, Key: part.key, Body: body }))
      .then((res) => {
        part.etag = res.ETag ?? '';
      })
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inflight.delete(p);
      });
    this.inflight.add(p);
  }

  /** Waits for every part in flight; throws the first upload failure. */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
  }

  /** Bytes written but not yet in a staged part (always less than one part). */
  tail(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.filled));
  }
}

/** Keys of staged parts left under `prefix` (by this or an earlier attempt). */
export async function listStaged(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
  }
  return keys;
}

export async function deleteKeys(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const res = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
    );
    if (res.Errors && res.Errors.length > 0) {
      const e = res.Errors[0];
      throw new Error(`could not delete s3://${bucket}/${e.Key}: ${e.Code} ${e.Message}`);
    }
  }
}

/** True when every staged part is still there with the ETag the checkpoint recorded. */
export async function stagedPartsIntact(s3: S3Client, bucket: string, parts: StagedPart[]): Promise<boolean> {
  const limit = pLimit(8);
  const checks = await Promise.all(
    parts.map((p) =>
      limit(async () => {
        try {
          const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: p.key }));
          return head.ETag === p.etag && head.ContentLength === p.size;
        } catch {
          return false;
        }
      }),
    ),
  );
  return checks.every(Boolean);
}

export class AssemblyInterrupted extends Error {}

function notImplemented(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotImplemented' || e.Code === 'NotImplemented' || e.$metadata?.httpStatusCode === 501;
}

/**
 * Makes the archive visible at `key`: the staged parts (server-side copies, in order) plus `last`.
 * Without staged parts, one PutObject. Any failure or an abort of `signal` aborts the multipart upload
 * before returning, so no upload is left open.
 */
export async function assemble(
  s3: S3Client,
  bucket: string,
  key: string,
  parts: StagedPart[],
  last: Buffer,
  options: { contentType: string; signal?: AbortSignal; copyConcurrency?: number },
): Promise<void> {
  if (parts.length === 0) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: last, ContentType: options.contentType }));
    return;
  }
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: options.contentType }));
  const uploadId = created.UploadId!;
  try {
    const copyPart = async (p: StagedPart): Promise<string | undefined> => {
      if (serverSide) {
        try {
          const res = await s3.send(
            new UploadPartCopyCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: p.number,
              CopySource: `${bucket}/${encodeURIComponent(p.key)}`,
            }),
          );
          return res.CopyPartResult?.ETag;
        } catch (err) {
          if (!notImplemented(err)) throw err;
          // Some S3-compatible stores (s3rver, used by `npm start`) lack UploadPartCopy: copy through here.
          serverSide = false;
        }
      }
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: p.key }));
      const body = Buffer.from(await got.Body!.transformToByteArray());
      const res = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: p.number, Body: body }));
      return res.ETag;
    };
    let serverSide = true;
    // The first copy alone: it tells whether the store copies server-side.
    const etags: (string | undefined)[] = [];
    if (options.signal?.aborted) throw new AssemblyInterrupted('interrupted while assembling the archive');
    etags[0] = await copyPart(parts[0]);
    const limit = pLimit(serverSide ? (options.copyConcurrency ?? 4) : 2);
    // Settle every copy before aborting: a copy still running after AbortMultipartUpload could leave a part.
    let firstError: unknown;
    await Promise.all(
      parts.slice(1).map((p, i) =>
        limit(async () => {
          if (firstError) return;
          if (options.signal?.aborted) {
            firstError ??= new AssemblyInterrupted('interrupted while assembling the archive');
            return;
          }
          try {
            etags[i + 1] = await copyPart(p);
          } catch (err) {
            firstError ??= err;
          }
        }),
      ),
    );
    if (firstError) throw firstError;
    const copied = parts.map((p, i) => ({ PartNumber: p.number, ETag: etags[i] }));
    if (options.signal?.aborted) throw new AssemblyInterrupted('interrupted while assembling the archive');
    const lastNumber = parts.length + 1;
    const up = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: lastNumber, Body: last }));
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: [...copied, { PartNumber: lastNumber, ETag: up.ETag }] },
      }),
    );
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw err;
  }
}
