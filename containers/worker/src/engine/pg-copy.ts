import { types } from 'pg';

/**
 * The byte-level row scanner of the PostgreSQL source: turns the text format of `COPY (...) TO STDOUT`
 * (one row per line, fields separated by tabs, `\N` for NULL, backslash escapes) into the records the
 * operations take, without pg's per-row result objects and without decoding a row before splitting it.
 *
 * Every value is the one the pg client gives for the same column through a query (COPY's text format
 * and a query's text results both come from the type's output function): the common types are read in
 * place (text-like columns as strings, float/numeric/int columns as numbers, `timestamptz` in UTC as an
 * ISO string), and anything else (escapes, other types, fractions of seconds, NaN, exponents, long
 * numbers) goes through pg's own type parser on the decoded text, then Date values become ISO strings.
 * So a record is the same object whichever path produced it, and the operation's `step` decides.
 *
 * Numbers: a mantissa below 10^15 and a power of ten up to 10^15 are both exact doubles, so one IEEE
 * division gives the correctly rounded value, which is what parseFloat / Number give.
 */

const TAB = 0x09;
const NL = 0x0a;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
const MAX_DIGITS = 15;
const ESCAPED = 0x100;

const OID = { bool: 16, name: 19, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, float4: 700, float8: 701, bpchar: 1042, varchar: 1043, timestamptz: 1184, numeric: 1700 };

/** How a column's text becomes a value. */
const enum Kind {
  /** The text itself (pg does not parse text, varchar, bpchar, name; int8 stays a string). */
  Text,
  /** parseFloat (float4, float8) */
  Float,
  /** Number (numeric: records carry numbers, as JSON lines do) */
  Numeric,
  /** parseInt (int2, int4, oid) */
  Int,
  /** pg's Date, as an ISO string */
  Timestamptz,
  /** pg's parser for the type, then Date -> ISO string */
  Other,
}

export interface CopyColumn {
  readonly name: string;
  readonly dataTypeID: number;
}

type Parser = (text: string) => unknown;
type Latin1 = Buffer & { latin1Slice(start: number, end: number): string; utf8Slice(start: number, end: number): string };

function kindOf(oid: number): Kind {
  switch (oid) {
    case OID.text:
    case OID.varchar:
    case OID.bpchar:
    case OID.name:
    case OID.int8:
      return Kind.Text;
    case OID.float4:
    case OID.float8:
      return Kind.Float;
    case OID.numeric:
      return Kind.Numeric;
    case OID.int2:
    case OID.int4:
    case OID.oid:
      return Kind.Int;
    case OID.timestamptz:
      return Kind.Timestamptz;
    default:
      return Kind.Other;
  }
}

/** numeric -> JS number; every other type as pg parses its text. */
export function parserOf(oid: number): Parser {
  if (oid === OID.numeric) return (v) => Number(v);
  return types.getTypeParser(oid, 'text') as Parser;
}

function plain(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : v;
}

