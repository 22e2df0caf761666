import { S3Client } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChunkSpec, processChunk, subRanges, threadCountFromEnv } from '../../../../containers/worker/src/engine';
import { LOCAL_INPUT_ROOT_ENV } from '../../../../containers/worker/src/engine/source';
import { prestartFromEnv } from '../../../../containers/worker/src/engine/prestart';
import { cpuLimit, prestartedThreadCount, releasePrestartedThreads } from '../../../../containers/worker/src/engine/threads';
import { defectRecords, formatRecord, prng } from '../../../../containers/worker/src/sample-data';
import { createBucket, exists, getBuffer, motoS3, put, uniqueBucket } from '../support/s3';

const BUCKET = uniqueBucket('worker-threads');
let s3: S3Client;

/** Small sub-ranges and batches so that a test-sized object gets several threads and many batches. */
const threads = (count: number) => ({ count, minBytesPerThread: 1024, batchBytes: 8 * 1024 });

/**
 * Good records with bad ones in between (invalid JSON, out-of-range values, invalid UTF-8, a record
 * longer than maxRecordBytes), and one bad line that starts exactly at the middle byte: the cut
 * between the two sub-ranges of a 2-thread run.
 */
function sample(): { object: Buffer; middle: number } {
  const rnd = prng(11);
  const good = [...defectRecords({ count: 2400, seed: 11, segments: 60 })].map((r) => formatRecord(r, 'jsonl'));
  const withBad = (lines: string[]) =>
    lines.map((l) => {
      const u = rnd();
      if (u < 0.004) return '{"segmentId":"s","severity":"low","lat":95,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}';
      if (u < 0.008) return '{not json';
      if (u < 0.01) return '{"segmentId":"s","severity":"low","lat":1,"lon":1,"detectedAt":"2024-02-30T12:00:00Z"}';
      return l;
    });
  const head = Buffer.from(withBad(good.slice(0, 1500)).join('\n') + '\n');
  const tail = Buffer.concat([
    Buffer.from('{"segmentId":"s\xff","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}\n', 'latin1'),
    Buffer.from('{"segmentId":"long","pad":"' + 'y'.repeat(3000) + '"}\n'),
    Buffer.from(withBad(good.slice(1500)).join('\n') + '\n'),
  ]);
  // the bad middle line fills the gap so that head.length === floor(size / 2)
  const pad = head.length - tail.length - 1;
  const middleLine = Buffer.from('x'.repeat(pad) + '\n');
  const object = Buffer.concat([head, middleLine, tail]);
  expect(Math.floor(object.length / 2)).toBe(head.length);
  return { object, middle: head.length };
}

const spec = (key: string, outKey: string, extra: Partial<ChunkSpec> = {}): ChunkSpec => ({
  jobId: 'threads',
  operation: 'aggregate-defects',
  input: { bucket: BUCKET, key },
  output: { bucket: BUCKET, key: outKey },
  maxRejectRatio: 0.5,
  maxRecordBytes: 2048,
  ...extra,
});

async function outputs(outKey: string): Promise<{ doc: string; rejects: string }> {
  return {
    doc: (await getBuffer(s3, BUCKET, outKey)).toString('utf8'),
    rejects: (await getBuffer(s3, BUCKET, `${outKey}.rejects.jsonl`)).toString('utf8'),
  };
}

let object: Buffer;
let middle: number;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
  ({ object, middle } = sample());
  await put(s3, BUCKET, 'in/mixed.jsonl', object);
});
afterAll(() => s3.destroy());

