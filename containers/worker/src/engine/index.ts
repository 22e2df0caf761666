import type { S3Client } from '@aws-sdk/client-s3';
import {
  Checkpoint,
  CorruptCheckpointError,
  deleteCheckpoint,
  Fingerprint,
  loadCheckpoint,
  quarantineCheckpoint,
  sameFingerprint,
  saveCheckpoint,
} from '../checkpoint';
import { Logger, silentLogger } from '../log';
import { getOperation } from '../operations/registry';
import type { AnyRecordOperation, CustomOperation, RecordCounts, StepContext } from '../operations/types';
import { derivedKeys, getBytes, PartWriter, prepareOutput, putJson } from '../output';
import { parseExact, stringifyExact } from './exact-json';
import { InputFormatName, resolveFormat, RecordFormat } from './format';
import { geojsonSource } from './geojson';
import { scanJsonArray } from './json-array';
import { bindScanLines, DEFAULT_MAX_RECORD_BYTES, FastLines, scanRecords, ScanOptions, ScanSink } from './scan';
import { headObject, localInputFile, openRange, readCsvHeader } from './source';
import { releasePrestartedThreads, scanThreaded, subRanges, DEFAULT_MIN_BYTES_PER_THREAD, ThreadOptions } from './threads';

export { resolveFormat, INPUT_FORMATS } from './format';
export type { InputFormatName, RecordFormat } from './format';
export { bindScanLines, scanRecords, DEFAULT_MAX_RECORD_BYTES, RAW_PREFIX_BYTES } from './scan';
export type { ScanOptions, ScanSink, ScanResult } from './scan';
export { cpuLimit, isScanThread, runScanThread, subRanges, threadCountFromEnv } from './threads';
export type { ThreadOptions } from './threads';
export { scanJsonArray, walkJsonArray, JsonArrayStructureError } from './json-array';

export const DEFAULT_MAX_REJECT_RATIO = 0.01;

/** One unit of work: an operation over a byte range of one object, result to one key. */
export interface ChunkSpec {
  jobId: string;
  operation: string;
  /** OPERATION_CONFIG, already parsed from JSON. */
  operationConfig?: unknown;
  input: {
    bucket: string;
    key: string;
    /** Inclusive start of the chunk; default 0. */
    startByte?: number;
    /** Exclusive end of the chunk; default the object's size. */
    endByte?: number;
    /** Overrides the format read from the key's extension. */
    format?: InputFormatName;
  };
  output: { bucket: string; key: string };
  /** Fail when rejected / (accepted + rejected) exceeds this; default 0.01. */
  maxRejectRatio?: number;
  /** Longer records are rejected without being buffered; default 1 MiB. */
  maxRecordBytes?: number;
  /** Position in a manifest, for logs. */
  chunkIndex?: number;
}

export interface ChunkDeps {
  s3In: S3Client;
  s3Out: S3Client;
  log?: Logger;
  /** Aborting stops reading at the next record boundary and saves a checkpoint (SIGTERM, Lambda deadline). */
  signal?: AbortSignal;
  /**
   * Worker threads over sub-ranges of the chunk (the container entrypoint sets them from WORKER_THREADS).
   * Used for JSON-lines input (not gzip) and operations whose output is one document; else one thread.
   */
  threads?: ThreadOptions;
}

export interface ChunkResult {
  status: 'succeeded' | 'failed' | 'interrupted';
  /** Why the chunk failed or stopped. */
  message?: string;
  jobId: string;
  operation: string;
  records: number;
  rejected: number;
  bytes: number;
  durationMs: number;
  recordsPerSecond: number;
  output: { bucket: string; key: string };
  /** Every object written besides output.key (rejects, summary, manifest). */
  extraKeys: string[];
  /** Set when status is 'interrupted'. */
  checkpointKey?: string;
  /** Offset this attempt resumed from, when it continued a checkpoint. */
  resumedFrom?: number;
  /** The result document (aggregate operations), summary (record outputs) or manifest (bundle-photos). */
  document?: Record<string, unknown>;
  /** Threads that scanned this attempt (1 unless ChunkDeps.threads applied). */
  threads?: number;
}

/** Merges result documents of one operation (chunk results in any order) into one document. */
export function mergeResults(operationName: string, documents: Record<string, unknown>[]): Record<string, unknown> {
  if (documents.length === 0) throw new Error('mergeResults needs at least one document');
  const op = getOperation(operationName);
  if (op.kind === 'custom') return documents.reduce((a, b) => op.mergeDocuments(a, b));
  const state = documents.map((d) => op.deserialize(d)).reduce((a, b) => op.merge(a, b));
  return op.serialize(state);
}

