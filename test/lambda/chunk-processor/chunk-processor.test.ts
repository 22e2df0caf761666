import { Readable } from 'stream';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { processStream } from '../../../containers/worker/src/engine';
import { sampleBuffer } from '../../../containers/worker/src/sample-data';
import { aggregateRun } from '../../../lambda/aggregate/aggregate';
import { readRunProgress } from '../../../lambda/aggregate/progress';
import { ChunkFailedError, runChunk } from '../../../lambda/chunk-processor';
import { chunkOutputKey, doneMarkerKey, failureKey, ManifestChunk, manifestKey, planKey } from '../../../lambda/planner/run-layout';
import { motoClientConfig } from '../../support/moto';

const BUCKET = 'chunk-processor-suite';
const s3 = new S3Client(motoClientConfig());
const deps = { s3, runsBucket: BUCKET };
afterAll(() => s3.destroy());
const data = sampleBuffer({ count: 20_000, seed: 3 });

function chunksAt(runId: string, key: string, cuts: number[]): ManifestChunk[] {
  const bounds = [0, ...cuts, data.length];
  return bounds.slice(0, -1).map((startByte, index) => ({
    index,
    bucket: BUCKET,
    key,
    startByte,
    endByte: bounds[index + 1],
    estimatedRecords: 0,
    route: 'lambda',
    format: 'jsonl',
    gzip: false,
    inputFormat: 'jsonl',
    outputKey: chunkOutputKey(runId, index),
    doneKey: doneMarkerKey(runId, index),
    failureKey: failureKey(runId, index),
    done: false,
  }));
}

async function putManifest(runId: string, chunks: ManifestChunk[]): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: manifestKey(runId), Body: chunks.map((c) => JSON.stringify(c)).join('\n') + '\n' }));
  const plan = { runId, chunkCount: chunks.length, estimatedRecords: 20_000 };
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: planKey(runId), Body: JSON.stringify(plan) }));
}

const event = (runId: string, chunk: ManifestChunk) => ({ runId, operation: 'aggregate-defects', operationConfig: '{}', chunk });

beforeAll(async () => {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
  }
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/defects.jsonl', Body: data }));
});

describe('chunk processor and aggregator', () => {
  // Cuts at arbitrary byte offsets, each inside a record (not after a newline).
  const cuts = [0.13, 0.5, 0.77].map((f) => {
    let b = Math.floor(data.length * f);
    while (data[b - 1] === 0x0a) b++;
    return b;
  });

  test('chunks cut inside records merge to one whole-object engine run', async () => {
    const chunks = chunksAt('mid-record', 'in/defects.jsonl', cuts);
    await putManifest('mid-record', chunks);
    for (const c of chunks) await runChunk(event('mid-record', c), deps);
    const summary = await aggregateRun({ runId: 'mid-record', operation: 'aggregate-defects', operationConfig: '{}' }, { ...deps, toleratedFailurePercentage: 0 });
    const whole = await processStream('aggregate-defects', Readable.from([data]), { format: 'jsonl' });
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: summary.result!.key }));
    expect(JSON.parse(await res.Body!.transformToString())).toEqual(whole.document);
    expect(summary).toMatchObject({ status: 'SUCCEEDED', records: 20_000, chunks: { total: 4, succeeded: 4, failed: 0 } });
  });

  test('a chunk with a done-marker is not processed again', async () => {
    const [first] = chunksAt('mid-record', 'in/defects.jsonl', cuts);
    const out = await runChunk(event('mid-record', first), deps);
    expect(out.skipped).toBe(true);
  });

  test('progress counts done-markers and their records', async () => {
    expect(await readRunProgress(s3, BUCKET, 'mid-record')).toMatchObject({ planned: true, chunkCount: 4, chunksDone: 4, chunksFailed: 0, recordsDone: 20_000 });
  });

  test('a chunk over the reject ratio fails with ChunkFailed and writes no marker', async () => {
    const bad = Buffer.concat([data.subarray(0, 5000), Buffer.from('garbage\n'.repeat(200)), data.subarray(5000)]);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/bad.jsonl', Body: bad }));
    const [chunk] = chunksAt('bad', 'in/bad.jsonl', []).map((c) => ({ ...c, endByte: 20_000 }));
    const err = await runChunk(event('bad', chunk), deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChunkFailedError);
    expect((err as Error).name).toBe('ChunkFailed');
    expect((err as Error).message).toMatch(/chunk 0: .*rejected/);
    await expect(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: chunk.doneKey }))).rejects.toThrow();
  });

  describe('a run with one failed chunk', () => {
    const runId = 'one-failed';
    beforeAll(async () => {
      const chunks = chunksAt(runId, 'in/defects.jsonl', cuts);
      await putManifest(runId, chunks);
      for (const c of chunks.slice(0, 3)) await runChunk(event(runId, c), deps);
      const cause = JSON.stringify({ errorType: 'ChunkFailed', errorMessage: 'chunk 3: 900 of 5000 records rejected' });
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: failureKey(runId, 3), Body: JSON.stringify({ Error: 'ChunkFailed', Cause: cause }) }));
    });

    test('is FAILED past the tolerated percentage, lists the chunk and writes no result', async () => {
      const summary = await aggregateRun({ runId, operation: 'aggregate-defects' }, { ...deps, toleratedFailurePercentage: 0 });
      expect(summary.status).toBe('FAILED');
      expect(summary.result).toBeNull();
      expect(summary.failedChunks).toEqual([
        expect.objectContaining({ index: 3, error: 'ChunkFailed', cause: 'chunk 3: 900 of 5000 records rejected', startByte: cuts[2] }),
      ]);
    });

    test('is PARTIAL within the tolerated percentage, with the other chunks merged', async () => {
      const summary = await aggregateRun({ runId, operation: 'aggregate-defects' }, { ...deps, toleratedFailurePercentage: 25 });
      expect(summary.status).toBe('PARTIAL');
      expect(summary.chunks).toEqual({ total: 4, succeeded: 3, failed: 1 });
      expect(summary.records).toBeGreaterThan(0);
      expect(summary.records).toBeLessThan(20_000);
      expect(summary.result).not.toBeNull();
    });

    test('progress shows the failed chunk', async () => {
      expect(await readRunProgress(s3, BUCKET, runId)).toMatchObject({ chunksDone: 3, chunksFailed: 1 });
    });
  });

  test('a chunk that never reported counts as failed with NotFinished', async () => {
    const chunks = chunksAt('silent', 'in/defects.jsonl', []);
    await putManifest('silent', chunks);
    const summary = await aggregateRun({ runId: 'silent', operation: 'aggregate-defects' }, { ...deps, toleratedFailurePercentage: 100 });
    expect(summary.status).toBe('FAILED');
    expect(summary.failedChunks[0]).toMatchObject({ index: 0, error: 'NotFinished' });
  });
});
