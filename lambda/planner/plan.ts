import * as zlib from 'zlib';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { walkJsonArray } from '../../containers/worker/src/engine/json-array';
import { readJson, readText } from '../shared/s3-objects';
import { DEFAULT_CHUNK_RECORDS, InvalidRunInputError, s3ErrorText, ValidatedRun } from '../validate-input/validate';
import {
  chunkOutputKey,
  ChunkRoute,
  doneMarkerKey,
  doneMarkerPrefix,
  failureKey,
  InputFormat,
  ManifestChunk,
  manifestKey,
  partsKey,
  planKey,
  resultKey,
  RetryRecord,
  retryRecordKey,
  RunPlan,
  RUNS_PREFIX,
  summaryKey,
} from './run-layout';
import { chunkFingerprint, FingerprintFile, fingerprintsKey, InputChangedError } from './fingerprint';

/**
 * Every ranged read of the planner is at most this long: the sample that estimates bytes per record
 * and each window that moves a boundary to the next record start. So bytes read stay at or below
 * 64 KiB per chunk however large the object is.
 */
export const READ_WINDOW_BYTES = 64 * 1024;

export interface PlannerDeps {
  readonly s3: S3Client;
  /** Bucket that holds `runs/{runId}/...` (manifest, chunk results, markers). */
  readonly runsBucket: string;
  readonly now?: () => Date;
}

export interface PlanOutput {
  readonly runId: string;
  readonly manifestBucket: string;
  readonly manifestKey: string;
  readonly chunkCount: number;
  /** Chunks a previous attempt of the same run id already finished (skipped by the workflow). */
  readonly chunksDone: number;
  readonly estimatedRecords: number;
  /** Bytes of input the planner downloaded (sample + one window per boundary). */
  readonly bytesRead: number;
  readonly totalBytes: number;
  /** True when the run id was planned before and this call only refreshed the done flags. */
  readonly resumed: boolean;
  readonly warnings: readonly string[];
  /** Set by a retry: its attempt number and which chunks rerun or keep their result. */
  readonly retry?: Pick<RetryRecord, 'attempt' | 'rerun' | 'reused' | 'changedInputs'>;
}

/** The manifest does not cover an object exactly; raised before any chunk runs. */
export class ManifestCoverageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestCoverage';
  }
}

interface InputObject {
  readonly bucket: string;
  readonly key: string;
  readonly size: number;
  readonly etag?: string;
}

interface ObjectPlan {
  readonly ranges: { startByte: number; endByte: number; estimatedRecords: number }[];
  readonly format: InputFormat;
  readonly gzip: boolean;
  readonly bytesRead: number;
  readonly warnings: string[];
}

/**
 * Plans a run: splits each input object into record-aligned byte ranges and writes
 * `runs/{runId}/manifest.jsonl` and `runs/{runId}/plan.json`. A run id planned before is resumed:
 * the same manifest is kept (same boundaries, so finished chunk results stay valid) and chunks with
 * a done-marker are flagged `done`.
 */
