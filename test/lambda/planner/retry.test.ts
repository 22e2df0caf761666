import { Readable } from 'stream';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { processStream } from '../../../containers/worker/src/engine';
import { sampleBuffer } from '../../../containers/worker/src/sample-data';
import { aggregateRun, RunSummary } from '../../../lambda/aggregate/aggregate';
import { readRunProgress } from '../../../lambda/aggregate/progress';
import { runChunk } from '../../../lambda/chunk-processor';
import { chunkableOperations } from '../../../lambda/planner/operations';
import { parseManifest, PlanOutput, planRun } from '../../../lambda/planner/plan';
import { fingerprintsKey } from '../../../lambda/planner/fingerprint';
import { manifestKey, resultKey, retryRecordKey, summaryKey } from '../../../lambda/planner/run-layout';
import { validateRunRequest } from '../../../lambda/validate-input/validate';
import { motoClientConfig } from '../../support/moto';

/**
 * The planner's retry mode through the real handlers against moto: plan -> every chunk through the
 * chunk Lambda (a failure recorded as the workflow's RecordChunkFailure does) -> aggregate.
 */
const BUCKET = 'planner-retry-suite';
const s3 = new S3Client(motoClientConfig());
afterAll(() => s3.destroy());

const CLEAN = sampleBuffer({ count: 20_000, seed: 21 });
const lineStarts: number[] = [0];
for (let i = 0; i < CLEAN.length; i++) if (CLEAN[i] === 0x0a && i + 1 < CLEAN.length) lineStarts.push(i + 1);

/** Lines [from, to) replaced by as many `x` as they had bytes: same length, rejected by the operation. */
function poisoned(from: number, to: number, data: Buffer = CLEAN): Buffer {
  const out = Buffer.from(data);
  for (let l = from; l < to; l++) out.fill(0x78, lineStarts[l], lineStarts[l + 1] - 1);
  return out;
}

async function put(key: string, body: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

async function text(key: string): Promise<string | undefined> {
  try {
    return await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
  } catch {
    return undefined;
  }
}

interface Pass {
  readonly plan: PlanOutput;
  readonly processed: number[];
  readonly summary: RunSummary;
}

/** One execution of the workflow, in-process. */
async function execute(runId: string, key: string, retry = false): Promise<Pass> {
  const run = validateRunRequest(
    { runId, bucket: BUCKET, key, operation: 'aggregate-defects', chunkRecords: 5_000, ...(retry ? { retry: true } : {}) },
    { operations: chunkableOperations() },
  );
  const plan = await planRun(run, { s3, runsBucket: BUCKET });
  const chunks = parseManifest((await text(manifestKey(runId)))!);
  const processed: number[] = [];
  for (const chunk of chunks.filter((c) => !c.done)) {
    processed.push(chunk.index);
    try {
      await runChunk({ runId, operation: 'aggregate-defects', operationConfig: '{}', chunk }, { s3, runsBucket: BUCKET });
    } catch (err) {
      await put(chunk.failureKey, Buffer.from(JSON.stringify({ Error: (err as Error).name, Cause: (err as Error).message })));
    }
  }
  const summary = await aggregateRun({ runId, operation: 'aggregate-defects' }, { s3, runsBucket: BUCKET, toleratedFailurePercentage: 50, emit: () => undefined });
  return { plan, processed, summary };
}

async function wholeResult(data: Buffer): Promise<Record<string, unknown>> {
  return (await processStream('aggregate-defects', Readable.from([data]), { format: 'jsonl' })).document;
}

beforeAll(async () => {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
  }
});

describe('retry after the poisoned data was fixed in place (same length)', () => {
  const runId = 'retry-fixed';
  const key = 'in/fixed.jsonl';
  let first: Pass;
  let second: Pass;
  beforeAll(async () => {
    await put(key, poisoned(7_000, 7_200));
    first = await execute(runId, key);
    await put(key, CLEAN);
    second = await execute(runId, key, true);
  }, 120_000);

  test('the first execution ends PARTIAL with the poisoned chunk failed', () => {
    expect(first.summary.status).toBe('PARTIAL');
    expect(first.summary.failedChunks.map((f) => f.index)).toEqual([1]);
    expect(first.processed).toEqual([0, 1, 2, 3]);
  });

  test('fingerprints were recorded for the finished chunks only', async () => {
    const doc = JSON.parse((await text(fingerprintsKey(runId)))!) as { chunks: { index: number }[] };
    expect(doc.chunks.map((c) => c.index).sort()).toEqual([0, 2, 3]);
  });

  test('the retry reruns only the failed chunk and reuses the others', () => {
    expect(second.plan.retry).toEqual({ attempt: 1, rerun: [1], reused: [0, 2, 3], changedInputs: [`s3://${BUCKET}/${key}`] });
    expect(second.processed).toEqual([1]);
  });

  test('the retry ends SUCCEEDED with the result of a clean whole run', async () => {
    expect(second.summary.status).toBe('SUCCEEDED');
    expect(second.summary.records).toBe(20_000);
    expect(JSON.parse((await text(resultKey(runId)))!)).toEqual(await wholeResult(CLEAN));
  });

  test('the retry is recorded', async () => {
    expect(JSON.parse((await text(retryRecordKey(runId, 1)))!)).toMatchObject({ attempt: 1, previousStatus: 'PARTIAL', rerun: [1] });
  });

  test('a SUCCEEDED run is not retried', async () => {
    await expect(execute(runId, key, true)).rejects.toThrow(/already SUCCEEDED; there is nothing to retry/);
  });
});

