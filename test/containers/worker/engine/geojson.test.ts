import { S3Client } from '@aws-sdk/client-s3';
import { ChunkSpec, processChunk } from '../../../../containers/worker/src/engine';
import { featureCollectionLines } from '../../../../containers/worker/src/engine/geojson';
import { createBucket, exists, getBuffer, motoS3, put, uniqueBucket } from '../support/s3';

/** GeoJSON inputs (FeatureCollection, RFC 8142 text sequences) through the worker against moto_server. */
const BUCKET = uniqueBucket('worker-geojson');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
});
afterAll(() => s3.destroy());

const square = (x: number, y: number) => ({ type: 'Polygon', coordinates: [[[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]] });

/** Features with awkward properties: brackets, commas, escaped quotes and a line break inside strings. */
const FEATURES: unknown[] = [
  { type: 'Feature', properties: { id: 0, note: 'a ] b, c "quoted" }' }, geometry: square(0, 0) },
  { type: 'Feature', properties: { id: 1, note: 'line\nbreak \\' }, geometry: { type: 'Point', coordinates: [1, 2] } },
  { type: 'Feature', properties: { id: 2 }, geometry: { type: 'Point', coordinates: [1, 200] } },
  { type: 'Feature', properties: { id: 3, nested: { features: [1, 2] } }, geometry: { type: 'LineString', coordinates: [[0, 0], [1, 1]] } },
  { type: 'Feature', properties: { id: 4 }, geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1]]] } },
];

/** A pretty-printed FeatureCollection with members around the features, and each feature's byte offset. */
function collection(features: unknown[]): { text: string; offsets: number[] } {
  let text = '{\n  "type": "FeatureCollection",\n  "name": "test [with, brackets]",\n  "features": [\n';
  const offsets: number[] = [];
  features.forEach((f, i) => {
    offsets.push(Buffer.byteLength(text));
    text += JSON.stringify(f, null, 2) + (i + 1 < features.length ? ',\n' : '\n');
  });
  text += '  ],\n  "bbox": [0, 0, 2, 2]\n}\n';
  return { text, offsets };
}

let n = 0;
async function measure(key: string, body: string | Buffer | undefined, input: Partial<ChunkSpec['input']> = {}) {
  const id = `geojson-${n++}`;
  if (body !== undefined) await put(s3, BUCKET, key, body);
  const out = `out/${id}/result`;
  const r = await processChunk(
    { jobId: id, operation: 'measure', input: { bucket: BUCKET, key, ...input }, output: { bucket: BUCKET, key: out }, maxRejectRatio: 1 },
    { s3In: s3, s3Out: s3 },
  );
  const lines = (await getBuffer(s3, BUCKET, out)).toString().split('\n').filter((l) => l.length > 0);
  const rejects = (await getBuffer(s3, BUCKET, `${out}.rejects.jsonl`)).toString().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
  return { result: r, lines, rejects, out };
}

test('a FeatureCollection gives the same output as its features one per line, with rejects at the features\' byte offsets', async () => {
  const { text, offsets } = collection(FEATURES);
  const fc = await measure('in/pretty.geojson', text);
  const seq = await measure('in/same.geojsonl', FEATURES.map((f) => JSON.stringify(f)).join('\n') + '\n');
  expect(fc.result.status).toBe('succeeded');
  expect(fc.lines).toEqual(seq.lines);
  expect(fc.lines).toHaveLength(3);
  expect(fc.rejects.map((r) => [r.offset, r.reason.slice(0, 40)])).toEqual([
    [offsets[2], 'coordinates out of range: [1, 200] is no'],
    [offsets[4], 'invalid geometry: Polygon is not valid ('],
  ]);
  // The reject's raw text is the feature as it stands in the file (line breaks as spaces).
  expect(fc.rejects[0].raw.startsWith('{   "type": "Feature",')).toBe(true);
});

test('a FeatureCollection split across many small source buffers gives each feature on its own line at its own offset (multi-byte UTF-8 included)', async () => {
  const features = Array.from({ length: 40 }, (_, i) => ({ type: 'Feature', properties: { name: `Zürich–${'ä'.repeat(i)}` }, geometry: square(i % 10, 0) }));
  const { text, offsets } = collection(features);
  async function* pieces() {
    const bytes = Buffer.from(text);
    for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7);
  }
  let joined = Buffer.alloc(0);
  for await (const b of featureCollectionLines(pieces(), 'test')) joined = Buffer.concat([joined, b]);
  expect(joined.length).toBe(Buffer.byteLength(text));
  // Each feature is one line starting at its own offset; everything else became empty lines.
  const starts: number[] = [];
  const lines: string[] = [];
  let at = 0;
  for (const line of joined.toString('utf8').split('\n')) {
    if (line.length > 0) {
      starts.push(at);
      lines.push(line);
    }
    at += Buffer.byteLength(line) + 1;
  }
  expect(lines.map((l) => JSON.parse(l))).toEqual(features);
  expect(starts).toEqual(offsets);
});

