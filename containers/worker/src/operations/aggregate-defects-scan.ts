/**
 * The byte-level path of aggregate-defects: reads records of the one shape the generators and exporters
 * write and adds them to the state straight from the lines' bytes, with no string, record object or Map
 * update per record:
 *
 *   {"segmentId":"...","severity":"...","lat":N,"lon":N,"detectedAt":"YYYY-MM-DDTHH:MM[:SS[.f]]Z"[,"depthMm":N|null]}
 *
 * exactly those keys in that order, no whitespace, strings of printable ASCII without escapes, numbers
 * `-?(0|[1-9]d*)(.d+)?` with at most 15 digits, a UTC timestamp ending in `Z` of a day already counted,
 * then the line end. It takes a line only when `step` would accept the record JSON.parse gives for it,
 * and then makes exactly `step`'s changes; anything else (escapes, non-ASCII or invalid UTF-8, another
 * key or order, a duplicate or `__proto__` key, whitespace, exponents, long numbers, trailing bytes, a
 * value `step` would reject, an offset timestamp, the first record of a day, a line longer than
 * maxRecordBytes) is left untouched to the engine's general path (decode, UTF-8 check, JSON.parse,
 * `step`). So results and rejects are those of the general path, byte for byte.
 *
 * Per record it hashes the segment id's bytes into an index of the segments Map's own SegmentStats, and
 * finds the day and heatmap tallies by numbers computed from the bytes (see AggregateDefectsState.scanIndex).
 * It runs over many lines per call (RecordOperation.scanLines), finding each line's end itself.
 *
 * Numbers are read by the engine's one plain-decimal reader (engine/plain-decimal.ts), whose values are
 * those JSON.parse gives; the value rules and the heatmap cell are then computed from that double
 * exactly as `step` does.
 */
import {
  AggregateDefectsState,
  cellKey,
  DEPTH_MM_MAX,
  DEPTH_SUM_UM_MAX,
  newSegment,
  SegmentStats,
  Tally,
  YEAR_MAX,
  YEAR_MIN,
} from './aggregate-defects-state';
import { plainDecimal, readPlainDecimal } from '../engine/plain-decimal';

const Q = 0x22; // "
const BACKSLASH = 0x5c;
const CLOSE = 0x7d; // }
const MINUS = 0x2d;
const DOT = 0x2e;
const COLON = 0x3a;
const ZERO = 0x30;
const NINE = 0x39;
const UPPER_T = 0x54;
const UPPER_Z = 0x5a;
const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * The keys between the values, each with its quotes, its colon and the quotes of the string values around
 * it, compared as little-endian 32-bit words (and a 16-bit or 8-bit tail) read through a DataView: one
 * load per four bytes instead of a byte loop.
 */
const word32 = (text: string, at: number) => Buffer.from(text, 'latin1').readUInt32LE(at);
const word16 = (text: string, at: number) => Buffer.from(text, 'latin1').readUInt16LE(at);
const K_SEGMENT = '{"segmentId":"'; // 14 bytes: 3 words + 16 bits
const SEG_0 = word32(K_SEGMENT, 0);
const SEG_1 = word32(K_SEGMENT, 4);
const SEG_2 = word32(K_SEGMENT, 8);
const SEG_3 = word16(K_SEGMENT, 12);
const K_SEVERITY = '","severity":"'; // 14 bytes
const SEV_0 = word32(K_SEVERITY, 0);
const SEV_1 = word32(K_SEVERITY, 4);
const SEV_2 = word32(K_SEVERITY, 8);
const SEV_3 = word16(K_SEVERITY, 12);
const K_LAT = ',"lat":'; // 7 bytes: a word + 16 bits + a byte
const LAT_0 = word32(K_LAT, 0);
const LAT_1 = word16(K_LAT, 4);
const K_LON = ',"lon":';
const LON_0 = word32(K_LON, 0);
const LON_1 = word16(K_LON, 4);
const K_DETECTED = ',"detectedAt":"'; // 15 bytes: 3 words + 16 bits + a byte
const DET_0 = word32(K_DETECTED, 0);
const DET_1 = word32(K_DETECTED, 4);
const DET_2 = word32(K_DETECTED, 8);
const DET_3 = word16(K_DETECTED, 12);
const K_DEPTH = ',"depthMm":'; // 11 bytes: 2 words + 16 bits + a byte
const DEP_0 = word32(K_DEPTH, 0);
const DEP_1 = word32(K_DEPTH, 4);
const DEP_2 = word16(K_DEPTH, 8);
const NULL_WORD = word32('null', 0);
const LOW_WORD = word32('low"', 0);
const HIGH_WORD = word32('high', 0);
const MEDIUM_WORD = word32('medi', 0);
const MEDIUM_TAIL = word16('um', 0);
const CRITICAL_0 = word32('crit', 0);
const CRITICAL_1 = word32('ical', 0);

