import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'stream';
import { createGunzip } from 'zlib';
import { parseHeader } from './csv';

export interface ObjectInfo {
  size: number;
  etag?: string;
}

export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectInfo> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: head.ContentLength ?? 0, etag: head.ETag };
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) {
      throw new Error(`input object s3://${bucket}/${key} does not exist`);
    }
    throw err;
  }
}

/**
 * The object's bytes from `from` on (open-ended ranged GET). The caller stops reading once its chunk is
 * done; breaking out of the iteration destroys the body, so at most a socket buffer past the chunk's
 * last record is transferred.
 */
export async function openRange(
  s3: S3Client,
  bucket: string,
  key: string,
  from: number,
  options: { gzip?: boolean; signal?: AbortSignal } = {},
): Promise<AsyncIterable<Buffer>> {
  const res = await s3.send(
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      Range: from > 0 ? `bytes=${from}-` : undefined,
    }),
    { abortSignal: options.signal },
  );
  const body = res.Body as Readable | undefined;
  if (!body) throw new Error(`empty body reading s3://${bucket}/${key}`);
  if (!options.gzip) return body;
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  body.on('error', (err) => gunzip.destroy(err));
  return body.pipe(gunzip);
}

/**
 * The CSV header row, for a chunk or a resumed run that does not start at byte 0: small ranged GETs of
 * the object's head until the first non-empty line is complete.
 */
export async function readCsvHeader(
  s3: S3Client,
  bucket: string,
  key: string,
  objectSize: number,
  maxBytes: number,
): Promise<string[]> {
  let want = Math.min(64 * 1024, objectSize);
  for (;;) {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${Math.max(0, want - 1)}` }));
    const bytes = Buffer.from(await res.Body!.transformToByteArray());
    let text = bytes.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      const complete = nl !== -1 || want >= objectSize;
      if (!complete) break;
      const line = text.slice(start, nl === -1 ? text.length : nl).replace(/\r$/, '');
      if (line.length > 0) return parseHeader(line);
      if (nl === -1) throw new Error(`CSV object s3://${bucket}/${key} has no header row`);
      start = nl + 1;
    }
    if (want >= maxBytes) throw new Error(`CSV header row of s3://${bucket}/${key} is longer than ${maxBytes} bytes`);
    want = Math.min(want * 4, objectSize, maxBytes);
  }
}
