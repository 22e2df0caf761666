import { isUtf8 } from 'buffer';
import { csvRecord, parseHeader, quoteParityOdd, splitCsv } from './csv';
import type { AnyRecordOperation, RecordCounts } from '../operations/types';
import type { RecordFormat } from './format';

/**
 * The hot loop: splits a byte stream into records on newline bytes (memchr via Buffer#indexOf), decodes
 * each line once, parses it, and hands it on. Nothing but the current source buffer and an unfinished
 * line is held, so memory stays flat whatever the object size.
 *
 * Chunk rule: a chunk [start, end) owns every record whose first byte lies in it. The source begins at
 * start-1 when start > 0 and the scan skips through the first newline: if byte start-1 is a newline the
 * record at `start` is ours, otherwise the partial record belongs to the previous chunk. A record that
 * begins before `end` is read to its end even past `end`; the first record beginning at or after `end`
 * stops the scan.
 */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
export const RAW_PREFIX_BYTES = 1024;

export interface ScanSink {
  /** A parsed record; returns the reason when the operation rejects it. */
  record(record: Record<string, unknown>): string | undefined;
  /** `offset`: absolute byte offset of the record's first line; `raw`: at most its first 1 KiB. */
  reject(offset: number, reason: string, raw: Buffer): void;
}

export interface ScanOptions {
  format: RecordFormat;
  /** Absolute offset (in the object, or in the decompressed stream) of the first byte the source yields. */
  sourceOffset: number;
  /** True when the source starts one byte before the chunk (start-1) and that partial record must be skipped. */
  skipPartialFirst: boolean;
  /** Exclusive end of the chunk; Infinity for "to the end of the object". */
  end: number;
  maxRecordBytes?: number;
  /** The CSV header when the scan does not begin at offset 0 (a later chunk, or a resumed run). */
  csvHeader?: readonly string[];
  /** Polled between source buffers; true stops the scan at the next record boundary (SIGTERM). */
  shouldStop?: () => boolean;
  /** Called between source buffers so writers can apply backpressure. */
  afterBuffer?: () => Promise<void> | undefined;
  /**
   * 'native' (default): JSON numbers become doubles, unquoted numeric CSV fields become numbers.
   * 'exact': JSON is parsed by `parseJson` (which keeps numbers as their text) and CSV fields stay strings.
   */
  values?: 'native' | 'exact';
  /** The JSON parser for values 'exact'. */
  parseJson?: (text: string) => unknown;
  /**
   * JSON lines only: the operation's byte-level path (RecordOperation.scanLines) bound to its state. It
   * takes (adds and counts) the lines it can from a position on; the first it does not take goes down
   * the general path (decode, UTF-8 check, JSON.parse, sink.record).
   */
  fastLines?: FastLines;
}

/** The operation's byte-level path over JSON lines (RecordOperation.scanLines) bound to its state. */
export type FastLines = (buf: Buffer, start: number, stop: number, maxRecordBytes: number) => number;

export function bindScanLines(op: Pick<AnyRecordOperation, 'scanLines' | 'values'>, state: RecordCounts): FastLines | undefined {
  const scanLines = op.scanLines;
  if (scanLines === undefined || op.values === 'exact') return undefined;
  return (buf, start, stop, maxRecordBytes) => scanLines(state, buf, start, stop, maxRecordBytes);
}

export interface ScanResult {
  /** Set when shouldStop() ended the scan: the offset of the first record not yet processed. */
  stoppedAt?: number;
  /** Bytes received from the source. */
  bytesRead: number;
  csvHeader?: readonly string[];
}

/**
 * Index (from s) of the first byte that is not part of well-formed UTF-8 in buf[s, e), or -1. Only run
 * on lines already known to be invalid, to say where.
 */
