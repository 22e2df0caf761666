import { isUtf8 } from 'buffer';
import { RAW_PREFIX_BYTES, DEFAULT_MAX_RECORD_BYTES, firstInvalidUtf8 } from './scan';
import type { ScanResult, ScanSink } from './scan';

/**
 * Reader of the `json-array` format: one top-level JSON array whose elements are the records
 * (`[{...},{...}]`, any whitespace between tokens). Kept apart from the JSON-lines scanner (scan.ts).
 *
 * Chunk rule (the same as for JSON lines, with "element" for "line"): a chunk [start, end) owns every
 * element whose first byte lies in it. A chunk that starts at byte 0 reads the opening `[`; any other
 * chunk must start exactly on the first byte of an element (or whitespace before it) — the planner
 * only places boundaries there, because a byte offset alone cannot tell whether it is inside a string
 * or a nested value. The element that begins before `end` is read to its end even past `end`.
 *
 * The walk is a small state machine over bytes (string / escape / nesting depth), jumping through
 * strings with Buffer#indexOf, so element boundaries are found without parsing; only each element's
 * own bytes are then handed to JSON.parse. Memory: the current source buffer plus one element.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** The array is broken in a way that loses the position of the following elements: the chunk cannot go on. */
export class JsonArrayStructureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonArrayStructure';
  }
}

export interface JsonArrayWalkOptions {
  /** Absolute offset of the first byte the source yields. */
  sourceOffset: number;
  /** True when the source starts at byte 0 of the object (a BOM and the opening `[` come first). */
  atArrayStart: boolean;
  /** Exclusive end of the chunk: the first element starting at or after it stops the walk; Infinity for all. */
  end: number;
  maxRecordBytes?: number;
  /** False: elements are only located (the planner), their bytes are not collected. */
  collect?: boolean;
  shouldStop?: () => boolean;
  afterBuffer?: () => Promise<void> | undefined;
}

export interface JsonArrayElement {
  /** Absolute offset of the element's first byte. */
  offset: number;
  /** The element's bytes, when collected and not longer than maxRecordBytes. */
  bytes?: Buffer;
  /** Set when the element was longer than maxRecordBytes (only its first 1 KiB is in `bytes`). */
  oversized?: boolean;
}

export interface JsonArrayWalkResult {
  bytesRead: number;
  /** Set when shouldStop() ended the walk: offset of the first element not yet handed on. */
  stoppedAt?: number;
  /** True when the closing `]` was read. */
  closed: boolean;
}

type Phase = 'open' | 'first' | 'element' | 'inside' | 'after' | 'closed';

/**
 * Walks the elements of a JSON array from a source positioned at byte 0 or at an element start, calling
 * `onElement` for each element that starts before `end`. Throws JsonArrayStructureError when the bytes
 * between elements are not `,`/`]`/whitespace, naming the offset.
 */
