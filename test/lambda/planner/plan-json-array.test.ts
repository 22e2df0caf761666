import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { processStream } from '../../../containers/worker/src/engine';
import { sampleBuffer } from '../../../containers/worker/src/sample-data';
import { aggregateRun } from '../../../lambda/aggregate/aggregate';
import { runChunk } from '../../../lambda/chunk-processor';
import { parseManifest, planRun, verifyCoverage } from '../../../lambda/planner/plan';
import { manifestKey } from '../../../lambda/planner/run-layout';
import { validateRunRequest, ValidatedRun } from '../../../lambda/validate-input/validate';
import { motoClientConfig } from '../../support/moto';

const BUCKET = 'planner-json-array-suite';
const s3 = new S3Client(motoClientConfig());
afterAll(() => s3.destroy());
const COUNT = 60_000;
const jsonl = sampleBuffer({ count: COUNT, seed: 7 });
const lines = jsonl.toString('utf8').split('\n').filter((l) => l.length > 0);
// Pretty-printed like an export: elements on their own lines, two-space indent, a nested array.
const array = Buffer.from('[\n' + lines.map((l) => '  ' + l.replace(/^\{/, '{"tags":[{"k":"},{"},{"k":"]"}],')).join(',\n') + '\n]\n');

function run(fields: Record<string, unknown>): ValidatedRun {
  return validateRunRequest({ bucket: BUCKET, operation: 'aggregate-defects', ...fields }, { operations: ['aggregate-defects'] });
}

beforeAll(async () => {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
  }
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/records.json', Body: array }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/lines.json', Body: jsonl }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/broken.json', Body: '[{"a":1},{"b":2} {"c":3}]' }));
});

describe('planner: json-array input', () => {
  it('finds a .json array by its first byte and cuts it into chunks of exactly chunkRecords elements', async () => {
    const out = await planRun(run({ runId: 'ja-plan', key: 'in/records.json', chunkRecords: 7_000 }), { s3, runsBucket: BUCKET });
    const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey('ja-plan') }))).Body!.transformToString();
    const chunks = parseManifest(body);
    // 60,000 / 7,000: 8 full chunks and 4,000 left, more than a tenth of a chunk, so a 9th chunk.
    expect(chunks.map((c) => c.estimatedRecords)).toEqual([7_000, 7_000, 7_000, 7_000, 7_000, 7_000, 7_000, 7_000, 4_000]);
    expect(chunks.every((c) => c.format === 'json-array' && c.inputFormat === 'json-array')).toBe(true);
    verifyCoverage({ bucket: BUCKET, key: 'in/records.json', size: array.length }, chunks);
    for (const c of chunks.slice(1)) {
      expect(array[c.startByte]).toBe(0x7b);
      expect(array.subarray(c.startByte - 4, c.startByte).toString()).toBe(',\n  ');
    }
    // The documented cost: one pass over the whole object.
    expect(out.bytesRead).toBe(array.length);
    expect(out.estimatedRecords).toBe(COUNT);
  });

  it('with chunkBytes, starts each chunk at the first element at or after each multiple', async () => {
    const chunkBytes = Math.floor(array.length / 4);
    await planRun(run({ runId: 'ja-bytes', key: 'in/records.json', chunkBytes }), { s3, runsBucket: BUCKET });
    const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey('ja-bytes') }))).Body!.transformToString();
    const chunks = parseManifest(body);
    expect(chunks.length).toBe(4);
    for (const [k, c] of chunks.slice(1).entries()) {
      expect(c.startByte).toBeGreaterThanOrEqual((k + 1) * chunkBytes);
      expect(c.startByte - (k + 1) * chunkBytes).toBeLessThan(1_000);
    }
    expect(chunks.reduce((s, c) => s + c.estimatedRecords, 0)).toBe(COUNT);
  });

  it('keeps reading a .json object of JSON lines as JSON lines', async () => {
    await planRun(run({ runId: 'ja-lines', key: 'in/lines.json', chunkRecords: 20_000 }), { s3, runsBucket: BUCKET });
    const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey('ja-lines') }))).Body!.transformToString();
    expect(parseManifest(body).every((c) => c.format === 'jsonl')).toBe(true);
  });

  it('refuses a broken array before any chunk runs, naming the object and the byte', async () => {
    await expect(planRun(run({ runId: 'ja-broken', key: 'in/broken.json' }), { s3, runsBucket: BUCKET })).rejects.toThrow(
      /s3:\/\/planner-json-array-suite\/in\/broken\.json \(json-array\): .*expected "," or "\]" after the element that starts at byte 9, found "\{" at byte 17/,
    );
  });

  it('the chunks through the chunk Lambda and the aggregator give the same result as the records as JSON lines, with the input document fields in manifest, summary and metrics', async () => {
    const runId = 'ja-e2e';
    const identity = { customerId: 'cust-42', tenantId: 'tenant-a', batchId: 'batch-7', deployment: 'prod', snapshotId: 'snap-2026-11-28' };
    await planRun(run({ runId, key: 'in/records.json', chunkRecords: 13_000, ...identity }), { s3, runsBucket: BUCKET });
    const lines: string[] = [];
    const emit = (l: string) => lines.push(l);
    const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifestKey(runId) }))).Body!.transformToString();
    const chunks = parseManifest(body);
    expect(chunks.length).toBe(5);
    expect(chunks.every((c) => JSON.stringify(c.identity) === JSON.stringify(identity))).toBe(true);
    let records = 0;
    for (const chunk of chunks) {
      const out = await runChunk({ runId, operation: 'aggregate-defects', operationConfig: '{}', chunk }, { s3, runsBucket: BUCKET, emit });
      expect(out.records).toBe(chunk.estimatedRecords);
      records += out.records;
    }
    expect(records).toBe(COUNT);
    const summary = await aggregateRun({ runId, operation: 'aggregate-defects', operationConfig: '{}' }, { s3, runsBucket: BUCKET, toleratedFailurePercentage: 0, emit });
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.identity).toEqual(identity);
    expect(summary.schemaVersion).toBe(1);
    // EMF: 5 chunk lines and one run line, each with the identity as dimension values.
    const emf = lines.map((l) => JSON.parse(l));
    expect(emf).toHaveLength(6);
    for (const m of emf) {
      expect(m).toMatchObject({ Deployment: 'prod', CustomerId: 'cust-42', TenantId: 'tenant-a', BatchId: 'batch-7', SnapshotId: 'snap-2026-11-28', RunId: runId });
      expect(m._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Deployment'], ['Deployment', 'CustomerId', 'TenantId', 'BatchId', 'SnapshotId', 'RunId']]);
    }
    expect(emf.slice(0, 5).reduce((s, m) => s + m.RecordsProcessed, 0)).toBe(COUNT);
    expect(emf[5]).toMatchObject({ RunRecordsProcessed: COUNT, RunChunksSucceeded: 5, RunChunksFailed: 0, RunsSucceeded: 1 });
    const result = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: summary.result!.key }))).Body!.transformToString());
    async function* once(b: Buffer) {
      yield b;
    }
    const expected = await processStream('aggregate-defects', once(jsonl), { format: 'jsonl' });
    expect(result).toEqual(expected.document);
  }, 120_000);
});