/** COPY text-format field with backslash escapes -> its bytes (PostgreSQL's rules for COPY FROM). */
function unescape(buf: Buffer, s: number, e: number): Buffer {
  const out = Buffer.allocUnsafe(e - s);
  let n = 0;
  for (let i = s; i < e; i++) {
    let b = buf[i];
    if (b === BACKSLASH && i + 1 < e) {
      b = buf[++i];
      switch (b) {
        case 0x62: b = 0x08; break; // \b
        case 0x66: b = 0x0c; break; // \f
        case 0x6e: b = 0x0a; break; // \n
        case 0x72: b = 0x0d; break; // \r
        case 0x74: b = 0x09; break; // \t
        case 0x76: b = 0x0b; break; // \v
        case 0x78: { // \xhh
          let v = 0;
          let k = 0;
          for (; k < 2 && i + 1 < e && isHex(buf[i + 1]); k++) v = v * 16 + hexValue(buf[++i]);
          b = k === 0 ? 0x78 : v;
          break;
        }
        default:
          if (b >= ZERO && b <= 0x37) { // \ooo
            let v = b - ZERO;
            for (let k = 1; k < 3 && i + 1 < e && buf[i + 1] >= ZERO && buf[i + 1] <= 0x37; k++) v = v * 8 + (buf[++i] - ZERO);
            b = v & 0xff;
          }
        // any other character after a backslash stands for itself (\\ included)
      }
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}

function isHex(b: number): boolean {
  return (b >= ZERO && b <= NINE) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function hexValue(b: number): number {
  return b <= NINE ? b - ZERO : (b | 0x20) - 0x61 + 10;
}

/** A plain decimal `-?d+(.d+)?` of at most 15 digits at buf[s, e), or NaN when it is anything else. */
function plainNumber(buf: Buffer, s: number, e: number): number {
  let i = s;
  const neg = buf[i] === MINUS;
  if (neg) i++;
  if (i >= e) return NaN;
  let m = 0;
  let digits = 0;
  let b = 0;
  while (i < e && (b = buf[i]) >= ZERO && b <= NINE) {
    m = m * 10 + (b - ZERO);
    digits++;
    i++;
  }
  if (digits === 0) return NaN;
  let frac = 0;
  if (i < e && buf[i] === DOT) {
    const fs = ++i;
    while (i < e && (b = buf[i]) >= ZERO && b <= NINE) {
      m = m * 10 + (b - ZERO);
      i++;
    }
    frac = i - fs;
    if (frac === 0) return NaN;
    digits += frac;
  }
  if (i !== e || digits > MAX_DIGITS) return NaN;
  const v = frac === 0 ? m : m / POW10[frac];
  return neg ? -v : v;
}

const isDigit = (b: number) => b >= ZERO && b <= NINE;

const TIMESTAMP_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];

/**
 * `YYYY-MM-DD HH:MM:SS+00` (a timestamptz without fraction, with TimeZone UTC and DateStyle ISO), year
 * 1000..9999, as the ISO string of pg's Date (`YYYY-MM-DDTHH:MM:SS.000Z`); undefined for any other text.
 * The strings of the current day are kept in a table of its 86,400 seconds (bounded; renewed when the
 * day changes), so a repeated second costs no allocation and the string is flat for the step's regex.
 */
class UtcTimestamps {
  private readonly dayBytes = Buffer.alloc(10);
  private hasDay = false;
  private times: (string | undefined)[] = new Array(86_400);

  read(buf: Buffer, s: number, e: number): string | undefined {
    if (e - s !== 22) return undefined;
    if (buf[s + 4] !== MINUS || buf[s + 7] !== MINUS || buf[s + 10] !== 0x20 || buf[s + 13] !== 0x3a || buf[s + 16] !== 0x3a) return undefined;
    if (buf[s + 19] !== 0x2b || buf[s + 20] !== ZERO || buf[s + 21] !== ZERO || buf[s] === ZERO) return undefined;
    for (let k = 0; k < TIMESTAMP_DIGITS.length; k++) if (!isDigit(buf[s + TIMESTAMP_DIGITS[k]])) return undefined;
    const h = (buf[s + 11] - ZERO) * 10 + buf[s + 12] - ZERO;
    const m = (buf[s + 14] - ZERO) * 10 + buf[s + 15] - ZERO;
    const sec = (buf[s + 17] - ZERO) * 10 + buf[s + 18] - ZERO;
    // PostgreSQL never writes hour 24 or second 60 for a timestamptz; anything else out of range: pg parses it
    if (h > 23 || m > 59 || sec > 59) return undefined;
    const d = this.dayBytes;
    let sameDay = this.hasDay;
    for (let k = 0; sameDay && k < 10; k++) sameDay = d[k] === buf[s + k];
    if (!sameDay) {
      buf.copy(d, 0, s, s + 10);
      this.hasDay = true;
      this.times = new Array(86_400);
    }
    const t = h * 3600 + m * 60 + sec;
    let text = this.times[t];
    if (text === undefined) {
      const b = buf as Latin1;
      // flat: one string made once per second of the day
      this.times[t] = text = Buffer.from(`${b.latin1Slice(s, s + 10)}T${b.latin1Slice(s + 11, s + 19)}.000Z`, 'latin1').toString('latin1');
    }
    return text;
  }
}

/**
 * Strings of a text column that repeat (a segment id, a severity) are made once: a field of at most
 * 32 ASCII bytes is looked up by a hash of its bytes and compared byte for byte with the cached
 * string. At most INTERN_MAX strings per column (memory stays bounded); a column whose values do not
 * repeat (an id) stops looking after INTERN_TRIAL fields.
 */
const INTERN_MAX_BYTES = 32;
const INTERN_MAX = 65_536;
const INTERN_TRIAL = 4096;

class Interner {
  private readonly strings = new Map<number, string>();
  private hits = 0;
  private misses = 0;
  on = true;

  get(buf: Buffer, s: number, e: number): string {
    const b = buf as Latin1;
    const n = e - s;
    if (n > INTERN_MAX_BYTES) return b.latin1Slice(s, e);
    let h = n;
    for (let i = s; i < e; i++) h = (Math.imul(h, 31) + buf[i]) | 0;
    const cached = this.strings.get(h);
    if (cached !== undefined && cached.length === n) {
      let same = true;
      for (let i = 0; same && i < n; i++) same = cached.charCodeAt(i) === buf[s + i];
      if (same) {
        this.hits++;
        return cached;
      }
    }
    const str = b.latin1Slice(s, e);
    if (++this.misses > INTERN_TRIAL && this.misses > this.hits) {
      this.on = false;
      this.strings.clear();
    } else if (cached === undefined && this.strings.size < INTERN_MAX) {
      this.strings.set(h, str);
    }
    return str;
  }
}

export interface CopyRowSink {
  /** One row's record (without the key column); returns the reason when the row is rejected. */
  row(record: Record<string, unknown>): string | undefined;
  /** A rejected row: its key (the key column's value, as pg gives it), the reason and the record. */
  reject(key: unknown, reason: string, record: Record<string, unknown>): void;
}

/**
 * Scans COPY text-format bytes as they arrive (rows may be split across chunks) into records.
 * `keyField` names the column that identifies a row in rejects; it is not part of the record.
 */
export class CopyTextScanner {
  private readonly names: string[];
  private readonly kinds: Kind[];
  private readonly parsers: Parser[];
  private readonly keyIndex: number;
  private readonly interners: (Interner | undefined)[];
  private readonly timestamps = new UtcTimestamps();
  private readonly template: Record<string, unknown>;
  private carry: Buffer | undefined;
  rows = 0;

  constructor(columns: readonly CopyColumn[], keyField: string, private readonly sink: CopyRowSink) {
    const names = columns.map((c) => c.name);
    for (const name of names) {
      if (name === '__proto__') throw new Error('a column named __proto__ cannot be a record field; give it another name with AS');
    }
    this.keyIndex = names.lastIndexOf(keyField);
    if (this.keyIndex < 0) {
      throw new Error(`key field "${keyField}" is not a column of the query; its columns: ${names.join(', ')}`);
    }
    this.names = names;
    this.kinds = columns.map((c) => kindOf(c.dataTypeID));
    this.parsers = columns.map((c) => parserOf(c.dataTypeID));
    this.template = {};
    names.forEach((name, i) => {
      if (i !== this.keyIndex) this.template[name] = null;
    });
    this.interners = this.kinds.map((k, i) => (k === Kind.Text && i !== this.keyIndex ? new Interner() : undefined));
  }

  /** Feeds the next bytes of the COPY stream. */
  write(chunk: Buffer): void {
    let buf = chunk;
    if (this.carry !== undefined) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    let s = 0;
    for (;;) {
      const e = buf.indexOf(NL, s);
      if (e < 0) break;
      this.scanRow(buf, s, e);
      s = e + 1;
    }
    if (s < buf.length) this.carry = Buffer.from(buf.subarray(s)); // a copy: the chunk is not kept alive
  }

  /** The stream ended: a row without its newline means the stream was cut. */
  end(): void {
    if (this.carry !== undefined) throw new Error(`the COPY stream ended inside a row (${this.carry.length} bytes without a newline)`);
  }

  private scanRow(buf: Buffer, s: number, e: number): void {
    const names = this.names;
    const n = names.length;
    // a copy of a template with every field already in place: the stores below change no object shape
    const record: Record<string, unknown> = { ...this.template };
    let keyStart = -1;
    let keyEnd = -1;
    let keyFlags = 0;
    let i = s;
    for (let c = 0; c < n; c++) {
      const fs = i;
      let flags = 0; // bit 7 set: a byte >= 0x80 (UTF-8 to decode); ESCAPED: a backslash
      let b = 0;
      while (i < e && (b = buf[i]) !== TAB) {
        flags |= b === BACKSLASH ? ESCAPED : b;
        i++;
      }
      if (c < n - 1 ? i >= e : i !== e) {
        throw new Error(`COPY row ${this.rows + 1} has ${c < n - 1 ? c + 1 : 'more than ' + n} fields; expected ${n}`);
      }
      if (c === this.keyIndex) {
        // read only when the row is rejected
        keyStart = fs;
        keyEnd = i;
        keyFlags = flags;
      } else {
        record[names[c]] = this.value(c, buf, fs, i, flags);
      }
      i++;
    }
    this.rows++;
    const reason = this.sink.row(record);
    if (reason !== undefined) this.sink.reject(this.value(this.keyIndex, buf, keyStart, keyEnd, keyFlags), reason, record);
  }

  private value(c: number, buf: Buffer, s: number, e: number, flags: number): unknown {
    const b = buf as Latin1;
    if (flags & ESCAPED) {
      if (e - s === 2 && buf[s + 1] === 0x4e) return null; // \N
      return plain(this.parsers[c](unescape(buf, s, e).toString('utf8')));
    }
    switch (this.kinds[c]) {
      case Kind.Text: {
        if (flags & 0x80) return b.utf8Slice(s, e);
        const interner = this.interners[c];
        return interner !== undefined && interner.on ? interner.get(buf, s, e) : b.latin1Slice(s, e);
      }
      case Kind.Float:
      case Kind.Numeric:
      case Kind.Int: {
        const v = plainNumber(buf, s, e);
        if (v === v) return v; // not NaN
        break;
      }
      case Kind.Timestamptz: {
        const v = this.timestamps.read(buf, s, e);
        if (v !== undefined) return v;
        break;
      }
    }
    return plain(this.parsers[c](flags & 0x80 ? b.utf8Slice(s, e) : b.latin1Slice(s, e)));
  }
}