interface StreamRun<S extends RecordCounts> {
  state: S;
  sink: ScanSink;
  ctx: StepContext;
  /** The operation's byte-level path on this state (adds and counts the lines it takes), when it has one. */
  fastLines?: FastLines;
}


function rejectLine(offset: number, reason: string, raw: Buffer): string {
  return JSON.stringify({ offset, reason, raw: raw.toString('utf8') }) + '\n';
}

/** Wires an operation's step into a scan sink that counts records and writes rejects/emitted records. */
export function bindOperation<S extends RecordCounts>(
  op: AnyRecordOperation,
  state: S,
  writeReject: (line: string) => void,
  writeRecord: (line: string) => void,
): StreamRun<S> {
  const stringify = op.values === 'exact' ? stringifyExact : JSON.stringify;
  const ctx: StepContext = {
    emit: (record) => writeRecord(stringify(record) + '\n'),
  };
  const step = op.step;
  const sink: ScanSink = {
    record(record) {
      const reason = step(state, record, ctx);
      if (reason === undefined) state.records++;
      return reason;
    },
    reject(offset, reason, raw) {
      state.rejected++;
      writeReject(rejectLine(offset, reason, raw));
    },
  };
  return { state, sink, ctx, fastLines: bindScanLines(op, state) };
}

/**
 * Runs a record operation over any byte stream (a file, a decompressed stream) in-process, without S3:
 * the same scan and step the chunk path uses. For benchmarks, the local runner and tests.
 */
export async function processStream(
  operationName: string,
  source: AsyncIterable<Buffer>,
  options: {
    format: RecordFormat;
    operationConfig?: unknown;
    maxRecordBytes?: number;
    onReject?: (line: string) => void;
    onRecord?: (line: string) => void;
    /** false: JSON.parse every line even when the operation has a field scanner (tests compare both). */
    fieldScanner?: boolean;
  },
): Promise<{ document: Record<string, unknown>; records: number; rejected: number; bytes: number }> {
  const op = getOperation(operationName);
  if (op.kind !== 'records') throw new Error(`operation ${operationName} does not process records`);
  const state = op.init(op.parseConfig(options.operationConfig));
  const noop = () => undefined;
  const run = bindOperation(op, state, options.onReject ?? noop, options.onRecord ?? noop);
  const scan = options.format === 'json-array'
    ? await scanJsonArray(source, { sourceOffset: 0, atArrayStart: true, end: Infinity, maxRecordBytes: options.maxRecordBytes, ...valueOptions(op, run) }, run.sink)
    : await scanRecords(
    source,
    {
      format: options.format,
      sourceOffset: 0,
      skipPartialFirst: false,
      end: Infinity,
      maxRecordBytes: options.maxRecordBytes,
      ...valueOptions(op, run, options.fieldScanner),
    },
    run.sink,
  );
  return { document: op.serialize(state), records: state.records, rejected: state.rejected, bytes: scan.bytesRead };
}

/** FIELD_SCANNER=off turns the operations' byte-level paths off (JSON.parse for every line), for comparisons. */
function valueOptions(
  op: AnyRecordOperation,
  run: StreamRun<RecordCounts>,
  fieldScanner = process.env.FIELD_SCANNER !== 'off',
): Pick<ScanOptions, 'values' | 'parseJson' | 'fastLines'> {
  if (op.values === 'exact') return { values: 'exact', parseJson: parseExact };
  return { values: 'native', fastLines: fieldScanner ? run.fastLines : undefined };
}

/** zlib's errors carry codes such as Z_DATA_ERROR and Z_BUF_ERROR. */
function isGzipError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/**
 * Errors while reading an input object, restated with the object and the layer that failed and what to
 * do about it. Record-level problems (invalid JSON, a bad field) are rejects, not errors.
 */
function inputError(err: unknown, bucket: string, key: string): Error {
  const where = `s3://${bucket}/${key}`;
  const message = (err as Error).message ?? String(err);
  if (isGzipError(err)) {
    return new Error(
      `${where}: gzip: ${message}; the object is not a complete gzip stream (truncated or not gzip-compressed). ` +
        `Upload it again, or if it is not compressed drop the .gz extension or set INPUT_FORMAT`,
      { cause: err },
    );
  }
  if (message.startsWith('CSV header row')) {
    return new Error(`${where}: ${message}; the first non-empty line of a CSV object must be the column names`, { cause: err });
  }
  return err instanceof Error ? err : new Error(message);
}

