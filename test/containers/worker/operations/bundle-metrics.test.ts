import { BUNDLE_METRIC_NAMESPACE, withBundleMetrics } from '../../../../containers/worker/src/operations/bundle-metrics';
import type { CustomRunContext, CustomRunResult } from '../../../../containers/worker/src/operations/types';

const ctx = {} as CustomRunContext<unknown>;
const result = (status: CustomRunResult['status'], records: number, rejected: number, bytes: number): CustomRunResult => ({
  status,
  records,
  rejected,
  document: { bytes },
  extraKeys: [],
});

/** A clock that advances by `stepMs` per reading. */
function clock(startMs: number, stepMs: number): () => number {
  let t = startMs - stepMs;
  return () => (t += stepMs);
}

function run(r: CustomRunResult | Error, stepMs = 4000) {
  const lines: string[] = [];
  const wrapped = withBundleMetrics(async () => {
    if (r instanceof Error) throw r;
    return r;
  }, { sink: (l) => lines.push(l), env: { AWS_BATCH_JQ_NAME: 'bundles-q', JOB_ID: 'j1' }, now: clock(1_000_000, stepMs) });
  return { lines, promise: wrapped(ctx) };
}

test('a finished bundle emits EMF with bundles, time, photos and download speed, dimensioned by job queue', async () => {
  const { lines, promise } = run(result('succeeded', 198, 2, 8_000_000));
  await promise;
  expect(lines).toHaveLength(1);
  const doc = JSON.parse(lines[0]);
  expect(doc._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: BUNDLE_METRIC_NAMESPACE, Dimensions: [['JobQueue']] });
  expect(doc._aws.CloudWatchMetrics[0].Metrics.map((x: { Name: string }) => x.Name)).toEqual([
    'Bundles', 'BundleSeconds', 'Photos', 'PhotoFailures', 'BytesDownloaded', 'DownloadBytesPerSecond',
  ]);
  // The run took 4 s on the injected clock: 8 MB in 4 s.
  expect(doc).toMatchObject({ JobQueue: 'bundles-q', jobId: 'j1', Bundles: 1, BundleSeconds: 4, Photos: 198, PhotoFailures: 2, BytesDownloaded: 8_000_000, DownloadBytesPerSecond: 2_000_000 });
  for (const name of Object.keys(doc).filter((k) => !['_aws', 'JobQueue', 'jobId'].includes(k))) expect(typeof doc[name]).toBe('number');
});

test('a failed bundle and a thrown error each emit BundleFailures; an interrupted run emits nothing', async () => {
  const failed = run(result('failed', 10, 90, 0));
  await failed.promise;
  expect(JSON.parse(failed.lines[0])).toMatchObject({ BundleFailures: 1, PhotoFailures: 90 });

  const thrown = run(new Error('disk full'));
  await expect(thrown.promise).rejects.toThrow('disk full');
  expect(JSON.parse(thrown.lines[0])).toMatchObject({ BundleFailures: 1 });

  const interrupted = run(result('interrupted', 5, 0, 100));
  await interrupted.promise;
  expect(interrupted.lines).toEqual([]);
});
