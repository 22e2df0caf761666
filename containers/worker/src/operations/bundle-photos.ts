import type { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'crypto';
import { createReadStream } from 'fs';
import { mkdtemp, rm } from 'fs/promises';
import { tmpdir } from 'os';
import * as path from 'path';
import { z } from 'zod';
import type { Logger } from '../log';
import { deleteKey, derivedKeys, getBytes, putJson } from '../output';
import { downloadToFile, DownloadResult } from './photos/download';
import { hostPolicyFromEnv } from './photos/url-guard';
import {
  assemble,
  AssemblyInterrupted,
  deleteKeys,
  listStaged,
  StagedPart,
  StagedParts,
  stagedPartsIntact,
} from './photos/staged-upload';
import { ZipState, ZipWriter } from './photos/zip-writer';
import { withBundleMetrics } from './bundle-metrics';
import { bundlePhotosConfigSchema } from './declarations';
import type { CustomOperation, CustomRunContext, CustomRunResult } from './types';

/**
 * The photo-download job. Input object: `{"files":[{"url","name"}],"concurrency":5}`; OPERATION_CONFIG
 * may set `concurrency`, `retries`, `backoffMs`, `timeoutMs`, `maxFileBytes`, `partSizeMb`.
 *
 * Bytes stream: each download goes to a local spool file while its sha256 and CRC-32 are computed and
 * its size is checked against maxFileBytes (cut off as soon as it is exceeded); downloads run in
 * parallel, but entries enter the ZIP in input order (deterministic bytes). The ZIP (STORED entries,
 * ./photos/zip-writer) streams into fixed-size parts staged as objects next to the output key, which a
 * short multipart upload of server-side copies turns into the archive at the end (./photos/staged-upload).
 * Memory is bounded by (queue + 1) x part size plus stream buffers, whatever the photos' sizes; local
 * disk holds at most 2 x concurrency spooled photos.
 *
 * Resume: on SIGTERM the run stops at the next photo boundary, waits for the parts in flight and saves
 * `<OUTPUT_S3_KEY>.checkpoint.json`: the next photo's index, the ZIP writer's state, the staged parts
 * (key, ETag, size), the bytes after the last staged part (< one part, base64) and the manifest so far.
 * The next attempt with the same input and config checks the staged parts' ETags and continues from
 * that photo: photos already in the archive are not downloaded again, and the archive's bytes equal an
 * uninterrupted run's. Nothing is left open: no multipart upload survives an interruption or a failure.
 *
 * URLs are untrusted (./photos/url-guard): only http(s), only hosts whose every address is public
 * unicast, connected to the checked address, each redirect checked again (at most 5). A refused URL is
 * a failure of that photo in the manifest, naming the URL and the reason; PHOTOS_ALLOW_PRIVATE_HOSTS
 * (operator only, read from the worker's own environment) allows private and loopback hosts.
 */
/** Checked per photo when it is fetched (./photos/url-guard): a bad URL is that photo's failure, not the bundle's. */
const fileSchema = z.object({ url: z.string().min(1), name: z.string().min(1) });
const inputSchema = z.object({
  files: z.array(fileSchema),
  concurrency: z.number().int().min(1).max(64).optional(),
});
/** In ./declarations, which the submission policy reads without loading this module. */
const configSchema = bundlePhotosConfigSchema;

export type BundlePhotosConfig = z.infer<typeof configSchema>;
export const DEFAULT_CONCURRENCY = 5;
/** Parts being uploaded while the next one fills. */
const QUEUE_SIZE = 2;

export interface ManifestEntry {
  name: string;
  url: string;
  size: number;
  sha256: string;
  attempts: number;
}

export interface ManifestFailure {
  name: string;
  url: string;
  error: string;
  attempts: number;
}

export interface BundleManifest {
  operation: 'bundle-photos';
  files: number;
  succeeded: number;
  failed: number;
  bytes: number;
  archive: { bucket: string; key: string } | null;
  entries: ManifestEntry[];
  failures: ManifestFailure[];
}

/** What an interrupted bundle leaves at `<OUTPUT_S3_KEY>.checkpoint.json`. */
export interface BundleCheckpoint {
  version: 1;
  operation: 'bundle-photos';
  /** sha256 of the input document and the config: a checkpoint of other input is ignored. */
  fingerprint: string;
  /** Index of the first file not yet in the archive (or listed as failed). */
  next: number;
  zip: ZipState;
  usedNames: string[];
  parts: StagedPart[];
  /** Archive bytes after the last staged part, base64. */
  tail: string;
  entries: ManifestEntry[];
  failures: ManifestFailure[];
  attempts: number;
  savedAt: string;
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

function fingerprintOf(input: Buffer, config: BundlePhotosConfig): string {
  // Concurrency changes how fast, not what is written: a resumed attempt may use another.
  const { concurrency: _ignored, ...rest } = config;
  void _ignored;
  return createHash('sha256').update(input).update(JSON.stringify(rest)).digest('hex');
}

/** The checkpoint to continue from, or undefined (none, corrupt, other input, parts gone). */
async function loadResumable(
  s3: S3Client,
  bucket: string,
  key: string,
  fingerprint: string,
  log: Logger,
): Promise<BundleCheckpoint | undefined> {
  let raw: Buffer;
  try {
    raw = await getBytes(s3, bucket, key);
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
  let cp: BundleCheckpoint;
  try {
    cp = JSON.parse(raw.toString('utf8')) as BundleCheckpoint;
  } catch (err) {
    log.warn('corrupt checkpoint ignored; starting over', { checkpoint: `s3://${bucket}/${key}`, error: (err as Error).message });
    return undefined;
  }
  if (cp?.version !== 1 || cp.operation !== 'bundle-photos' || !Array.isArray(cp.parts) || !cp.zip) {
    log.warn('checkpoint of another kind ignored; starting over', { checkpoint: `s3://${bucket}/${key}` });
    return undefined;
  }
  if (cp.fingerprint !== fingerprint) {
    log.warn('checkpoint made from other input or config ignored; starting over', { checkpoint: `s3://${bucket}/${key}` });
    return undefined;
  }
  if (!(await stagedPartsIntact(s3, bucket, cp.parts))) {
    log.warn('staged parts of the checkpoint are missing or changed; starting over', { checkpoint: `s3://${bucket}/${key}` });
    return undefined;
  }
  return cp;
}

async function run(ctx: CustomRunContext<BundlePhotosConfig>): Promise<CustomRunResult> {
  const { config, log, signal, output, s3Out } = ctx;
  let parsedInput;
  try {
    parsedInput = inputSchema.parse(JSON.parse(ctx.input.toString('utf8')));
  } catch (err) {
    const detail =
      err instanceof z.ZodError
        ? err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
        : (err as Error).message;
    throw new Error(`bundle-photos input must be {"files":[{"url","name"}],"concurrency":n}: ${detail}`);
  }
  const files = parsedInput.files;
  const hostPolicy = hostPolicyFromEnv();
  const concurrency = config.concurrency ?? parsedInput.concurrency ?? DEFAULT_CONCURRENCY;
  const partSize = config.partSizeMb * 1024 * 1024;
  const bucket = output.bucket;
  const keys = derivedKeys(output.key);
  const partsPrefix = `${output.key}.parts/`;
  const fingerprint = fingerprintOf(ctx.input, config);

  const cp = await loadResumable(s3Out, bucket, keys.checkpoint, fingerprint, log);
  if (cp) {
    log.info('resuming bundle', { next: cp.next, files: files.length, stagedParts: cp.parts.length, attempt: cp.attempts + 1 });
  } else {
    // A fresh start: nothing of an earlier run may remain to be mistaken for this run's result.
    await deleteKeys(s3Out, bucket, await listStaged(s3Out, bucket, partsPrefix));
    await deleteKey(s3Out, bucket, keys.checkpoint);
    await deleteKey(s3Out, bucket, output.key);
    await deleteKey(s3Out, bucket, keys.manifest);
  }

  const zip = new ZipWriter(cp?.zip);
  const used = new Set<string>(cp?.usedNames ?? []);
  const entries: ManifestEntry[] = cp?.entries ?? [];
  const failures: ManifestFailure[] = cp?.failures ?? [];
  const sink = new StagedParts(s3Out, bucket, partsPrefix, partSize, QUEUE_SIZE, cp ? { parts: cp.parts, tail: Buffer.from(cp.tail, 'base64') } : undefined);
  const attempts = (cp?.attempts ?? 0) + 1;
  let next = cp?.next ?? 0;
  const spool = await mkdtemp(path.join(tmpdir(), 'bundle-photos-'));

  const manifest = (archive: BundleManifest['archive']): BundleManifest => ({
    operation: 'bundle-photos',
    files: files.length,
    succeeded: entries.length,
    failed: failures.length,
    bytes: entries.reduce((n, e) => n + e.size, 0),
    archive,
    entries,
    failures,
  });
  const result = (status: CustomRunResult['status'], doc: BundleManifest, message?: string, extraKeys: string[] = []): CustomRunResult => ({
    status,
    message,
    records: doc.succeeded,
    rejected: doc.failed,
    document: doc as unknown as Record<string, unknown>,
    extraKeys,
  });
  const saveCheckpoint = async (): Promise<CustomRunResult> => {
    await sink.settle();
    const checkpoint: BundleCheckpoint = {
      version: 1,
      operation: 'bundle-photos',
      fingerprint,
      next,
      zip: zip.state(),
      usedNames: [...used],
      parts: sink.parts,
      tail: sink.tail().toString('base64'),
      entries,
      failures,
      attempts,
      savedAt: new Date().toISOString(),
    };
    await putJson(s3Out, bucket, keys.checkpoint, checkpoint);
    log.info('checkpoint saved', { next, files: files.length, stagedParts: sink.parts.length, checkpoint: `s3://${bucket}/${keys.checkpoint}` });
    return result(
      'interrupted',
      manifest(null),
      `interrupted after ${next} of ${files.length} files; checkpoint s3://${bucket}/${keys.checkpoint}; a retry resumes from file ${next}`,
    );
  };
  const discardStaged = async () => {
    await sink.settle().catch(() => undefined);
    const staged = await listStaged(s3Out, bucket, partsPrefix);
    await deleteKeys(s3Out, bucket, staged);
    await deleteKey(s3Out, bucket, keys.checkpoint);
  };

  const window = concurrency * 2;
  const tasks = new Map<number, Promise<DownloadResult>>();
  let running = 0;
  const waiting: (() => void)[] = [];
  const slot = async () => {
    if (running >= concurrency) await new Promise<void>((r) => waiting.push(r));
    running++;
  };
  const release = () => {
    running--;
    waiting.shift()?.();
  };
  const start = (i: number) => {
    const file = path.join(spool, String(i));
    tasks.set(
      i,
      (async () => {
        await slot();
        try {
          return await downloadToFile(files[i].url, file, config, hostPolicy, signal, (attempt, error) =>
            log.debug('download retried', { name: files[i].name, url: files[i].url, attempt, error }),
          );
        } finally {
          release();
        }
      })(),
    );
    // A rejection (local disk error) is read when the writer reaches this index.
    tasks.get(i)!.catch(() => undefined);
  };

  try {
    let started = next;
    const fill = (upTo: number) => {
      for (; started < Math.min(upTo, files.length); started++) start(started);
    };
    fill(next + window);
    while (next < files.length) {
      if (signal?.aborted) break;
      const d = await tasks.get(next)!;
      tasks.delete(next);
      if (!d.ok && d.interrupted) break;
      const file = files[next];
      if (!d.ok) {
        failures.push({ name: file.name, url: file.url, error: d.error, attempts: d.attempts });
        log.warn('file failed', { name: file.name, url: file.url, error: d.error, attempts: d.attempts });
      } else {
        const name = entryName(file.name, used);
        await sink.write(zip.beginEntry(name, d.size, d.crc));
        const spooled = path.join(spool, String(next));
        // A photo once begun is finished (from local disk), so the checkpoint is always at a boundary.
        for await (const chunk of createReadStream(spooled, { highWaterMark: 1 << 20 })) await sink.write(chunk as Buffer);
        zip.endEntry();
        await rm(spooled, { force: true });
        entries.push({ name, url: file.url, size: d.size, sha256: d.sha256, attempts: d.attempts });
      }
      next++;
      fill(next + window);
    }

    if (next < files.length) {
      await Promise.allSettled(tasks.values());
      return await saveCheckpoint();
    }

    const ratio = files.length > 0 ? failures.length / files.length : 0;
    if (ratio > ctx.maxRejectRatio) {
      await discardStaged();
      const doc = manifest(null);
      await putJson(s3Out, bucket, keys.manifest, doc);
      return result(
        'failed',
        doc,
        `${failures.length} of ${files.length} files failed (${(ratio * 100).toFixed(2)}%), more than MAX_REJECT_RATIO ` +
          `${ctx.maxRejectRatio}; no archive written; see s3://${bucket}/${keys.manifest}`,
        [keys.manifest],
      );
    }

    await sink.settle();
    const last = Buffer.concat([sink.tail(), zip.finish()]);
    try {
      await assemble(s3Out, bucket, output.key, sink.parts, last, { contentType: 'application/zip', signal });
    } catch (err) {
      if (err instanceof AssemblyInterrupted) return await saveCheckpoint();
      throw err;
    }
    const doc = manifest({ bucket, key: output.key });
    await putJson(s3Out, bucket, keys.manifest, doc);
    await discardStaged();
    log.info('archive written', { archive: `s3://${bucket}/${output.key}`, bytes: zip.bytes, entries: zip.count, stagedParts: sink.parts.length });
    return result('succeeded', doc, undefined, [keys.manifest]);
  } catch (err) {
    // Nothing half-done stays behind: staged parts and any checkpoint go, the archive was never made.
    await Promise.allSettled(tasks.values());
    await discardStaged().catch((cleanupErr) =>
      log.warn('could not remove staged parts', { prefix: `s3://${bucket}/${partsPrefix}`, error: (cleanupErr as Error).message }),
    );
    throw err;
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
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
  run: withBundleMetrics(run),
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
