import { isDeepStrictEqual } from 'util';
import { Readable } from 'stream';
import { processStream } from '../../../../containers/worker/src/engine';
import { scanDefectRecord } from '../../../../containers/worker/src/operations/aggregate-defects-scan';
import { defectRecords, formatRecord, prng } from '../../../../containers/worker/src/sample-data';

const base = '{"segmentId":"s1","severity":"low","lat":52.5,"lon":13.4,"detectedAt":"2024-05-01T12:00:00Z"';

/** Lines the scanner must either read exactly as JSON.parse does or hand to the general path. */
const TRICKY: string[] = [
  base + '}',
  base + ',"depthMm":12.3}',
  base + ',"depthMm":null}',
  base + ',"depthMm":0}',
  base + ',"depthMm":-0}',
  base + ',"depthMm":-0.0}',
  base + ',"depthMm":10000}',
  base + ',"depthMm":10000.0001}',
  base + ',"depthMm":9999.9995}',
  base + ',"depthMm":0.0005}',
  base + ',"depthMm":1e3}',
  base + ',"depthMm":1E-3}',
  base + ',"depthMm":01}',
  base + ',"depthMm":1.}',
  base + ',"depthMm":.5}',
  base + ',"depthMm":+1}',
  base + ',"depthMm":-}',
  base + ',"depthMm":123456789012345}',
  base + ',"depthMm":1234567890123456}',
  base + ',"depthMm":0.1234567890123456789}',
  base + ',"depthMm":"12"}',
  base + ',"depthMm":true}',
  base + ',"depthMm":nul}',
  base + ',"depthMm":12.3,"depthMm":99}', // duplicate key: the last wins in JSON.parse
  base + ',"depthMm":12.3,"__proto__":{"x":1}}',
  '{"__proto__":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"__proto__","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"constructor","severity":"high","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s\\"1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s\\u0031","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"Straße","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s\u00011","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"LOW","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"medium","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"critical","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"criticaL","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"lo","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":90.0000001,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":-90,"lon":-180,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":-33.869123,"lon":151.209456,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":0.1,"lon":0.7,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-02-30T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T24:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T23:59:60Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-03-01T23:30:00-02:00"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-03-01T23:30:00+15:00"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"1899-12-31T23:59:59Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01t12:00:00z"}',
  '{"segmentId":"s1","severity":"low","lon":1,"lat":1,"detectedAt":"2024-05-01T12:00:00Z"}', // other order
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z","extra":1}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1}',
  '{"segmentId":"s1", "severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  base + '} ',
  base + '}x',
  base + ',"depthMm":12.3}}',
  base + ',"depthMm":12.3',
  base,
  '{"segmentId":"s1"',
  '{"segmentId":',
  '[1,2]',
  'null',
  '{}',
];

function check(line: string): void {
  const buf = Buffer.from(line, 'utf8');
  const scanned = scanDefectRecord(buf, 0, buf.length);
  if (scanned === undefined) return;
  // Whatever the scanner returns, JSON.parse returns too (own keys, order, values, -0 included).
  const parsed = JSON.parse(line);
  expect(Object.keys(scanned)).toEqual(Object.keys(parsed));
  for (const k of Object.keys(parsed)) {
    if (!Object.is(scanned[k], parsed[k])) throw new Error(`${line}: ${k} scanned ${String(scanned[k])}, JSON.parse ${String(parsed[k])}`);
  }
}

describe('aggregate-defects field scanner', () => {
  test('agrees with JSON.parse on every tricky line, or leaves it to JSON.parse', () => {
    for (const line of TRICKY) check(line);
  });

  test('takes the fast path for the common shapes and leaves escapes, other keys, non-ASCII and odd numbers alone', () => {
    const fast = (line: string) => scanDefectRecord(Buffer.from(line), 0, Buffer.byteLength(line)) !== undefined;
    expect(fast(base + '}')).toBe(true);
    expect(fast(base + ',"depthMm":12.3}')).toBe(true);
    expect(fast(base + ',"depthMm":null}')).toBe(true);
    for (const slow of [
      base + ',"depthMm":1e3}',
      base + ',"depthMm":1234567890123456}',
      base + ',"depthMm":12.3,"depthMm":99}',
      base + ',"depthMm":12.3,"__proto__":{"x":1}}',
      '{"__proto__":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
      '{"segmentId":"s\\"1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
      '{"segmentId":"Straße","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
      base + '} ',
    ]) {
      expect(fast(slow)).toBe(false);
    }
  });

  test('numbers read byte by byte equal JSON.parse for many random decimals', () => {
    const rnd = prng(17);
    for (let i = 0; i < 10_000; i++) {
      const digits = 1 + Math.floor(rnd() * 15);
      let text = String(Math.floor(rnd() * 10 ** digits));
      const frac = Math.floor(rnd() * Math.min(digits, 15));
      if (frac > 0 && text.length > frac) text = `${text.slice(0, text.length - frac)}.${text.slice(text.length - frac)}`;
      if (rnd() < 0.3) text = '-' + text;
      check(base + `,"depthMm":${text}}`);
      check(`{"segmentId":"s","severity":"low","lat":${text},"lon":${text},"detectedAt":"2024-05-01T12:00:00Z"}`);
    }
  });

  test('a file of tricky and generated lines gives the same document and the same rejects with and without the scanner', async () => {
    const lines = [...TRICKY];
    for (const r of defectRecords({ count: 2000, seed: 5, segments: 30 })) lines.push(formatRecord(r, 'jsonl'));
    // invalid UTF-8 inside an otherwise fast-looking record, and a lone surrogate escape
    const bad = Buffer.concat([Buffer.from('{"segmentId":"s'), Buffer.from([0xff, 0xfe]), Buffer.from('","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}')]);
    const file = Buffer.concat([Buffer.from(lines.join('\n') + '\n'), bad, Buffer.from('\n' + lines.slice(0, 5).join('\r\n') + '\n')]);
    const run = async (fieldScanner: boolean) => {
      const rejects: string[] = [];
      const r = await processStream('aggregate-defects', Readable.from([file]), { format: 'jsonl', fieldScanner, onReject: (l) => rejects.push(l) });
      return { r, rejects };
    };
    const withScanner = await run(true);
    const without = await run(false);
    expect(JSON.stringify(withScanner.r.document)).toBe(JSON.stringify(without.r.document));
    expect(withScanner.rejects).toEqual(without.rejects);
    expect(withScanner.rejects.some((l) => /invalid UTF-8/.test(l))).toBe(true);
    expect(withScanner.rejects.some((l) => /depthMm must be/.test(l))).toBe(true);
    expect(withScanner.rejects.some((l) => /invalid JSON/.test(l))).toBe(true);
    expect(withScanner.r.records).toBeGreaterThan(2000);
    expect(isDeepStrictEqual(Object.keys(withScanner.r.document.segments as object).includes('__proto__'), true)).toBe(true);
  });
});