// The DataView of the buffer being scanned (made once per source buffer, not per line).
let viewOf: Buffer | undefined;
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

const SEV_LOW = 0;
const SEV_MEDIUM = 1;
const SEV_HIGH = 2;
const SEV_CRITICAL = 3;

type Latin1 = Buffer & { latin1Slice(start: number, end: number): string };

/** Day ordinal from the digits of `YYYY-MM-DD` (years YEAR_MIN..YEAR_MAX, months 1-12, days 1-31). */
const DAY_SLOTS = (YEAR_MAX - YEAR_MIN + 1) * 13 * 32;

/**
 * The byte-level path's lookups, kept on the state: open addressing from segment id bytes (FNV-1a hash)
 * and from heatmap cell keys to the objects the state's Maps hold, and a table of day tallies by day
 * ordinal. Entries are added when a line finds its object in a Map (or creates it); a Map entry made by
 * `step`, `merge` or `deserialize` is found through the Map the first time and indexed then.
 */
class ScanIndex {
  segMask = 1023;
  segCount = 0;
  segHash = new Int32Array(1024);
  segAt = new Int32Array(1024);
  segLen = new Int32Array(1024);
  segRef: (SegmentStats | undefined)[] = new Array<SegmentStats | undefined>(1024).fill(undefined);
  arena = Buffer.allocUnsafe(16 * 1024);
  arenaUsed = 0;
  cellMask = 1023;
  cellShift = 22;
  cellCount = 0;
  cellKey = new Int32Array(1024);
  cellRef: (Tally | undefined)[] = new Array<Tally | undefined>(1024).fill(undefined);
  days: (Tally | undefined)[] = new Array<Tally | undefined>(DAY_SLOTS).fill(undefined);

