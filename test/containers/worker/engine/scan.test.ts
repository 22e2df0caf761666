import { scanRecords, ScanOptions } from '../../../../containers/worker/src/engine';
import { prng } from '../../../../containers/worker/src/sample-data';

interface Collected {
  records: Record<string, unknown>[];
  rejects: { offset: number; reason: string; raw: string }[];
  stoppedAt?: number;
}

/** Yields `buf` in pieces of random sizes, as a network stream would. */
function* pieces(buf: Buffer, rnd: () => number, maxPiece: number): Generator<Buffer> {
  let pos = 0;
  while (pos < buf.length) {
    const n = 1 + Math.floor(rnd() * maxPiece);
    yield buf.subarray(pos, pos + n);
    pos += n;
  }
}

async function* asAsync(it: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const b of it) yield b;
}

/** Scans the chunk [start, end) of `object` the way processChunk reads it from S3 (from start-1 on). */
async function scanChunk(
  object: Buffer,
  start: number,
  end: number,
  options: Partial<ScanOptions> & { seed?: number; maxPiece?: number } = {},
): Promise<Collected> {
  const rnd = prng(options.seed ?? 1);
  const from = start > 0 ? start - 1 : 0;
  const out: Collected = { records: [], rejects: [] };
  const result = await scanRecords(
    asAsync(pieces(object.subarray(from), rnd, options.maxPiece ?? 64)),
    { format: 'jsonl', sourceOffset: from, skipPartialFirst: start > 0, end, ...options },
    {
      record: (r) => {
        out.records.push(r);
        return undefined;
      },
      reject: (offset, reason, raw) => out.rejects.push({ offset, reason, raw: raw.toString('utf8') }),
    },
  );
  out.stoppedAt = result.stoppedAt;
  return out;
}

/** Cuts [0, size) into `n` adjacent ranges at random points. */
function randomCuts(size: number, n: number, rnd: () => number): [number, number][] {
  const cuts = new Set<number>();
  while (cuts.size < n - 1) cuts.add(1 + Math.floor(rnd() * (size - 1)));
  const points = [0, ...[...cuts].sort((a, b) => a - b), size];
  return points.slice(1).map((p, i) => [points[i], p]);
}

