import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { processStream } from '../../../containers/worker/src/engine';
import { writeSampleFile } from '../../../containers/worker/src/sample-data';
import { defaultLocalChunkBytes, LOCAL_MAX_CHUNK_BYTES, runLocal } from '../../../lib/local/run-local';

/** The local runner's default chunking: rounds of one chunk per worker, each at most LOCAL_MAX_CHUNK_BYTES. */
describe('defaultLocalChunkBytes', () => {
  test('one chunk per worker while a chunk stays within the maximum', () => {
    expect(defaultLocalChunkBytes(258_000_000, 2)).toBe(129_000_000);
    expect(defaultLocalChunkBytes(258_000_001, 2)).toBe(129_000_001);
    expect(defaultLocalChunkBytes(1000, 4)).toBe(250);
    expect(defaultLocalChunkBytes(1000, 1)).toBe(1000);
  });

  test('more rounds of one chunk per worker once a chunk would pass the maximum', () => {
    const size = 5 * LOCAL_MAX_CHUNK_BYTES; // 2 workers: 3 rounds, 6 chunks
    const bytes = defaultLocalChunkBytes(size, 2);
    expect(bytes).toBeLessThanOrEqual(LOCAL_MAX_CHUNK_BYTES);
    expect(Math.ceil(size / bytes)).toBe(6);
    expect(defaultLocalChunkBytes(2 * LOCAL_MAX_CHUNK_BYTES, 2)).toBe(LOCAL_MAX_CHUNK_BYTES);
  });

  test('never zero, whatever the input and worker count', () => {
    expect(defaultLocalChunkBytes(0, 2)).toBe(1);
    expect(defaultLocalChunkBytes(1, 8)).toBe(1);
    expect(defaultLocalChunkBytes(100, 0)).toBe(100);
  });
});

describe('run-local without --chunk-records', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'local-chunking-test-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('plans one chunk per worker, all on the pool, and gives the whole-object result', async () => {
    const input = path.join(tmp, 'defects.jsonl');
    await writeSampleFile(input, { count: 60_000, seed: 17 });
    const output = path.join(tmp, 'result.json');
    const result = await runLocal({
      input,
      operation: 'aggregate-defects',
      output,
      workers: 2,
      lambdaMaxRecords: 0,
      stateDir: path.join(tmp, 'state'),
      cacheDirectory: path.join(tmp, 'cache'),
    });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.chunkCount).toBe(2);
    expect(result.invocations).toEqual({ lambda: 0, batch: 2 });
    expect(result.records).toBe(60_000);
    // Two chunks of about half the records each (boundaries move to record starts).
    for (const c of result.chunkTimings) expect(Math.abs(c.records - 30_000)).toBeLessThan(1_000);
    const { document } = await processStream('aggregate-defects', fs.createReadStream(input) as AsyncIterable<Buffer>, { format: 'jsonl' });
    expect(JSON.parse(fs.readFileSync(output, 'utf8'))).toEqual(JSON.parse(JSON.stringify(document)));
  }, 600_000);
});
