/**
 * The byte-level field scanner of aggregate-defects: reads the one record shape the generators and
 * exporters write, in place, without the general JSON.parse and without decoding the line first:
 *
 *   {"segmentId":"...","severity":"...","lat":N,"lon":N,"detectedAt":"..."[,"depthMm":N|null]}
 *
 * exactly those keys in that order, no whitespace, strings of printable ASCII without escapes, numbers
 * `-?(0|[1-9]d*)(.d+)?` with at most 15 digits. Anything else (escapes, non-ASCII or invalid UTF-8,
 * another key, another order, a duplicate or `__proto__` key, whitespace, exponents, long numbers,
 * trailing bytes) returns undefined, and the engine takes the general path (decode, UTF-8 check,
 * JSON.parse) for that line. So every record the scanner returns is the object JSON.parse would
 * return for the same bytes, and `step` applies the same value rules to it.
 *
 * Numbers are read by the engine's one plain-decimal reader (engine/plain-decimal.ts), which gives
 * what JSON.parse gives.
 */
import { scanPlainDecimal, scannedDecimal } from '../engine/plain-decimal';

const Q = 0x22; // "
const CLOSE = 0x7d; // }

/** `"segmentId":"` etc. as bytes, each key with its quotes, the colon and (for strings) the opening quote. */
const key = (text: string) => Buffer.from(text, 'latin1');
const K_SEGMENT = key('{"segmentId":"');
const K_SEVERITY = key(',"severity":"');
const K_LAT = key(',"lat":');
const K_LON = key(',"lon":');
const K_DETECTED = key(',"detectedAt":"');
const K_DEPTH = key(',"depthMm":');
const NULL = key('null');

type Latin1 = Buffer & { latin1Slice(start: number, end: number): string };

function matchAt(buf: Buffer, pos: number, e: number, lit: Buffer): boolean {
  const n = lit.length;
  if (pos + n > e) return false;
  for (let i = 0; i < n; i++) if (buf[pos + i] !== lit[i]) return false;
  return true;
}

// Scanner state between helpers (module-level: the scanner is synchronous and never re-entered).
let pos = 0;
let num = 0;

/** Position after the closing quote of a plain string starting at `pos` (just after its opening quote), or -1. */
function stringEnd(buf: Buffer, e: number): number {
  for (let i = pos; i < e; i++) {
    const b = buf[i];
    if (b === Q) return i;
    // control characters (invalid in JSON), backslash escapes, non-ASCII: the general path decides
    if (b < 0x20 || b === 0x5c || b >= 0x7f) return -1;
  }
  return -1;
}

/** Reads a number at `pos` into `num` and moves `pos` past it; false when it is not a plain short number. */
function readNumber(buf: Buffer, e: number): boolean {
  if (!scanPlainDecimal(buf, pos, e)) return false;
  const i = scannedDecimal.end;
  if (i < e && (buf[i] === 0x65 || buf[i] === 0x45)) return false; // exponent: general path
  num = scannedDecimal.value;
  pos = i;
  return true;
}

/** The record at buf[s, e) when it has the known shape; undefined sends the line to JSON.parse. */
export function scanDefectRecord(buf: Buffer, s: number, e: number): Record<string, unknown> | undefined {
  const b = buf as Latin1;
  if (!matchAt(buf, s, e, K_SEGMENT)) return undefined;
  pos = s + K_SEGMENT.length;
  let end = stringEnd(buf, e);
  if (end < 0) return undefined;
  const segmentId = b.latin1Slice(pos, end);
  pos = end + 1;
  if (!matchAt(buf, pos, e, K_SEVERITY)) return undefined;
  pos += K_SEVERITY.length;
  end = stringEnd(buf, e);
  if (end < 0) return undefined;
  const severity = severityOf(buf, pos, end);
  pos = end + 1;
  if (!matchAt(buf, pos, e, K_LAT)) return undefined;
  pos += K_LAT.length;
  if (!readNumber(buf, e)) return undefined;
  const lat = num;
  if (!matchAt(buf, pos, e, K_LON)) return undefined;
  pos += K_LON.length;
  if (!readNumber(buf, e)) return undefined;
  const lon = num;
  if (!matchAt(buf, pos, e, K_DETECTED)) return undefined;
  pos += K_DETECTED.length;
  end = stringEnd(buf, e);
  if (end < 0) return undefined;
  const detectedAt = b.latin1Slice(pos, end);
  pos = end + 1;
  if (pos + 1 === e && buf[pos] === CLOSE) {
    return { segmentId, severity, lat, lon, detectedAt };
  }
  if (!matchAt(buf, pos, e, K_DEPTH)) return undefined;
  pos += K_DEPTH.length;
  let depthMm: number | null;
  if (matchAt(buf, pos, e, NULL)) {
    depthMm = null;
    pos += NULL.length;
  } else {
    if (!readNumber(buf, e)) return undefined;
    depthMm = num;
  }
  if (pos + 1 !== e || buf[pos] !== CLOSE) return undefined;
  return { segmentId, severity, lat, lon, detectedAt, depthMm };
}

/** The four severities as shared constant strings (no allocation); any other text is copied out as is. */
function severityOf(buf: Buffer, s: number, e: number): string {
  const n = e - s;
  const c = buf[s];
  if (n === 3 && c === 0x6c && buf[s + 1] === 0x6f && buf[s + 2] === 0x77) return 'low';
  if (n === 4 && c === 0x68 && buf[s + 1] === 0x69 && buf[s + 2] === 0x67 && buf[s + 3] === 0x68) return 'high';
  if (n === 6 && c === 0x6d && matchAt(buf, s, e, MEDIUM)) return 'medium';
  if (n === 8 && c === 0x63 && matchAt(buf, s, e, CRITICAL)) return 'critical';
  return (buf as Latin1).latin1Slice(s, e);
}
const MEDIUM = key('medium');
const CRITICAL = key('critical');