async function chunkedEqualsWhole(object: Buffer, options: Partial<ScanOptions> = {}, header?: string[]): Promise<void> {
  const whole = await scanChunk(object, 0, object.length, options);
  for (let seed = 1; seed <= 20; seed++) {
    const rnd = prng(seed);
    const ranges = randomCuts(object.length, 2 + Math.floor(rnd() * 6), rnd);
    const parts: Collected[] = [];
    for (const [s, e] of ranges) {
      // Chunks after the first get the header the way processChunk does: read separately.
      parts.push(await scanChunk(object, s, e, { ...options, csvHeader: s > 0 ? header : undefined, seed }));
    }
    expect(parts.flatMap((p) => p.records)).toEqual(whole.records);
    expect(parts.flatMap((p) => p.rejects)).toEqual(whole.rejects);
  }
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

describe('scanRecords', () => {
  test('splits JSON lines with CRLF, empty lines, multibyte characters and no final newline', async () => {
    const object = Buffer.from('{"a":1}\r\n\r\n{"a":"ü€😀"}\n\n\n{"a":3}');
    const got = await scanChunk(object, 0, object.length);
    expect(got.records).toEqual([{ a: 1 }, { a: 'ü€😀' }, { a: 3 }]);
    expect(got.rejects).toEqual([]);
  });

  test('strips a UTF-8 byte order mark from the first record', async () => {
    const object = Buffer.concat([BOM, Buffer.from('{"a":1}\n{"a":2}\n')]);
    expect((await scanChunk(object, 0, object.length)).records).toEqual([{ a: 1 }, { a: 2 }]);
  });

  test('a chunk owns exactly the records whose first byte lies in it', async () => {
    const object = Buffer.from('{"a":1}\n{"a":2}\n{"a":3}\n');
    // record 2 starts at byte 8, record 3 at byte 16
    expect((await scanChunk(object, 0, 8)).records).toEqual([{ a: 1 }]);
    expect((await scanChunk(object, 0, 9)).records).toEqual([{ a: 1 }, { a: 2 }]);
    expect((await scanChunk(object, 8, 16)).records).toEqual([{ a: 2 }]);
    expect((await scanChunk(object, 9, 16)).records).toEqual([]);
    expect((await scanChunk(object, 9, 17)).records).toEqual([{ a: 3 }]);
  });

  test('adjacent JSON-lines chunks cut at random points give the whole-object records', async () => {
    const lines: string[] = [];
    const rnd = prng(7);
    for (let i = 0; i < 300; i++) {
      const kind = rnd();
      if (kind < 0.1) lines.push('');
      else if (kind < 0.15) lines.push('{"broken":');
      else lines.push(JSON.stringify({ i, text: 'x'.repeat(Math.floor(rnd() * 40)), u: 'ßü' }));
    }
    const text = lines.map((l, i) => l + (i % 3 === 0 ? '\r\n' : '\n')).join('');
    await chunkedEqualsWhole(Buffer.concat([BOM, Buffer.from(text.slice(0, -1))]));
  });

  test('adjacent CSV chunks cut at random points give the whole-object records', async () => {
    const rows = ['id,name,value'];
    const rnd = prng(9);
    for (let i = 0; i < 300; i++) {
      rows.push(rnd() < 0.1 ? '' : `${i},"name, ""quoted"" ${i}",${(rnd() * 100).toFixed(2)}`);
    }
    const text = rows.map((r, i) => r + (i % 2 ? '\r\n' : '\n')).join('');
    await chunkedEqualsWhole(Buffer.concat([BOM, Buffer.from(text)]), { format: 'csv' }, ['id', 'name', 'value']);
  });

  test('parses CSV per RFC 4180 and converts unquoted numeric fields', async () => {
    const object = Buffer.from('id,name,value,note\n1,"a, ""b""",2.5e1,\n"007",plain,-3,"line1\nline2"\n');
    const got = await scanChunk(object, 0, object.length, { format: 'csv' });
    expect(got.records).toEqual([
      { id: 1, name: 'a, "b"', value: 25 },
      { id: '007', name: 'plain', value: -3, note: 'line1\nline2' },
    ]);
  });

  test('rejects CSV rows whose field count differs from the header, at their byte offset', async () => {
    const object = Buffer.from('a,b\n1,2\n1,2,3\n');
    const got = await scanChunk(object, 0, object.length, { format: 'csv' });
    expect(got.rejects).toEqual([{ offset: 8, reason: 'expected 2 fields, got 3', raw: '1,2,3' }]);
  });

  test('rejects bad JSON, non-objects, oversized lines and binary garbage with their byte offsets', async () => {
    const garbage = Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x80, 0x81]);
    const big = Buffer.from(`{"pad":"${'y'.repeat(2 * 1024 * 1024)}"}`);
    const lines = [Buffer.from('{"ok":1}'), Buffer.from('{"a":'), Buffer.from('[1,2]'), big, garbage, Buffer.from('{"ok":2}')];
    const offsets: number[] = [];
    let pos = 0;
    for (const l of lines) {
      offsets.push(pos);
      pos += l.length + 1;
    }
    const object = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    const got = await scanChunk(object, 0, object.length, { maxPiece: 100_000 });
    expect(got.records).toEqual([{ ok: 1 }, { ok: 2 }]);
    expect(got.rejects.map((r) => r.offset)).toEqual([offsets[1], offsets[2], offsets[3], offsets[4]]);
    expect(got.rejects[0].reason).toMatch(/^invalid JSON/);
    expect(got.rejects[1].reason).toBe('record is not a JSON object');
    expect(got.rejects[2].reason).toBe('record longer than 1048576 bytes');
    expect(Buffer.byteLength(got.rejects[2].raw)).toBe(1024);
    expect(got.rejects[3].reason).toMatch(/^invalid UTF-8 at byte 1 of the record/);
  });

  test('invalid UTF-8 is a reject with the record offset and the byte where it breaks; a real U+FFFD is accepted', async () => {
    const lines = [
      Buffer.from('{"ok":1}'),
      Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]), // Latin-1 e-acute
      Buffer.from('{"name":"\ufffd is a real replacement character"}'),
      Buffer.concat([Buffer.from('{"n":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), // UTF-16 surrogate
      Buffer.concat([Buffer.from('{"n":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), // overlong "/"
      Buffer.concat([Buffer.from('{"n":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')]), // truncated
      Buffer.from('{"ok":2}'),
    ];
    const offsets: number[] = [];
    let pos = 0;
    for (const l of lines) {
      offsets.push(pos);
      pos += l.length + 1;
    }
    const object = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    const got = await scanChunk(object, 0, object.length, { maxPiece: 7 });
    expect(got.records).toEqual([{ ok: 1 }, { name: '\ufffd is a real replacement character' }, { ok: 2 }]);
    expect(got.rejects.map((r) => [r.offset, r.reason])).toEqual([
      [offsets[1], expect.stringMatching(/^invalid UTF-8 at byte 12 of the record; the input must be UTF-8/)],
      [offsets[3], expect.stringMatching(/^invalid UTF-8 at byte 6 of the record/)],
      [offsets[4], expect.stringMatching(/^invalid UTF-8 at byte 6 of the record/)],
      [offsets[5], expect.stringMatching(/^invalid UTF-8 at byte 6 of the record/)],
    ]);
  });

  test('invalid UTF-8 in a CSV row is a reject; in the header it is an error naming the header row', async () => {
    const row = Buffer.concat([Buffer.from('1,M'), Buffer.from([0xfc]), Buffer.from('nchen\n')]);
    const object = Buffer.concat([Buffer.from('id,city\n1,Berlin\n'), row, Buffer.from('3,Wien\n')]);
    const got = await scanChunk(object, 0, object.length, { format: 'csv' });
    expect(got.records).toEqual([{ id: 1, city: 'Berlin' }, { id: 3, city: 'Wien' }]);
    expect(got.rejects).toEqual([{ offset: 17, reason: expect.stringMatching(/^invalid UTF-8 at byte 3 /), raw: expect.any(String) }]);
    const badHeader = Buffer.concat([Buffer.from('id,cit'), Buffer.from([0xff]), Buffer.from('\n1,x\n')]);
    await expect(scanChunk(badHeader, 0, badHeader.length, { format: 'csv' })).rejects.toThrow(/^CSV header row: invalid UTF-8 at byte 6/);
  });

  test("values 'exact' keeps CSV fields as text; a column named __proto__ is an own field", async () => {
    const object = Buffer.from('zip,__proto__,n\n02134,x,12345678901234567890\n');
    const exact = await scanChunk(object, 0, object.length, { format: 'csv', values: 'exact', parseJson: JSON.parse });
    expect(exact.records).toEqual([{ zip: '02134', ['__proto__']: 'x', n: '12345678901234567890' }]);
    expect(Object.hasOwn(exact.records[0], '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(exact.records[0])).toBe(Object.prototype);
    const native = await scanChunk(object, 0, object.length, { format: 'csv' });
    expect(native.records[0].zip).toBe(2134);
  });

  test('stops at a record boundary when asked and reports where to resume', async () => {
    const object = Buffer.from(Array.from({ length: 100 }, (_, i) => JSON.stringify({ i })).join('\n') + '\n');
    let polls = 0;
    const first = await scanChunk(object, 0, object.length, { shouldStop: () => ++polls === 5 });
    expect(first.stoppedAt).toBeDefined();
    const rest = await scanChunk(object, 0, object.length, {});
    const resumed: Record<string, unknown>[] = [];
    await scanRecords(
      asAsync([object.subarray(first.stoppedAt!)]),
      { format: 'jsonl', sourceOffset: first.stoppedAt!, skipPartialFirst: false, end: object.length },
      { record: (r) => (resumed.push(r), undefined), reject: () => undefined },
    );
    expect([...first.records, ...resumed]).toEqual(rest.records);
  });
});