export async function planRun(run: ValidatedRun, deps: PlannerDeps): Promise<PlanOutput> {
  const existing = await readJson<RunPlan>(deps.s3, deps.runsBucket, planKey(run.runId));
  if (existing) return run.retry ? retryRun(run, existing, deps) : resumeRun(run, existing, deps);
  if (run.retry) {
    throw new InvalidRunInputError(`run id ${JSON.stringify(run.runId)} was never planned, so there is nothing to retry; start it without retry`);
  }

  const inputs = await resolveInputs(deps.s3, run);
  const chunks: ManifestChunk[] = [];
  const warnings: string[] = [];
  let bytesRead = 0;
  for (const input of inputs) {
    const plan = await planObject(deps.s3, input, run);
    verifyCoverage(input, plan.ranges);
    bytesRead += plan.bytesRead;
    warnings.push(...plan.warnings);
    for (const r of plan.ranges) {
      const index = chunks.length;
      chunks.push({
        index,
        bucket: input.bucket,
        key: input.key,
        startByte: r.startByte,
        endByte: r.endByte,
        estimatedRecords: r.estimatedRecords,
        route: routeFor(r.estimatedRecords, run.lambdaMaxRecords),
        format: plan.format,
        gzip: plan.gzip,
        inputFormat: plan.gzip ? `${plan.format}.gz` : plan.format,
        outputKey: chunkOutputKey(run.runId, index),
        doneKey: doneMarkerKey(run.runId, index),
        failureKey: failureKey(run.runId, index),
        done: false,
        identity: run.identity,
      });
    }
  }
  const totalBytes = inputs.reduce((s, i) => s + i.size, 0);
  const estimatedRecords = chunks.reduce((s, c) => s + c.estimatedRecords, 0);
  await writeManifest(deps, run.runId, chunks);
  const plan: RunPlan = {
    runId: run.runId,
    identity: run.identity,
    operation: run.operation,
    operationConfig: run.operationConfig,
    inputs: inputs.map((i) => ({ bucket: i.bucket, key: i.key, size: i.size, etag: i.etag })),
    chunkRecords: run.chunkBytes === undefined ? (run.chunkRecords ?? DEFAULT_CHUNK_RECORDS) : undefined,
    chunkBytes: run.chunkBytes,
    lambdaMaxRecords: run.lambdaMaxRecords,
    chunkCount: chunks.length,
    estimatedRecords,
    totalBytes,
    createdAt: (deps.now ?? (() => new Date()))().toISOString(),
    source: sourceOf(run),
  };
  // plan.json last: its presence means the manifest next to it is complete.
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.runsBucket,
      Key: planKey(run.runId),
      Body: JSON.stringify(plan),
      ContentType: 'application/json',
    }),
  );
  return {
    runId: run.runId,
    manifestBucket: deps.runsBucket,
    manifestKey: manifestKey(run.runId),
    chunkCount: chunks.length,
    chunksDone: 0,
    estimatedRecords,
    bytesRead,
    totalBytes,
    resumed: false,
    warnings,
  };
}

function sourceOf(run: ValidatedRun): RunPlan['source'] {
  return { bucket: run.bucket, ...(run.key !== undefined ? { key: run.key } : { prefix: run.prefix }), ...(run.format ? { format: run.format } : {}) };
}

/**
 * Retry of a finished run (`retry: true`): re-reads the current input, re-derives the chunk
 * boundaries with the run's original chunk rule, and keeps a finished chunk's result only where it
 * provably still holds:
 * - an input object whose size and ETag are unchanged keeps its manifest lines; its finished chunks
 *   are reused (same bytes, same boundaries);
 * - a changed object is planned again; a new chunk reuses the result of the finished chunk with the
 *   same index and the same boundaries only when the SHA-256 of the bytes it depends on (recorded by
 *   the aggregator when the run ended, `fingerprints.json`) equals that of the current bytes.
 * Every other chunk reruns: its done-marker and failure record are deleted first, as are the old
 * result, parts and summary, so nothing from before looks current while the retry runs.
 */
