import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';

/**
 * Output that no reader sees half-written: bytes go to a multipart upload whose object only appears at
 * CompleteMultipartUpload (or to a single PutObject when small). A snapshot (upload id, finished parts,
 * the not-yet-uploaded tail) goes into the checkpoint, so a retried attempt continues the same upload.
 * Buckets should abort incomplete multipart uploads after a day or so (lifecycle rule) for attempts
 * that died without a checkpoint.
 */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** S3's minimum size of every part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

export interface WriterSnapshot {
  uploadId?: string;
  parts: { PartNumber: number; ETag: string }[];
  /** Bytes written but not yet uploaded, base64. */
  pending: string;
}

export class PartWriter {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private uploadId?: string;
  private readonly parts: { PartNumber: number; ETag: string }[] = [];
  private inflight?: Promise<void>;
  private failure?: unknown;
  private bytesWritten = 0;

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly key: string,
    private readonly options: { partSize?: number; contentType?: string; resume?: WriterSnapshot } = {},
  ) {
    if (options.resume) {
      this.uploadId = options.resume.uploadId;
      this.parts.push(...options.resume.parts);
      const tail = Buffer.from(options.resume.pending, 'base64');
      if (tail.length > 0) {
        this.pending.push(tail);
        this.pendingLen = tail.length;
      }
    }
  }

  private get partSize(): number {
    return Math.max(this.options.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
  }

  get bytes(): number {
    return this.bytesWritten;
  }

  write(data: string | Buffer): void {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.pending.push(buf);
    this.pendingLen += buf.length;
    this.bytesWritten += buf.length;
  }

  /** Starts a part upload once a part's worth is pending; waits only if one is still in flight (backpressure). */
  flushIfFull(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pendingLen < this.partSize) return undefined;
    return this.uploadPending();
  }

  private async uploadPending(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    const body = Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    if (!this.uploadId) {
      const created = await this.s3.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, ContentType: this.options.contentType }),
      );
      this.uploadId = created.UploadId;
    }
    const partNumber = this.parts.length + 1;
    const slot = { PartNumber: partNumber, ETag: '' };
    this.parts.push(slot);
    this.inflight = this.s3
      .send(new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: partNumber, Body: body }))
      .then((res) => {
        slot.ETag = res.ETag ?? '';
      })
      .catch((err) => {
        this.failure = err;
      })
      .finally(() => {
        this.inflight = undefined;
      });
  }

  private async settle(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
  }

  async snapshot(): Promise<WriterSnapshot> {
    await this.settle();
    return {
      uploadId: this.uploadId,
      parts: this.parts.map((p) => ({ ...p })),
      pending: Buffer.concat(this.pending, this.pendingLen).toString('base64'),
    };
  }

  /** Makes the object visible at its key, complete. */
  async complete(): Promise<void> {
    await this.settle();
    const body = Buffer.concat(this.pending, this.pendingLen);
    if (!this.uploadId) {
      await this.s3.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: body, ContentType: this.options.contentType }),
      );
      return;
    }
    if (body.length > 0 || this.parts.length === 0) {
      this.pending = [body];
      this.pendingLen = body.length;
      await this.uploadPending();
      await this.settle();
    }
    await this.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: this.parts },
      }),
    );
  }

  async abort(): Promise<void> {
    await this.inflight?.catch(() => undefined);
    if (this.uploadId) {
      await this.s3
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId }))
        .catch(() => undefined);
    }
  }
}

export async function putJson(s3: S3Client, bucket: string, key: string, doc: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(doc), ContentType: 'application/json' }),
  );
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The object's text, or undefined when there is none. */
export async function getText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await res.Body!.transformToString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * Makes a new attempt's output state unambiguous before any input is read: deletes the results an
 * earlier run left at these keys (so a reader finds either this run's complete result or none, never an
 * old one), which also proves that the output bucket exists and that the job may write to it. Throws an
 * error naming the output and what to check otherwise.
 */
export async function prepareOutput(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  // One round trip instead of one per key (every chunk of a run starts with this); the error reported
  // is that of the first key that failed, in the order given.
  const outcomes = await Promise.allSettled(keys.map((key) => deleteOutput(s3, bucket, key)));
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) throw failed.reason;
}

async function deleteOutput(s3: S3Client, bucket: string, key: string): Promise<void> {
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    const e = err as { name?: string; message?: string };
    throw new Error(
      `output s3://${bucket}/${key} is not writable (${e.name ?? 'Error'}: ${e.message ?? String(err)}); ` +
        `check that OUTPUT_S3_BUCKET exists and that the job may write and delete objects under OUTPUT_S3_KEY. ` +
        `No input was read.`,
      { cause: err },
    );
  }
}

/** The parsed JSON object at the key, or undefined when there is none. */
export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString('utf8')) as T;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export async function deleteKey(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** Keys derived from OUTPUT_S3_KEY. */
export function derivedKeys(outputKey: string): { rejects: string; checkpoint: string; summary: string; manifest: string } {
  return {
    rejects: `${outputKey}.rejects.jsonl`,
    checkpoint: `${outputKey}.checkpoint.json`,
    summary: `${outputKey}.summary.json`,
    manifest: `${outputKey}.manifest.json`,
  };
}
