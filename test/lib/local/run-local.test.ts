import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { processStream } from '../../../containers/worker/src/engine';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { LocalRunInputError, runLocal } from '../../../lib/local/run-local';

/**
 * End to end: the synthesized workflow through the local interpreter, real handlers in-process,
 * the real worker as child processes, s3rver on loopback. Results are checked against one
 * whole-object engine run over the same file.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'run-local-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function wholeObject(file: string, format: 'jsonl' | 'csv'): Promise<Record<string, unknown>> {
  const { document } = await processStream('aggregate-defects', fs.createReadStream(file) as AsyncIterable<Buffer>, { format });
  return document;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

describe.each(['jsonl', 'csv'] as const)('run-local on 1M records of %s', (format) => {
  const input = path.join(tmp, `defects-1m.${format}`);
  const output = path.join(tmp, `result-${format}.json`);
  let result: Awaited<ReturnType<typeof runLocal>>;

  beforeAll(async () => {
    await writeSampleFile(input, { count: 1_000_000, seed: 11, format });
    // 300K-record chunks: three on worker processes (the Batch route), the ~100K remainder in-process (the Lambda route);
    // every chunk boundary target falls inside a record and is moved to the next record start.
    result = await runLocal({
      input,
      operation: 'aggregate-defects',
      output,
      chunkRecords: 300_000,
      lambdaMaxRecords: 150_000,
      workers: 2,
      stateDir: path.join(tmp, `state-${format}`),
    });
  }, 900_000);

  test('the run succeeds over every record', () => {
    expect(result.status).toBe('SUCCEEDED');
    expect(result.records).toBe(1_000_000);
  });

  test('the result equals one whole-object worker run', async () => {
    expect(readJson(output)).toEqual(await wholeObject(input, format));
  });

  test('chunks ran on both routes: worker processes and the in-process Lambda handler', () => {
    expect(result.chunkCount).toBeGreaterThanOrEqual(3);
    expect(result.invocations.batch).toBeGreaterThanOrEqual(1);
    expect(result.invocations.lambda).toBeGreaterThanOrEqual(1);
    expect(result.invocations.batch + result.invocations.lambda).toBe(result.chunkCount);
  });

  test('the summary was delivered to the queue and as an event', () => {
    expect(result.delivered.queue).toEqual([expect.objectContaining({ runId: result.runId, status: 'SUCCEEDED' })]);
    expect(result.delivered.events).toEqual([expect.objectContaining({ runId: result.runId, status: 'SUCCEEDED' })]);
  });
});

describe('run-local with a corrupted chunk', () => {
  test('reports PARTIAL within tolerance and lists the failing chunk, whose worker exited non-zero', async () => {
    const input = path.join(tmp, 'corrupt.jsonl');
    await writeSampleFile(input, { count: 120_000, seed: 5 });
    // Garble 2,000 consecutive lines in the second quarter: that chunk's reject ratio passes 1 %.
    const lines = fs.readFileSync(input, 'utf8').split('\n');
    for (let i = 40_000; i < 42_000; i++) lines[i] = 'this is not json';
    fs.writeFileSync(input, lines.join('\n'));
    const corruptFrom = Buffer.byteLength(lines.slice(0, 40_000).join('\n'));
    const result = await runLocal({
      input,
      operation: 'aggregate-defects',
      output: path.join(tmp, 'corrupt.json'),
      chunkRecords: 30_000,
      lambdaMaxRecords: 0,
      workers: 2,
      toleratedFailurePercentage: 50,
      stateDir: path.join(tmp, 'state-corrupt'),
    });
    const summary = result.summary as { status: string; chunks: { total: number; failed: number }; failedChunks: { index: number; startByte: number; endByte: number; cause: string }[] };
    expect(summary.status).toBe('PARTIAL');
    expect(summary.chunks.failed).toBe(1);
    expect(summary.failedChunks).toHaveLength(1);
    const [failed] = summary.failedChunks;
    expect(failed.startByte).toBeLessThanOrEqual(corruptFrom);
    expect(failed.endByte).toBeGreaterThan(corruptFrom);
    expect(failed.cause).toMatch(/worker exited with code 1.*rejected/);
    expect(result.outputPath).toBeDefined();
  }, 600_000);
});

describe('run-local interrupted and restarted with the same run id', () => {
  test('the restart processes only the remaining chunks and gives the uninterrupted result', async () => {
    const input = path.join(tmp, 'restart.jsonl');
    await writeSampleFile(input, { count: 120_000, seed: 9 });
    const stateDir = path.join(tmp, 'state-restart');
    const common = { input, operation: 'aggregate-defects', chunkRecords: 20_000, lambdaMaxRecords: 0, workers: 1, runId: 'restart-me', stateDir };
    const controller = new AbortController();
    let finishedBeforeAbort = 0;
    await expect(
      runLocal({
        ...common,
        output: path.join(tmp, 'restart-1.json'),
        signal: controller.signal,
        onChunkFinished: (e) => {
          if (e.ok) finishedBeforeAbort++;
          if (finishedBeforeAbort === 2) controller.abort();
        },
      }),
    ).rejects.toThrow(/run restart-me aborted; run again with --run-id restart-me/);

    const second = await runLocal({ ...common, output: path.join(tmp, 'restart-2.json') });
    expect(second.status).toBe('SUCCEEDED');
    expect(second.chunkCount).toBe(6);
    expect(second.invocations.batch + second.invocations.lambda).toBe(6 - finishedBeforeAbort);
    expect(readJson(path.join(tmp, 'restart-2.json'))).toEqual(await wholeObject(input, 'jsonl'));
  }, 600_000);
});

describe('run-local bad input', () => {
  const input = path.join(tmp, 'tiny.jsonl');
  beforeAll(() => fs.writeFileSync(input, '{"segmentId":"a"}\n'));

  test('a missing input file fails before anything runs', async () => {
    await expect(runLocal({ input: path.join(tmp, 'nope.jsonl'), operation: 'aggregate-defects', output: path.join(tmp, 'o.json') })).rejects.toThrow(
      new LocalRunInputError(`--input ${path.join(tmp, 'nope.jsonl')} does not exist`),
    );
  });

  test('an unknown operation names the known ones', async () => {
    await expect(runLocal({ input, operation: 'frobnicate', output: path.join(tmp, 'o.json') })).rejects.toThrow(
      /--operation "frobnicate" is unknown; allowed: aggregate-defects, transform-records/,
    );
  });

  test('a non-positive chunk size is refused', async () => {
    await expect(runLocal({ input, operation: 'aggregate-defects', output: path.join(tmp, 'o.json'), chunkRecords: 0 })).rejects.toThrow(
      '--chunk-records (0) must be a whole number >= 1',
    );
  });
});
