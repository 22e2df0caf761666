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
    expect(got.rejects[3].reason).toMatch(/^invalid JSON/);
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