export function firstInvalidUtf8(buf: Buffer, s: number, e: number): number {
  let i = s;
  while (i < e) {
    const b = buf[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [n, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [n, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [n, min] = [3, 0x10000];
    else return i - s;
    if (i + n >= e) return i - s; // truncated sequence
    let cp = b & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = buf[i + k];
      if ((c & 0xc0) !== 0x80) return i - s;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i - s;
    i += n + 1;
  }
  return -1;
}

function invalidUtf8Reason(buf: Buffer, s: number, e: number): string {
  const at = firstInvalidUtf8(buf, s, e);
  return `invalid UTF-8 at byte ${at} of the record; the input must be UTF-8 (re-export it as UTF-8)`;
}

const BOM0 = 0xef;
const BOM1 = 0xbb;
const BOM2 = 0xbf;

export async function scanRecords(
  source: AsyncIterable<Buffer>,
  options: ScanOptions,
  sink: ScanSink,
): Promise<ScanResult> {
  const end = options.end;
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const isCsv = options.format === 'csv';
  const exact = options.values === 'exact';
  const parseJson = exact ? options.parseJson : undefined;
  const fastLines = isCsv ? undefined : options.fastLines;
  if (exact && !parseJson) throw new Error("scan option values 'exact' needs parseJson");
  let header: readonly string[] | undefined = options.csvHeader;
  let wantHeader = isCsv && header === undefined;
  if (wantHeader && options.sourceOffset !== 0) {
    throw new Error('a CSV scan that does not start at byte 0 needs the header row (csvHeader)');
  }

  // CSV records spanning several lines (a quoted field with a line break).
  let csvPending: string | undefined;
  let csvPendingOffset = -1;
  let csvPendingRaw: Buffer | undefined;
  const fields: string[] = [];
  const quoted: boolean[] = [];

  const rejectLine = (buf: Buffer, s: number, e: number, offset: number, reason: string) => {
    sink.reject(offset, reason, buf.subarray(s, Math.min(e, s + RAW_PREFIX_BYTES)));
  };

  const handleCsv = (text: string, buf: Buffer, s: number, e: number, offset: number) => {
    let recordText = text;
    let recordOffset = offset;
    let raw = buf;
    let rs = s;
    let re = e;
    if (csvPending !== undefined) {
      recordText = csvPending + '\n' + text;
      recordOffset = csvPendingOffset;
      raw = csvPendingRaw!;
      rs = 0;
      re = raw.length;
      if (recordText.length > maxRecordBytes) {
        csvPending = undefined;
        sink.reject(recordOffset, `record longer than ${maxRecordBytes} bytes`, raw);
        return;
      }
      if (quoteParityOdd(text, true)) {
        csvPending = recordText;
        return;
      }
      csvPending = undefined;
    } else if (text.indexOf('"') !== -1 && quoteParityOdd(text, false)) {
      csvPending = text;
      csvPendingOffset = offset;
      // Copy: the source buffer is reused by the stream once we return.
      csvPendingRaw = Buffer.from(buf.subarray(s, Math.min(e, s + RAW_PREFIX_BYTES)));
      return;
    }
    if (wantHeader) {
      header = parseHeader(recordText);
      wantHeader = false;
      return;
    }
    const err = splitCsv(recordText, fields, quoted);
    if (err !== undefined) {
      sink.reject(recordOffset, err, raw.subarray(rs, Math.min(re, rs + RAW_PREFIX_BYTES)));
      return;
    }
    const rec = csvRecord(header!, fields, quoted, !exact);
    if (typeof rec === 'string') {
      sink.reject(recordOffset, rec, raw.subarray(rs, Math.min(re, rs + RAW_PREFIX_BYTES)));
      return;
    }
    const reason = sink.record(rec);
    if (reason !== undefined) sink.reject(recordOffset, reason, raw.subarray(rs, Math.min(re, rs + RAW_PREFIX_BYTES)));
  };

  /** One physical line without its "\n"; `offset` is the absolute offset of buf[s]. */
  const handleLine = (buf: Buffer, s: number, e: number, offset: number) => {
    if (e > s && buf[e - 1] === 13) e--;
    if (offset === 0 && e - s >= 3 && buf[s] === BOM0 && buf[s + 1] === BOM1 && buf[s + 2] === BOM2) s += 3;
    if (e === s && csvPending === undefined) return; // empty line
    if (e - s > maxRecordBytes) {
      const recordOffset = csvPending === undefined ? offset : csvPendingOffset;
      csvPending = undefined;
      rejectLine(buf, s, e, recordOffset, `record longer than ${maxRecordBytes} bytes`);
      return;
    }
    const text = buf.toString('utf8', s, e);
    // Invalid bytes decode to U+FFFD; only then is the line checked (a real U+FFFD is valid UTF-8).
    if (text.indexOf('\ufffd') !== -1 && !isUtf8(buf.subarray(s, e))) {
      if (isCsv && wantHeader) throw new Error(`CSV header row: ${invalidUtf8Reason(buf, s, e)}`);
      if (csvPending !== undefined) {
        sink.reject(csvPendingOffset, `invalid UTF-8 in a line of this multi-line record; the input must be UTF-8 (re-export it as UTF-8)`, csvPendingRaw!);
        csvPending = undefined;
        return;
      }
      rejectLine(buf, s, e, offset, invalidUtf8Reason(buf, s, e));
      return;
    }
    if (isCsv) {
      handleCsv(text, buf, s, e, offset);
      return;
    }
    let rec: unknown;
    try {
      rec = parseJson !== undefined ? parseJson(text) : JSON.parse(text);
    } catch (err) {
      rejectLine(buf, s, e, offset, `invalid JSON: ${(err as Error).message}`);
      return;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      rejectLine(buf, s, e, offset, 'record is not a JSON object');
      return;
    }
    const reason = sink.record(rec as Record<string, unknown>);
    if (reason !== undefined) rejectLine(buf, s, e, offset, reason);
  };

  // An unfinished line carried across source buffers.
  let carry: Buffer[] = [];
  let carryLen = 0;
  let carryStart = -1;
  // Set when the carried line passed maxRecordBytes: only its first 1 KiB is kept, the rest is dropped.
  let oversized = false;

  let base = options.sourceOffset;
  let skipping = options.skipPartialFirst;
  let bytesRead = 0;
  let finished = false;
  let stoppedAt: number | undefined;

  /**
   * An oversized record keeps only its first RAW_PREFIX_BYTES (for its reject line), whichever source
   * buffers they came in: the reject is the same however the stream was cut into buffers.
   */
  const keepPrefix = (more: Buffer) => {
    const have = carry.length === 1 ? carry[0].length : carry.reduce((n, b) => n + b.length, 0);
    if (carry.length === 1 && have >= RAW_PREFIX_BYTES) return;
    carry = [Buffer.concat([...carry, more], Math.min(RAW_PREFIX_BYTES, have + more.length))];
  };

  /** `tailEnd`: index of the line's newline in `tail`, or tail.length when the stream ended without one. */
  const finishCarry = (tail: Buffer, tailEnd: number) => {
    if (oversized) {
      sink.reject(carryStart, `record longer than ${maxRecordBytes} bytes`, Buffer.concat(carry).subarray(0, RAW_PREFIX_BYTES));
    } else {
      // with its newline, when it has one, so the byte-level path can take it
      const lineEnd = tailEnd < tail.length ? tailEnd + 1 : tailEnd;
      carry.push(tail.subarray(0, lineEnd));
      const line = carry.length === 1 ? carry[0] : Buffer.concat(carry, carryLen + lineEnd);
      const taken = fastLines !== undefined && lineEnd > tailEnd && fastLines(line, 0, 1, maxRecordBytes) === line.length;
      if (!taken) handleLine(line, 0, line.length - (lineEnd - tailEnd), carryStart);
    }
    carry = [];
    carryLen = 0;
    carryStart = -1;
    oversized = false;
  };

  for await (const chunk of source) {
    const buf: Buffer = chunk;
    const len = buf.length;
    bytesRead += len;
    let pos = 0;
    if (skipping) {
      const nl = buf.indexOf(10);
      if (nl === -1) {
        base += len;
        if (base > end) break;
        continue;
      }
      pos = nl + 1;
      skipping = false;
    }
    if (carryStart !== -1) {
      const nl = buf.indexOf(10, pos);
      if (nl === -1) {
        if (oversized) {
          keepPrefix(buf);
        } else if (carryLen + len > maxRecordBytes) {
          oversized = true;
          keepPrefix(buf);
        } else {
          carry.push(Buffer.from(buf));
          carryLen += len;
        }
        base += len;
        continue;
      }
      if (oversized) keepPrefix(buf.subarray(0, nl));
      else if (carryLen + nl > maxRecordBytes) {
        oversized = true;
        keepPrefix(buf.subarray(0, nl));
      }
      finishCarry(buf, nl);
      pos = nl + 1;
    }
    // Lines before `stop` (buffer positions) start before the chunk's end: they are this chunk's.
    const stop = end - base;
    for (;;) {
      if (pos >= stop) {
        finished = true;
        break;
      }
      if (fastLines !== undefined) {
        const taken = fastLines(buf, pos, stop, maxRecordBytes);
        if (taken !== pos) {
          pos = taken;
          continue;
        }
      }
      const nl = buf.indexOf(10, pos);
      if (nl === -1) {
        if (pos < len) {
          // A copy (one partial record per source buffer): the source may reuse its buffer once the next
          // one is asked for (the scan threads' shared ring does).
          carry = [Buffer.from(buf.subarray(pos))];
          carryLen = len - pos;
          carryStart = base + pos;
        }
        break;
      }
      handleLine(buf, pos, nl, base + pos);
      pos = nl + 1;
    }
    base += len;
    if (finished) break;
    if (options.afterBuffer) {
      const p = options.afterBuffer();
      if (p !== undefined) await p;
    }
    if (options.shouldStop !== undefined && options.shouldStop()) {
      stoppedAt = carryStart !== -1 ? carryStart : base;
      if (csvPending !== undefined) stoppedAt = csvPendingOffset;
      break;
    }
  }

  if (stoppedAt === undefined) {
    if (carryStart !== -1) finishCarry(Buffer.alloc(0), 0); // last line without a final newline
    if (csvPending !== undefined) {
      sink.reject(csvPendingOffset, 'unterminated quoted field', csvPendingRaw!);
      csvPending = undefined;
    }
  }
  return { stoppedAt, bytesRead, csvHeader: header };
}
