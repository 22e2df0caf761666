import { emfRecord, EmfMetric } from './emf-record';

/**
 * The seed's input document fields that say whose run this is. They travel with the run into
 * plan.json, every manifest line, the summary (and so the delivered messages), the Batch job tags and
 * the metric dimensions.
 */
export const RUN_IDENTITY_FIELDS = ['customerId', 'tenantId', 'batchId', 'deployment', 'snapshotId'] as const;
export type RunIdentity = { readonly [K in (typeof RUN_IDENTITY_FIELDS)[number]]: string };
/** The value of an identifying field the input left out (tags and dimensions need a value). */
export const UNSET_IDENTITY: RunIdentity = { customerId: 'none', tenantId: 'none', batchId: 'none', deployment: 'none', snapshotId: 'none' };

/** Namespace of the chunked workflow's per-run metrics (the workflow dashboard reads them). */
export const RUN_METRIC_NAMESPACE = 'CdkBatchPlatform/ChunkedProcessing';

/**
 * Dimension sets: by deployment alone (the dashboard's totals) and by every identifying field plus
 * the run id (one run of one customer). The dashboard widgets use the same names.
 */
export const RUN_DIMENSION_SETS = [
  ['Deployment'],
  ['Deployment', 'CustomerId', 'TenantId', 'BatchId', 'SnapshotId', 'RunId'],
];

export function runDimensionValues(runId: string, identity: RunIdentity | undefined): Record<string, string> {
  const id = identity ?? UNSET_IDENTITY;
  return {
    Deployment: id.deployment,
    CustomerId: id.customerId,
    TenantId: id.tenantId,
    BatchId: id.batchId,
    SnapshotId: id.snapshotId,
    RunId: runId,
  };
}

/** The per-chunk progress metrics both chunk routes emit (the Lambda chunk processor and the worker container on Batch). */
export const CHUNK_DONE_METRICS = ['ChunksDone', 'RecordsProcessed', 'RecordsRejected', 'ChunkDuration'] as const;
/** One per failed attempt of a chunk (the workflow may retry it). */
export const CHUNK_FAILED_METRIC = 'ChunkAttemptsFailed';

/** The EMF line of one finished chunk: ChunksDone, RecordsProcessed, RecordsRejected, ChunkDuration, with the run's dimensions. */
export function chunkDoneLine(
  runId: string,
  identity: RunIdentity | undefined,
  chunk: { index: number | undefined; route: 'lambda' | 'batch'; records: number; rejected: number; durationMs: number },
  now?: number,
): string {
  return runMetricsLine(
    runId,
    identity,
    [
      { name: 'ChunksDone', unit: 'Count', value: 1 },
      { name: 'RecordsProcessed', unit: 'Count', value: chunk.records },
      { name: 'RecordsRejected', unit: 'Count', value: chunk.rejected },
      { name: 'ChunkDuration', unit: 'Milliseconds', value: chunk.durationMs },
    ],
    { chunk: chunk.index, route: chunk.route },
    now,
  );
}

/** The EMF line of one failed chunk attempt (ChunkAttemptsFailed), `error` naming why. */
export function chunkFailedLine(runId: string, identity: RunIdentity | undefined, chunk: { index: number | undefined; route: 'lambda' | 'batch'; error: string }, now?: number): string {
  return runMetricsLine(runId, identity, [{ name: CHUNK_FAILED_METRIC, unit: 'Count', value: 1 }], { chunk: chunk.index, route: chunk.route, error: chunk.error }, now);
}

/** One EMF log line (CloudWatch turns it into metrics; no PutMetricData permission needed). */
export function runMetricsLine(
  runId: string,
  identity: RunIdentity | undefined,
  metrics: EmfMetric[],
  properties: Record<string, unknown> = {},
  now: number = Date.now(),
): string {
  return JSON.stringify(
    emfRecord({
      namespace: RUN_METRIC_NAMESPACE,
      dimensions: RUN_DIMENSION_SETS,
      dimensionValues: runDimensionValues(runId, identity),
      metrics,
      properties,
      timestamp: now,
    }),
  );
}

