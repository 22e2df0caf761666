import { gzipSync } from 'zlib';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ChunkSpec, mergeResults, processChunk } from '../../../../containers/worker/src/engine';
import { Logger } from '../../../../containers/worker/src/log';
import { sampleBuffer } from '../../../../containers/worker/src/sample-data';
import { createBucket, exists, getBuffer, getJsonObject, motoS3, put, uniqueBucket } from '../support/s3';

/**
 * What a run leaves behind when it fails, what its errors say, and the value rules end to end (chunked
 * and resumed runs over edge values), against moto_server.
 */
const BUCKET = uniqueBucket('worker-failure');
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

function capturingLogger(lines: Record<string, unknown>[]): Logger {
  const make = (fields: Record<string, unknown>): Logger => {
    const at = (level: string) => (message: string, extra: Record<string, unknown> = {}) => {
      lines.push({ level, message, ...fields, ...extra });
    };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more) => make({ ...fields, ...more }) } as Logger;
  };
  return make({});
}

async function keysUnder(prefix: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

const rec = (extra: Record<string, unknown>) =>
  JSON.stringify({ segmentId: 's', severity: 'low', lat: 1, lon: 2, detectedAt: '2024-01-02T03:04:05Z', ...extra });

describe('a failed rerun leaves no earlier result', () => {
  test('reject ratio exceeded: the previous result.json and its rejects are gone, only this run\'s rejects remain', async () => {
    await put(s3, BUCKET, 'in/rerun.jsonl', sampleBuffer({ count: 500, seed: 1 }));
    const first = await processChunk(spec('in/rerun.jsonl', 'out/rerun/result.json'), deps());
    expect(first.status).toBe('succeeded');
    expect(await exists(s3, BUCKET, 'out/rerun/result.json')).toBe(true);

    // the input is replaced by one where every record is out of range
    await put(s3, BUCKET, 'in/rerun.jsonl', Array.from({ length: 20 }, () => rec({ depthMm: 1e306 })).join('\n'));
    const second = await processChunk(spec('in/rerun.jsonl', 'out/rerun/result.json'), deps());
    expect(second.status).toBe('failed');
    expect(await exists(s3, BUCKET, 'out/rerun/result.json')).toBe(false);
    const rejects = (await getBuffer(s3, BUCKET, 'out/rerun/result.json.rejects.jsonl')).toString().trim().split('\n');
    expect(rejects).toHaveLength(20);
    expect(JSON.parse(rejects[0]).reason).toBe('depthMm must be a number in [0, 10000] (millimetres)');
  });

  test('a thrown error (input gone) also leaves no earlier result, summary or rejects', async () => {
    await put(s3, BUCKET, 'in/vanish.json', '{"id":1}\n');
    const cfg = { operation: 'transform-records' };
    expect((await processChunk(spec('in/vanish.json', 'out/vanish.jsonl', cfg), deps())).status).toBe('succeeded');
    expect(await keysUnder('out/vanish')).toEqual(['out/vanish.jsonl', 'out/vanish.jsonl.rejects.jsonl', 'out/vanish.jsonl.summary.json']);
    await expect(processChunk(spec('in/missing.json', 'out/vanish.jsonl', cfg), deps())).rejects.toThrow(
      `input object s3://${BUCKET}/in/missing.json does not exist`,
    );
    expect(await keysUnder('out/vanish')).toEqual([]);
  });

  test('a missing output bucket is reported before the input is looked at', async () => {
    // the input does not exist either: the error is about the output, so it was checked first
    const s = { ...spec('in/does-not-exist.jsonl', 'out/x.json'), output: { bucket: `${BUCKET}-nope`, key: 'out/x.json' } };
    await expect(processChunk(s, deps())).rejects.toThrow(
      new RegExp(`^output s3://${BUCKET}-nope/out/x.json is not writable \\(NoSuchBucket: .*check that OUTPUT_S3_BUCKET exists.*No input was read`),
    );
  });
});

describe('corrupt checkpoints', () => {
  const input = sampleBuffer({ count: 20_000, seed: 4 });
  beforeAll(() => put(s3, BUCKET, 'in/cp.jsonl', input));

  test('a truncated checkpoint is logged, moved aside, and the run starts from zero', async () => {
    const straight = await processChunk(spec('in/cp.jsonl', 'out/cp-straight.json'), deps());
    const interrupted = await processChunk(spec('in/cp.jsonl', 'out/cp.json'), { ...deps(), signal: AbortSignal.abort() });
    expect(interrupted.status).toBe('interrupted');
    const saved = await getBuffer(s3, BUCKET, 'out/cp.json.checkpoint.json');
    await put(s3, BUCKET, 'out/cp.json.checkpoint.json', saved.subarray(0, Math.floor(saved.length / 2)));

    const logs: Record<string, unknown>[] = [];
    const r = await processChunk(spec('in/cp.jsonl', 'out/cp.json'), { ...deps(), log: capturingLogger(logs) });
    expect(r.status).toBe('succeeded');
    expect(r.resumedFrom).toBeUndefined();
    expect(await getJsonObject(s3, BUCKET, 'out/cp.json')).toEqual(straight.document);
    const logged = logs.find((l) => l.message === 'corrupt checkpoint moved aside; processing starts again from the beginning');
    expect(logged).toMatchObject({ level: 'error', checkpoint: `s3://${BUCKET}/out/cp.json.checkpoint.json`, problem: expect.stringMatching(/^not JSON/) });
    const keys = await keysUnder('out/cp.json.checkpoint.json');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^out\/cp\.json\.checkpoint\.json\.corrupt-/);
    expect(logged!.movedTo).toBe(`s3://${BUCKET}/${keys[0]}`);
    expect((await getBuffer(s3, BUCKET, keys[0])).length).toBe(Math.floor(saved.length / 2));
  });

  test('a checkpoint whose partial state is not a valid document is treated the same way', async () => {
    const straight = await processChunk(spec('in/cp.jsonl', 'out/cp2-straight.json'), deps());
    await processChunk(spec('in/cp.jsonl', 'out/cp2.json'), { ...deps(), signal: AbortSignal.abort() });
    const cp = await getJsonObject<Record<string, unknown>>(s3, BUCKET, 'out/cp2.json.checkpoint.json');
    await put(s3, BUCKET, 'out/cp2.json.checkpoint.json', JSON.stringify({ ...cp, state: { operation: 'aggregate-defects', records: 'many' } }));
    const logs: Record<string, unknown>[] = [];
    const r = await processChunk(spec('in/cp.jsonl', 'out/cp2.json'), { ...deps(), log: capturingLogger(logs) });
    expect(r.status).toBe('succeeded');
    expect(r.document).toEqual(straight.document);
    expect(logs.find((l) => l.level === 'error')).toMatchObject({ problem: expect.stringMatching(/^state: not an aggregate-defects result document: records/) });
  });
});