describe('worker threads over sub-ranges', () => {
  test('N threads give byte-identical results and rejects to 1 thread, with a reject starting at the cut', async () => {
    const one = await processChunk(spec('in/mixed.jsonl', 'out/t1.json'), { s3In: s3, s3Out: s3 });
    expect(one.threads).toBe(1);
    const expected = await outputs('out/t1.json');
    expect(expected.rejects).toContain(`{"offset":${middle},"reason":"record longer than 2048 bytes"`);
    expect(one.rejected).toBeGreaterThan(10);
    for (const n of [2, 3, 5]) {
      const r = await processChunk(spec('in/mixed.jsonl', `out/t${n}.json`), { s3In: s3, s3Out: s3, threads: threads(n) });
      expect(r.status).toBe('succeeded');
      expect(r.threads).toBe(n);
      expect([r.records, r.rejected]).toEqual([one.records, one.rejected]);
      expect(await outputs(`out/t${n}.json`)).toEqual(expected);
    }
  });

  test('a chunk in the middle of the object, split again into threads, equals its 1-thread run', async () => {
    const range = { startByte: 1000, endByte: object.length - 777 };
    const at = (k: string, t?: ReturnType<typeof threads>) =>
      processChunk(spec('in/mixed.jsonl', k, { input: { bucket: BUCKET, key: 'in/mixed.jsonl', ...range } }), { s3In: s3, s3Out: s3, threads: t });
    await at('out/range1.json');
    const r = await at('out/range3.json', threads(3));
    expect(r.threads).toBe(3);
    expect(await outputs('out/range3.json')).toEqual(await outputs('out/range1.json'));
  });

  test('interrupted threaded runs checkpoint the finished prefix; resuming (again with threads) ends with the 1-thread result', async () => {
    await processChunk(spec('in/mixed.jsonl', 'out/ref.json'), { s3In: s3, s3Out: s3 });
    const expected = await outputs('out/ref.json');
    const aborted = new AbortController();
    aborted.abort();
    const offsets: number[] = [];
    const attempt = (signal?: AbortSignal) =>
      processChunk(spec('in/mixed.jsonl', 'out/resumed.json'), {
        s3In: s3,
        s3Out: s3,
        signal,
        threads: { count: 2, minBytesPerThread: 1024, batchBytes: 16 * 1024 },
      });
    // Stopped at once: each thread finishes the batch it holds, then stops at a record boundary.
    for (let i = 0; i < 5; i++) {
      const r = await attempt(aborted.signal);
      expect(r.status).toBe('interrupted');
      expect(await exists(s3, BUCKET, 'out/resumed.json')).toBe(false);
      offsets.push(r.resumedFrom ?? 0);
    }
    // every attempt got further
    expect(offsets[0]).toBe(0);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]);
    const final = await attempt();
    expect(final.status).toBe('succeeded');
    expect(final.resumedFrom).toBeGreaterThan(offsets[offsets.length - 1]);
    expect(await outputs('out/resumed.json')).toEqual(expected);
    expect(await exists(s3, BUCKET, 'out/resumed.json.checkpoint.json')).toBe(false);
  });
});

describe('worker threads reading a local input file (WORKER_LOCAL_INPUT_ROOT)', () => {
  const saved = process.env[LOCAL_INPUT_ROOT_ENV];
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'threads-local-'));
    mkdirSync(path.join(root, BUCKET, 'in'), { recursive: true });
    writeFileSync(path.join(root, BUCKET, 'in', 'local.jsonl'), object);
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[LOCAL_INPUT_ROOT_ENV];
    else process.env[LOCAL_INPUT_ROOT_ENV] = saved;
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test('each thread reads its own sub-range from the file; results and rejects equal the 1-thread run from S3', async () => {
    // the same bytes in S3 give the reference, read by one thread
    await put(s3, BUCKET, 'in/local.jsonl', object);
    await processChunk(spec('in/local.jsonl', 'out/local-ref.json'), { s3In: s3, s3Out: s3 });
    const expected = await outputs('out/local-ref.json');
    // the S3 object is then replaced: a thread that read S3 instead of the file would count other records
    await put(s3, BUCKET, 'in/local.jsonl', Buffer.from('{"segmentId":"elsewhere","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}\n'));
    process.env[LOCAL_INPUT_ROOT_ENV] = root;
    for (const n of [2, 3]) {
      const r = await processChunk(spec('in/local.jsonl', `out/local${n}.json`), { s3In: s3, s3Out: s3, threads: threads(n) });
      expect(r.status).toBe('succeeded');
      expect(r.threads).toBe(n);
      expect(await outputs(`out/local${n}.json`)).toEqual(expected);
    }
    const range = { startByte: 1000, endByte: object.length - 777 };
    delete process.env[LOCAL_INPUT_ROOT_ENV];
    await put(s3, BUCKET, 'in/local.jsonl', object);
    await processChunk(spec('in/local.jsonl', 'out/local-range1.json', { input: { bucket: BUCKET, key: 'in/local.jsonl', ...range } }), { s3In: s3, s3Out: s3 });
    process.env[LOCAL_INPUT_ROOT_ENV] = root;
    await processChunk(spec('in/local.jsonl', 'out/local-range3.json', { input: { bucket: BUCKET, key: 'in/local.jsonl', ...range } }), { s3In: s3, s3Out: s3, threads: threads(3) });
    expect(await outputs('out/local-range3.json')).toEqual(await outputs('out/local-range1.json'));
  });
});