describe('retry when a finished chunk\'s bytes changed too', () => {
  test('that chunk reruns as well: a result computed from bytes no longer in the input is never merged', async () => {
    const runId = 'retry-two-changed';
    const key = 'in/two.jsonl';
    await put(key, poisoned(7_000, 7_200));
    await execute(runId, key);
    // The fix also edits one record of chunk 3, which had succeeded (same length: the opening quote of
    // a severity value becomes a digit, so that record is now a reject and the chunk's result differs).
    const fixed = Buffer.from(CLEAN);
    const at = fixed.indexOf('"severity":', lineStarts[17_000]);
    fixed.write('1', at + 11);
    await put(key, fixed);
    const second = await execute(runId, key, true);
    expect(second.plan.retry?.rerun).toEqual([1, 3]);
    expect(second.processed).toEqual([1, 3]);
    expect(second.summary.status).toBe('SUCCEEDED');
    expect(JSON.parse((await text(resultKey(runId)))!)).toEqual(await wholeResult(fixed));
  }, 120_000);
});

describe('retry when the fix changes the file\'s length', () => {
  test('boundaries after the change shift, so every chunk from there on reruns', async () => {
    const runId = 'retry-longer';
    const key = 'in/longer.jsonl';
    // Poison: 200 lines replaced by one short bad line each (the file is shorter than the clean one).
    const lines = CLEAN.toString('utf8').split('\n');
    for (let l = 7_000; l < 7_200; l++) lines[l] = 'x';
    await put(key, Buffer.from(lines.join('\n')));
    await execute(runId, key);
    await put(key, CLEAN);
    const second = await execute(runId, key, true);
    expect(second.plan.retry?.reused).toEqual([0]);
    expect(second.processed).toEqual([1, 2, 3]);
    expect(second.summary.status).toBe('SUCCEEDED');
    expect(JSON.parse((await text(resultKey(runId)))!)).toEqual(await wholeResult(CLEAN));
  }, 120_000);
});

describe('retry when nothing changed', () => {
  test('the failed chunk runs again on the same bytes and progress starts from the reused chunks', async () => {
    const runId = 'retry-same';
    const key = 'in/same.jsonl';
    await put(key, poisoned(7_000, 7_200));
    await execute(runId, key);
    const run = validateRunRequest(
      { runId, bucket: BUCKET, key, operation: 'aggregate-defects', chunkRecords: 5_000, retry: true },
      { operations: chunkableOperations() },
    );
    const plan = await planRun(run, { s3, runsBucket: BUCKET });
    expect(plan.retry).toEqual({ attempt: 1, rerun: [1], reused: [0, 2, 3], changedInputs: [] });
    // The old summary and failure record are gone: nothing from before looks current during the retry.
    expect(await text(summaryKey(runId))).toBeUndefined();
    expect(await text(resultKey(runId))).toBeUndefined();
    expect(await readRunProgress(s3, BUCKET, runId)).toMatchObject({ chunkCount: 4, chunksDone: 3, chunksFailed: 0 });
  }, 120_000);
});

describe('retry refused', () => {
  test('a run id that was never planned', async () => {
    await put('in/none.jsonl', CLEAN);
    await expect(execute('never-planned', 'in/none.jsonl', true)).rejects.toThrow(/was never planned, so there is nothing to retry/);
  });

  test('a retry request that is not a boolean names the field', () => {
    expect(() =>
      validateRunRequest({ bucket: BUCKET, key: 'k.jsonl', operation: 'aggregate-defects', runId: 'r', retry: 'yes' }, { operations: chunkableOperations() }),
    ).toThrow('retry ("yes") must be true or false');
  });

  test('a retry with another input than the run\'s', async () => {
    const runId = 'retry-other-input';
    await put('in/a.jsonl', poisoned(7_000, 7_200));
    await put('in/b.jsonl', CLEAN);
    await execute(runId, 'in/a.jsonl');
    await expect(execute(runId, 'in/b.jsonl', true)).rejects.toThrow(/must read its input s3:\/\/planner-retry-suite\/in\/a.jsonl/);
  }, 120_000);
});
