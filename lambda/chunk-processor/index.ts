import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { retentionDaysFrom, tagWrites } from '../../containers/worker/src/retention';
import type { Context } from 'aws-lambda';
import { ChunkResult, processChunk } from '../../containers/worker/src/engine';
import { createLogger, Logger } from '../../containers/worker/src/log';
import { chunkDoneLine, chunkFailedLine, defaultEmit } from '../aggregate/run-metrics';
import { DoneMarker, ManifestChunk } from '../planner/run-layout';

/** One Distributed Map item: the run's identity plus one manifest line. */
export interface ChunkEvent {
  readonly runId: string;
  readonly operation: string;
  /** JSON text (OPERATION_CONFIG). */
  readonly operationConfig: string;
  readonly chunk: ManifestChunk;
}

export interface ChunkOutcome {
  readonly index: number;
  readonly records: number;
  readonly rejected: number;
  /** True when a done-marker already existed (a restarted run), so nothing was processed. */
  readonly skipped: boolean;
}

/** The chunk's reject ratio passed MAX_REJECT_RATIO (or the engine reported failure): no result written. */
export class ChunkFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkFailed';
  }
}

/** Stopped before the Lambda deadline with a checkpoint saved; the workflow retries and resumes. */
export class ChunkInterruptedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkInterrupted';
  }
}

export interface ChunkDepsIn {
  readonly s3: S3Client;
  /** Bucket of `runs/...` (chunk results and done-markers). */
  readonly runsBucket: string;
  /** retention-days tag of the chunk's result, rejects, checkpoint and done-marker. @default RETENTION_DAYS from the environment (absent: 30) */
  readonly retentionDays?: number;
  readonly log?: Logger;
  readonly now?: () => Date;
  /** Where the per-chunk EMF metrics line goes. @default defaultEmit (stdout on Lambda) */
  readonly emit?: (line: string) => void;
}

/** Stop this long before the Lambda deadline, leaving time to save the checkpoint. */
export const DEADLINE_MARGIN_MS = 30_000;

/**
 * Processes one chunk with the worker engine in-process (the same `processChunk` the Batch
 * container runs), then writes its done-marker. A chunk whose marker exists is not processed again.
 */
export async function runChunk(event: ChunkEvent, deps: ChunkDepsIn, signal?: AbortSignal): Promise<ChunkOutcome> {
  const { chunk } = event;
  // Same tags for every chunk of the process (no job id), so a client shared by concurrent chunks stays consistent.
  tagWrites(deps.s3, { retentionDays: deps.retentionDays ?? retentionDaysFrom() });
  const marker = await readMarker(deps.s3, deps.runsBucket, chunk.doneKey);
  if (marker) return { index: chunk.index, records: marker.records ?? 0, rejected: 0, skipped: true };
  const jobId = `${event.runId}-chunk-${chunk.index}`;
  const result: ChunkResult = await processChunk(
    {
      jobId,
      operation: event.operation,
      operationConfig: JSON.parse(event.operationConfig || '{}'),
      input: {
        bucket: chunk.bucket,
        key: chunk.key,
        startByte: chunk.startByte,
        endByte: chunk.endByte,
        format: chunk.inputFormat as never,
      },
      output: { bucket: deps.runsBucket, key: chunk.outputKey },
      chunkIndex: chunk.index,
    },
    { s3In: deps.s3, s3Out: deps.s3, log: deps.log?.child({ jobId }), signal },
  );
  if (result.status === 'interrupted') throw new ChunkInterruptedError(result.message ?? `chunk ${chunk.index} interrupted`);
  if (result.status === 'failed') {
    // Error rate on the dashboard while the run goes: one per failed attempt (the workflow may retry it).
    (deps.emit ?? defaultEmit)(chunkFailedLine(event.runId, chunk.identity, { index: chunk.index, route: 'lambda', error: 'ChunkFailed' }));
    throw new ChunkFailedError(`chunk ${chunk.index}: ${result.message ?? 'failed'}`);
  }
  const done: DoneMarker = {
    index: chunk.index,
    route: 'lambda',
    records: result.records,
    rejected: result.rejected,
    finishedAt: (deps.now ?? (() => new Date()))().toISOString(),
  };
  await deps.s3.send(
    new PutObjectCommand({ Bucket: deps.runsBucket, Key: chunk.doneKey, Body: JSON.stringify(done), ContentType: 'application/json' }),
  );
  // Live progress on the dashboard: one line per finished chunk, with the run's identifying fields.
  (deps.emit ?? defaultEmit)(
    chunkDoneLine(event.runId, chunk.identity, { index: chunk.index, route: 'lambda', records: result.records, rejected: result.rejected, durationMs: result.durationMs }),
  );
  return { index: chunk.index, records: result.records, rejected: result.rejected, skipped: false };
}

async function readMarker(s3: S3Client, bucket: string, key: string): Promise<DoneMarker | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return JSON.parse(await res.Body!.transformToString()) as DoneMarker;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

let s3: S3Client | undefined;

export async function handler(event: ChunkEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<ChunkOutcome> {
  const runsBucket = process.env.RUNS_BUCKET;
  if (!runsBucket) throw new Error('RUNS_BUCKET is not set: the chunk processor does not know where results go');
  s3 ??= new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' });
  const controller = new AbortController();
  const remaining = context?.getRemainingTimeInMillis?.();
  const timer = remaining !== undefined ? setTimeout(() => controller.abort(), Math.max(0, remaining - DEADLINE_MARGIN_MS)) : undefined;
  try {
    return await runChunk(event, { s3, runsBucket, log: createLogger({ service: 'chunk-processor', runId: event.runId }) }, controller.signal);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
