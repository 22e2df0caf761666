import { Upload } from '@aws-sdk/lib-storage';
import archiver from 'archiver';
import pLimit from 'p-limit';
import { PassThrough } from 'stream';
import { z } from 'zod';
import { derivedKeys, putJson } from '../output';
import { bundlePhotosConfigSchema } from './declarations';
import type { CustomOperation, CustomRunContext, CustomRunResult } from './types';

/**
 * The photo-download job. Input object: `{"files":[{"url","name"}],"concurrency":5}`; OPERATION_CONFIG
 * may override `concurrency`, `retries`, `backoffMs`, `timeoutMs`. Files download in parallel with
 * retries and exponential backoff (network errors, 429 and 5xx; other 4xx fail at once) and are added
 * to a ZIP in input order, so a rerun writes byte-identical output. The ZIP streams through a multipart
 * upload to the output store: memory holds at most a window of 2 x concurrency files, never the archive.
 * A manifest with every file's size and every failure goes to `<OUTPUT_S3_KEY>.manifest.json`.
 */
const fileSchema = z.object({ url: z.string().url(), name: z.string().min(1) });
const inputSchema = z.object({
  files: z.array(fileSchema),
  concurrency: z.number().int().min(1).max(64).optional(),
});
/** In ./declarations, which the submission policy reads without loading this module. */
const configSchema = bundlePhotosConfigSchema;

export type BundlePhotosConfig = z.infer<typeof configSchema>;
export const DEFAULT_CONCURRENCY = 5;
/** Fixed entry time: the same files give the same ZIP bytes. */
const ENTRY_DATE = new Date('2000-01-01T00:00:00Z');

export interface BundleManifest {
  operation: 'bundle-photos';
  files: number;
  succeeded: number;
  failed: number;
  bytes: number;
  archive: { bucket: string; key: string } | null;
  entries: { name: string; url: string; size: number; attempts: number }[];
  failures: { name: string; url: string; error: string; attempts: number }[];
}

interface Download {
  ok: boolean;
  body?: Buffer;
  error?: string;
  attempts: number;
}

class PermanentError extends Error {}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

async function fetchOnce(url: string, config: BundlePhotosConfig, signal?: AbortSignal): Promise<Buffer> {
  const timeout = AbortSignal.timeout(config.timeoutMs);
  const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  if (!res.ok) {
    await res.body?.cancel();
    const msg = `HTTP ${res.status}`;
    if (res.status === 429 || res.status >= 500) throw new Error(msg);
    throw new PermanentError(msg);
  }
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > config.maxFileBytes) {
    await res.body?.cancel();
    throw new PermanentError(`file is ${length} bytes, more than maxFileBytes ${config.maxFileBytes}`);
  }
  const body = Buffer.from(await res.arrayBuffer());
  if (length > 0 && body.length !== length) throw new Error(`short body: ${body.length} of ${length} bytes`);
  return body;
}

export async function downloadWithRetries(url: string, config: BundlePhotosConfig, signal?: AbortSignal): Promise<Download> {
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      return { ok: true, body: await fetchOnce(url, config, signal), attempts };
    } catch (err) {
      const e = err as Error;
      const message = e.name === 'TimeoutError' ? `timed out after ${config.timeoutMs} ms` : e.message;
      if (err instanceof PermanentError || attempts > config.retries || signal?.aborted) {
        return { ok: false, error: message, attempts };
      }
      await sleep(config.backoffMs * 2 ** (attempts - 1) * (1 + Math.random() / 2), signal);
    }
  }
}

/** A safe, unique entry name: no absolute paths, no "..", no backslashes. */
function entryName(name: string, used: Set<string>): string {
  const clean =
    name
      .replace(/\\/g, '/')
      .split('/')
      .filter((p) => p !== '' && p !== '.' && p !== '..')
      .join('/') || 'file';
  let candidate = clean;
  const dot = clean.lastIndexOf('.');
  for (let n = 2; used.has(candidate); n++) {
    candidate = dot > 0 ? `${clean.slice(0, dot)} (${n})${clean.slice(dot)}` : `${clean} (${n})`;
  }
  used.add(candidate);
  return candidate;
}

