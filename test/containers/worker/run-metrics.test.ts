import { S3Client } from '@aws-sdk/client-s3';
import { parseConfig } from '../../../containers/worker/src/config';
import { CHUNK_DONE_METRICS, RUN_DIMENSION_SETS, RUN_METRIC_NAMESPACE } from '../../../containers/worker/src/run-metrics';
import { createBucket, motoS3, put, uniqueBucket } from './support/s3';
import { runWorkerProcess, WorkerRun } from './support/worker-process';

/**
 * A Batch-route chunk of the chunked workflow: the worker entrypoint as a child process, with the
 * environment the state machine's ProcessChunkOnBatch sets (the chunk plus RUN_ID, CHUNK_INDEX and the
 * run's identifying fields), emits the same per-run progress line as the Lambda chunk processor.
 */
const BUCKET = uniqueBucket('worker-run-metrics');
const BODY = '{"id":1,"x":"a"}\n{"id":2,"x":"b"}\n{"id":3,"x":"c"}\n{"id":4,"x":"d"}\n';
const SECOND = BODY.indexOf('{"id":2');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
  await put(s3, BUCKET, 'in/records.jsonl', BODY);
  await put(s3, BUCKET, 'in/broken.jsonl', '{"id":1}\n{oops\n{"id":3}\n');
});
afterAll(() => s3.destroy());

/** What ProcessChunkOnBatch puts in the container overrides for chunk 1 of run r-emf (bytes SECOND..end). */
const batchChunkEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  JOB_ID: 'r-emf-chunk-1',
  OPERATION: 'transform-records',
  OPERATION_CONFIG: '{}',
  INPUT_S3_BUCKET: BUCKET,
  INPUT_S3_KEY: 'in/records.jsonl',
  INPUT_FORMAT: 'jsonl',
  CHUNK_START_BYTE: String(SECOND),
  CHUNK_END_BYTE: String(BODY.length),
  OUTPUT_S3_BUCKET: BUCKET,
  OUTPUT_S3_KEY: 'runs/r-emf/chunks/1.jsonl',
  RUN_ID: 'r-emf',
  CHUNK_INDEX: '1',
  RUN_CUSTOMER_ID: 'cust-42',
  RUN_TENANT_ID: 'tenant-a',
  RUN_BATCH_ID: 'batch-2026-11-28',
  RUN_DEPLOYMENT: 'prod',
  RUN_SNAPSHOT_ID: 'snap-7',
  ...extra,
});

type Emf = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const runLines = (run: WorkerRun): Emf[] =>
  run.logs.filter((l) => (l as Emf)._aws?.CloudWatchMetrics?.[0]?.Namespace === RUN_METRIC_NAMESPACE) as Emf[];

test('a finished chunk emits ChunksDone, RecordsProcessed, RecordsRejected and ChunkDuration with the run dimensions', async () => {
  const run = await runWorkerProcess(batchChunkEnv());
  expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
  const lines = runLines(run);
  expect(lines).toHaveLength(1);
  const [line] = lines;
  const directive = line._aws.CloudWatchMetrics[0];
  expect(directive.Dimensions).toEqual(RUN_DIMENSION_SETS);
  // The Lambda route's metric names (lambda/chunk-processor emits the same builder's line with route lambda).
  expect(directive.Metrics.map((m: { Name: string }) => m.Name)).toEqual([...CHUNK_DONE_METRICS]);
  expect(line).toMatchObject({
    Deployment: 'prod',
    CustomerId: 'cust-42',
    TenantId: 'tenant-a',
    BatchId: 'batch-2026-11-28',
    SnapshotId: 'snap-7',
    RunId: 'r-emf',
    chunk: 1,
    route: 'batch',
    ChunksDone: 1,
    RecordsProcessed: 3,
    RecordsRejected: 0,
  });
  expect(line.ChunkDuration).toEqual(expect.any(Number));
  // The worker's own line (namespace CdkBatchPlatform/Worker) is still there, unchanged.
  expect(run.logs.filter((l) => '_aws' in l)).toHaveLength(2);
});

test('a failed attempt emits ChunkAttemptsFailed (error ChunkFailed) with the run dimensions, and no ChunksDone', async () => {
  const run = await runWorkerProcess(
    batchChunkEnv({ INPUT_S3_KEY: 'in/broken.jsonl', CHUNK_START_BYTE: '0', CHUNK_END_BYTE: '20', MAX_REJECT_RATIO: '0', OUTPUT_S3_KEY: 'runs/r-emf/chunks/9.jsonl', CHUNK_INDEX: '9' }),
  );
  expect(run.code).not.toBe(0);
  const lines = runLines(run);
  expect(lines).toHaveLength(1);
  expect(lines[0]._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: 'ChunkAttemptsFailed', Unit: 'Count' }]);
  expect(lines[0]).toMatchObject({ ChunkAttemptsFailed: 1, RunId: 'r-emf', CustomerId: 'cust-42', chunk: 9, route: 'batch', error: 'ChunkFailed' });
  expect(lines[0].ChunksDone).toBeUndefined();
});

test('identifying fields left out are "none" (as on the Lambda route); no RUN_ID (a plain job): no run line at all', async () => {
  const partial = await runWorkerProcess(batchChunkEnv({ RUN_CUSTOMER_ID: '', RUN_TENANT_ID: '', RUN_BATCH_ID: '', RUN_DEPLOYMENT: '', RUN_SNAPSHOT_ID: '' }));
  expect(partial.code).toBe(0);
  expect(runLines(partial)[0]).toMatchObject({ Deployment: 'none', CustomerId: 'none', TenantId: 'none', BatchId: 'none', SnapshotId: 'none', RunId: 'r-emf' });

  const plain = await runWorkerProcess(batchChunkEnv({ RUN_ID: '', CHUNK_INDEX: '' }));
  expect(plain.code).toBe(0);
  expect(runLines(plain)).toEqual([]);
  expect(plain.logs.filter((l) => '_aws' in l)).toHaveLength(1);
});

test('a CHUNK_INDEX that is not a whole number is a config error naming it', () => {
  expect(() => parseConfig(batchChunkEnv({ CHUNK_INDEX: '1.5' }))).toThrow(/CHUNK_INDEX/);
});
