import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { S3Client } from '@aws-sdk/client-s3';
import { processStream } from '../../../containers/worker/src/engine';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { RunNotFoundError, RunsClient, RunStatus } from '../../../lib/client/runs';
import { LocalRunOptions, runLocal } from '../../../lib/local/run-local';

/**
 * The issue's test, locally end to end: a run with one poisoned chunk ends PARTIAL; after the data
 * is fixed, a retry reruns only that chunk and ends SUCCEEDED with the result of a clean whole run.
 * Progress is read with `batchctl runs status`'s client against the run's own S3 server while it goes.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'run-local-retry-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const input = path.join(tmp, 'records.jsonl');
const output = path.join(tmp, 'result.json');
const stateDir = path.join(tmp, 'state');
const runId = 'poisoned-then-fixed';
const POISON_FROM = 25_000;
const POISON_TO = 25_300;

function localS3(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // No keep-alive: an idle pooled socket would hold the run's S3 server open when it closes.
    requestHandler: { httpAgent: new http.Agent({ keepAlive: false }) },
  });
}

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}

/** The run's status read once more from its state dir after runLocal returned (the same data, a new server). */
async function statusAfter(runId: string): Promise<RunStatus> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const S3rver = require('s3rver') as new (opts: Record<string, unknown>) => S3rverInstance;
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: path.join(stateDir, 's3') });
  const { port } = await server.run();
  const s3 = localS3(`http://127.0.0.1:${port}`);
  try {
    return await new RunsClient({ s3, runsBucket: 'local-runs' }).status(runId);
  } finally {
    s3.destroy();
    await server.close();
  }
}

/** Runs runLocal while polling the run's status from its S3 server until the run returns. */
async function runWatched(options: LocalRunOptions): Promise<{ result: Awaited<ReturnType<typeof runLocal>>; samples: RunStatus[] }> {
  const samples: RunStatus[] = [];
  let finished = false;
  let poller: Promise<void> = Promise.resolve();
  const run = runLocal({
    ...options,
    onStarted: ({ endpoint, bucket }) => {
      const s3 = localS3(endpoint);
      const client = new RunsClient({ s3, runsBucket: bucket });
      poller = (async () => {
        while (!finished) {
          try {
            samples.push(await client.status(options.runId!));
          } catch (err) {
            // Before the planner wrote plan.json the run is unknown; once the run returns the server closes.
            if (!(err instanceof RunNotFoundError) && !finished) throw err;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        s3.destroy();
      })();
    },
  });
  try {
    const result = await run;
    finished = true;
    await poller;
    samples.push(await statusAfter(options.runId!));
    return { result, samples };
  } finally {
    finished = true;
  }
}

function nonDecreasing(values: number[]): boolean {
  return values.every((v, i) => i === 0 || v >= values[i - 1]);
}

let lines: string[];
let poisonByte: number;
let first: Awaited<ReturnType<typeof runWatched>>;
let second: Awaited<ReturnType<typeof runWatched>>;

beforeAll(async () => {
  await writeSampleFile(input, { count: 60_000, seed: 17 });
  const clean = fs.readFileSync(input, 'utf8');
  lines = clean.split('\n');
  // Poison: 300 records of one chunk become `xxx...` of the same length (3 % rejects > the 1 % limit).
  const bad = lines.map((l, i) => (i >= POISON_FROM && i < POISON_TO ? 'x'.repeat(l.length) : l));
  fs.writeFileSync(input, bad.join('\n'));
  poisonByte = Buffer.byteLength(lines.slice(0, POISON_FROM).join('\n'));
  const common = { input, operation: 'aggregate-defects', output, chunkRecords: 10_000, lambdaMaxRecords: 100_000, workers: 2, toleratedFailurePercentage: 50, runId, stateDir };
  first = await runWatched(common);
  // The data is fixed in place.
  fs.writeFileSync(input, clean);
  second = await runWatched({ ...common, retry: true });
}, 600_000);

test('the run with one poisoned chunk ends PARTIAL, listing that chunk', () => {
  const summary = first.result.summary as { status: string; failedChunks: { index: number; startByte: number; endByte: number }[] };
  expect(summary.status).toBe('PARTIAL');
  expect(summary.failedChunks).toHaveLength(1);
  expect(summary.failedChunks[0].startByte).toBeLessThanOrEqual(poisonByte);
  expect(summary.failedChunks[0].endByte).toBeGreaterThan(poisonByte);
});

test('the retry after the fix ends SUCCEEDED with the result of a clean whole run', async () => {
  expect(second.result.status).toBe('SUCCEEDED');
  expect(second.result.records).toBe(60_000);
  const { document } = await processStream('aggregate-defects', fs.createReadStream(input) as AsyncIterable<Buffer>, { format: 'jsonl' });
  expect(JSON.parse(fs.readFileSync(output, 'utf8'))).toEqual(document);
});

test('the retry reran only the failed chunk', () => {
  const failed = (first.result.summary as { failedChunks: { index: number }[] }).failedChunks[0].index;
  // chunkTimings lists the chunks an invocation processed successfully.
  expect(first.result.chunkTimings.map((c) => c.index).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5].filter((i) => i !== failed));
  expect(second.result.chunkTimings.map((c) => c.index)).toEqual([failed]);
  expect(second.result.invocations.lambda + second.result.invocations.batch).toBe(1);
});

test('progress read during the run moves monotonically to 100 %', () => {
  const progress = first.samples.map((s) => s.progress);
  // Read while the run went (the last one after it returned).
  expect(progress.length).toBeGreaterThan(2);
  expect(nonDecreasing(progress)).toBe(true);
  expect(nonDecreasing(first.samples.map((s) => s.records.done))).toBe(true);
  expect(progress.some((p) => p > 0 && p < 1)).toBe(true);
  expect(progress[progress.length - 1]).toBe(1);
  expect(first.samples[first.samples.length - 1]).toMatchObject({ state: 'PARTIAL', chunks: { total: 6, done: 5, failed: 1, pending: 0 } });
});

test('progress of the retry starts at the reused chunks and moves monotonically to 100 %', () => {
  const retrySamples = second.samples.filter((s) => s.attempt === 1);
  const progress = retrySamples.map((s) => s.progress);
  // The one rerun chunk can finish between two 100 ms polls, so the first sample may already be 100 %;
  // what must hold is that no sample of the retry counts fewer than the five reused chunks.
  expect(progress.length).toBeGreaterThan(0);
  expect(Math.min(...progress)).toBeGreaterThanOrEqual(5 / 6 - 1e-9);
  for (const s of retrySamples) expect(s.chunks.done).toBeGreaterThanOrEqual(5);
  expect(nonDecreasing(progress)).toBe(true);
  expect(retrySamples[retrySamples.length - 1]).toMatchObject({ state: 'SUCCEEDED', progress: 1, chunks: { total: 6, done: 6, failed: 0, pending: 0 } });
});
