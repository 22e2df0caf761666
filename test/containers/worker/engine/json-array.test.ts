import { mergeResults, processStream, scanJsonArray, walkJsonArray, JsonArrayStructureError } from '../../../../containers/worker/src/engine';
import { sampleBuffer } from '../../../../containers/worker/src/sample-data';
import type { ScanSink } from '../../../../containers/worker/src/engine';

/** Yields `buf` in pieces of `size` bytes (1 puts every state change on a buffer boundary). */
async function* pieces(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, Math.min(buf.length, i + size));
}

interface Collected {
  records: Record<string, unknown>[];
  rejects: { offset: number; reason: string; raw: string }[];
}

function collector(): { sink: ScanSink; got: Collected } {
  const got: Collected = { records: [], rejects: [] };
  return {
    got,
    sink: {
      record: (r) => {
        got.records.push(r);
        return undefined;
      },
      reject: (offset, reason, raw) => {
        got.rejects.push({ offset, reason, raw: raw.toString('utf8') });
      },
    },
  };
}

/** Element starts at depth 1, located independently with JSON.parse on growing prefixes of each element. */
function elementStarts(text: string): number[] {
  const values = JSON.parse(text) as unknown[];
  const starts: number[] = [];
  let pos = text.indexOf('[') + 1;
  for (const v of values) {
    while (/\s|,/.test(text[pos])) pos++;
    starts.push(Buffer.byteLength(text.slice(0, pos)));
    pos += JSON.stringify(v).length; // elements below are written compactly, so this is their length
  }
  return starts;
}

// Strings that hold every character the walker must not mistake for structure.
const TRICKY = [
  { id: 1, s: '},{"id":99}', t: 'quote \\" inside' },
  { id: 2, s: 'back\\\\slash at end\\\\', nested: [{ a: '[' }, { b: ']' }], deep: { x: { y: [1, [2, { z: '}' }]] } } },
  { id: 3, s: 'ünïcödé ✓ 𝄞', n: -1.5e3, u: null, b: true },
  { id: 4, s: '', e: {}, a: [] },
];
const TRICKY_TEXT = '\ufeff [\n  ' + TRICKY.map((r) => JSON.stringify(r)).join(' ,\n  ') + '\n]\n';