async function run(ctx: CustomRunContext<BundlePhotosConfig>): Promise<CustomRunResult> {
  const { config, log, signal, output, s3Out } = ctx;
  let parsedInput;
  try {
    parsedInput = inputSchema.parse(JSON.parse(ctx.input.toString('utf8')));
  } catch (err) {
    throw new Error(`bundle-photos input must be {"files":[{"url","name"}],"concurrency":n}: ${(err as Error).message}`);
  }
  const files = parsedInput.files;
  const concurrency = config.concurrency ?? parsedInput.concurrency ?? DEFAULT_CONCURRENCY;
  const keys = derivedKeys(output.key);
  const manifest: BundleManifest = {
    operation: 'bundle-photos',
    files: files.length,
    succeeded: 0,
    failed: 0,
    bytes: 0,
    archive: { bucket: output.bucket, key: output.key },
    entries: [],
    failures: [],
  };

  const archive = archiver('zip', { store: true, forceZip64: false });
  // archiver's stream comes from readable-stream, which lib-storage does not recognise as a Readable.
  const body = new PassThrough();
  archive.on('error', (err) => body.destroy(err));
  archive.pipe(body);
  const upload = new Upload({
    client: s3Out,
    params: { Bucket: output.bucket, Key: output.key, Body: body, ContentType: 'application/zip' },
    partSize: 8 * 1024 * 1024,
    queueSize: 2,
  });
  const uploaded = upload.done();
  // Surface an upload failure even while we are still downloading.
  let uploadError: unknown;
  uploaded.catch((err) => {
    uploadError = err;
  });
  archive.on('warning', (err) => log.warn('zip warning', { error: String(err) }));

  const limit = pLimit(concurrency);
  const window = concurrency * 2;
  const tasks: (Promise<Download> | undefined)[] = new Array(files.length);
  const start = (i: number) => {
    tasks[i] = limit(() => (signal?.aborted ? Promise.resolve({ ok: false, error: 'interrupted', attempts: 0 }) : downloadWithRetries(files[i].url, config, signal)));
  };
  for (let i = 0; i < Math.min(window, files.length); i++) start(i);
  const used = new Set<string>();
  for (let i = 0; i < files.length; i++) {
    const d = await tasks[i]!;
    tasks[i] = undefined;
    if (i + window < files.length) start(i + window);
    if (signal?.aborted) break;
    if (uploadError) throw uploadError;
    const file = files[i];
    if (!d.ok) {
      manifest.failed++;
      manifest.failures.push({ name: file.name, url: file.url, error: d.error ?? 'unknown error', attempts: d.attempts });
      log.warn('file failed', { name: file.name, url: file.url, error: d.error, attempts: d.attempts });
      continue;
    }
    const name = entryName(file.name, used);
    const entered = new Promise<void>((resolve) => archive.once('entry', () => resolve()));
    archive.append(d.body!, { name, date: ENTRY_DATE });
    await entered;
    manifest.succeeded++;
    manifest.bytes += d.body!.length;
    manifest.entries.push({ name, url: file.url, size: d.body!.length, attempts: d.attempts });
  }

  if (signal?.aborted) {
    await upload.abort().catch(() => undefined);
    archive.abort();
    return {
      status: 'interrupted',
      message: 'interrupted; bundle-photos keeps no checkpoint, the next attempt starts over',
      records: manifest.succeeded,
      rejected: manifest.failed,
      document: manifest as unknown as Record<string, unknown>,
      extraKeys: [],
    };
  }

  const ratio = files.length > 0 ? manifest.failed / files.length : 0;
  if (ratio > ctx.maxRejectRatio) {
    await upload.abort().catch(() => undefined);
    archive.abort();
    manifest.archive = null;
    await putJson(s3Out, output.bucket, keys.manifest, manifest);
    return {
      status: 'failed',
      message:
        `${manifest.failed} of ${files.length} files failed (${(ratio * 100).toFixed(2)}%), more than MAX_REJECT_RATIO ` +
        `${ctx.maxRejectRatio}; no archive written; see s3://${output.bucket}/${keys.manifest}`,
      records: manifest.succeeded,
      rejected: manifest.failed,
      document: manifest as unknown as Record<string, unknown>,
      extraKeys: [keys.manifest],
    };
  }
  await archive.finalize();
  await uploaded;
  await putJson(s3Out, output.bucket, keys.manifest, manifest);
  return {
    status: 'succeeded',
    records: manifest.succeeded,
    rejected: manifest.failed,
    document: manifest as unknown as Record<string, unknown>,
    extraKeys: [keys.manifest],
  };
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export const bundlePhotos: CustomOperation<BundlePhotosConfig> = {
  name: 'bundle-photos',
  kind: 'custom',
  parseConfig(raw) {
    const parsed = configSchema.safeParse(raw ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`bundle-photos config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
    return parsed.data;
  },
  run,
  mergeDocuments(a, b) {
    const x = a as unknown as BundleManifest;
    const y = b as unknown as BundleManifest;
    const merged: BundleManifest = {
      operation: 'bundle-photos',
      files: x.files + y.files,
      succeeded: x.succeeded + y.succeeded,
      failed: x.failed + y.failed,
      bytes: x.bytes + y.bytes,
      archive: null,
      entries: [...x.entries, ...y.entries].sort(byName),
      failures: [...x.failures, ...y.failures].sort(byName),
    };
    return merged as unknown as Record<string, unknown>;
  },
};
