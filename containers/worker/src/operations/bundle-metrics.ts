import type { CustomRunContext, CustomRunResult } from './types';

/**
 * CloudWatch metrics of bundle-photos as embedded metric format (EMF) lines on stdout: the job's log
 * driver (awslogs) ships them and CloudWatch Logs turns them into metrics, so the worker needs no
 * CloudWatch permission or client. PhotoBundlesStack's dashboard row and alarms read these names.
 * Kept apart from bundle-photos.ts so the operation itself only gains one wrapper call.
 */
export const BUNDLE_METRIC_NAMESPACE = 'CdkBatchPlatform/PhotoBundles';

export interface BundleMetricsOptions {
  readonly sink?: (line: string) => void;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
}

/** One EMF document: metric values at the top level, their definitions under `_aws`. */
export function bundleMetricsLine(
  jobQueue: string,
  values: Record<string, { value: number; unit: 'Count' | 'Seconds' | 'Bytes' | 'Bytes/Second' }>,
  timestamp: number,
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: BUNDLE_METRIC_NAMESPACE,
          Dimensions: [['JobQueue']],
          Metrics: Object.entries(values).map(([Name, v]) => ({ Name, Unit: v.unit })),
        },
      ],
    },
    JobQueue: jobQueue,
    ...extra,
    ...Object.fromEntries(Object.entries(values).map(([name, v]) => [name, v.value])),
  });
}

/**
 * Wraps the bundle run: a finished bundle emits Bundles, BundleSeconds, Photos, PhotoFailures, BytesDownloaded
 * and DownloadBytesPerSecond (bytes of the photos / wall time of the run); a failed one (too many photos
 * failed, or an error) emits BundleFailures. An interrupted run (it resumes) emits nothing.
 */
export function withBundleMetrics<C>(
  run: (ctx: CustomRunContext<C>) => Promise<CustomRunResult>,
  options: BundleMetricsOptions = {},
): (ctx: CustomRunContext<C>) => Promise<CustomRunResult> {
  const sink = options.sink ?? ((line: string) => process.stdout.write(line + '\n'));
  const now = options.now ?? Date.now;
  return async (ctx) => {
    const env = options.env ?? process.env;
    const queue = env.AWS_BATCH_JQ_NAME ?? 'local';
    const jobId = env.JOB_ID;
    const started = now();
    let result: CustomRunResult;
    try {
      result = await run(ctx);
    } catch (err) {
      sink(bundleMetricsLine(queue, { BundleFailures: { value: 1, unit: 'Count' } }, now(), { jobId }));
      throw err;
    }
    if (result.status === 'interrupted') return result;
    const seconds = Math.max((now() - started) / 1000, 0.001);
    const bytes = Number((result.document as { bytes?: unknown }).bytes ?? 0);
    if (result.status === 'failed') {
      sink(bundleMetricsLine(queue, { BundleFailures: { value: 1, unit: 'Count' }, PhotoFailures: { value: result.rejected, unit: 'Count' } }, now(), { jobId }));
      return result;
    }
    sink(
      bundleMetricsLine(
        queue,
        {
          Bundles: { value: 1, unit: 'Count' },
          BundleSeconds: { value: Math.round(seconds * 1000) / 1000, unit: 'Seconds' },
          Photos: { value: result.records, unit: 'Count' },
          PhotoFailures: { value: result.rejected, unit: 'Count' },
          BytesDownloaded: { value: bytes, unit: 'Bytes' },
          DownloadBytesPerSecond: { value: Math.round(bytes / seconds), unit: 'Bytes/Second' },
        },
        now(),
        { jobId },
      ),
    );
    return result;
  };
}
