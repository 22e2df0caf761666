/**
 * Structured JSON logs on stdout (one object per line, CloudWatch Logs Insights can query the fields)
 * and the final summary, repeated as a CloudWatch Embedded Metric Format line so the figures become
 * metrics without a PutMetricData call.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger whose lines also carry `fields` (job id, chunk...). */
  child(fields: Record<string, unknown>): Logger;
}

export type LineSink = (line: string) => void;

const stdoutSink: LineSink = (line) => {
  process.stdout.write(line + '\n');
};

export function createLogger(
  base: Record<string, unknown> = {},
  options: { level?: LogLevel; sink?: LineSink } = {},
): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const sink = options.sink ?? stdoutSink;
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    sink(JSON.stringify({ time: new Date().toISOString(), level, ...base, message, ...fields }));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, options),
  };
}

/** A logger that drops everything (benchmarks, library callers that bring no logger). */
export const silentLogger: Logger = createLogger({}, { sink: () => undefined });

export interface SummaryFigures {
  records: number;
  rejected: number;
  bytes: number;
  durationMs: number;
  recordsPerSecond: number;
}

export const METRIC_NAMESPACE = 'CdkBatchPlatform/Worker';

/**
 * The CloudWatch EMF document for a finished chunk. Dimensions stay low-cardinality (operation,
 * tenant) on purpose: a job id dimension would create one metric per job. `[Operation]` is always a
 * dimension set of its own: the per-operation P95 duration alarm (BatchMonitoring) reads `DurationMs`
 * by Operation alone, whatever the tenant.
 */
export function emfLine(
  figures: SummaryFigures,
  dims: { operation: string; tenantId?: string; jobId: string; status: string },
  now = Date.now(),
): string {
  const dimensionSets = dims.tenantId ? [['Operation'], ['Operation', 'TenantId']] : [['Operation']];
  const doc: Record<string, unknown> = {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRIC_NAMESPACE,
          Dimensions: dimensionSets,
          Metrics: [
            { Name: 'Records', Unit: 'Count' },
            { Name: 'RejectedRecords', Unit: 'Count' },
            { Name: 'BytesRead', Unit: 'Bytes' },
            { Name: 'DurationMs', Unit: 'Milliseconds' },
            { Name: 'RecordsPerSecond', Unit: 'Count/Second' },
          ],
        },
      ],
    },
    Operation: dims.operation,
    jobId: dims.jobId,
    status: dims.status,
    Records: figures.records,
    RejectedRecords: figures.rejected,
    BytesRead: figures.bytes,
    DurationMs: figures.durationMs,
    RecordsPerSecond: figures.recordsPerSecond,
  };
  if (dims.tenantId) doc.TenantId = dims.tenantId;
  return JSON.stringify(doc);
}
