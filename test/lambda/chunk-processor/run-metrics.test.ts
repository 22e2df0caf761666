import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { sampleBuffer } from '../../../containers/worker/src/sample-data';
import { aggregateRun } from '../../../lambda/aggregate/aggregate';
import { RUN_METRIC_NAMESPACE } from '../../../lambda/aggregate/run-metrics';
import { runChunk } from '../../../lambda/chunk-processor';
import { chunkableOperations } from '../../../lambda/planner/operations';
import { parseManifest, planRun } from '../../../lambda/planner/plan';
import { manifestKey } from '../../../lambda/planner/run-layout';
import { readText } from '../../../lambda/shared/s3-objects';
import { validateRunRequest } from '../../../lambda/validate-input/validate';
import { motoClientConfig } from '../../support/moto';

/**
 * Per-run progress metrics: the EMF lines the chunk Lambda emits as each chunk finishes, parsed the
 * way CloudWatch reads them (namespace, dimension sets, metric names and values).
 */
const BUCKET = 'run-metrics-suite';
const s3 = new S3Client(motoClientConfig());
afterAll(() => s3.destroy());

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

/** Every metric value of `name` in the lines, checking each line is valid EMF on the way. */
function values(lines: Emf[], name: string): number[] {
  return lines
    .filter((l) => l._aws.CloudWatchMetrics[0].Metrics.some((m) => m.Name === name))
    .map((l) => l[name] as number);
}

const identity = { customerId: 'cust-9', tenantId: 'tenant-x', batchId: 'batch-2026-11-28', deployment: 'prod', snapshotId: 'snap-3' };
const data = Buffer.from(
  sampleBuffer({ count: 9_000, seed: 41 })
    .toString('utf8')
    .split('\n')
    // 3 % of the records of the first third are unparsable: that chunk fails; 5 bad lines in the last third are only rejects.
    .map((l, i) => ((i >= 1_000 && i < 1_090) || (i >= 8_000 && i < 8_005) ? 'not json' : l))
    .join('\n'),
);

let emitted: Emf[];
let records: number;
let rejected: number;

beforeAll(async () => {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
  }
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/m.jsonl', Body: data }));
  const runId = 'metrics-run';
  const run = validateRunRequest({ runId, bucket: BUCKET, key: 'in/m.jsonl', operation: 'aggregate-defects', chunkRecords: 3_000, ...identity }, { operations: chunkableOperations() });
  await planRun(run, { s3, runsBucket: BUCKET });
  const raw: string[] = [];
  const emit = (line: string): void => {
    raw.push(line);
  };
  for (const chunk of parseManifest((await readText(s3, BUCKET, manifestKey(runId)))!)) {
    await runChunk({ runId, operation: 'aggregate-defects', operationConfig: '{}', chunk }, { s3, runsBucket: BUCKET, emit }).catch(() => undefined);
  }
  const summary = await aggregateRun({ runId, operation: 'aggregate-defects' }, { s3, runsBucket: BUCKET, toleratedFailurePercentage: 50, emit: () => undefined });
  records = summary.records;
  rejected = summary.rejected;
  emitted = raw.map((l) => JSON.parse(l) as Emf);
}, 60_000);

test('one line per finished chunk and per failed attempt, each valid EMF in the workflow namespace', () => {
  expect(emitted).toHaveLength(3);
  for (const line of emitted) {
    const [directive] = line._aws.CloudWatchMetrics;
    expect(directive.Namespace).toBe(RUN_METRIC_NAMESPACE);
    for (const set of directive.Dimensions) for (const dim of set) expect(typeof line[dim]).toBe('string');
    for (const m of directive.Metrics) expect(typeof line[m.Name]).toBe('number');
  }
});

test('dimensions carry the run id and the input document\'s identifying fields', () => {
  for (const line of emitted) {
    expect(line._aws.CloudWatchMetrics[0].Dimensions).toContainEqual(['Deployment', 'CustomerId', 'TenantId', 'BatchId', 'SnapshotId', 'RunId']);
    expect(line).toMatchObject({ RunId: 'metrics-run', CustomerId: 'cust-9', TenantId: 'tenant-x', BatchId: 'batch-2026-11-28', Deployment: 'prod', SnapshotId: 'snap-3' });
  }
});

test('chunks done, records processed and rejects add up to what the run merged', () => {
  expect(values(emitted, 'ChunksDone')).toEqual([1, 1]);
  expect(values(emitted, 'RecordsProcessed').reduce((a, b) => a + b, 0)).toBe(records);
  expect(values(emitted, 'RecordsRejected').reduce((a, b) => a + b, 0)).toBe(rejected);
  expect(rejected).toBe(5);
});

test('the failed chunk counts as a failed attempt, not as done', () => {
  const failed = emitted.filter((l) => values([l], 'ChunkAttemptsFailed').length > 0);
  expect(failed).toHaveLength(1);
  expect(failed[0]).toMatchObject({ chunk: 0, ChunkAttemptsFailed: 1, error: 'ChunkFailed' });
  expect(failed[0]).not.toHaveProperty('ChunksDone');
});