describe('scan threads started before the chunk is known (prestartFromEnv)', () => {
  const env = (extra: Record<string, string>) => ({ OPERATION: 'aggregate-defects', WORKER_THREADS: '2', ...extra });
  afterEach(() => releasePrestartedThreads());

  test('a threaded chunk of the same operation and config takes them, with the 1-thread result', async () => {
    await processChunk(spec('in/mixed.jsonl', 'out/pre-ref.json'), { s3In: s3, s3Out: s3 });
    expect(prestartFromEnv(env({}), 2)).toBe(2);
    expect(prestartedThreadCount()).toBe(2);
    const r = await processChunk(spec('in/mixed.jsonl', 'out/pre2.json'), { s3In: s3, s3Out: s3, threads: threads(2) });
    expect(r.threads).toBe(2);
    expect(prestartedThreadCount()).toBe(0);
    expect(await outputs('out/pre2.json')).toEqual(await outputs('out/pre-ref.json'));
  });

  test('a chunk that does not use threads, or another config, ends them; nothing is prestarted for one thread, another operation or a bad environment', async () => {
    expect(prestartFromEnv(env({}), 2)).toBe(2);
    await processChunk(spec('in/mixed.jsonl', 'out/pre1.json'), { s3In: s3, s3Out: s3 });
    expect(prestartedThreadCount()).toBe(0);
    expect(prestartFromEnv(env({ OPERATION_CONFIG: '{"defaultUtcOffset":"+02:00"}' }), 2)).toBe(2);
    const r = await processChunk(spec('in/mixed.jsonl', 'out/pre-other.json'), { s3In: s3, s3Out: s3, threads: threads(2) });
    expect(r.threads).toBe(2);
    expect(prestartedThreadCount()).toBe(0);
    expect(prestartFromEnv(env({ WORKER_THREADS: '1' }), 2)).toBe(0);
    expect(prestartFromEnv(env({ OPERATION: 'transform-records' }), 2)).toBe(0);
    expect(prestartFromEnv(env({ WORKER_THREADS: 'two' }), 2)).toBe(0);
    expect(prestartFromEnv(env({ OPERATION_CONFIG: '{not json' }), 2)).toBe(0);
    expect(prestartFromEnv(env({ OPERATION_CONFIG: '{"defaultUtcOffset":"noon"}' }), 2)).toBe(0);
    expect(prestartedThreadCount()).toBe(0);
  });
});

describe('thread count and sub-ranges', () => {
  test('sub-ranges cover the range exactly, at most count of them, none shorter than the minimum', () => {
    expect(subRanges(10, 110, 4, 10)).toEqual([10, 35, 60, 85, 110]);
    expect(subRanges(0, 100, 4, 40)).toEqual([0, 50, 100]);
    expect(subRanges(0, 5, 4, 40)).toEqual([0, 5]);
    expect(subRanges(7, 7, 2, 1)).toEqual([7, 7]);
  });

  test('WORKER_THREADS: default the CPU limit, capped by it, bad values name the variable', () => {
    expect(threadCountFromEnv(undefined, 4)).toBe(4);
    expect(threadCountFromEnv('2', 4)).toBe(2);
    expect(threadCountFromEnv('16', 4)).toBe(4);
    for (const bad of ['0', '-1', 'two', '1.5']) expect(() => threadCountFromEnv(bad, 4)).toThrow(/WORKER_THREADS \(.*\) must be a positive integer/);
  });

  test("the CPU limit is the cgroup's quota when there is one", () => {
    const files = (m: Record<string, string>) => (p: string) => {
      if (!(p in m)) throw new Error('ENOENT');
      return m[p];
    };
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu.max': '100000 100000\n' }))).toBe(1);
    expect(cpuLimit(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBe(1);
    const unlimited = cpuLimit(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' }));
    expect(unlimited).toBe(require('os').availableParallelism());
  });
});
