import { S3Client } from '@aws-sdk/client-s3';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import { LOCAL_INPUT_ROOT_ENV, headObject, localInputFile } from '../../../../containers/worker/src/engine/source';
import { OPERATION_DECLARATIONS } from '../../../../containers/worker/src/operations/declarations';
import { CSV_HEADER, defectRecords, formatRecord } from '../../../../containers/worker/src/sample-data';
import { createBucket, exists, getBuffer, motoS3, put, uniqueBucket } from '../support/s3';

/**
 * WORKER_LOCAL_INPUT_ROOT: the worker reads s3://B/K from <root>/B/K (the local runner's in-place
 * input). The input objects of these tests exist only as local files (or only in S3, for the
 * fallback), so a read from the wrong place fails the test.
 */
const BUCKET = uniqueBucket('local-input');
let s3: S3Client;
let root: string;
const saved = process.env[LOCAL_INPUT_ROOT_ENV];

const lines = [...defectRecords({ count: 3000, seed: 5, segments: 40 })].map((r) => formatRecord(r, 'jsonl'));
const object = Buffer.from([...lines.slice(0, 1000), '{not json', ...lines.slice(1000)].join('\n') + '\n');
const csv = Buffer.from(
  CSV_HEADER + '\n' + [...defectRecords({ count: 500, seed: 6, segments: 10 })].map((r) => formatRecord(r, 'csv')).join('\n') + '\n',
);

const spec = (key: string, outKey: string, extra: Partial<ChunkSpec> = {}): ChunkSpec => ({
  jobId: 'local-input',
  operation: 'aggregate-defects',
  input: { bucket: BUCKET, key },
  output: { bucket: BUCKET, key: outKey },
  maxRejectRatio: 0.5,
  ...extra,
});

function writeLocal(key: string, body: Buffer): void {
  const file = path.join(root, BUCKET, ...key.split('/'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, body);
}

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'local-input-'));
  // The reference: the same bytes read from S3.
  await put(s3, BUCKET, 's3-only/records.jsonl', object);
  await put(s3, BUCKET, 's3-only/records.csv', csv);
  writeLocal('local-only/records.jsonl', object);
  writeLocal('local-only/records.jsonl.gz', gzipSync(object));
  writeLocal('local-only/records.csv', csv);
});

afterAll(() => {
  s3.destroy();
  fs.rmSync(root, { recursive: true, force: true });
  if (saved === undefined) delete process.env[LOCAL_INPUT_ROOT_ENV];
  else process.env[LOCAL_INPUT_ROOT_ENV] = saved;
});

afterEach(() => {
  delete process.env[LOCAL_INPUT_ROOT_ENV];
});

async function result(outKey: string): Promise<{ doc: string; rejects: string }> {
  return {
    doc: (await getBuffer(s3, BUCKET, outKey)).toString('utf8'),
    rejects: (await getBuffer(s3, BUCKET, `${outKey}.rejects.jsonl`)).toString('utf8'),
  };
}

