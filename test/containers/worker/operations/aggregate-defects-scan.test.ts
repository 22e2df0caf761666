import { Readable } from 'stream';
import { processStream } from '../../../../containers/worker/src/engine';
import { aggregateDefects, AggregateDefectsState } from '../../../../containers/worker/src/operations/aggregate-defects';
import { scanLinesDefect } from '../../../../containers/worker/src/operations/aggregate-defects-scan';
import { defectRecords, formatRecord, prng } from '../../../../containers/worker/src/sample-data';

const base = '{"segmentId":"s1","severity":"low","lat":52.5,"lon":13.4,"detectedAt":"2024-05-01T12:00:00Z"';

/** Lines the byte-level path must either add exactly as JSON.parse + step do, or leave to them. */
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
  base + ',"depthMm":-0.5}',
  base + ',"depthMm":null }',
  base + ',"depthMm":nulll}',
  base + ',"depthMm":0.001}',
  base + ',"depthMm":999999999999999}',
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
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00.123456789Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00.1234567890Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00.Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:0Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00\\u005A"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00+00:00"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-5-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2100-12-31T23:59:59Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2101-01-01T00:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-00-10T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-04-31T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:60:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":2024}',
  '{"segmentId":"s1","severity":"low","lat":-0,"lon":-0.0,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":89.999999,"lon":179.999999,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":180.0000000001,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1.5e1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":"1","lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"lon":2,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","segmentId":"s2","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","severity":"high","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low\\u0000","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s\\u00e9","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"\u{1F6A7}","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s\u007f","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s 1 ~!","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
  '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z","depthMm":9007199254740.991}',
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

const op = aggregateDefects;
const noEmit = { emit: () => undefined };

/** The general path: JSON.parse and step, as the engine does for a line the byte-level path leaves. */
function general(state: AggregateDefectsState, line: string): boolean {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return false;
  }
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return false;
  if (op.step(state, rec as Record<string, unknown>, noEmit) !== undefined) return false;
  state.records++;
  return true;
}

/** The byte-level path on one line (with its newline); true when it took it. */
function fast(state: AggregateDefectsState, line: string): boolean {
  const buf = Buffer.from(line + '\n', 'utf8');
  return scanLinesDefect(state, buf, 0, 1, 1 << 20) === buf.length;
}

const doc = (s: AggregateDefectsState) => JSON.stringify(op.serialize(s));

/**
 * The byte-level path on `line` against the general path, both after the general path has seen a clean
 * record of the line's day (so the day is known) and the line itself once: it must either make exactly
 * the general path's changes, or none at all. Returns whether it took the line.
 */
function check(line: string): boolean {
  const viaFast = op.init({});
  const viaGeneral = op.init({});
  const day = /"detectedAt":"(\d{4}-\d{2}-\d{2})/.exec(line)?.[1];
  for (const state of [viaFast, viaGeneral]) {
    if (day) general(state, `{"segmentId":"seed","severity":"low","lat":0,"lon":0,"detectedAt":"${day}T00:00:00Z"}`);
    general(state, line);
  }
  const generalTook = general(viaGeneral, line);
  const before = doc(viaFast);
  const took = fast(viaFast, line);
  if (!took) {
    if (doc(viaFast) !== before) throw new Error(`${line}: declined but changed the state`);
    return false;
  }
  if (!generalTook) throw new Error(`${line}: the byte-level path accepted what step rejects`);
  if (doc(viaFast) !== doc(viaGeneral)) throw new Error(`${line}: byte-level ${doc(viaFast)} but general ${doc(viaGeneral)}`);
  return true;
}

