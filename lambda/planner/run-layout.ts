/**
 * Where a chunked run keeps its state in the work bucket. Everything about a run lives under
 * `runs/{runId}/`, so a restart, the aggregator, progress readers and lifecycle rules all find it
 * by run id alone, and nothing large ever travels through the Step Functions payload (256 KB cap).
 */
export const RUNS_PREFIX = 'runs/';

/** Run ids name S3 prefixes and Batch jobs (`{runId}-{index}`, max 128 chars of [A-Za-z0-9_-]). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/;

export const runPrefix = (runId: string): string => `${RUNS_PREFIX}${runId}/`;
/** One JSON line per chunk: what the Distributed Map iterates over. */
export const manifestKey = (runId: string): string => `${runPrefix(runId)}manifest.jsonl`;
/** The plan header: input identity (bucket, key, size, ETag), parameters and chunk count. */
export const planKey = (runId: string): string => `${runPrefix(runId)}plan.json`;
export const chunkOutputKey = (runId: string, index: number): string => `${runPrefix(runId)}chunks/${index}.json`;
export const doneMarkerPrefix = (runId: string): string => `${runPrefix(runId)}done/`;
export const doneMarkerKey = (runId: string, index: number): string => `${doneMarkerPrefix(runId)}${index}`;
export const failurePrefix = (runId: string): string => `${runPrefix(runId)}failures/`;
export const failureKey = (runId: string, index: number): string => `${failurePrefix(runId)}${index}.json`;
export const resultKey = (runId: string): string => `${runPrefix(runId)}result.json`;
export const summaryKey = (runId: string): string => `${runPrefix(runId)}summary.json`;
export const partsKey = (runId: string): string => `${runPrefix(runId)}parts.json`;
/** One record per `runs retry` of the run: which chunks reran, which results were reused. */
export const retryRecordKey = (runId: string, attempt: number): string => `${runPrefix(runId)}retries/${attempt}.json`;

export type ChunkRoute = 'lambda' | 'batch';

// The identity lives with the run metrics in the worker (the Batch-route container emits them too).
import type { RunIdentity } from '../../containers/worker/src/run-metrics';
export { RUN_IDENTITY_FIELDS, UNSET_IDENTITY } from '../../containers/worker/src/run-metrics';
export type { RunIdentity };
/** `json-array`: one top-level JSON array of objects, chunked on element boundaries. */
export type InputFormat = 'jsonl' | 'csv' | 'json-array';

/** One line of `runs/{runId}/manifest.jsonl`. */
export interface ManifestChunk {
  readonly index: number;
  readonly bucket: string;
  readonly key: string;
  /** First byte of the chunk (inclusive). The chunk owns every record whose first byte is in [startByte, endByte). */
  readonly startByte: number;
  /** End of the chunk (exclusive). */
  readonly endByte: number;
  readonly estimatedRecords: number;
  readonly route: ChunkRoute;
  readonly format: InputFormat;
  readonly gzip: boolean;
  /** The worker's INPUT_FORMAT for this chunk: `jsonl`, `csv`, `json-array`, each optionally `.gz`. */
  readonly inputFormat: string;
  /** Where the chunk's partial result goes (`runs/{runId}/chunks/{index}.json`). */
  readonly outputKey: string;
  /** Where the chunk's done-marker goes once its result is written. */
  readonly doneKey: string;
  /** Where the workflow records why the chunk failed (`runs/{runId}/failures/{index}.json`). */
  readonly failureKey: string;
  /** True when a previous attempt of this run already finished the chunk (the workflow skips it). */
  readonly done: boolean;
  /** The run's identifying fields (also in plan.json). */
  readonly identity?: RunIdentity;
}

/** Content of `runs/{runId}/plan.json`. */
export interface RunPlan {
  readonly runId: string;
  readonly identity?: RunIdentity;
  readonly operation: string;
  readonly operationConfig: string;
  readonly inputs: readonly { readonly bucket: string; readonly key: string; readonly size: number; readonly etag?: string }[];
  readonly chunkRecords?: number;
  readonly chunkBytes?: number;
  readonly lambdaMaxRecords: number;
  readonly chunkCount: number;
  readonly estimatedRecords: number;
  readonly totalBytes: number;
  readonly createdAt: string;
  /** What the request named as input (a retry re-resolves it). Absent in plans written before retries existed. */
  readonly source?: { readonly bucket: string; readonly key?: string; readonly prefix?: string; readonly format?: InputFormat };
  /** Retries so far (0 or absent: never retried). */
  readonly attempt?: number;
  readonly retriedAt?: string;
}

/** Content of `runs/{runId}/retries/{attempt}.json`. */
export interface RetryRecord {
  readonly runId: string;
  readonly attempt: number;
  readonly startedAt: string;
  /** The status the run had before this retry (absent when it ended without a summary). */
  readonly previousStatus?: string;
  /** Chunk indexes (of the new manifest) that run again. */
  readonly rerun: readonly number[];
  /** Chunk indexes whose earlier result is kept: same boundaries and provably the same bytes. */
  readonly reused: readonly number[];
  /** Input objects whose ETag or size changed since the previous plan. */
  readonly changedInputs: readonly string[];
}

/** Content of a done-marker `runs/{runId}/done/{index}`. */
export interface DoneMarker {
  readonly index: number;
  readonly route: ChunkRoute;
  /** Records the chunk processed, when the processor knows it. */
  readonly records?: number;
  readonly rejected?: number;
  /** The Batch job that processed the chunk (Batch route). */
  readonly jobId?: string;
  /** Set by the chunk Lambda; the Batch route's marker is written by the workflow and has none. */
  readonly finishedAt?: string;
}
