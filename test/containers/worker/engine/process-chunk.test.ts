import { gzipSync } from 'zlib';
import { S3Client } from '@aws-sdk/client-s3';
import { ChunkSpec, mergeResults, processChunk } from '../../../../containers/worker/src/engine';
import { defectRecords, formatRecord, prng, sampleBuffer } from '../../../../containers/worker/src/sample-data';
import { referenceAggregate } from '../support/reference';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';

const BUCKET = uniqueBucket('worker-process-chunk');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => s3.destroy());

const deps = () => ({ s3In: s3, s3Out: s3 });
const spec = (key: string, outKey: string, extra: Partial<ChunkSpec> = {}): ChunkSpec => ({
  jobId: 'test',
  operation: 'aggregate-defects',
  input: { bucket: BUCKET, key },
  output: { bucket: BUCKET, key: outKey },
  ...extra,
});

/** A sample with a BOM, CRLF on every third line and empty lines sprinkled in. */
function messySample(count: number, format: 'jsonl' | 'csv', seed: number): Buffer {
  const rnd = prng(seed);
  const lines = format === 'csv' ? ['segmentId,severity,lat,lon,detectedAt,depthMm'] : [];
  for (const rec of defectRecords({ count, seed, segments: 50 })) {
    lines.push(formatRecord(rec, format));
    if (rnd() < 0.05) lines.push('');
  }
  const text = lines.map((l, i) => l + (i % 3 === 0 ? '\r\n' : '\n')).join('');
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]);
}

function randomRanges(size: number, n: number, seed: number): [number, number][] {
  const rnd = prng(seed);
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(1 + Math.floor(rnd() * (size - 1)));
  const points = [0, ...[...cuts].sort((a, b) => a - b), size];
  return points.slice(1).map((p, i) => [points[i], p]);
}

describe.each(['jsonl', 'csv'] as const)('processChunk over %s', (format) => {
  const key = `in/messy.${format}`;
  const count = 5000;
  let object: Buffer;

  beforeAll(async () => {
    object = messySample(count, format, 3);
    await put(s3, BUCKET, key, object);
  });

  test('a whole-object run equals an independent computation', async () => {
    const result = await processChunk(spec(key, `out/${format}/whole.json`), deps());
    expect(result.status).toBe('succeeded');
    const expected = referenceAggregate(defectRecords({ count, seed: 3, segments: 50 }));
    expect(await getJsonObject(s3, BUCKET, `out/${format}/whole.json`)).toEqual(expected);
  });

  test('adjacent byte ranges cut inside records, merged, equal the whole-object run', async () => {
    const whole = await processChunk(spec(key, `out/${format}/whole2.json`), deps());
    for (const seed of [1, 2, 3]) {
      const ranges = randomRanges(object.length, 5, seed);
      const docs: Record<string, unknown>[] = [];
      for (const [i, [startByte, endByte]] of ranges.entries()) {
        const outKey = `out/${format}/s${seed}/chunk-${i}.json`;
        const r = await processChunk(spec(key, outKey, { input: { bucket: BUCKET, key, startByte, endByte } }), deps());
        expect(r.status).toBe('succeeded');
        docs.push(await getJsonObject(s3, BUCKET, outKey));
      }
      expect(mergeResults('aggregate-defects', docs.reverse())).toEqual(whole.document);
    }
  });
});