test('features are handed on while the collection is still being read (memory does not grow with it)', async () => {
  let pulled = 0;
  const total = 1000;
  async function* source() {
    yield Buffer.from('{"type":"FeatureCollection","features":[');
    for (let i = 0; i < total; i++) {
      pulled++;
      yield Buffer.from((i ? ',' : '') + JSON.stringify({ type: 'Feature', properties: { i }, geometry: { type: 'Point', coordinates: [0, 0] } }));
    }
    yield Buffer.from(']}');
  }
  const iterator = featureCollectionLines(source(), 'test')[Symbol.asyncIterator]();
  let text = '';
  while (!text.includes('\n')) text += (await iterator.next()).value.toString();
  expect(pulled).toBeLessThan(5);
});

test('an empty FeatureCollection is zero records, not a reject', async () => {
  const r = await measure('in/empty.geojson', '{"type": "FeatureCollection", "features": [ ]}\n');
  expect([r.result.status, r.result.records, r.result.rejected, r.lines]).toEqual(['succeeded', 0, 0, []]);
});

test('a document that is not a FeatureCollection, or is truncated, fails the job and leaves no result', async () => {
  const cases: [string, RegExp][] = [
    ['{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[0,0]}}', /not a GeoJSON FeatureCollection: it has no "features" array/],
    ['{"type":"Topology","features":[]}', /not a GeoJSON FeatureCollection: its "type" is "Topology"/],
    ['[{"type":"Feature"}]', /not a GeoJSON FeatureCollection: the document is not a JSON object/],
    ['{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[0,0]}}', /ends before its closing brace/],
  ];
  for (const [i, [body, error]] of cases.entries()) {
    const key = `in/bad-${i}.geojson`;
    await put(s3, BUCKET, key, body);
    const out = `out/bad-${i}/result`;
    await expect(
      processChunk({ jobId: `bad-${i}`, operation: 'measure', input: { bucket: BUCKET, key }, output: { bucket: BUCKET, key: out } }, { s3In: s3, s3Out: s3 }),
    ).rejects.toThrow(error);
    expect(await exists(s3, BUCKET, out)).toBe(false);
  }
});

test('a FeatureCollection cannot be split into byte ranges: the error says to use geojsonseq', async () => {
  const { text } = collection(FEATURES);
  await put(s3, BUCKET, 'in/ranged.geojson', text);
  await expect(measure('in/ranged.geojson', undefined, { startByte: 10, endByte: text.length })).rejects.toThrow(
    /GeoJSON FeatureCollection s3:\/\/.*in\/ranged.geojson can only be processed whole; .*convert it to geojsonseq/,
  );
});

test('an RFC 8142 text sequence (record separator before each feature) reads like plain lines, chunks included', async () => {
  const plain = FEATURES.map((f) => JSON.stringify(f)).join('\n') + '\n';
  const rs = FEATURES.map((f) => '\x1e' + JSON.stringify(f)).join('\n') + '\n';
  const a = await measure('in/plain.geojsonl', plain);
  const b = await measure('in/rs.geojsons', rs);
  expect(b.lines).toEqual(a.lines);
  const rsOffsets = FEATURES.map((_, k) => FEATURES.slice(0, k).reduce((sum: number, f) => sum + Buffer.byteLength(JSON.stringify(f)) + 2, 0));
  expect(b.rejects.map((r) => r.offset)).toEqual([rsOffsets[2], rsOffsets[4]]);
  expect(a.rejects.map((r) => r.offset)).toEqual([rsOffsets[2] - 2, rsOffsets[4] - 4]);
  const cut = rs.indexOf('\x1e', 200);
  const first = await measure('in/rs.geojsons', undefined, { startByte: 0, endByte: cut });
  const second = await measure('in/rs.geojsons', undefined, { startByte: cut, endByte: Buffer.byteLength(rs) });
  expect([...first.lines, ...second.lines]).toEqual(b.lines);
  expect([...first.rejects, ...second.rejects]).toEqual(b.rejects);
});
