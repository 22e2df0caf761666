import { Readable } from 'stream';
import * as zlib from 'zlib';
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { listDoneIndexes, ManifestCoverageError, parseManifest, planRun, READ_WINDOW_BYTES, verifyCoverage } from '../../../lambda/planner/plan';
import { doneMarkerKey, manifestKey, planKey, RunPlan } from '../../../lambda/planner/run-layout';
import { validateRunRequest, ValidatedRun } from '../../../lambda/validate-input/validate';
import { motoClientConfig } from '../../support/moto';

const BUCKET = 'planner-suite-data';
const RUNS = 'planner-suite-runs';
const OPERATIONS = ['aggregate-defects', 'transform-records'];
const s3 = new S3Client(motoClientConfig());
const deps = { s3, runsBucket: RUNS };
afterAll(() => s3.destroy());

function run(fields: Record<string, unknown>): ValidatedRun {
  return validateRunRequest({ bucket: BUCKET, operation: 'aggregate-defects', ...fields }, { operations: OPERATIONS });
}

async function put(key: string, body: string | Buffer): Promise<void> {
  const bytes = Buffer.from(body);
  // An explicit length: the SDK takes an empty body without one for a stream of unknown length.
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes, ContentLength: bytes.length }));
}

async function getText(bucket: string, key: string, range?: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
  return res.Body!.transformToString();
}

/** Variable-length JSON lines so target offsets fall inside records. */
function jsonLine(i: number): string {
  return JSON.stringify({ segmentId: `seg-${i % 977}`, severity: 'low', lat: 48.1, lon: 11.5, note: 'x'.repeat(i % 90) }) + '\n';
}

function lines(n: number, make: (i: number) => string = jsonLine): string {
  let s = '';
  for (let i = 0; i < n; i++) s += make(i);
  return s;
}

beforeAll(async () => {
  for (const b of [BUCKET, RUNS]) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: b }));
    } catch (err) {
      if ((err as Error).name !== 'BucketAlreadyOwnedByYou') throw err;
    }
  }
});

describe('planner on a multi-hundred-MB object', () => {
  const KEY = 'big/defects.jsonl';
  const RECORDS = 2_200_000;
  let size = 0;
  let plan: Awaited<ReturnType<typeof planRun>>;

  beforeAll(async () => {
    // Streamed generation and multipart upload: the 250 MB object never sits in memory whole.
    let i = 0;
    const source = new Readable({
      read() {
        let batch = '';
        for (let n = 0; n < 5000 && i < RECORDS; n++, i++) batch += jsonLine(i);
        size += Buffer.byteLength(batch);
        this.push(batch.length > 0 ? batch : null);
      },
    });
    await new Upload({ client: s3, params: { Bucket: BUCKET, Key: KEY, Body: source }, partSize: 16 * 1024 * 1024, queueSize: 2 }).done();
    plan = await planRun(run({ runId: 'big-run', key: KEY, chunkRecords: 100_000 }), deps);
  }, 600_000);

  test('the object is in the multi-hundred-MB range', () => {
    expect(size).toBeGreaterThan(200 * 1024 * 1024);
    expect(plan.totalBytes).toBe(size);
  });

  test('the manifest covers every byte exactly once', async () => {
    const chunks = parseManifest(await getText(RUNS, manifestKey('big-run')));
    expect(chunks).toHaveLength(plan.chunkCount);
    expect(chunks[0].startByte).toBe(0);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i].startByte).toBe(chunks[i - 1].endByte);
    expect(chunks[chunks.length - 1].endByte).toBe(size);
    expect(chunks.every((c) => c.endByte > c.startByte)).toBe(true);
  });

  test('every boundary is the first byte of a record', async () => {
    const chunks = parseManifest(await getText(RUNS, manifestKey('big-run')));
    for (const c of chunks.slice(1)) {
      expect(await getText(BUCKET, KEY, `bytes=${c.startByte - 1}-${c.startByte}`)).toMatch(/^\n\{$/);
    }
  });

  test('chunks follow the requested record count', () => {
    expect(plan.chunkCount).toBeGreaterThanOrEqual(20);
    expect(plan.chunkCount).toBeLessThanOrEqual(24);
    expect(plan.estimatedRecords).toBeGreaterThan(RECORDS * 0.9);
    expect(plan.estimatedRecords).toBeLessThan(RECORDS * 1.1);
  });

  test('bytes read are reported and stay within 64 KiB per chunk', () => {
    expect(plan.bytesRead).toBeGreaterThan(0);
    expect(plan.bytesRead).toBeLessThanOrEqual(plan.chunkCount * READ_WINDOW_BYTES);
  });

  test('chunks estimated above lambdaMaxRecords are routed to Batch', async () => {
    const routed = await planRun(run({ runId: 'big-routes', key: KEY, chunkRecords: 100_000, lambdaMaxRecords: 99_000 }), deps);
    const chunks = parseManifest(await getText(RUNS, manifestKey('big-routes')));
    expect(routed.chunkCount).toBe(plan.chunkCount);
    for (const c of chunks) expect(c.route).toBe(c.estimatedRecords <= 99_000 ? 'lambda' : 'batch');
    expect(chunks.some((c) => c.route === 'batch')).toBe(true);
  });
});

