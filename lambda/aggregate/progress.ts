import { S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { listDoneIndexes } from '../planner/plan';
import { DoneMarker, doneMarkerKey, failurePrefix, planKey, RunPlan, summaryKey } from '../planner/run-layout';
import { listKeys, readJson } from '../shared/s3-objects';

/** A run's progress, read from S3 alone (any time, by anyone with read access to `runs/*`). */
export interface RunProgress {
  readonly runId: string;
  /** False until the planner wrote plan.json. */
  readonly planned: boolean;
  readonly chunkCount: number;
  readonly chunksDone: number;
  /** Chunks with a recorded failure and no done-marker. */
  readonly chunksFailed: number;
  /** Records of the done chunks (from their markers; Batch-route markers carry none, so their estimate counts). */
  readonly recordsDone: number;
  readonly estimatedRecords: number;
  /** Set once the aggregator wrote summary.json. */
  readonly status?: string;
}

/**
 * Progress = done-markers (`runs/{runId}/done/*`) against the chunk count in `plan.json`, plus the
 * failures recorded so far and the final status once `summary.json` exists.
 */
export async function readRunProgress(s3: S3Client, bucket: string, runId: string, estimatePerChunk?: ReadonlyMap<number, number>): Promise<RunProgress> {
  const plan = await readJson<RunPlan>(s3, bucket, planKey(runId));
  if (!plan) return { runId, planned: false, chunkCount: 0, chunksDone: 0, chunksFailed: 0, recordsDone: 0, estimatedRecords: 0 };
  const done = await listDoneIndexes(s3, bucket, runId);
  const failedKeys = await listKeys(s3, bucket, failurePrefix(runId));
  const failedIndexes = new Set(failedKeys.map((k) => Number(k.slice(failurePrefix(runId).length).replace(/\.json$/, ''))));
  const limit = pLimit(16);
  const records = await Promise.all(
    [...done].map((index) =>
      limit(async () => {
        const marker = await readJson<DoneMarker>(s3, bucket, doneMarkerKey(runId, index));
        return marker?.records ?? estimatePerChunk?.get(index) ?? Math.round(plan.estimatedRecords / Math.max(1, plan.chunkCount));
      }),
    ),
  );
  const summary = await readJson<{ status?: string }>(s3, bucket, summaryKey(runId));
  return {
    runId,
    planned: true,
    chunkCount: plan.chunkCount,
    chunksDone: done.size,
    chunksFailed: [...failedIndexes].filter((i) => !done.has(i)).length,
    recordsDone: records.reduce((a, b) => a + b, 0),
    estimatedRecords: plan.estimatedRecords,
    ...(summary?.status ? { status: summary.status } : {}),
  };
}