  /** The indexed segment with these id bytes and hash, or undefined. */
  segment(buf: Buffer, s: number, len: number, h: number): SegmentStats | undefined {
    const mask = this.segMask;
    const arena = this.arena;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const ref = this.segRef[i];
      if (ref === undefined) return undefined;
      if (this.segHash[i] === h && this.segLen[i] === len) {
        const at = this.segAt[i];
        let k = 0;
        while (k < len && arena[at + k] === buf[s + k]) k++;
        if (k === len) return ref;
      }
    }
  }

  addSegment(buf: Buffer, s: number, len: number, h: number, ref: SegmentStats): void {
    if (this.arenaUsed + len > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + len));
      this.arena.copy(bigger, 0, 0, this.arenaUsed);
      this.arena = bigger;
    }
    buf.copy(this.arena, this.arenaUsed, s, s + len);
    this.putSegment(h, this.arenaUsed, len, ref);
    this.arenaUsed += len;
    if (++this.segCount * 2 > this.segMask) this.growSegments();
  }

  private putSegment(h: number, at: number, len: number, ref: SegmentStats): void {
    let i = h & this.segMask;
    while (this.segRef[i] !== undefined) i = (i + 1) & this.segMask;
    this.segHash[i] = h;
    this.segAt[i] = at;
    this.segLen[i] = len;
    this.segRef[i] = ref;
  }

  private growSegments(): void {
    const { segHash, segAt, segLen, segRef } = this;
    const size = segRef.length * 2;
    this.segMask = size - 1;
    this.segHash = new Int32Array(size);
    this.segAt = new Int32Array(size);
    this.segLen = new Int32Array(size);
    this.segRef = new Array<SegmentStats | undefined>(size).fill(undefined);
    for (let i = 0; i < segRef.length; i++) {
      const ref = segRef[i];
      if (ref !== undefined) this.putSegment(segHash[i], segAt[i], segLen[i], ref);
    }
  }

  /** The indexed tally of a heatmap cell key (0 <= key < 2^31; Fibonacci hashing: the top bits), or undefined. */
  cell(key: number): Tally | undefined {
    const mask = this.cellMask;
    for (let i = Math.imul(key, 0x9e3779b1) >>> this.cellShift; ; i = (i + 1) & mask) {
      const ref = this.cellRef[i];
      if (ref === undefined || this.cellKey[i] === key) return ref;
    }
  }

  addCell(key: number, ref: Tally): void {
    this.putCell(key, ref);
    if (++this.cellCount * 2 > this.cellMask) {
      const { cellKey: keys, cellRef: refs } = this;
      const size = refs.length * 2;
      this.cellMask = size - 1;
      this.cellShift--;
      this.cellKey = new Int32Array(size);
      this.cellRef = new Array<Tally | undefined>(size).fill(undefined);
      for (let i = 0; i < refs.length; i++) {
        const ref = refs[i];
        if (ref !== undefined) this.putCell(keys[i], ref);
      }
    }
  }

  private putCell(key: number, ref: Tally): void {
    let i = Math.imul(key, 0x9e3779b1) >>> this.cellShift;
    while (this.cellRef[i] !== undefined) i = (i + 1) & this.cellMask;
    this.cellKey[i] = key;
    this.cellRef[i] = ref;
  }
}

function indexOf(state: AggregateDefectsState): ScanIndex {
  let index = state.scanIndex as ScanIndex | undefined;
  if (index === undefined) {
    index = new ScanIndex();
    state.scanIndex = index;
  }
  return index;
}

/** Two decimal digits at i (both below the buffer's end: the caller checks) as a number, or -1. */
function twoDigits(buf: Buffer, i: number): number {
  const a = buf[i] - ZERO;
  const b = buf[i + 1] - ZERO;
  if (a < 0 || a > 9 || b < 0 || b > 9) return -1;
  return a * 10 + b;
}

/**
 * Takes the line at buf[s] when it has the known shape, passes every value rule (see the module comment)
 * and ends with its newline inside the buffer, at most maxRecordBytes after s (without the line end):
 * adds it to the state and returns the index of its newline. Otherwise returns -1 with the state
 * untouched. `len` is buf.length; `v` a DataView of buf.
 */