describe('aggregate-defects byte-level path', () => {
  test('adds every tricky line exactly as JSON.parse + step do, or leaves the state untouched', () => {
    let taken = 0;
    for (const line of TRICKY) if (check(line)) taken++;
    // the checks above mean something only if both outcomes happen
    expect(taken).toBeGreaterThan(10);
    expect(taken).toBeLessThan(TRICKY.length - 40);
  });

  test('takes the common shapes of a known day and leaves escapes, other keys, non-ASCII, odd numbers and new days alone', () => {
    const takes = (line: string) => check(line);
    expect(takes(base + '}')).toBe(true);
    expect(takes(base + ',"depthMm":12.3}')).toBe(true);
    expect(takes(base + ',"depthMm":null}')).toBe(true);
    expect(takes('{"segmentId":"s1","severity":"critical","lat":-33.869123,"lon":151.209456,"detectedAt":"2024-05-01T12:00:00.123Z"}')).toBe(true);
    for (const slow of [
      base + ',"depthMm":1e3}',
      base + ',"depthMm":1234567890123456}',
      base + ',"depthMm":12.3,"depthMm":99}',
      base + ',"depthMm":12.3,"__proto__":{"x":1}}',
      '{"__proto__":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
      '{"segmentId":"s\\"1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
      '{"segmentId":"Straße","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}',
      '{"segmentId":"s1","severity":"low","lat":1,"lon":1,"detectedAt":"2024-03-01T23:30:00-02:00"}',
      base + '} ',
    ]) {
      expect(takes(slow)).toBe(false);
    }
    // the first record of a day always goes through step's full check
    const fresh = op.init({});
    expect(fast(fresh, base + '}')).toBe(false);
    expect(doc(fresh)).toBe(doc(op.init({})));
  });

  test('takes consecutive lines up to the first it leaves; never one that begins at or after stop, lacks its newline or is longer than maxRecordBytes', () => {
    const s = op.init({});
    general(s, base + '}');
    const line = (depth: number) => base + `,"depthMm":${depth}}`;
    const text = [line(1), line(2) + '\r', line(3), base + ' }', line(4)].join('\n') + '\n' + line(5);
    const buf = Buffer.from(text);
    const at = (k: number) => text.split('\n').slice(0, k).join('\n').length + (k > 0 ? 1 : 0);
    // three lines (one with CRLF), then a line it leaves: the position of that line comes back
    expect(scanLinesDefect(s, buf, 0, buf.length, 1 << 20)).toBe(at(3));
    expect(s.records).toBe(1 + 3);
    // a line beginning at `stop` is not taken; one that begins before it is
    expect(scanLinesDefect(s, buf, at(4), at(4), 1 << 20)).toBe(at(4));
    expect(scanLinesDefect(s, buf, at(4), at(4) + 1, 1 << 20)).toBe(at(5));
    // the last line has no newline in the buffer: left for the engine to carry
    expect(scanLinesDefect(s, buf, at(5), buf.length, 1 << 20)).toBe(at(5));
    // longer than maxRecordBytes: left to the general path, which rejects it
    const short = Buffer.from(line(6) + '\n');
    expect(scanLinesDefect(s, short, 0, 1, short.length - 2)).toBe(0);
    expect(scanLinesDefect(s, short, 0, 1, short.length - 1)).toBe(short.length);
    const r = op.serialize(s) as { segments: { s1: { depthMm: { sumUm: number } } } };
    expect(r.segments.s1.depthMm.sumUm).toBe((1 + 2 + 3 + 4 + 6) * 1000);
  });

  test('segments, days and cells made by step, merge or deserialize are found and added to, not duplicated', () => {
    const a = op.init({});
    general(a, base + ',"depthMm":1}');
    const merged = op.merge(op.init({}), op.deserialize(op.serialize(a)));
    expect(fast(merged, base + ',"depthMm":2}')).toBe(true);
    const r = op.serialize(merged) as { segments: Record<string, { count: number; depthMm: { sumUm: number } }>; days: Record<string, number> };
    expect(r.segments.s1.count).toBe(2);
    expect(r.segments.s1.depthMm.sumUm).toBe(3000);
    expect(r.days).toEqual({ '2024-05-01': 2 });
    expect(Object.keys(r.segments)).toEqual(['s1']);
  });

  test('a depth that would pass the exact-sum bound is left to step (which rejects it)', () => {
    const s = op.init({});
    general(s, base + ',"depthMm":1}');
    const seg = s.segments.get('s1')!;
    seg.depthSumUm = Number.MAX_SAFE_INTEGER - 500;
    expect(fast(s, base + ',"depthMm":0.5}')).toBe(true);
    expect(fast(s, base + ',"depthMm":0.001}')).toBe(false);
    expect(op.step(s, JSON.parse(base + ',"depthMm":0.001}'), noEmit)).toMatch(/would pass/);
  });

  test('numbers read byte by byte give the same result as JSON.parse for many random decimals', () => {
    const rnd = prng(17);
    let taken = 0;
    for (let i = 0; i < 1_500; i++) {
      const digits = 1 + Math.floor(rnd() * 15);
      let text = String(Math.floor(rnd() * 10 ** digits));
      const frac = Math.floor(rnd() * Math.min(digits, 15));
      if (frac > 0 && text.length > frac) text = `${text.slice(0, text.length - frac)}.${text.slice(text.length - frac)}`;
      if (rnd() < 0.3) text = '-' + text;
      const small = `${text.slice(0, 3)}.${text.slice(3).replace('.', '')}`.replace(/\.$/, '');
      if (check(base + `,"depthMm":${text}}`)) taken++;
      if (check(`{"segmentId":"s","severity":"low","lat":${small},"lon":${small},"detectedAt":"2024-05-01T12:00:00Z"}`)) taken++;
    }
    expect(taken).toBeGreaterThan(900);
  });

  /** The file through the engine, in one buffer or cut into small random pieces (lines across buffers). */
  const runFile = async (file: Buffer, fieldScanner: boolean, pieces = false) => {
    const rejects: string[] = [];
    const parts: Buffer[] = [];
    const rnd = prng(3);
    for (let at = 0; at < file.length; ) {
      const n = pieces ? 1 + Math.floor(rnd() * 400) : file.length;
      parts.push(file.subarray(at, at + n));
      at += n;
    }
    const r = await processStream('aggregate-defects', Readable.from(parts), { format: 'jsonl', fieldScanner, onReject: (l) => rejects.push(l) });
    return { doc: JSON.stringify(r.document), records: r.records, rejects };
  };

  test('a file of tricky and generated lines gives the same document and the same rejects with and without the byte-level path', async () => {
    const lines = [...TRICKY];
    for (const r of defectRecords({ count: 2000, seed: 5, segments: 30 })) lines.push(formatRecord(r, 'jsonl'));
    // the tricky lines again, now that their days are known
    lines.push(...TRICKY);
    // invalid UTF-8 inside an otherwise fast-looking record, and a lone surrogate escape
    const bad = Buffer.concat([Buffer.from('{"segmentId":"s'), Buffer.from([0xff, 0xfe]), Buffer.from('","severity":"low","lat":1,"lon":1,"detectedAt":"2024-05-01T12:00:00Z"}')]);
    const file = Buffer.concat([Buffer.from(lines.join('\n') + '\n'), bad, Buffer.from('\n' + lines.slice(0, 5).join('\r\n') + '\n')]);
    const withScanner = await runFile(file, true);
    const without = await runFile(file, false);
    expect(withScanner.doc).toBe(without.doc);
    expect(withScanner.rejects).toEqual(without.rejects);
    expect(await runFile(file, true, true)).toEqual(withScanner);
    expect(withScanner.rejects.some((l) => /invalid UTF-8/.test(l))).toBe(true);
    expect(withScanner.rejects.some((l) => /depthMm must be/.test(l))).toBe(true);
    expect(withScanner.rejects.some((l) => /invalid JSON/.test(l))).toBe(true);
    expect(withScanner.records).toBeGreaterThan(2000);
    expect(Object.keys(JSON.parse(withScanner.doc).segments)).toContain('__proto__');
  });

  test('generated lines with random byte edits give the same document and rejects with and without the byte-level path', async () => {
    const rnd = prng(23);
    const alphabet = Buffer.from('0123456789-.:eE+"\\{},ZT nul\u00e9xyz', 'utf8');
    const lines: Buffer[] = [];
    for (const r of defectRecords({ count: 20_000, seed: 9, segments: 40 })) {
      const line = Buffer.from(formatRecord(r, 'jsonl'));
      if (rnd() < 0.5) {
        lines.push(line);
        continue;
      }
      // one to three edits: replace, insert or delete a byte (often inside a value)
      let edited = line;
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
        const at = Math.floor(rnd() * edited.length);
        const b = Buffer.from([alphabet[Math.floor(rnd() * alphabet.length)]]);
        const u = rnd();
        if (u < 0.5) edited = Buffer.concat([edited.subarray(0, at), b, edited.subarray(at + 1)]);
        else if (u < 0.8) edited = Buffer.concat([edited.subarray(0, at), b, edited.subarray(at)]);
        else edited = Buffer.concat([edited.subarray(0, at), edited.subarray(at + 1)]);
      }
      lines.push(edited.includes(10) ? line : edited);
    }
    const file = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    const withScanner = await runFile(file, true);
    const without = await runFile(file, false);
    expect(withScanner.doc).toBe(without.doc);
    expect(withScanner.rejects).toEqual(without.rejects);
    expect(await runFile(file, true, true)).toEqual(withScanner);
    // both outcomes are exercised: many edited lines are rejected, many are still accepted
    expect(withScanner.rejects.length).toBeGreaterThan(3000);
    expect(withScanner.records).toBeGreaterThan(10_000);
  });
});
