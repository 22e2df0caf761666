/**
 * CloudWatch embedded metric format (EMF), one implementation for the worker container and the Lambdas
 * (lambda/shared/emf.ts re-exports it; the container's build context is containers/worker, so it lives here): a log line that CloudWatch turns into metrics without a
 * PutMetricData call (no extra IAM permission, no extra latency).
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export const METRIC_NAMESPACE = 'CdkBatchPlatform';

export type EmfUnit = 'Count' | 'Seconds' | 'Milliseconds' | 'None';

export interface EmfMetric {
  readonly name: string;
  readonly unit: EmfUnit;
  readonly value: number;
}

export interface EmfRecordInput {
  /** Dimension sets; every dimension named here must have a value in `dimensionValues`. */
  readonly dimensions: string[][];
  readonly dimensionValues: Record<string, string>;
  readonly metrics: EmfMetric[];
  /** Extra searchable fields (not dimensions), e.g. jobId. */
  readonly properties?: Record<string, unknown>;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  /** @default METRIC_NAMESPACE */
  readonly namespace?: string;
}

/** The EMF spec caps one directive at 100 metrics and 30 dimensions per set. */
const MAX_METRICS = 100;
const MAX_DIMENSIONS_PER_SET = 30;

export function emfRecord(input: EmfRecordInput): Record<string, unknown> {
  if (input.metrics.length === 0 || input.metrics.length > MAX_METRICS) {
    throw new Error(`EMF record needs 1 to ${MAX_METRICS} metrics, got ${input.metrics.length}`);
  }
  for (const set of input.dimensions) {
    if (set.length > MAX_DIMENSIONS_PER_SET) throw new Error(`EMF dimension set has more than ${MAX_DIMENSIONS_PER_SET} dimensions: ${set.join(',')}`);
    for (const dim of set) {
      const value = input.dimensionValues[dim];
      if (typeof value !== 'string' || value === '') throw new Error(`EMF dimension ${dim} has no value`);
    }
  }
  const record: Record<string, unknown> = {
    ...input.properties,
    ...input.dimensionValues,
    _aws: {
      Timestamp: input.timestamp,
      CloudWatchMetrics: [
        {
          Namespace: input.namespace ?? METRIC_NAMESPACE,
          Dimensions: input.dimensions,
          Metrics: input.metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
        },
      ],
    },
  };
  for (const m of input.metrics) {
    if (!Number.isFinite(m.value)) throw new Error(`EMF metric ${m.name} has a non-finite value (${m.value})`);
    record[m.name] = m.value;
  }
  return record;
}