function takeLine(state: AggregateDefectsState, index: ScanIndex, v: DataView<ArrayBufferLike>, buf: Buffer, s: number, len: number, maxRecordBytes: number): number {
  const e = len;
  // Every byte is read only below the buffer's end (each test starts with a length check): a read past
  // a typed array's end would deoptimize this function into slower code for good.
  if (s + 14 > e || v.getUint32(s, true) !== SEG_0 || v.getUint32(s + 4, true) !== SEG_1 || v.getUint32(s + 8, true) !== SEG_2 || v.getUint16(s + 12, true) !== SEG_3) {
    return -1;
  }
  // segmentId: printable ASCII up to the closing quote, hashed on the way (FNV-1a)
  const idStart = s + 14;
  let i = idStart;
  let h = 0x811c9dc5 | 0;
  for (;;) {
    if (i >= e) return -1;
    const b = buf[i];
    if (b === Q) break;
    // control characters (invalid in JSON), backslash escapes, non-ASCII: the general path decides
    if (b < 0x20 || b === BACKSLASH || b >= 0x7f) return -1;
    h = Math.imul(h ^ b, 0x01000193);
    i++;
  }
  const idLen = i - idStart;
  if (idLen === 0) return -1;
  if (i + 14 + 4 > e || v.getUint32(i, true) !== SEV_0 || v.getUint32(i + 4, true) !== SEV_1 || v.getUint32(i + 8, true) !== SEV_2 || v.getUint16(i + 12, true) !== SEV_3) {
    return -1;
  }
  i += 14;
  // severity: one of the four names with its closing quote (the length check above covers "low")
  let severity: number;
  const w = v.getUint32(i, true);
  if (w === LOW_WORD) {
    severity = SEV_LOW;
    i += 4;
  } else if (w === HIGH_WORD && i + 5 <= e && buf[i + 4] === Q) {
    severity = SEV_HIGH;
    i += 5;
  } else if (w === MEDIUM_WORD && i + 7 <= e && v.getUint16(i + 4, true) === MEDIUM_TAIL && buf[i + 6] === Q) {
    severity = SEV_MEDIUM;
    i += 7;
  } else if (w === CRITICAL_0 && i + 9 <= e && v.getUint32(i + 4, true) === CRITICAL_1 && buf[i + 8] === Q) {
    severity = SEV_CRITICAL;
    i += 9;
  } else {
    return -1;
  }
  if (i + 7 > e || v.getUint32(i, true) !== LAT_0 || v.getUint16(i + 4, true) !== LAT_1 || buf[i + 6] !== COLON) return -1;
  i = readPlainDecimal(buf, i + 7, e);
  if (i < 0) return -1;
  const lat = plainDecimal[0];
  if (!(lat >= -90 && lat <= 90)) return -1;
  if (i + 7 > e || v.getUint32(i, true) !== LON_0 || v.getUint16(i + 4, true) !== LON_1 || buf[i + 6] !== COLON) return -1;
  i = readPlainDecimal(buf, i + 7, e);
  if (i < 0) return -1;
  const lon = plainDecimal[0];
  if (!(lon >= -180 && lon <= 180)) return -1;
  if (
    i + 15 > e || v.getUint32(i, true) !== DET_0 || v.getUint32(i + 4, true) !== DET_1 || v.getUint32(i + 8, true) !== DET_2 ||
    v.getUint16(i + 12, true) !== DET_3 || buf[i + 14] !== Q
  ) {
    return -1;
  }
  i += 15;

  // detectedAt, the shape step's ISO_UTC fast rule accepts: YYYY-MM-DDTHH:MM[:SS[.1-9 digits]]Z
  if (i + 18 > e) return -1;
  const y1 = twoDigits(buf, i);
  const y2 = twoDigits(buf, i + 2);
  if (y1 < 0 || y2 < 0) return -1;
  const year = y1 * 100 + y2;
  if (year < YEAR_MIN || year > YEAR_MAX || buf[i + 4] !== MINUS || buf[i + 7] !== MINUS || buf[i + 10] !== UPPER_T) return -1;
  const month = twoDigits(buf, i + 5);
  const dayOfMonth = twoDigits(buf, i + 8);
  if (month < 1 || month > 12 || dayOfMonth < 1 || dayOfMonth > 31) return -1;
  const hour = twoDigits(buf, i + 11);
  const minute = twoDigits(buf, i + 14);
  if (hour < 0 || hour > 23 || buf[i + 13] !== COLON || minute < 0 || minute > 59) return -1;
  const dayAt = i;
  i += 16;
  if (buf[i] === COLON) {
    if (i + 3 > e) return -1;
    const second = twoDigits(buf, i + 1);
    if (second < 0 || second > 59) return -1;
    i += 3;
    if (i < e && buf[i] === DOT) {
      const fs = ++i;
      while (i < e && buf[i] >= ZERO && buf[i] <= NINE) i++;
      if (i === fs || i - fs > 9) return -1;
    }
  }
  if (i + 1 >= e || buf[i] !== UPPER_Z || buf[i + 1] !== Q) return -1;
  i += 2;

  // depthMm: absent, null or a number in range
  let hasDepth = false;
  let depth = 0;
  if (i >= e) return -1;
  if (buf[i] !== CLOSE) {
    if (i + 11 > e || v.getUint32(i, true) !== DEP_0 || v.getUint32(i + 4, true) !== DEP_1 || v.getUint16(i + 8, true) !== DEP_2 || buf[i + 10] !== COLON) {
      return -1;
    }
    i += 11;
    if (i + 4 <= e && v.getUint32(i, true) === NULL_WORD) {
      i += 4;
    } else {
      i = readPlainDecimal(buf, i, e);
      if (i < 0) return -1;
      depth = plainDecimal[0];
      if (!(depth >= 0 && depth <= DEPTH_MM_MAX)) return -1;
      hasDepth = true;
    }
    if (i >= e || buf[i] !== CLOSE) return -1;
  }
  // the record ends after its `}`; the line right after it, with or without a carriage return
  const recordEnd = i + 1;
  let nl = recordEnd;
  if (nl >= e) return -1;
  if (buf[nl] !== NEWLINE) {
    if (nl + 1 >= e || buf[nl] !== CR || buf[nl + 1] !== NEWLINE) return -1;
    nl++;
  }
  if (recordEnd - s > maxRecordBytes) return -1;
  const depthUm = hasDepth ? Math.round(depth * 1000) : 0;

  // Lookups. A day is taken only when already counted: its first record goes through step's full check.
  const ordinal = ((year - YEAR_MIN) * 13 + month) * 32 + dayOfMonth;
  let dayTally = index.days[ordinal];
  if (dayTally === undefined) {
    dayTally = state.days.get((buf as Latin1).latin1Slice(dayAt, dayAt + 10));
    if (dayTally === undefined) return -1;
    index.days[ordinal] = dayTally;
  }
  let seg = index.segment(buf, idStart, idLen, h);
  let newId: string | undefined;
  if (seg === undefined) {
    const id = (buf as Latin1).latin1Slice(idStart, idStart + idLen);
    seg = state.segments.get(id);
    if (seg === undefined) newId = id;
    else index.addSegment(buf, idStart, idLen, h, seg);
  }
  if (seg !== undefined && hasDepth && seg.depthSumUm > DEPTH_SUM_UM_MAX - depthUm) return -1;
  const cell = cellKey(lat, lon);
  let cellTally = index.cell(cell);
  if (cellTally === undefined) {
    cellTally = state.cells.get(cell);
    if (cellTally !== undefined) index.addCell(cell, cellTally);
  }

  // Accepted: step's changes, in place.
  if (seg === undefined) {
    seg = newSegment();
    state.segments.set(newId!, seg);
    index.addSegment(buf, idStart, idLen, h, seg);
  }
  seg.count++;
  if (severity === SEV_LOW) seg.low++;
  else if (severity === SEV_MEDIUM) seg.medium++;
  else if (severity === SEV_HIGH) seg.high++;
  else seg.critical++;
  if (hasDepth) {
    seg.depthCount++;
    seg.depthSumUm += depthUm;
    if (depth > seg.depthMax) seg.depthMax = depth;
  }
  dayTally.n++;
  if (cellTally === undefined) {
    cellTally = { n: 1 };
    state.cells.set(cell, cellTally);
    index.addCell(cell, cellTally);
  } else {
    cellTally.n++;
  }
  state.records++;
  return nl;
}

/**
 * RecordOperation.scanLines of aggregate-defects: takes consecutive lines from buf[start] while each
 * begins before `stop` and takeLine takes it; returns the position after the last newline taken.
 */
export function scanLinesDefect(state: AggregateDefectsState, buf: Buffer, start: number, stop: number, maxRecordBytes: number): number {
  if (buf !== viewOf) {
    viewOf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }
  const v = view;
  const index = indexOf(state);
  const len = buf.length;
  let pos = start;
  while (pos < stop) {
    const nl = takeLine(state, index, v, buf, pos, len, maxRecordBytes);
    if (nl < 0) break;
    pos = nl + 1;
  }
  return pos;
}