function rate(records: number, ms: number): number {
  return ms > 0 ? Math.round((records * 1000) / ms) : 0;
}

/**
 * Processes one chunk from S3 to S3: the function the container entrypoint and the chunk Lambda share.
 * Returns 'interrupted' (checkpoint saved) when deps.signal aborts, 'failed' when the reject ratio is
 * exceeded; throws on configuration, input and storage errors.
 */
export async function processChunk(spec: ChunkSpec, deps: ChunkDeps): Promise<ChunkResult> {
  const op = getOperation(spec.operation);
  const config = op.parseConfig(spec.operationConfig);
  const log = (deps.log ?? silentLogger).child({ chunk: spec.chunkIndex ?? null, operation: spec.operation });
  if (op.kind === 'custom') return runCustom(op, config, spec, deps, log);
  return runRecords(op, config, spec, deps, log);
}

async function runCustom(
  op: CustomOperation,
  config: unknown,
  spec: ChunkSpec,
  deps: ChunkDeps,
  log: Logger,
): Promise<ChunkResult> {
  const t0 = Date.now();
  const input = await getBytes(deps.s3In, spec.input.bucket, spec.input.key);
  const run = await op.run({
    config,
    input,
    inputName: `s3://${spec.input.bucket}/${spec.input.key}`,
    s3Out: deps.s3Out,
    output: spec.output,
    log,
    signal: deps.signal,
    maxRejectRatio: spec.maxRejectRatio ?? DEFAULT_MAX_REJECT_RATIO,
  });
  const durationMs = Date.now() - t0;
  return {
    status: run.status,
    message: run.message,
    jobId: spec.jobId,
    operation: spec.operation,
    records: run.records,
    rejected: run.rejected,
    bytes: input.length,
    durationMs,
    recordsPerSecond: rate(run.records, durationMs),
    output: spec.output,
    extraKeys: run.extraKeys,
    document: run.document,
  };
}