describe('planner on small objects', () => {
  test('writes plan.json with the input identity and chunk count', async () => {
    await put('small/a.jsonl', lines(1000));
    const out = await planRun(run({ runId: 'plan-json', key: 'small/a.jsonl', chunkRecords: 100 }), deps);
    const plan = JSON.parse(await getText(RUNS, planKey('plan-json'))) as RunPlan;
    expect(plan.inputs).toEqual([expect.objectContaining({ bucket: BUCKET, key: 'small/a.jsonl', size: out.totalBytes })]);
    expect(plan.chunkCount).toBe(out.chunkCount);
    expect(out.chunkCount).toBe(10);
  });

  test('gzip input becomes one whole-object chunk with a warning', async () => {
    await put('small/b.jsonl.gz', zlib.gzipSync(lines(5000)));
    const out = await planRun(run({ runId: 'gz', key: 'small/b.jsonl.gz', chunkRecords: 100 }), deps);
    const [chunk] = parseManifest(await getText(RUNS, manifestKey('gz')));
    expect(out.chunkCount).toBe(1);
    expect(chunk).toMatchObject({ startByte: 0, endByte: out.totalBytes, gzip: true, inputFormat: 'jsonl.gz' });
    expect(chunk.estimatedRecords).toBeGreaterThan(2500);
    expect(out.warnings).toEqual([expect.stringMatching(/gzip.*one whole-object chunk/)]);
  });

  test('CSV with quoted fields becomes one whole-object chunk with a warning', async () => {
    await put('small/c.csv', 'segmentId,note\n' + lines(3000, (i) => `s${i},"multi\nline"\n`));
    const out = await planRun(run({ runId: 'csv-quoted', key: 'small/c.csv', chunkRecords: 100 }), deps);
    expect(out.chunkCount).toBe(1);
    expect(out.warnings).toEqual([expect.stringMatching(/quoted fields.*one whole-object chunk/)]);
  });

  test('plain CSV is split and the header is not counted as a record', async () => {
    await put('small/d.csv', 'segmentId,severity,lat,lon\n' + lines(2000, (i) => `seg-${i},low,48.1,11.${i % 10}\n`));
    const out = await planRun(run({ runId: 'csv-plain', key: 'small/d.csv', chunkRecords: 500 }), deps);
    const chunks = parseManifest(await getText(RUNS, manifestKey('csv-plain')));
    expect(out.chunkCount).toBe(4);
    expect(chunks.every((c) => c.format === 'csv' && c.inputFormat === 'csv')).toBe(true);
    expect(Math.abs(chunks[0].estimatedRecords - 500)).toBeLessThan(20);
  });

  test('a missing object is a clear error naming it, and nothing is written', async () => {
    await expect(planRun(run({ runId: 'missing', key: 'small/nope.jsonl' }), deps)).rejects.toThrow(
      `input s3://${BUCKET}/small/nope.jsonl cannot be read: no such object (404)`,
    );
    await expect(getText(RUNS, manifestKey('missing'))).rejects.toThrow();
  });

  test('a key without a known extension needs a format', async () => {
    await put('small/e.txt', lines(10));
    await expect(planRun(run({ runId: 'ext', key: 'small/e.txt' }), deps)).rejects.toThrow(/cannot tell the format.*pass format/);
    const out = await planRun(run({ runId: 'ext-given', key: 'small/e.txt', format: 'jsonl' }), deps);
    expect(out.chunkCount).toBe(1);
  });

  test('an empty object is one [0, 0) chunk', async () => {
    await put('small/empty.jsonl', '');
    const out = await planRun(run({ runId: 'empty', key: 'small/empty.jsonl' }), deps);
    const chunks = parseManifest(await getText(RUNS, manifestKey('empty')));
    expect(out.chunkCount).toBe(1);
    expect(chunks[0]).toMatchObject({ startByte: 0, endByte: 0, estimatedRecords: 0 });
  });

  test('records longer than the read window leave boundaries unaligned, with a warning, still contiguous', async () => {
    const long = (i: number): string => JSON.stringify({ i, blob: 'y'.repeat(200_000 + i) }) + '\n';
    const body = lines(12, long);
    await put('small/long.jsonl', body);
    const out = await planRun(run({ runId: 'long', key: 'small/long.jsonl', chunkBytes: 250_000 }), deps);
    const chunks = parseManifest(await getText(RUNS, manifestKey('long')));
    expect(out.warnings).toEqual([expect.stringMatching(/records longer than 65536 bytes/)]);
    expect(() => verifyCoverage({ bucket: BUCKET, key: 'small/long.jsonl', size: Buffer.byteLength(body) }, chunks)).not.toThrow();
  });

  test('a prefix plans every object under it, in key order, and ignores runs/', async () => {
    await put('multi/1.jsonl', lines(300));
    await put('multi/2.jsonl', lines(300));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'runs/x/manifest.jsonl', Body: '{}' }));
    const out = await planRun(run({ runId: 'prefix', prefix: 'multi/', chunkRecords: 100 }), deps);
    const chunks = parseManifest(await getText(RUNS, manifestKey('prefix')));
    expect(out.chunkCount).toBe(6);
    expect(chunks.map((c) => c.key)).toEqual(['multi/1.jsonl', 'multi/1.jsonl', 'multi/1.jsonl', 'multi/2.jsonl', 'multi/2.jsonl', 'multi/2.jsonl']);
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('planner on a restarted run', () => {
  const KEY = 'resume/in.jsonl';

  beforeAll(async () => {
    await put(KEY, lines(1000));
  });

  test('keeps the manifest and flags chunks that have a done-marker', async () => {
    const first = await planRun(run({ runId: 'again', key: KEY, chunkRecords: 100 }), deps);
    const before = parseManifest(await getText(RUNS, manifestKey('again')));
    for (const index of [0, 3, 7]) {
      await s3.send(new PutObjectCommand({ Bucket: RUNS, Key: doneMarkerKey('again', index), Body: '{}' }));
    }
    const second = await planRun(run({ runId: 'again', key: KEY, chunkRecords: 250 }), deps);
    const after = parseManifest(await getText(RUNS, manifestKey('again')));
    expect(second).toMatchObject({ resumed: true, chunkCount: first.chunkCount, chunksDone: 3, bytesRead: 0 });
    expect(after.map((c) => [c.startByte, c.endByte])).toEqual(before.map((c) => [c.startByte, c.endByte]));
    expect(after.filter((c) => c.done).map((c) => c.index)).toEqual([0, 3, 7]);
    expect([...(await listDoneIndexes(s3, RUNS, 'again'))].sort()).toEqual([0, 3, 7]);
  });

  test('refuses a run id already planned for another input', async () => {
    await put('resume/other.jsonl', lines(10));
    await planRun(run({ runId: 'taken', key: KEY }), deps);
    await expect(planRun(run({ runId: 'taken', key: 'resume/other.jsonl' }), deps)).rejects.toThrow(
      /run id "taken" was planned for a different input or operation/,
    );
  });
});

describe('verifyCoverage', () => {
  const input = { bucket: 'b', key: 'k', size: 100 };

  test('accepts contiguous chunks from 0 to the size', () => {
    expect(() => verifyCoverage(input, [{ startByte: 0, endByte: 40 }, { startByte: 40, endByte: 100 }])).not.toThrow();
  });

  test('rejects a gap', () => {
    expect(() => verifyCoverage(input, [{ startByte: 0, endByte: 40 }, { startByte: 41, endByte: 100 }])).toThrow(
      new ManifestCoverageError('manifest does not cover s3://b/k (100 bytes) exactly: chunk 1 starts at 41, expected 40 (gap)'),
    );
  });

  test('rejects an overlap', () => {
    expect(() => verifyCoverage(input, [{ startByte: 0, endByte: 40 }, { startByte: 39, endByte: 100 }])).toThrow(/chunk 1 starts at 39, expected 40 \(overlap\)/);
  });

  test('rejects a manifest that stops short of the end', () => {
    expect(() => verifyCoverage(input, [{ startByte: 0, endByte: 99 }])).toThrow(/last chunk ends at 99, expected 100/);
  });
});
