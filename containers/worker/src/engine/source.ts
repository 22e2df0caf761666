import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createReadStream, existsSync, promises as fsp, statSync } from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import { createGunzip } from 'zlib';
import { parseHeader } from './csv';

/**
 * The process variable naming a folder whose `<bucket>/<key>` files the worker reads instead of those
 * S3 objects (HEAD, ranged reads, the CSV header): the local runner sets it for its worker pool so the
 * input is read in place from disk, with no S3 server streaming it. It comes only from the process
 * environment: no job parameter, message or operation config can set it (it is in no operation's
 * settable environment), and it is unset on AWS. A key whose file is missing is read from S3 as usual.
 */
export const LOCAL_INPUT_ROOT_ENV = 'WORKER_LOCAL_INPUT_ROOT';

/**
 * Where s3://bucket/key lies under a local input root: `<root>/<bucket>/<key>`, the key mapped segment
 * by segment. The bucket must be one path segment and the key a plain relative path: absolute keys,
 * `.`/`..` and empty segments or backslashes would name another file than the object, so they are
 * refused with an error naming the object. The one mapping for the worker (reading) and the local
 * runner (laying the files out).
 */
export function localInputPath(root: string, bucket: string, key: string): string {
  if (!path.isAbsolute(root)) {
    throw new Error(`${LOCAL_INPUT_ROOT_ENV} must be an absolute folder, got "${root}"`);
  }
  const base = path.resolve(root);
  const plain = (name: string) => name.length > 0 && name.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..') && !name.includes('\\') && !name.includes('\0');
  const file = plain(bucket) && !bucket.includes('/') && plain(key) ? path.resolve(base, bucket, ...key.split('/')) : '';
  if (!file.startsWith(`${base}${path.sep}`)) {
    throw new Error(
      `input s3://${bucket}/${key} does not map to a file under ${base} (${LOCAL_INPUT_ROOT_ENV}): the bucket must be one path segment and the key a relative path without empty, "." or ".." segments or backslashes`,
    );
  }
  return file;
}

/**
 * The local file standing in for s3://bucket/key under WORKER_LOCAL_INPUT_ROOT, or undefined (variable
 * unset, or no such file). Links inside the root are followed: the runner lays them out.
 */
export function localInputFile(bucket: string, key: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const root = env[LOCAL_INPUT_ROOT_ENV];
  if (!root) return undefined;
  const file = localInputPath(root, bucket, key);
  if (!existsSync(file)) return undefined;
  return statSync(file).isFile() ? file : undefined;
}

/** A stable ETag-like identity of a local input file (size, modification time, inode) for checkpoints. */
function localEtag(file: string): { size: number; etag: string } {
  const st = statSync(file, { bigint: true });
  return { size: Number(st.size), etag: `"local-${st.size}-${st.mtimeNs}-${st.ino}"` };
}

export interface ObjectInfo {
  size: number;
  etag?: string;
}

export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectInfo> {
  const local = localInputFile(bucket, key);
  if (local) return localEtag(local);
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
  const local = localInputFile(bucket, key);
  if (local) {
    const stream = createReadStream(local, { start: from, highWaterMark: 1024 * 1024, signal: options.signal });
    return options.gzip ? gunzipped(stream) : stream;
  }
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
  return options.gzip ? gunzipped(body) : body;
}

function gunzipped(body: Readable): Readable {
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  body.on('error', (err) => gunzip.destroy(err));
  return body.pipe(gunzip);
}

/** Bytes [0, want) of the object: a ranged GET, or a read of its local file. */
async function readHead(s3: S3Client, bucket: string, key: string, want: number): Promise<Buffer> {
  const local = localInputFile(bucket, key);
  if (local) {
    const fh = await fsp.open(local, 'r');
    try {
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${Math.max(0, want - 1)}` }));
  return Buffer.from(await res.Body!.transformToByteArray());
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
    const bytes = await readHead(s3, bucket, key, want);
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