async function runRecords(
  op: AnyRecordOperation,
  config: unknown,
  spec: ChunkSpec,
  deps: ChunkDeps,
  log: Logger,
): Promise<ChunkResult> {
  const t0 = Date.now();
  const { s3In, s3Out, signal } = deps;
  const { bucket, key } = spec.input;
  const out = spec.output;
  const keys = derivedKeys(out.key);
  const maxRecordBytes = spec.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const maxRejectRatio = spec.maxRejectRatio ?? DEFAULT_MAX_REJECT_RATIO;
  const fmt = resolveFormat(key, spec.input.format);
  // Before any input is read: no earlier result stays next to this attempt's, and the output is writable.
  await prepareOutput(s3Out, out.bucket, [out.key, keys.summary, keys.rejects]);
  const info = await headObject(s3In, bucket, key);
  const gzip = fmt.compression === 'gzip';
  // A FeatureCollection is read from its first byte, like gzip: its parse state depends on everything before.
  const whole = gzip || fmt.geojson === 'collection';
  const start = spec.input.startByte ?? 0;
  const end = Math.min(spec.input.endByte ?? info.size, info.size);
  if (start < 0 || start > end) {
    throw new Error(`chunk [${start}, ${spec.input.endByte}) is outside s3://${bucket}/${key} (${info.size} bytes)`);
  }
  if (whole && (start !== 0 || end !== info.size)) {
    const what = gzip ? 'gzip input' : 'GeoJSON FeatureCollection';
    throw new Error(`${what} s3://${bucket}/${key} can only be processed whole; drop CHUNK_START_BYTE/CHUNK_END_BYTE${gzip ? '' : ' or convert it to geojsonseq (one Feature per line)'}`);
  }
  // For gzip the range is over decompressed bytes, whose total is unknown until the end. An empty
  // object is an empty input whether or not its name ends in .gz (zero bytes are no gzip stream).
  // A FeatureCollection is read to its end too: the reader checks the document once it has seen it all.
  const scanEnd = whole ? (info.size === 0 ? 0 : Infinity) : end;

  const fingerprint: Fingerprint = {
    operation: op.name,
    config: JSON.stringify(config),
    bucket,
    key,
    etag: info.etag,
    start,
    end,
    format: `${fmt.format}/${fmt.compression}`,
  };

  let state = op.init(config);
  let offset = start;
  let bytesBefore = 0;
  let elapsedBefore = 0;
  let attempts = 1;
  let csvHeader: readonly string[] | undefined;
  let resume: Checkpoint | undefined;
  let found: Checkpoint | undefined;
  let corrupt: string | undefined;
  try {
    found = await loadCheckpoint(s3Out, out.bucket, keys.checkpoint);
  } catch (err) {
    if (!(err instanceof CorruptCheckpointError)) throw err;
    corrupt = err.problem;
  }
  if (found && sameFingerprint(found.fingerprint, fingerprint)) {
    try {
      state = op.merge(state, op.deserialize(found.state));
      resume = found;
    } catch (err) {
      state = op.init(config);
      corrupt = `state: ${(err as Error).message}`;
    }
  } else if (found) {
    log.warn('ignoring a checkpoint made for different input or configuration', { checkpoint: keys.checkpoint });
  }
  if (corrupt !== undefined) {
    // A checkpoint that cannot be read would fail every retry; keep it for inspection and start over.
    const movedTo = await quarantineCheckpoint(s3Out, out.bucket, keys.checkpoint);
    log.error('corrupt checkpoint moved aside; processing starts again from the beginning', {
      checkpoint: `s3://${out.bucket}/${keys.checkpoint}`,
      movedTo: `s3://${out.bucket}/${movedTo}`,
      problem: corrupt,
    });
  } else if (resume) {
    offset = resume.offset;
    bytesBefore = resume.bytesRead;
    elapsedBefore = resume.elapsedMs;
    attempts = resume.attempts + 1;
    csvHeader = resume.csvHeader;
    log.info('resuming from checkpoint', { offset, records: state.records, rejected: state.rejected, attempt: attempts });
  }

  const rejects = new PartWriter(s3Out, out.bucket, keys.rejects, {
    partSize: 5 * 1024 * 1024,
    contentType: 'application/x-ndjson',
    resume: resume?.writers.rejects,
  });
  const output =
    op.output === 'records'
      ? new PartWriter(s3Out, out.bucket, out.key, { contentType: 'application/x-ndjson', resume: resume?.writers.output })
      : undefined;
  const run = bindOperation(
    op,
    state,
    (line) => rejects.write(line),
    output ? (line) => output.write(line) : () => undefined,
  );

  // A chunk not at the start of the object needs the CSV header from the object's first line.
  const startsAtZero = offset === 0;
  if (fmt.format === 'csv' && !startsAtZero && !csvHeader) {
    try {
      csvHeader = await readCsvHeader(s3In, bucket, key, info.size, maxRecordBytes);
    } catch (err) {
      throw inputError(err, bucket, key);
    }
  }
  // The first chunk of an attempt begins one byte early to learn whether a record starts at `start`;
  // a resumed attempt starts exactly at a record boundary.
  // json-array chunks start exactly on an element (the planner's boundaries), so nothing is skipped.
  const skipPartialFirst = !resume && offset > 0 && fmt.format !== 'json-array';
  const readFrom = skipPartialFirst ? offset - 1 : offset;

  const threads = deps.threads;
  const threaded =
    threads !== undefined &&
    threads.count > 1 &&
    op.output === 'document' &&
    op.values !== 'exact' &&
    fmt.format === 'jsonl' &&
    fmt.geojson === undefined &&
    !whole &&
    offset < scanEnd &&
    subRanges(offset, scanEnd, threads.count, threads.minBytesPerThread ?? DEFAULT_MIN_BYTES_PER_THREAD).length > 2;
  // threads started ahead (prestartFromEnv) that this chunk will not use stop loading now
  if (!threaded) releasePrestartedThreads();
  let threadsUsed = 1;
  let scan;
  try {
    if (offset >= scanEnd) {
      scan = { bytesRead: 0, stoppedAt: undefined, csvHeader };
    } else if (threaded) {
      const r = await scanThreaded(
        {
          op,
          rawConfig: spec.operationConfig,
          fieldScanner: process.env.FIELD_SCANNER !== 'off',
          maxRecordBytes,
          from: offset,
          fromIsRecordStart: !skipPartialFirst,
          end: scanEnd,
          open: (from) => openRange(s3In, bucket, key, from),
          localFile: localInputFile(bucket, key),
          writeReject: (line) => rejects.write(line),
          drainRejects: () => rejects.flushIfFull(),
          signal,
        },
        threads,
      );
      for (const part of r.states) state = op.merge(state, part);
      threadsUsed = r.threads;
      scan = { bytesRead: r.bytesRead, stoppedAt: r.stoppedAt, csvHeader };
    } else {
      const source = geojsonSource(fmt, await openRange(s3In, bucket, key, whole ? 0 : readFrom, { gzip }), `s3://${bucket}/${key}`);
      const skipDecompressed = whole && offset > 0 ? offset : 0;
      const afterBuffer = () => {
        const a = rejects.flushIfFull();
        const b = output?.flushIfFull();
        if (a && b) return Promise.all([a, b]).then(() => undefined);
        return a ?? b;
      };
      const shouldStop = signal ? () => signal.aborted : undefined;
      const input = skipDecompressed > 0 ? skipBytes(source, skipDecompressed) : source;
      scan = fmt.format === 'json-array'
        ? await scanJsonArray(
            input,
            { sourceOffset: readFrom, atArrayStart: readFrom === 0, end: scanEnd, maxRecordBytes, ...valueOptions(op, run), shouldStop, afterBuffer },
            run.sink,
          )
        : await scanRecords(
        input,
        {
          format: fmt.format,
          sourceOffset: readFrom,
          skipPartialFirst,
          end: scanEnd,
          maxRecordBytes,
          csvHeader,
          ...valueOptions(op, run),
          shouldStop,
          afterBuffer,
        },
        run.sink,
      );
    }
  } catch (err) {
    // Nothing of this attempt becomes visible. Uploads this attempt opened are aborted; uploads a
    // checkpoint refers to stay open with it, so a retry can still resume.
    if (!resume) await Promise.all([rejects.abort(), output?.abort()]);
    throw inputError(err, bucket, key);
  }
  const bytes = bytesBefore + scan.bytesRead;
  const durationMs = elapsedBefore + (Date.now() - t0);
  const base = {
    jobId: spec.jobId,
    operation: op.name,
    records: state.records,
    rejected: state.rejected,
    bytes,
    durationMs,
    recordsPerSecond: rate(state.records + state.rejected, durationMs),
    output: out,
    resumedFrom: resume ? resume.offset : undefined,
    threads: threadsUsed,
  };

  if (scan.stoppedAt !== undefined) {
    const checkpoint: Checkpoint = {
      version: 1,
      fingerprint,
      offset: scan.stoppedAt,
      state: op.serialize(state),
      // Bytes up to the cut only: the unfinished record after it is read again by the next attempt.
      bytesRead: bytesBefore + (scan.stoppedAt - readFrom),
      elapsedMs: durationMs,
      csvHeader: scan.csvHeader ? [...scan.csvHeader] : undefined,
      writers: { rejects: await rejects.snapshot(), output: output ? await output.snapshot() : undefined },
      savedAt: new Date().toISOString(),
      attempts,
    };
    await saveCheckpoint(s3Out, out.bucket, keys.checkpoint, checkpoint);
    log.warn('interrupted; checkpoint saved', { offset: scan.stoppedAt, checkpoint: keys.checkpoint });
    return {
      ...base,
      status: 'interrupted',
      message: `interrupted at byte ${scan.stoppedAt}; checkpoint saved to s3://${out.bucket}/${keys.checkpoint}`,
      checkpointKey: keys.checkpoint,
      extraKeys: [],
    };
  }

  const document = op.serialize(state);
  await rejects.complete();
  const total = state.records + state.rejected;
  const ratio = total > 0 ? state.rejected / total : 0;
  if (ratio > maxRejectRatio) {
    await output?.abort();
    await deleteCheckpoint(s3Out, out.bucket, keys.checkpoint);
    const message =
      `${state.rejected} of ${total} records rejected (${(ratio * 100).toFixed(2)}%), more than MAX_REJECT_RATIO ` +
      `${maxRejectRatio}; no result written; see s3://${out.bucket}/${keys.rejects}`;
    log.error(message);
    return { ...base, status: 'failed', message, extraKeys: [keys.rejects], document };
  }
  const extraKeys = [keys.rejects];
  if (output) {
    await output.complete();
    await putJson(s3Out, out.bucket, keys.summary, document);
    extraKeys.push(keys.summary);
  } else {
    await putJson(s3Out, out.bucket, out.key, document);
  }
  await deleteCheckpoint(s3Out, out.bucket, keys.checkpoint);
  return { ...base, status: 'succeeded', extraKeys, document };
}

/** Drops the first n bytes of a stream (gzip resume: the decompressed prefix a checkpoint already covers). */
async function* skipBytes(source: AsyncIterable<Buffer>, n: number): AsyncIterable<Buffer> {
  let left = n;
  for await (const buf of source) {
    if (left >= buf.length) {
      left -= buf.length;
      continue;
    }
    yield left > 0 ? buf.subarray(left) : buf;
    left = 0;
  }
}
