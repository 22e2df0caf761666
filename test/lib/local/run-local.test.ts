import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { processStream } from '../../../containers/worker/src/engine';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { LocalRunInputError, runLocal } from '../../../lib/local/run-local';

/**
 * End to end: the synthesized workflow through the local interpreter, real handlers in-process,
 * the real worker as a pool of worker processes, s3rver on loopback in a child process. Results are
 * checked against one whole-object engine run over the same file.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'run-local-test-'));
const cacheDirectory = path.join(tmp, 'cache');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Processes whose command line mentions `marker` (the run's own cache or state directory). */
function processesMentioning(marker: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function wholeObject(file: string, format: 'jsonl' | 'csv'): Promise<Record<string, unknown>> {
  const { document } = await processStream('aggregate-defects', fs.createReadStream(file) as AsyncIterable<Buffer>, { format });
  return document;
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** The code cache files in the cache directory, with their inodes (a rewritten cache is a new file). */
function codeCaches(): Record<string, number> {
  const found: Record<string, number> = {};
  for (const f of fs.readdirSync(cacheDirectory).filter((f) => f.endsWith('.v8cache')).sort()) found[f] = fs.statSync(path.join(cacheDirectory, f)).ino;
  return found;
}
const codeCachesAfter: Partial<Record<'jsonl' | 'csv', Record<string, number>>> = {};

describe.each(['jsonl', 'csv'] as const)('run-local on 1M records of %s', (format) => {
  const input = path.join(tmp, `defects-1m.${format}`);
  const output = path.join(tmp, `result-${format}.json`);
  let result: Awaited<ReturnType<typeof runLocal>>;
  let leftAfterRun: string[];
  /** Inodes of the input objects in the S3 store, seen while the run went on. */
  const storedInputInodes = new Set<number>();
  const inputsDir = path.join(tmp, `state-${format}`, 's3', 'local-runs', 'inputs');
  const recordStoredInputs = (d = inputsDir): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) recordStoredInputs(path.join(d, e.name));
      else if (e.name.endsWith('._S3rver_object')) storedInputInodes.add(fs.statSync(path.join(d, e.name)).ino);
    }
  };

  /** Inodes of the files the pool's workers read in place (WORKER_LOCAL_INPUT_ROOT), seen while the run went on. */
  const localInputInodes = new Set<number>();
  const localInputDir = path.join(tmp, `state-${format}`, 'local-input', 'local-runs', 'inputs');
  const recordLocalInputs = (d = localInputDir): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) recordLocalInputs(path.join(d, e.name));
      else localInputInodes.add(fs.statSync(path.join(d, e.name)).ino);
    }
  };

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
      cacheDirectory,
      onChunkFinished: () => {
        recordStoredInputs();
        recordLocalInputs();
      },
    });
    leftAfterRun = processesMentioning(tmp);
    codeCachesAfter[format] = codeCaches();
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

  test('the worker pool reused its processes: fewer processes than chunks on the Batch route', () => {
    expect(result.invocations.batch).toBe(3);
    expect(result.workerProcesses).toBe(2);
    expect(result.chunkTimings.filter((c) => c.route === 'batch').reduce((n, c) => n + c.records, 0)).toBeGreaterThan(0);
  });

  test('the first run synthesizes and bundles; the second (other input, same settings) reuses both from the cache', () => {
    const expected = format === 'jsonl' ? { definition: false, workerBundle: false } : { definition: true, workerBundle: true };
    expect(result.cache).toEqual(expected);
  });

  test('the worker processes and the S3 server load their bundles with V8 code caches: written by the first run, kept by the second', () => {
    const caches = codeCachesAfter[format]!;
    expect(Object.keys(caches).map((f) => f.replace(/-[0-9a-f]{24}\.js\.[0-9a-f]{16}\./, '-<key>.js.<fingerprint>.'))).toEqual([
      `s3rver-bundle-<key>.js.<fingerprint>.${process.version}-${process.arch}.v8cache`,
      `worker-bundle-<key>.js.<fingerprint>.${process.version}-${process.arch}.v8cache`,
    ]);
    // The second run found them valid (V8 accepted them): the same files, not rewritten.
    if (format === 'csv') expect(caches).toEqual(codeCachesAfter.jsonl);
  });

  test('nothing of the run is left running: no worker process, no S3 server', () => {
    expect(leftAfterRun).toEqual([]);
  });

  test('the input was read in place: the object in the S3 store is the input file itself (a hard link), removed after the run', () => {
    expect([...storedInputInodes]).toEqual([fs.statSync(input).ino]);
    recordStoredInputs();
    expect(storedInputInodes.size).toBe(1);
    expect(fs.readdirSync(inputsDir, { recursive: true }).filter((f) => String(f).endsWith('._S3rver_object'))).toEqual([]);
  });

  test('the input is laid out for the pool workers\' in-place reads (WORKER_LOCAL_INPUT_ROOT): linked under <state>/local-input/<bucket>/<key> while the run went on, removed after it', () => {
    expect([...localInputInodes]).toEqual([fs.statSync(input).ino]);
    expect(fs.readdirSync(localInputDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())).toEqual([]);
  });

  test('the summary was delivered to the queue and as an event', () => {
    expect(result.delivered.queue).toEqual([expect.objectContaining({ runId: result.runId, status: 'SUCCEEDED' })]);
    expect(result.delivered.events).toEqual([expect.objectContaining({ runId: result.runId, status: 'SUCCEEDED' })]);
  });
});

describe('run-local with a corrupted chunk', () => {
  test('reports PARTIAL within tolerance and lists the failing chunk, whose worker failed with exit code 1', async () => {
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
      cacheDirectory,
    });
    const summary = result.summary as { status: string; chunks: { total: number; failed: number }; failedChunks: { index: number; startByte: number; endByte: number; cause: string }[] };
    expect(summary.status).toBe('PARTIAL');
    expect(summary.chunks.failed).toBe(1);
    expect(summary.failedChunks).toHaveLength(1);
    const [failed] = summary.failedChunks;
    expect(failed.startByte).toBeLessThanOrEqual(corruptFrom);
    expect(failed.endByte).toBeGreaterThan(corruptFrom);
    expect(failed.cause).toMatch(/worker failed with exit code 1.*rejected/);
    expect(result.outputPath).toBeDefined();
  }, 600_000);
});

describe('run-local interrupted and restarted with the same run id', () => {
  test('the restart processes only the remaining chunks and gives the uninterrupted result', async () => {
    const input = path.join(tmp, 'restart.jsonl');
    await writeSampleFile(input, { count: 120_000, seed: 9 });
    const stateDir = path.join(tmp, 'state-restart');
    const common = { input, operation: 'aggregate-defects', chunkRecords: 20_000, lambdaMaxRecords: 0, workers: 1, runId: 'restart-me', stateDir, cacheDirectory };
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
    expect(processesMentioning(stateDir)).toEqual([]);

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