describe('processChunk rejects', () => {
  const good = (i: number) =>
    JSON.stringify({ segmentId: `s${i % 3}`, severity: 'low', lat: 1, lon: 2, detectedAt: '2024-01-02T03:04:05Z', depthMm: i });
  const bad: [string, string | RegExp][] = [
    ['{"segmentId":"x","severity":"low","lat":1,"lon":2}', /^detectedAt must be an ISO 8601 date-time with Z or a UTC offset/],
    ['{"segmentId":"x","severity":"low","lat":91,"lon":2,"detectedAt":"2024-01-01T00:00:00Z"}', 'lat must be a number in [-90, 90]'],
    ['{"segmentId":"","severity":"low","lat":1,"lon":2,"detectedAt":"2024-01-01T00:00:00Z"}', 'segmentId must be a non-empty string'],
    ['{"segmentId":"x","severity":"huge","lat":1,"lon":2,"detectedAt":"2024-01-01T00:00:00Z"}', 'severity must be one of low, medium, high, critical'],
    ['{"segmentId":"x","severity":"low","lat":1,"lon":2,"detectedAt":"2024-02-30T00:00:00Z"}', 'detectedAt 2024-02-30 is not a calendar date'],
    ['{"segmentId":"x","severity":"low","lat":1,"lon":2,"detectedAt":"2024-01-01T00:00:00Z","depthMm":-1}', 'depthMm must be a number in [0, 10000] (millimetres)'],
    ['{"segmentId": "x", "sev', /^invalid JSON/],
    [`{"pad":"${'z'.repeat(2 * 1024 * 1024)}"}`, 'record longer than 1048576 bytes'],
    ['\u0000\u00ff\ufffd\u0001garbage', /^invalid JSON/],
  ];
  const lines: string[] = [];
  const expectedOffsets: number[] = [];
  let pos = 0;
  for (let i = 0; i < 200; i++) {
    const line = i % 20 === 7 && i / 20 < bad.length ? bad[Math.floor(i / 20)][0] : good(i);
    if (line !== good(i)) expectedOffsets.push(pos);
    lines.push(line);
    pos += Buffer.byteLength(line) + 1;
  }
  const body = lines.join('\n') + '\n';

  beforeAll(() => put(s3, BUCKET, 'in/bad.jsonl', body));

  test('rejected records land in <key>.rejects.jsonl with byte offset, reason and the first KiB', async () => {
    const r = await processChunk(spec('in/bad.jsonl', 'out/bad.json', { maxRejectRatio: 0.5 }), deps());
    expect(r.status).toBe('succeeded');
    expect(r.rejected).toBe(bad.length);
    const rejects = (await getBuffer(s3, BUCKET, 'out/bad.json.rejects.jsonl'))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { offset: number; reason: string; raw: string });
    expect(rejects.map((x) => x.offset)).toEqual(expectedOffsets);
    rejects.forEach((x, i) => expect(x.reason).toMatch(bad[i][1]));
    expect(rejects[7].raw).toBe(lines[7 * 20 + 7].slice(0, 1024));
    expect((await getJsonObject(s3, BUCKET, 'out/bad.json')).records).toBe(200 - bad.length);
  });

  test('fails without writing a result when the reject ratio passes maxRejectRatio', async () => {
    const r = await processChunk(spec('in/bad.jsonl', 'out/bad-strict.json'), deps());
    expect(r.status).toBe('failed');
    expect(r.message).toMatch(/9 of 200 records rejected \(4\.50%\), more than MAX_REJECT_RATIO 0\.01/);
    expect(await exists(s3, BUCKET, 'out/bad-strict.json')).toBe(false);
    expect(await exists(s3, BUCKET, 'out/bad-strict.json.rejects.jsonl')).toBe(true);
  });
});