describe('json-array reader', () => {
  it.each([1, 2, 7, 64, 1 << 16])('reads every element of an array with tricky strings, in pieces of %i bytes', async (size) => {
    const { sink, got } = collector();
    await scanJsonArray(pieces(Buffer.from(TRICKY_TEXT), size), { sourceOffset: 0, atArrayStart: true, end: Infinity }, sink);
    expect(got.rejects).toEqual([]);
    expect(got.records).toEqual(TRICKY);
  });

  it('locates elements at their first byte (the offsets the planner cuts at)', async () => {
    const offsets: number[] = [];
    const body = Buffer.from(TRICKY_TEXT);
    await walkJsonArray(pieces(body, 3), { sourceOffset: 0, atArrayStart: true, end: Infinity, collect: false }, (el) => offsets.push(el.offset));
    expect(offsets).toEqual(elementStarts(TRICKY_TEXT.slice(1)).map((o) => o + 3)); // after the 3-byte BOM
    for (const o of offsets) expect(body[o]).toBe(0x7b);
  });

  it('a chunk [start, end) reads exactly the elements that start in it, starting mid-object at an element', async () => {
    const body = Buffer.from(TRICKY_TEXT);
    const offsets: number[] = [];
    await walkJsonArray(pieces(body, 5), { sourceOffset: 0, atArrayStart: true, end: Infinity, collect: false }, (el) => offsets.push(el.offset));
    const bounds = [0, offsets[1], offsets[3], body.length];
    const all: Record<string, unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      const { sink, got } = collector();
      await scanJsonArray(pieces(body.subarray(bounds[i]), 4), { sourceOffset: bounds[i], atArrayStart: bounds[i] === 0, end: bounds[i + 1] }, sink);
      expect(got.rejects).toEqual([]);
      all.push(...got.records);
    }
    expect(all).toEqual(TRICKY);
  });

  it('rejects elements that are not objects, invalid JSON or too long, at their byte offsets, and keeps the rest', async () => {
    const text = '[{"ok":1}, 42, "str", {"a":}, {"big":"' + 'x'.repeat(200) + '"}, [1], {"ok":2}]';
    const { sink, got } = collector();
    await scanJsonArray(pieces(Buffer.from(text), 8), { sourceOffset: 0, atArrayStart: true, end: Infinity, maxRecordBytes: 100 }, sink);
    expect(got.records).toEqual([{ ok: 1 }, { ok: 2 }]);
    expect(got.rejects.map((r) => [r.offset, r.reason.replace(/:.*/, '')])).toEqual([
      [text.indexOf('42'), 'record is not a JSON object'],
      [text.indexOf('"str"'), 'record is not a JSON object'],
      [text.indexOf('{"a":}'), 'invalid JSON'],
      [text.indexOf('{"big"'), 'record longer than 100 bytes'],
      [text.indexOf('[1]'), 'record is not a JSON object'],
    ]);
    expect(got.rejects[2].raw).toBe('{"a":}');
  });

  it.each([
    ['a missing comma', '[{"a":1} {"b":2}]', /expected "," or "]" after the element that starts at byte 1, found "\{" at byte 9/],
    ['a truncated file', '[{"a":1},{"b":"2', /element that starts here is not complete .* at byte 9/],
    ['an unclosed array', '[{"a":1},', /not closed by "\]"/],
    ['not an array', '{"a":1}', /expected "\[" \(the array's start\), found "\{" at byte 0/],
    ['content after the array', '[{"a":1}] x', /unexpected content after the closing "\]" at byte 10/],
    ['an empty input', '  ', /the input is empty/],
  ])('refuses %s with the byte offset', async (_what, text, message) => {
    const { sink } = collector();
    const scan = scanJsonArray(pieces(Buffer.from(text), 3), { sourceOffset: 0, atArrayStart: true, end: Infinity }, sink);
    await expect(scan).rejects.toThrow(JsonArrayStructureError);
    await expect(scanJsonArray(pieces(Buffer.from(text), 3), { sourceOffset: 0, atArrayStart: true, end: Infinity }, sink)).rejects.toThrow(message);
  });

  it('refuses a chunk that does not start on an element', async () => {
    const text = '[{"a":1},{"b":2}]';
    const { sink } = collector();
    const comma = text.indexOf(',');
    await expect(
      scanJsonArray(pieces(Buffer.from(text).subarray(comma), 4), { sourceOffset: comma, atArrayStart: false, end: text.length }, sink),
    ).rejects.toThrow(`expected an element, found "," (a chunk must start on an element) at byte ${comma}`);
  });

  it('an empty array has no records', async () => {
    const { sink, got } = collector();
    await scanJsonArray(pieces(Buffer.from(' [ ] '), 1), { sourceOffset: 0, atArrayStart: true, end: Infinity }, sink);
    expect(got.records).toEqual([]);
  });

  it('stops at an element start when asked and resumes there to the same records', async () => {
    const body = Buffer.from('[' + Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, s: 'y'.repeat(i) })).join(',') + ']');
    const first = collector();
    let buffers = 0;
    const stop = await scanJsonArray(pieces(body, 37), { sourceOffset: 0, atArrayStart: true, end: Infinity, shouldStop: () => ++buffers >= 10 }, first.sink);
    expect(stop.stoppedAt).toBeDefined();
    const second = collector();
    await scanJsonArray(pieces(body.subarray(stop.stoppedAt!), 37), { sourceOffset: stop.stoppedAt!, atArrayStart: false, end: Infinity }, second.sink);
    expect([...first.got.records, ...second.got.records].map((r) => r.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  // The meaningful-size check (1M records, 125 MB; 2M took over 5 minutes on the shared 2-core box): the same records as JSON lines and as one JSON array, whole and in
  // chunks cut at element starts, give the same aggregate.
  it('1,000,000 records as a JSON array give the same aggregate as JSON lines, whole and chunked', async () => {
    const count = 1_000_000;
    const jsonl = sampleBuffer({ count, seed: 16 });
    const lines = jsonl.toString('utf8').split('\n').filter((l) => l.length > 0);
    expect(lines).toHaveLength(count);
    const array = Buffer.from('[\n' + lines.join(',\n') + '\n]\n');

    const fromLines = await processStream('aggregate-defects', pieces(jsonl, 1 << 16), { format: 'jsonl' });
    const whole = await processStream('aggregate-defects', pieces(array, 1 << 16), { format: 'json-array' });
    expect(whole.records).toBe(fromLines.records);
    expect(whole.document).toEqual(fromLines.document);

    // Chunk boundaries: every 150,000th element start, found by the walker alone.
    const cuts: number[] = [0];
    let n = 0;
    await walkJsonArray(pieces(array, 1 << 16), { sourceOffset: 0, atArrayStart: true, end: Infinity, collect: false }, (el) => {
      if (n > 0 && n % 150_000 === 0) cuts.push(el.offset);
      n++;
    });
    expect(n).toBe(count);
    cuts.push(array.length);
    const { getOperation } = await import('../../../../containers/worker/src/operations/registry');
    const { bindOperation } = await import('../../../../containers/worker/src/engine');
    const op = getOperation('aggregate-defects');
    if (op.kind !== 'records') throw new Error('aggregate-defects is a record operation');
    const docs: Record<string, unknown>[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const state = op.init(op.parseConfig({}));
      const run = bindOperation(op, state, () => undefined, () => undefined);
      await scanJsonArray(pieces(array.subarray(cuts[i]), 1 << 16), { sourceOffset: cuts[i], atArrayStart: cuts[i] === 0, end: cuts[i + 1] }, run.sink);
      docs.push(op.serialize(state));
    }
    expect(docs).toHaveLength(7);
    expect(mergeResults('aggregate-defects', docs)).toEqual(fromLines.document);
  }, 300_000);
});
