import { emfRecord, EmfMetric } from '../shared/emf';
import { RunIdentity, UNSET_IDENTITY } from '../planner/run-layout';

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

/**
 * On Lambda the EMF line goes to stdout (CloudWatch Logs turns it into metrics); elsewhere (the local
 * runner, tests) it is dropped unless a caller passes its own `emit`.
 */
export function defaultEmit(line: string): void {
  if (process.env.AWS_LAMBDA_FUNCTION_NAME) console.log(line);
}