describe('processChunk interruption', () => {
  const big = sampleBuffer({ count: 60_000, seed: 11 });

  beforeAll(async () => {
    await put(s3, BUCKET, 'in/big.jsonl', big);
    await put(s3, BUCKET, 'in/big.json', big);
  });

  async function runUntilDone(s: ChunkSpec, seed: number): Promise<{ attempts: number; interrupted: number }> {
    const rnd = prng(seed);
    let interrupted = 0;
    for (let attempt = 1; attempt < 50; attempt++) {
      const controller = new AbortController();
      // the first attempts are cut short at random moments; later ones run to the end
      const timer = attempt <= 4 ? setTimeout(() => controller.abort(), 20 + rnd() * 150) : undefined;
      const r = await processChunk(s, { ...deps(), signal: controller.signal });
      clearTimeout(timer);
      if (r.status === 'succeeded') return { attempts: attempt, interrupted };
      expect(r.status).toBe('interrupted');
      expect(await exists(s3, BUCKET, r.checkpointKey!)).toBe(true);
      interrupted++;
    }
    throw new Error('never finished');
  }

  test('aggregate-defects interrupted at random points and resumed equals an uninterrupted run', async () => {
    const straight = await processChunk(spec('in/big.jsonl', 'out/straight.json'), deps());
    const { interrupted } = await runUntilDone(spec('in/big.jsonl', 'out/resumed.json'), 5);
    expect(interrupted).toBeGreaterThan(0);
    expect(await getJsonObject(s3, BUCKET, 'out/resumed.json')).toEqual(straight.document);
    expect(await exists(s3, BUCKET, 'out/resumed.json.checkpoint.json')).toBe(false);
  });

  test('transform-records interrupted mid multipart upload and resumed writes the uninterrupted bytes', async () => {
    const cfg = { operation: 'transform-records', operationConfig: { rename: { severity: 'level' }, drop: ['depthMm'], set: { v: 2 } } };
    await processChunk(spec('in/big.json', 'out/t-straight.jsonl', cfg), deps());
    const { interrupted } = await runUntilDone(spec('in/big.json', 'out/t-resumed.jsonl', cfg), 8);
    expect(interrupted).toBeGreaterThan(0);
    const expected = await getBuffer(s3, BUCKET, 'out/t-straight.jsonl');
    expect(expected.length).toBeGreaterThan(5 * 1024 * 1024);
    expect((await getBuffer(s3, BUCKET, 'out/t-resumed.jsonl')).equals(expected)).toBe(true);
  });

  test('a checkpoint made for other input is ignored', async () => {
    const first = await processChunk(spec('in/big.jsonl', 'out/other.json'), { ...deps(), signal: AbortSignal.abort() });
    expect(first.status).toBe('interrupted');
    const r = await processChunk(spec('in/big.jsonl', 'out/other.json', { input: { bucket: BUCKET, key: 'in/big.jsonl', startByte: 0, endByte: 1000 } }), deps());
    expect(r.resumedFrom).toBeUndefined();
    // records starting in [0, 1000): the first, plus one after every newline at a position < 999
    const newlines = [...big.subarray(0, 999)].filter((b) => b === 10).length;
    expect(r.records).toBe(1 + newlines);
  });
});

describe('processChunk formats and outputs', () => {
  test('transform-records applies require, rename, drop and set and writes JSON lines plus a summary', async () => {
    await put(s3, BUCKET, 'in/t.ndjson', '{"id":1,"a":"x","b":true}\n{"a":"no id"}\n{"id":2,"a":"y"}\n');
    const r = await processChunk(
      spec('in/t.ndjson', 'out/t.jsonl', {
        operation: 'transform-records',
        operationConfig: { require: ['id'], rename: { a: 'alpha' }, drop: ['b'], set: { source: 'seed' } },
        maxRejectRatio: 0.5,
      }),
      deps(),
    );
    expect(r.status).toBe('succeeded');
    expect((await getBuffer(s3, BUCKET, 'out/t.jsonl')).toString()).toBe(
      '{"id":1,"alpha":"x","source":"seed"}\n{"id":2,"alpha":"y","source":"seed"}\n',
    );
    expect(await getJsonObject(s3, BUCKET, 'out/t.jsonl.summary.json')).toEqual({ operation: 'transform-records', records: 2, rejected: 1 });
  });

  test('gzip input gives the same result as the plain object', async () => {
    const plain = sampleBuffer({ count: 3000, seed: 5, format: 'csv' });
    await put(s3, BUCKET, 'in/g.csv', plain);
    await put(s3, BUCKET, 'in/g.csv.gz', gzipSync(plain));
    const a = await processChunk(spec('in/g.csv', 'out/g-plain.json'), deps());
    const b = await processChunk(spec('in/g.csv.gz', 'out/g-gz.json'), deps());
    expect(b.document).toEqual(a.document);
    expect(a.records).toBe(3000);
  });

  test('a rerun writes byte-identical output to the same key', async () => {
    await put(s3, BUCKET, 'in/idem.jsonl', sampleBuffer({ count: 2000, seed: 9 }));
    await processChunk(spec('in/idem.jsonl', 'out/idem.json'), deps());
    const first = await getBuffer(s3, BUCKET, 'out/idem.json');
    await processChunk(spec('in/idem.jsonl', 'out/idem.json'), deps());
    expect((await getBuffer(s3, BUCKET, 'out/idem.json')).equals(first)).toBe(true);
  });

  test('an input key without a known extension is an error naming INPUT_FORMAT', async () => {
    await put(s3, BUCKET, 'in/data.bin', '{}\n');
    await expect(processChunk(spec('in/data.bin', 'out/x.json'), deps())).rejects.toThrow(/INPUT_FORMAT/);
  });
});