export async function walkJsonArray(
  source: AsyncIterable<Buffer>,
  options: JsonArrayWalkOptions,
  onElement: (element: JsonArrayElement) => void,
): Promise<JsonArrayWalkResult> {
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const collect = options.collect !== false;
  let phase: Phase = options.atArrayStart ? 'open' : 'element';
  let depth = 0;
  let inString = false;
  let escape = false;
  let scalar = false;
  let elementStart = -1;
  let pieces: Buffer[] = [];
  let piecesLen = 0;
  let oversized = false;
  let base = options.sourceOffset;
  let bytesRead = 0;
  let stoppedAt: number | undefined;
  let finished = false;

  const fail = (offset: number, what: string): never => {
    throw new JsonArrayStructureError(`json-array input: ${what} at byte ${offset}; the input must be one JSON array of objects ([{...},{...}])`);
  };
  const keep = (buf: Buffer, s: number, e: number) => {
    if (!collect || e <= s) return;
    if (oversized) return;
    if (piecesLen + (e - s) > maxRecordBytes) {
      oversized = true;
      const head = pieces.length ? Buffer.concat(pieces) : Buffer.alloc(0);
      pieces = [Buffer.concat([head, buf.subarray(s, Math.min(e, s + RAW_PREFIX_BYTES))]).subarray(0, RAW_PREFIX_BYTES)];
      return;
    }
    // Copy: the stream may reuse its buffer once we return.
    pieces.push(Buffer.from(buf.subarray(s, e)));
    piecesLen += e - s;
  };
  /** `whole`: the element lies in one source buffer, handed on without a copy (onElement is synchronous). */
  const emit = (whole?: Buffer) => {
    const element: JsonArrayElement = { offset: elementStart };
    if (collect) {
      element.bytes = whole ?? (pieces.length === 1 ? pieces[0] : Buffer.concat(pieces));
      if (oversized) element.oversized = true;
    }
    pieces = [];
    piecesLen = 0;
    oversized = false;
    onElement(element);
  };

  const finish = (buf: Buffer, from: number, to: number) => {
    if (collect && piecesLen === 0 && !oversized && to - from <= maxRecordBytes) {
      emit(buf.subarray(from, to));
      return;
    }
    keep(buf, from, to);
    emit();
  };

  for await (const chunk of source) {
    const buf: Buffer = chunk;
    const len = buf.length;
    bytesRead += len;
    let i = 0;
    // Start of the current element's bytes inside this buffer (when one is open).
    let keepFrom = phase === 'inside' ? 0 : -1;
    let nextBackslash = buf.indexOf(BACKSLASH);
    while (i < len) {
      if (phase === 'inside') {
        if (inString) {
          if (escape) {
            escape = false;
            i++;
            continue;
          }
          const q = buf.indexOf(QUOTE, i);
          // The next backslash is searched once per buffer position passed, not once per string.
          if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = buf.indexOf(BACKSLASH, i);
          const bs = nextBackslash;
          if (bs !== -1 && (q === -1 || bs < q)) {
            i = bs + 1;
            escape = true;
            continue;
          }
          if (q === -1) {
            i = len;
            break;
          }
          i = q + 1;
          inString = false;
          if (scalar && depth === 0) {
            finish(buf, keepFrom, i);
            keepFrom = -1;
            phase = 'after';
          }
          continue;
        }
        const b = buf[i];
        if (scalar) {
          if (b === COMMA || b === CLOSE_ARRAY || isSpace(b)) {
            finish(buf, keepFrom, i);
            keepFrom = -1;
            phase = 'after';
            continue; // the byte is read again in phase 'after'
          }
          i++;
          continue;
        }
        if (b === QUOTE) inString = true;
        else if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++;
        else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
          depth--;
          if (depth === 0) {
            i++;
            finish(buf, keepFrom, i);
            keepFrom = -1;
            phase = 'after';
            continue;
          }
        }
        i++;
        continue;
      }
      const b = buf[i];
      if (isSpace(b)) {
        i++;
        continue;
      }
      const at = base + i;
      if (phase === 'open') {
        if (at < 3 && (b === 0xef || b === 0xbb || b === 0xbf)) {
          i++; // a byte-order mark split across source buffers
          continue;
        }
        if (b !== OPEN_ARRAY) fail(at, `expected "[" (the array's start), found ${JSON.stringify(String.fromCharCode(b))}`);
        phase = 'first';
        i++;
      } else if (phase === 'first' || phase === 'element') {
        if (b === CLOSE_ARRAY && phase === 'first') {
          phase = 'closed';
          i++;
          continue;
        }
        if (b === COMMA || b === CLOSE_ARRAY) {
          fail(at, `expected an element, found ${JSON.stringify(String.fromCharCode(b))}${options.atArrayStart || at !== options.sourceOffset ? '' : ' (a chunk must start on an element)'}`);
        }
        if (at >= options.end) {
          finished = true;
          break;
        }
        elementStart = at;
        phase = 'inside';
        keepFrom = i;
        if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
          scalar = false;
          depth = 1;
        } else {
          scalar = true;
          depth = 0;
          if (b === QUOTE) inString = true;
        }
        i++;
      } else if (phase === 'after') {
        if (b === COMMA) phase = 'element';
        else if (b === CLOSE_ARRAY) phase = 'closed';
        else fail(at, `expected "," or "]" after the element that starts at byte ${elementStart}, found ${JSON.stringify(String.fromCharCode(b))}`);
        i++;
      } else {
        fail(at, 'unexpected content after the closing "]"');
      }
    }
    if (phase === 'inside' && keepFrom !== -1) keep(buf, keepFrom, len);
    base += len;
    if (finished) break;
    if (options.afterBuffer) {
      const p = options.afterBuffer();
      if (p !== undefined) await p;
    }
    // A stop point must be an element start (or the whitespace before one) so a resumed walk in phase
    // 'element' is right; between an element and its comma the walk simply goes on a little.
    if (options.shouldStop !== undefined && (phase === 'element' || phase === 'inside') && options.shouldStop()) {
      stoppedAt = phase === 'inside' ? elementStart : base;
      break;
    }
  }
  if (stoppedAt === undefined && !finished && phase !== 'closed') {
    if (phase === 'inside') {
      if (scalar && !inString) {
        emit();
        phase = 'after';
      } else {
        fail(elementStart, 'the element that starts here is not complete at the end of the input (truncated file?)');
      }
    }
    if (phase === 'open') fail(base, 'the input is empty; expected "["');
    fail(base, 'the array is not closed by "]" (truncated file?)');
  }
  return { bytesRead, stoppedAt, closed: phase === 'closed' };
}

/**
 * Scans the records of a json-array chunk into a sink, the json-array twin of `scanRecords`: each
 * element is parsed with JSON.parse (or `parseJson` for exact values); an element that is not an
 * object, is not valid JSON or UTF-8, or is longer than maxRecordBytes is a reject at its offset.
 */
export async function scanJsonArray(
  source: AsyncIterable<Buffer>,
  options: Omit<JsonArrayWalkOptions, 'collect'> & { parseJson?: (text: string) => unknown },
  sink: ScanSink,
): Promise<ScanResult> {
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const parse = options.parseJson ?? JSON.parse;
  const result = await walkJsonArray(source, { ...options, collect: true }, (el) => {
    const bytes = el.bytes!;
    const raw = bytes.subarray(0, RAW_PREFIX_BYTES);
    if (el.oversized) {
      sink.reject(el.offset, `record longer than ${maxRecordBytes} bytes`, raw);
      return;
    }
    const text = bytes.toString('utf8');
    if (text.indexOf('\ufffd') !== -1 && !isUtf8(bytes)) {
      sink.reject(el.offset, `invalid UTF-8 at byte ${firstInvalidUtf8(bytes, 0, bytes.length)} of the record; the input must be UTF-8 (re-export it as UTF-8)`, raw);
      return;
    }
    let rec: unknown;
    try {
      rec = parse(text);
    } catch (err) {
      sink.reject(el.offset, `invalid JSON: ${(err as Error).message}`, raw);
      return;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      sink.reject(el.offset, 'record is not a JSON object', raw);
      return;
    }
    const reason = sink.record(rec as Record<string, unknown>);
    if (reason !== undefined) sink.reject(el.offset, reason, raw);
  });
  return { bytesRead: result.bytesRead, stoppedAt: result.stoppedAt };
}