describe('errors name the object and the layer', () => {
  test('a truncated .gz names the object, gzip and what to do', async () => {
    const gz = gzipSync(sampleBuffer({ count: 2000, seed: 2 }));
    await put(s3, BUCKET, 'in/trunc.jsonl.gz', gz.subarray(0, gz.length - 100));
    await expect(processChunk(spec('in/trunc.jsonl.gz', 'out/trunc.json'), deps())).rejects.toThrow(
      new RegExp(`^s3://${BUCKET}/in/trunc\\.jsonl\\.gz: gzip: unexpected end of file; the object is not a complete gzip stream .*Upload it again`),
    );
    expect(await exists(s3, BUCKET, 'out/trunc.json')).toBe(false);
  });

  test('a plain file named .gz names the object and gzip', async () => {
    await put(s3, BUCKET, 'in/notgz.csv.gz', 'a,b\n1,2\n');
    await expect(processChunk(spec('in/notgz.csv.gz', 'out/notgz.json'), deps())).rejects.toThrow(
      new RegExp(`^s3://${BUCKET}/in/notgz\\.csv\\.gz: gzip: incorrect header check; .*drop the \\.gz extension or set INPUT_FORMAT`),
    );
  });

  test('an empty .gz object is an empty input, like an empty plain object', async () => {
    await put(s3, BUCKET, 'in/empty.jsonl', '');
    await put(s3, BUCKET, 'in/empty.jsonl.gz', '');
    const plain = await processChunk(spec('in/empty.jsonl', 'out/empty-plain.json'), deps());
    const gz = await processChunk(spec('in/empty.jsonl.gz', 'out/empty-gz.json'), deps());
    expect(plain.status).toBe('succeeded');
    expect(gz.status).toBe('succeeded');
    expect(gz.document).toEqual(plain.document);
    expect(gz.records).toBe(0);
  });

  test('a bad CSV header names the object and the CSV header row', async () => {
    await put(s3, BUCKET, 'in/hdr.csv', 'segmentId,,lat\nx,1,2\n');
    await expect(processChunk(spec('in/hdr.csv', 'out/hdr.json'), deps())).rejects.toThrow(
      new RegExp(`^s3://${BUCKET}/in/hdr\\.csv: CSV header row has an empty column name; the first non-empty line of a CSV object must be the column names`),
    );
    // a later chunk reads the header with its own GET; the error is the same
    await expect(
      processChunk(spec('in/hdr.csv', 'out/hdr-2.json', { input: { bucket: BUCKET, key: 'in/hdr.csv', startByte: 16, endByte: 22 } }), deps()),
    ).rejects.toThrow(new RegExp(`^s3://${BUCKET}/in/hdr\\.csv: CSV header row has an empty column name`));
  });
});