async function retryRun(run: ValidatedRun, plan: RunPlan, deps: PlannerDeps): Promise<PlanOutput> {
  const { s3, runsBucket } = deps;
  const runId = run.runId;
  const previous = await readJson<{ status?: string }>(s3, runsBucket, summaryKey(runId));
  if (previous?.status === 'SUCCEEDED') {
    throw new InvalidRunInputError(`run ${JSON.stringify(runId)} already SUCCEEDED; there is nothing to retry`);
  }
  if (plan.operation !== run.operation || plan.operationConfig !== run.operationConfig) {
    throw new InvalidRunInputError(
      `a retry of run ${JSON.stringify(runId)} must use its operation ${plan.operation} with config ${plan.operationConfig}, got ${run.operation} with ${run.operationConfig}`,
    );
  }
  const source = sourceOf(run);
  if (plan.source && (plan.source.bucket !== source?.bucket || plan.source.key !== source?.key || plan.source.prefix !== source?.prefix)) {
    throw new InvalidRunInputError(
      `a retry of run ${JSON.stringify(runId)} must read its input s3://${plan.source.bucket}/${plan.source.key ?? plan.source.prefix ?? ''}, ` +
        `got s3://${run.bucket}/${run.key ?? run.prefix ?? ''}`,
    );
  }
  // The original chunk rule, whatever the retry request says: the same rule gives the same boundaries.
  const rule: ValidatedRun = { ...run, chunkRecords: plan.chunkRecords, chunkBytes: plan.chunkBytes, lambdaMaxRecords: plan.lambdaMaxRecords };
  const body = await readText(s3, runsBucket, manifestKey(runId));
  const oldChunks = body === undefined ? [] : parseManifest(body);
  const oldByIndex = new Map(oldChunks.map((c) => [c.index, c]));
  const done = await listDoneIndexes(s3, runsBucket, runId);
  const fingerprints = new Map(
    ((await readJson<FingerprintFile>(s3, runsBucket, fingerprintsKey(runId)))?.chunks ?? []).map((f) => [f.index, f]),
  );

  const inputs = await resolveInputs(s3, run);
  const chunks: ManifestChunk[] = [];
  const reused: number[] = [];
  const rerun: number[] = [];
  const changedInputs: string[] = [];
  const warnings: string[] = [];
  let bytesRead = 0;
  for (const input of inputs) {
    const before = plan.inputs.find((p) => p.bucket === input.bucket && p.key === input.key);
    const unchanged = before !== undefined && before.size === input.size && before.etag !== undefined && before.etag === input.etag;
    let ranges: { startByte: number; endByte: number; estimatedRecords: number; format: InputFormat; gzip: boolean }[];
    if (unchanged) {
      ranges = oldChunks
        .filter((c) => c.bucket === input.bucket && c.key === input.key)
        .sort((a, b) => a.startByte - b.startByte)
        .map((c) => ({ startByte: c.startByte, endByte: c.endByte, estimatedRecords: c.estimatedRecords, format: c.format, gzip: c.gzip }));
    } else {
      changedInputs.push(`s3://${input.bucket}/${input.key}`);
      const p = await planObject(s3, input, rule);
      bytesRead += p.bytesRead;
      warnings.push(...p.warnings);
      ranges = p.ranges.map((r) => ({ ...r, format: p.format, gzip: p.gzip }));
    }
    verifyCoverage(input, ranges);
    for (const r of ranges) {
      const index = chunks.length;
      const old = oldByIndex.get(index);
      const sameChunk =
        old !== undefined && done.has(index) && old.bucket === input.bucket && old.key === input.key &&
        old.startByte === r.startByte && old.endByte === r.endByte && old.format === r.format && old.gzip === r.gzip;
      let keep = sameChunk && unchanged;
      if (sameChunk && !unchanged) {
        const fp = fingerprints.get(index);
        if (fp && fp.bucket === input.bucket && fp.key === input.key && fp.startByte === r.startByte && fp.endByte === r.endByte && fp.etag === before?.etag) {
          try {
            keep = (await chunkFingerprint(s3, input, r)) === fp.sha256;
          } catch (err) {
            if (!(err instanceof InputChangedError)) throw err;
            keep = false; // changed again while the retry read it
          }
          bytesRead += r.endByte - r.startByte;
        }
      }
      (keep ? reused : rerun).push(index);
      chunks.push({
        index,
        bucket: input.bucket,
        key: input.key,
        startByte: r.startByte,
        endByte: r.endByte,
        estimatedRecords: r.estimatedRecords,
        route: routeFor(r.estimatedRecords, plan.lambdaMaxRecords),
        format: r.format,
        gzip: r.gzip,
        inputFormat: r.gzip ? `${r.format}.gz` : r.format,
        outputKey: chunkOutputKey(runId, index),
        doneKey: doneMarkerKey(runId, index),
        failureKey: failureKey(runId, index),
        done: keep,
        identity: plan.identity ?? run.identity,
      });
    }
  }

  const attempt = (plan.attempt ?? 0) + 1;
  const now = (deps.now ?? (() => new Date()))().toISOString();
  const record: RetryRecord = {
    runId,
    attempt,
    startedAt: now,
    ...(previous?.status ? { previousStatus: previous.status } : {}),
    rerun,
    reused,
    changedInputs,
  };
  await s3.send(new PutObjectCommand({ Bucket: runsBucket, Key: retryRecordKey(runId, attempt), Body: JSON.stringify(record), ContentType: 'application/json' }));
  // Markers of rerun chunks and of indexes the new manifest no longer has, failure records, and the
  // previous result: gone before the new manifest exists, so progress and readers see only this attempt.
  const stale = new Set<number>([...rerun, ...oldChunks.map((c) => c.index).filter((i) => i >= chunks.length)]);
  const keys = [
    ...[...stale].flatMap((i) => [doneMarkerKey(runId, i), failureKey(runId, i)]),
    summaryKey(runId),
    resultKey(runId),
    partsKey(runId),
  ];
  await deleteKeys(s3, runsBucket, keys);
  await writeManifest(deps, runId, chunks);
  const estimatedRecords = chunks.reduce((s, c) => s + c.estimatedRecords, 0);
  const totalBytes = inputs.reduce((s, i) => s + i.size, 0);
  const next: RunPlan = {
    ...plan,
    inputs: inputs.map((i) => ({ bucket: i.bucket, key: i.key, size: i.size, etag: i.etag })),
    chunkCount: chunks.length,
    estimatedRecords,
    totalBytes,
    source: plan.source ?? source,
    attempt,
    retriedAt: now,
  };
  await s3.send(new PutObjectCommand({ Bucket: runsBucket, Key: planKey(runId), Body: JSON.stringify(next), ContentType: 'application/json' }));
  return {
    runId,
    manifestBucket: runsBucket,
    manifestKey: manifestKey(runId),
    chunkCount: chunks.length,
    chunksDone: reused.length,
    estimatedRecords,
    bytesRead,
    totalBytes,
    resumed: true,
    warnings,
    retry: { attempt, rerun, reused, changedInputs },
  };
}