describe('local-file input (WORKER_LOCAL_INPUT_ROOT)', () => {
  test('whole object, byte ranges, 2 threads and gzip from the local file equal the same bytes read from S3', async () => {
    const reference = await processChunk(spec('s3-only/records.jsonl', 'out/ref.json'), { s3In: s3, s3Out: s3 });
    expect(reference.status).toBe('succeeded');
    const expected = await result('out/ref.json');
    expect(expected.rejects).toContain('"offset"');

    process.env[LOCAL_INPUT_ROOT_ENV] = root;
    // Not in S3 at all: only the local file can give these results.
    expect(await exists(s3, BUCKET, 'local-only/records.jsonl')).toBe(false);
    const whole = await processChunk(spec('local-only/records.jsonl', 'out/local.json'), { s3In: s3, s3Out: s3 });
    expect(whole.records).toBe(reference.records);
    const got = await result('out/local.json');
    expect(got.doc.replace(/local-only/g, 's3-only')).toBe(expected.doc.replace(/out\/ref/g, 'out/local'));
    expect(got.rejects).toBe(expected.rejects);

    const threaded = await processChunk(spec('local-only/records.jsonl', 'out/local-t2.json'), {
      s3In: s3,
      s3Out: s3,
      threads: { count: 2, minBytesPerThread: 1024, batchBytes: 8 * 1024 },
    });
    expect(threaded.threads).toBe(2);
    expect((await result('out/local-t2.json')).rejects).toBe(expected.rejects);
    expect(threaded.records).toBe(reference.records);

    const gz = await processChunk(spec('local-only/records.jsonl.gz', 'out/local-gz.json'), { s3In: s3, s3Out: s3 });
    expect(gz.records).toBe(reference.records);

    // Two exact halves read from the file merge to the whole.
    const mid = Math.floor(object.length / 2);
    const a = await processChunk(spec('local-only/records.jsonl', 'out/a.json', { input: { bucket: BUCKET, key: 'local-only/records.jsonl', startByte: 0, endByte: mid } }), { s3In: s3, s3Out: s3 });
    const b = await processChunk(spec('local-only/records.jsonl', 'out/b.json', { input: { bucket: BUCKET, key: 'local-only/records.jsonl', startByte: mid, endByte: object.length } }), { s3In: s3, s3Out: s3 });
    expect(a.records + b.records).toBe(reference.records);
    expect(a.rejected + b.rejected).toBe(reference.rejected);
  });

  test('a CSV chunk that does not start at byte 0 reads its header from the local file', async () => {
    const reference = await processChunk(spec('s3-only/records.csv', 'out/csv-ref.json', { input: { bucket: BUCKET, key: 's3-only/records.csv', startByte: 200, endByte: csv.length } }), { s3In: s3, s3Out: s3 });
    process.env[LOCAL_INPUT_ROOT_ENV] = root;
    const local = await processChunk(spec('local-only/records.csv', 'out/csv-local.json', { input: { bucket: BUCKET, key: 'local-only/records.csv', startByte: 200, endByte: csv.length } }), { s3In: s3, s3Out: s3 });
    expect(local.status).toBe('succeeded');
    expect(local.records).toBe(reference.records);
    expect(local.records).toBeGreaterThan(400);
  });

  test('a key with no local file is read from S3; HEAD of a local file gives its size and a stable identity', async () => {
    process.env[LOCAL_INPUT_ROOT_ENV] = root;
    const fromS3 = await processChunk(spec('s3-only/records.jsonl', 'out/fallback.json'), { s3In: s3, s3Out: s3 });
    expect(fromS3.status).toBe('succeeded');
    expect(fromS3.records).toBe(3000);
    const h1 = await headObject(s3, BUCKET, 'local-only/records.jsonl');
    expect(h1.size).toBe(object.length);
    expect(await headObject(s3, BUCKET, 'local-only/records.jsonl')).toEqual(h1);
    writeLocal('local-only/changed.jsonl', object);
    const before = await headObject(s3, BUCKET, 'local-only/changed.jsonl');
    writeLocal('local-only/changed.jsonl', Buffer.concat([object, Buffer.from(lines[0] + '\n')]));
    expect((await headObject(s3, BUCKET, 'local-only/changed.jsonl')).etag).not.toBe(before.etag);
  });

  test('keys that would name another file are refused with the key in the error; the root must be absolute', () => {
    const env = { [LOCAL_INPUT_ROOT_ENV]: root };
    for (const key of ['../../etc/passwd', '/etc/passwd', 'a/../../x', 'a//b', './a', 'a\\..\\b']) {
      expect(() => localInputFile(BUCKET, key, env)).toThrow(key);
    }
    expect(() => localInputFile('..', 'x', env)).toThrow('s3://../x');
    expect(() => localInputFile(BUCKET, 'x', { [LOCAL_INPUT_ROOT_ENV]: 'relative/dir' })).toThrow(/must be an absolute folder, got "relative\/dir"/);
    expect(localInputFile(BUCKET, 'local-only/records.jsonl', {})).toBeUndefined();
    expect(localInputFile(BUCKET, 'local-only/records.jsonl', env)).toBe(path.join(root, BUCKET, 'local-only', 'records.jsonl'));
    expect(localInputFile(BUCKET, 'local-only', env)).toBeUndefined(); // a folder is no object
  });

  test('no operation lets a submitter set WORKER_LOCAL_INPUT_ROOT', () => {
    for (const [name, declaration] of OPERATION_DECLARATIONS) {
      expect([name, Object.keys(declaration.environment).includes(LOCAL_INPUT_ROOT_ENV)]).toEqual([name, false]);
    }
  });
});