describe('edge values: whole, chunked and resumed runs agree exactly', () => {
  const depths = [0, 0.0005, 9999.9995, 10_000, 0.1, 0.2, 1234.5675, 7.0005];
  const lines: string[] = [];
  const expectedRejectOffsets: number[] = [];
  let pos = 0;
  for (let i = 0; i < 6000; i++) {
    let line: string;
    let bad = true;
    if (i % 997 === 5) line = rec({ depthMm: [1e306, 1.23e29, -1, 10_000.5, -0.001][i % 5] });
    else if (i % 1009 === 7) line = rec({ detectedAt: ['2024-02-30T12:00:00+01:00', '2024-05-01T24:00:00Z', '9999-12-31T23:59:59-23:59', '2024-05-01T20:00:00'][i % 4] });
    else {
      bad = false;
      line = rec({
        segmentId: ['__proto__', 'constructor', 'seg-a', 'toString'][i % 4],
        depthMm: depths[i % depths.length],
        detectedAt: ['2024-05-01T20:00:00Z', '2024-05-01T23:30:00-02:00', '2024-05-02T00:30:00+01:00'][i % 3],
      });
    }
    if (bad) expectedRejectOffsets.push(pos);
    lines.push(line);
    pos += Buffer.byteLength(line) + 1;
  }
  const body = Buffer.from(lines.join('\n') + '\n');

  beforeAll(() => put(s3, BUCKET, 'in/edges.jsonl', body));

  test('every out-of-range value is rejected at its offset and the sums are exact', async () => {
    const whole = await processChunk(spec('in/edges.jsonl', 'out/edges/whole.json', { maxRejectRatio: 0.5 }), deps());
    expect(whole.status).toBe('succeeded');
    const rejects = (await getBuffer(s3, BUCKET, 'out/edges/whole.json.rejects.jsonl')).toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(rejects.map((r: { offset: number }) => r.offset)).toEqual(expectedRejectOffsets);
    const doc = whole.document as { segments: Record<string, { count: number; depthMm: { sumUm: number } }>; days: Record<string, number> };
    expect(Object.keys(doc.segments).sort()).toEqual(['__proto__', 'constructor', 'seg-a', 'toString']);
    // an independent exact sum, with BigInt, over the accepted records of segment "__proto__"
    let exact = 0n;
    for (const line of lines) {
      const r = JSON.parse(line);
      if (r.segmentId === '__proto__' && depths.includes(r.depthMm)) exact += BigInt(Math.round(r.depthMm * 1000));
    }
    expect(BigInt(doc.segments['__proto__'].depthMm.sumUm)).toBe(exact);
    // days independently: the accepted timestamps all carry an offset, so Date parses them unambiguously
    const days: Record<string, number> = {};
    lines.forEach((line, i) => {
      if (expectedRejectOffsets.includes(lines.slice(0, i).reduce((a, l) => a + Buffer.byteLength(l) + 1, 0))) return;
      const day = new Date(JSON.parse(line).detectedAt).toISOString().slice(0, 10);
      days[day] = (days[day] ?? 0) + 1;
    });
    expect(doc.days).toEqual(days);
    expect(Object.keys(days)).toEqual(['2024-05-01', '2024-05-02']);
  });

  test('byte-range chunks merged and an interrupted-and-resumed run equal the whole run', async () => {
    const whole = await processChunk(spec('in/edges.jsonl', 'out/edges/whole2.json', { maxRejectRatio: 0.5 }), deps());
    const cuts = [0, 1, 777, 20_000, 20_001, 150_000, body.length - 3, body.length];
    const docs: Record<string, unknown>[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const r = await processChunk(
        spec('in/edges.jsonl', `out/edges/chunk-${i}.json`, { input: { bucket: BUCKET, key: 'in/edges.jsonl', startByte: cuts[i], endByte: cuts[i + 1] }, maxRejectRatio: 1 }),
        deps(),
      );
      docs.push(r.document!);
    }
    expect(JSON.stringify(mergeResults('aggregate-defects', docs.reverse()))).toBe(JSON.stringify(whole.document));

    let resumed;
    for (let attempt = 0; attempt < 20; attempt++) {
      const controller = new AbortController();
      const timer = attempt < 3 ? setTimeout(() => controller.abort(), 5 + attempt * 10) : undefined;
      resumed = await processChunk(spec('in/edges.jsonl', 'out/edges/resumed.json', { maxRejectRatio: 0.5 }), { ...deps(), signal: controller.signal });
      clearTimeout(timer);
      if (resumed.status === 'succeeded') break;
    }
    expect(resumed!.status).toBe('succeeded');
    expect((await getBuffer(s3, BUCKET, 'out/edges/resumed.json')).equals(await getBuffer(s3, BUCKET, 'out/edges/whole2.json'))).toBe(true);
  });
});

test('a chunk result written before sumUm existed still merges (sum in millimetres is read back)', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/one.jsonl', Body: rec({ depthMm: 1.5 }) }));
  const r = await processChunk(spec('in/one.jsonl', 'out/one.json'), deps());
  const old = JSON.parse(JSON.stringify(r.document));
  delete old.segments.s.depthMm.sumUm;
  const merged = mergeResults('aggregate-defects', [old, r.document!]) as { segments: Record<string, { depthMm: { sumUm: number } }> };
  expect(merged.segments.s.depthMm.sumUm).toBe(3000);
});