async function deleteKeys(s3: S3Client, bucket: string, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const res = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }),
    );
    if (res.Errors && res.Errors.length > 0) {
      const e = res.Errors[0];
      throw new Error(`cannot delete s3://${bucket}/${e.Key} before the retry: ${e.Code}: ${e.Message}`);
    }
  }
}

export function routeFor(estimatedRecords: number, lambdaMaxRecords: number): ChunkRoute {
  return estimatedRecords <= lambdaMaxRecords ? 'lambda' : 'batch';
}

async function resumeRun(run: ValidatedRun, plan: RunPlan, deps: PlannerDeps): Promise<PlanOutput> {
  const inputs = await resolveInputs(deps.s3, run);
  const same =
    plan.operation === run.operation &&
    plan.operationConfig === run.operationConfig &&
    plan.inputs.length === inputs.length &&
    plan.inputs.every((p, i) => p.bucket === inputs[i].bucket && p.key === inputs[i].key && p.size === inputs[i].size && p.etag === inputs[i].etag);
  if (!same) {
    throw new InvalidRunInputError(
      `run id ${JSON.stringify(run.runId)} was planned for a different input or operation ` +
        `(${plan.operation} on ${plan.inputs.map((i) => `s3://${i.bucket}/${i.key}`).join(', ')}); ` +
        'use a new run id, or the same input to resume',
    );
  }
  const body = await readText(deps.s3, deps.runsBucket, manifestKey(run.runId));
  if (body === undefined) throw new ManifestCoverageError(`run ${run.runId}: plan.json exists but manifest.jsonl is missing`);
  const done = await listDoneIndexes(deps.s3, deps.runsBucket, run.runId);
  const chunks = parseManifest(body).map((c) => ({ ...c, done: done.has(c.index) }));
  for (const input of plan.inputs) {
    verifyCoverage(input, chunks.filter((c) => c.bucket === input.bucket && c.key === input.key));
  }
  await writeManifest(deps, run.runId, chunks);
  return {
    runId: run.runId,
    manifestBucket: deps.runsBucket,
    manifestKey: manifestKey(run.runId),
    chunkCount: chunks.length,
    chunksDone: chunks.filter((c) => c.done).length,
    estimatedRecords: plan.estimatedRecords,
    bytesRead: 0,
    totalBytes: plan.totalBytes,
    resumed: true,
    warnings: [],
  };
}

/** Index of every chunk of the run that has a done-marker. */
export async function listDoneIndexes(s3: S3Client, bucket: string, runId: string): Promise<Set<number>> {
  const prefix = doneMarkerPrefix(runId);
  const done = new Set<number>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const index = Number(o.Key!.slice(prefix.length));
      if (Number.isInteger(index) && index >= 0) done.add(index);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return done;
}

export function parseManifest(body: string): ManifestChunk[] {
  return body
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as ManifestChunk);
}

async function writeManifest(deps: PlannerDeps, runId: string, chunks: readonly ManifestChunk[]): Promise<void> {
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.runsBucket,
      Key: manifestKey(runId),
      Body: chunks.map((c) => JSON.stringify(c)).join('\n') + '\n',
      ContentType: 'application/x-ndjson',
    }),
  );
}

async function resolveInputs(s3: S3Client, run: ValidatedRun): Promise<InputObject[]> {
  if (run.key !== undefined) {
    try {
      const head = await s3.send(new HeadObjectCommand({ Bucket: run.bucket, Key: run.key }));
      return [{ bucket: run.bucket, key: run.key, size: head.ContentLength ?? 0, etag: head.ETag }];
    } catch (err) {
      throw new InvalidRunInputError(`input s3://${run.bucket}/${run.key} cannot be read: ${s3ErrorText(err)}`);
    }
  }
  const out: InputObject[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await s3.send(new ListObjectsV2Command({ Bucket: run.bucket, Prefix: run.prefix, ContinuationToken: token }));
    } catch (err) {
      throw new InvalidRunInputError(`input prefix s3://${run.bucket}/${run.prefix} cannot be listed: ${s3ErrorText(err)}`);
    }
    for (const o of page.Contents ?? []) {
      // runs/ holds this workflow's own state; a prefix of '' must not plan manifests and results.
      if (!o.Key || o.Key.endsWith('/') || o.Key.startsWith(RUNS_PREFIX)) continue;
      out.push({ bucket: run.bucket, key: o.Key, size: o.Size ?? 0, etag: o.ETag });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (out.length === 0) throw new InvalidRunInputError(`input prefix s3://${run.bucket}/${run.prefix} holds no objects`);
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/**
 * Format from the request, else from the key's extension (`.jsonl`, `.ndjson`, `.json`, `.csv`, each
 * optionally `.gz`). A `.json` object whose first non-blank byte is `[` is a JSON array (`json-array`);
 * any other `.json` object is read as JSON lines.
 */
export function formatOf(key: string, requested?: InputFormat, head?: Buffer): InputFormat {
  if (requested) return requested;
  const base = key.toLowerCase().replace(/\.gz$/, '');
  if (base.endsWith('.json') && head !== undefined && firstNonBlank(head) === 0x5b) return 'json-array';
  if (/\.(jsonl|ndjson|json)$/.test(base)) return 'jsonl';
  if (base.endsWith('.csv')) return 'csv';
  throw new InvalidRunInputError(
    `cannot tell the format of ${JSON.stringify(key)} from its extension (.jsonl, .ndjson, .json, .csv, optionally .gz); pass format`,
  );
}

function firstNonBlank(buf: Buffer): number | undefined {
  let i = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i++;
  return i < buf.length ? buf[i] : undefined;
}

async function planObject(s3: S3Client, input: InputObject, run: ValidatedRun): Promise<ObjectPlan> {
  formatOf(input.key, run.format); // an unknown extension fails before any read
  const where = `s3://${input.bucket}/${input.key}`;
  if (input.size === 0) {
    return { ranges: [{ startByte: 0, endByte: 0, estimatedRecords: 0 }], format: formatOf(input.key, run.format), gzip: false, bytesRead: 0, warnings: [`${where} is empty`] };
  }
  const sample = await readRange(s3, input, 0, Math.min(input.size, READ_WINDOW_BYTES));
  const gzip = (sample[0] === 0x1f && sample[1] === 0x8b) || input.key.toLowerCase().endsWith('.gz');
  const format = formatOf(input.key, run.format, gzip ? undefined : sample);
  if (gzip && format === 'json-array') {
    return {
      ranges: [{ startByte: 0, endByte: input.size, estimatedRecords: 0 }],
      format,
      gzip,
      bytesRead: sample.length,
      warnings: [`${where} is a gzip-compressed JSON array and cannot be split by byte range: processed as one whole-object chunk`],
    };
  }
  if (format === 'json-array') return planJsonArray(s3, input, run);
  if (gzip) {
    return {
      ranges: [{ startByte: 0, endByte: input.size, estimatedRecords: estimateGzipRecords(sample, input.size, format) }],
      format,
      gzip,
      bytesRead: sample.length,
      warnings: [`${where} is gzip-compressed and cannot be split by byte range: processed as one whole-object chunk`],
    };
  }
  const bytesPerRecord = estimateBytesPerRecord(sample, format, sample.length === input.size);
  if (format === 'csv' && sample.includes(0x22)) {
    return {
      ranges: [{ startByte: 0, endByte: input.size, estimatedRecords: Math.round(input.size / bytesPerRecord) }],
      format,
      gzip,
      bytesRead: sample.length,
      warnings: [
        `${where} is CSV with quoted fields, which may hold newlines, so a byte boundary may fall inside a record: processed as one whole-object chunk`,
      ],
    };
  }
  const targetBytes = run.chunkBytes ?? Math.max(1, Math.round((run.chunkRecords ?? DEFAULT_CHUNK_RECORDS) * bytesPerRecord));
  const warnings: string[] = [];
  let bytesRead = sample.length;
  const boundaries: number[] = [0];
  // Boundaries at multiples of the target; a remainder under a tenth of a chunk joins the last chunk
  // rather than becoming a chunk of its own.
  for (let k = 1; k * targetBytes < input.size - targetBytes / 10; k++) {
    const target = k * targetBytes;
    const prev = boundaries[boundaries.length - 1];
    if (target <= prev) {
      k = Math.floor(prev / targetBytes); // skip targets already passed by a long record
      continue;
    }
    // A boundary b is a record start when byte b-1 is a newline, so the window starts at b-1.
    const from = target - 1;
    let window: Buffer | undefined;
    if (from < sample.length) {
      const rest = sample.subarray(from);
      if (rest.includes(0x0a) || sample.length === input.size) window = rest;
    }
    if (window === undefined) {
      window = await readRange(s3, input, from, Math.min(input.size, from + READ_WINDOW_BYTES));
      bytesRead += window.length;
    }
    const nl = window.indexOf(0x0a);
    let boundary: number;
    if (nl >= 0) {
      boundary = from + nl + 1;
    } else if (from + window.length >= input.size) {
      break; // the last record runs to the end of the object: no record starts after the target
    } else {
      // A record longer than the window: the boundary stays mid-record, which the chunk rule allows
      // (the chunk holding the record's first byte reads past its end), it is only less even.
      boundary = target;
      if (!warnings.some((w) => w.includes('longer than'))) {
        warnings.push(`${where} has records longer than ${READ_WINDOW_BYTES} bytes: some boundaries are not record-aligned`);
      }
    }
    if (boundary >= input.size) break;
    if (boundary > prev) boundaries.push(boundary);
  }
  const ranges = boundaries.map((start, i) => {
    const end = i + 1 < boundaries.length ? boundaries[i + 1] : input.size;
    return { startByte: start, endByte: end, estimatedRecords: Math.max(0, Math.round((end - start) / bytesPerRecord)) };
  });
  if (format === 'csv' && ranges.length > 0) {
    const header = sample.indexOf(0x0a) + 1;
    ranges[0].estimatedRecords = Math.max(0, Math.round((ranges[0].endByte - header) / bytesPerRecord));
  }
  return { ranges, format, gzip, bytesRead, warnings };
}

/**
 * A JSON array: one streaming pass over the whole object (the only way to know, at a given byte,
 * whether it lies inside a string or a nested value) that counts the elements at depth 1 and keeps
 * the offset of the element starting each chunk. Chunks hold exactly chunkRecords elements (the last
 * one up to 1.1x), or start at the first element at or after each multiple of chunkBytes. Cost: the
 * object's size in bytes read (bytesRead = size) and one byte-level walk (strings skipped with
 * indexOf), memory bounded by one source buffer; no element is parsed.
 */
async function planJsonArray(s3: S3Client, input: InputObject, run: ValidatedRun): Promise<ObjectPlan> {
  const res = await s3.send(new GetObjectCommand({ Bucket: input.bucket, Key: input.key }));
  const starts: number[] = [];
  const counts: number[] = [];
  let n = 0;
  const perChunk = run.chunkBytes === undefined ? (run.chunkRecords ?? DEFAULT_CHUNK_RECORDS) : undefined;
  let nextTarget = run.chunkBytes ?? Infinity;
  let walk;
  try {
    walk = await walkJsonArray(res.Body as AsyncIterable<Buffer>, { sourceOffset: 0, atArrayStart: true, end: Infinity, collect: false }, (el) => {
      const boundary =
        n === 0 ||
        (perChunk !== undefined ? n % perChunk === 0 : el.offset >= nextTarget);
      if (boundary) {
        if (n > 0) counts.push(n - counts.reduce((a, b) => a + b, 0));
        starts.push(n === 0 ? 0 : el.offset);
        if (run.chunkBytes !== undefined) while (nextTarget <= el.offset) nextTarget += run.chunkBytes;
      }
      n++;
    });
  } catch (err) {
    throw new InvalidRunInputError(`s3://${input.bucket}/${input.key} (json-array): ${(err as Error).message}`);
  }
  if (starts.length === 0) starts.push(0);
  counts.push(n - counts.reduce((a, b) => a + b, 0));
  // A remainder under a tenth of a chunk joins the previous chunk.
  if (starts.length > 1) {
    const last = counts[counts.length - 1];
    const small = perChunk !== undefined ? last < perChunk / 10 : input.size - starts[starts.length - 1] < run.chunkBytes! / 10;
    if (small) {
      starts.pop();
      counts[counts.length - 2] += counts.pop()!;
    }
  }
  const ranges = starts.map((start, i) => ({
    startByte: start,
    endByte: i + 1 < starts.length ? starts[i + 1] : input.size,
    estimatedRecords: counts[i],
  }));
  return { ranges, format: 'json-array', gzip: false, bytesRead: walk.bytesRead, warnings: [] };
}

/**
 * Average bytes per record over the complete lines of the sample (after a CSV header). With no
 * complete line, records are at least as long as the sample, which then is the estimate.
 */
export function estimateBytesPerRecord(sample: Buffer, format: InputFormat, wholeObject: boolean): number {
  let start = sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf ? 3 : 0;
  if (format === 'csv') {
    const nl = sample.indexOf(0x0a, start);
    if (nl < 0) return Math.max(1, sample.length);
    start = nl + 1;
  }
  const end = wholeObject ? sample.length : sample.lastIndexOf(0x0a) + 1;
  let records = 0;
  let lineStart = start;
  for (let i = start; i < end; i++) {
    if (sample[i] === 0x0a) {
      if (!isBlank(sample, lineStart, i)) records++;
      lineStart = i + 1;
    }
  }
  if (wholeObject && lineStart < end && !isBlank(sample, lineStart, end)) records++;
  if (records === 0) return Math.max(1, sample.length);
  return Math.max(1, (end - start) / records);
}

function isBlank(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0x0d && buf[i] !== 0x20) return false;
  return true;
}

/** Records of a gzip object from the compression ratio and record length of its first bytes. */
function estimateGzipRecords(sample: Buffer, size: number, format: InputFormat): number {
  let inflated: Buffer;
  try {
    inflated = zlib.gunzipSync(sample, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch {
    return 0;
  }
  if (inflated.length === 0) return 0;
  const bpr = estimateBytesPerRecord(inflated, format, sample.length === size);
  return Math.round(((size * inflated.length) / sample.length) / bpr);
}

/**
 * The manifest of one object must tile [0, size) exactly: start at 0, each chunk starting where the
 * previous ended, ending at size, no empty chunk (except the single chunk of an empty object).
 */
export function verifyCoverage(
  input: { bucket: string; key: string; size: number },
  ranges: readonly { startByte: number; endByte: number }[],
): void {
  const where = `s3://${input.bucket}/${input.key}`;
  const fail = (why: string): never => {
    throw new ManifestCoverageError(`manifest does not cover ${where} (${input.size} bytes) exactly: ${why}`);
  };
  if (ranges.length === 0) fail('no chunk');
  if (input.size === 0) {
    if (ranges.length !== 1 || ranges[0].startByte !== 0 || ranges[0].endByte !== 0) fail('an empty object needs one [0, 0) chunk');
    return;
  }
  let expected = 0;
  for (const [i, r] of ranges.entries()) {
    if (r.startByte !== expected) fail(`chunk ${i} starts at ${r.startByte}, expected ${expected} (${r.startByte > expected ? 'gap' : 'overlap'})`);
    if (r.endByte <= r.startByte) fail(`chunk ${i} [${r.startByte}, ${r.endByte}) is empty or reversed`);
    expected = r.endByte;
  }
  if (expected !== input.size) fail(`last chunk ends at ${expected}, expected ${input.size}`);
}

async function readRange(s3: S3Client, input: InputObject, start: number, end: number): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: input.bucket, Key: input.key, Range: `bytes=${start}-${end - 1}` }));
  const bytes = await res.Body!.transformToByteArray();
  // A server that ignores Range would send the whole object: never keep more than asked.
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, end - start));
}
