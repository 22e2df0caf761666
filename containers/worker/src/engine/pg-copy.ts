import { types } from 'pg';
import { plainDecimal, readPlainDecimal } from './plain-decimal';

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
 * Numbers are read in place by the engine's one plain-decimal reader (engine/plain-decimal.ts), which
 * gives what parseFloat / Number give.
 */

const TAB = 0x09;
const NL = 0x0a;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

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

/**
 * The plain-decimal reader and its result object, bound once: a module's exports may be getters (the
 * CommonJS that tsx emits per file defines every export as one; the image's esbuild bundle has none),
 * and three numbers per row read through them cost about 0.4 us per row.
 */
const readDecimal = readPlainDecimal;
const decimalValue = plainDecimal;

/** A plain decimal (engine/plain-decimal.ts) filling buf[s, e) exactly, or NaN when it is anything else. */
function plainNumber(buf: Buffer, s: number, e: number): number {
  return readDecimal(buf, s, e) === e ? decimalValue[0] : NaN;
}

/** The value of the two decimal digits at buf[i], buf[i + 1], or -1 when either is not a digit. */
function twoDigits(buf: Buffer, i: number): number {
  const a = buf[i] - ZERO;
  const b = buf[i + 1] - ZERO;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * `YYYY-MM-DD HH:MM:SS+00` (a timestamptz without fraction, with TimeZone UTC and DateStyle ISO), year
 * 1000..9999, as the ISO string of pg's Date (`YYYY-MM-DDTHH:MM:SS.000Z`); undefined for any other text.
 * The strings of the current day are kept in a table of its 86,400 seconds (bounded; renewed when the
 * day changes), so a repeated second costs no allocation (the step's regex flattens each string once).
 * The day's ten bytes are checked once when the day changes; a row of the same day compares them and
 * reads the time.
 */
class UtcTimestamps {
  private readonly dayBytes = Buffer.alloc(10);
  /** `YYYY-MM-DDT` of the current day. */
  private dayPrefix = '';
  private hasDay = false;
  private times: (string | null)[] = new Array<string | null>(86_400).fill(null);

  read(buf: Buffer, s: number, e: number): string | undefined {
    if (e - s !== 22) return undefined;
    if (buf[s + 10] !== 0x20 || buf[s + 13] !== 0x3a || buf[s + 16] !== 0x3a || buf[s + 19] !== 0x2b || buf[s + 20] !== ZERO || buf[s + 21] !== ZERO) {
      return undefined;
    }
    const d = this.dayBytes;
    if (
      !this.hasDay || buf[s + 9] !== d[9] || buf[s + 8] !== d[8] || buf[s + 6] !== d[6] || buf[s + 5] !== d[5] ||
      buf[s + 3] !== d[3] || buf[s + 2] !== d[2] || buf[s + 1] !== d[1] || buf[s] !== d[0]
    ) {
      if (!this.newDay(buf, s)) return undefined;
    }
    const h = twoDigits(buf, s + 11);
    const m = twoDigits(buf, s + 14);
    const sec = twoDigits(buf, s + 17);
    // PostgreSQL never writes hour 24 or second 60 for a timestamptz; anything else out of range: pg parses it
    if (h < 0 || m < 0 || sec < 0 || h > 23 || m > 59 || sec > 59) return undefined;
    const t = h * 3600 + m * 60 + sec;
    let text = this.times[t];
    if (text === null) {
      // made once per second of the day, in JS (no call into the runtime per new second: the first
      // rows of a day are mostly new seconds, a fixed cost per run that shows at 1M rows)
      this.times[t] = text = `${this.dayPrefix}${TWO_DIGITS[h]}:${TWO_DIGITS[m]}:${TWO_DIGITS[sec]}.000Z`;
    }
    return text;
  }

  /** A day `YYYY-MM-DD` (year 1000..9999) at buf[s]: it becomes the current day; false when it is not one. */
  private newDay(buf: Buffer, s: number): boolean {
    if (buf[s + 4] !== MINUS || buf[s + 7] !== MINUS || buf[s] === ZERO) return false;
    if (twoDigits(buf, s) < 0 || twoDigits(buf, s + 2) < 0 || twoDigits(buf, s + 5) < 0 || twoDigits(buf, s + 8) < 0) return false;
    buf.copy(this.dayBytes, 0, s, s + 10);
    this.dayPrefix = `${(buf as Latin1).latin1Slice(s, s + 10)}T`;
    this.hasDay = true;
    this.times = new Array<string | null>(86_400).fill(null);
    return true;
  }
}

/** '00' .. '59' */
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

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

/** Byte classes of the row scan: one table load per byte tells a separator, an escape and non-ASCII apart. */
const C_TAB = 1;
const C_NL = 2;
const C_ESCAPE = 4;
const C_HIGH = 8;
const CLASS = new Uint8Array(256);
CLASS[TAB] = C_TAB;
CLASS[NL] = C_NL;
CLASS[BACKSLASH] = C_ESCAPE;
for (let b = 0x80; b < 0x100; b++) CLASS[b] = C_HIGH;

/**
 * A function that builds one record from the values of a row, as an object literal with the fields in
 * column order: every record gets the same hidden class at once (no per-field keyed stores), which is
 * what the operation's step reads fastest. The field names are JSON string literals in the generated
 * source (JSON.stringify escapes every quote and backslash), and `__proto__` is refused before this.
 */
function recordFactory(fields: readonly string[]): (v: unknown[]) => Record<string, unknown> {
  const body = fields.map((name, i) => `${JSON.stringify(name)}: v[${i}]`).join(', ');
  return new Function('v', `"use strict"; return { ${body} };`) as (v: unknown[]) => Record<string, unknown>;
}

/**
 * Scans COPY text-format bytes as they arrive (rows may be split across chunks) into records.
 * `keyField` names the column that identifies a row in rejects; it is not part of the record.
 */
export class CopyTextScanner {
  private readonly kinds: Kind[];
  private readonly parsers: Parser[];
  private readonly keyIndex: number;
  private readonly columns: number;
  private readonly interners: (Interner | undefined)[];
  private readonly timestamps = new UtcTimestamps();
  private readonly make: (v: unknown[]) => Record<string, unknown>;
  /** Field bounds and byte classes of the row being scanned (pass 1), read by pass 2. */
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;
  private readonly flags: Uint8Array;
  /** The record's values in field order (the key column left out); reused for every row. */
  private readonly values: unknown[];
  /** Column index -> index in `values` (-1: the key column). */
  private readonly slots: number[];
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
    this.columns = names.length;
    this.kinds = columns.map((c) => kindOf(c.dataTypeID));
    this.parsers = columns.map((c) => parserOf(c.dataTypeID));
    // a name given twice: one field, at its first place, with the later column's value (as pg's rows)
    const fields: string[] = [];
    this.slots = names.map((name, i) => {
      if (i === this.keyIndex) return -1;
      const at = fields.indexOf(name);
      return at >= 0 ? at : fields.push(name) - 1;
    });
    this.make = recordFactory(fields);
    this.values = new Array(fields.length).fill(null);
    this.starts = new Int32Array(this.columns);
    this.ends = new Int32Array(this.columns);
    this.flags = new Uint8Array(this.columns);
    this.interners = this.kinds.map((k, i) => (k === Kind.Text && i !== this.keyIndex ? new Interner() : undefined));
  }

  /** Feeds the next bytes of the COPY stream. */
  write(chunk: Buffer): void {
    this.writeRange(chunk, 0, chunk.length);
  }

  /**
   * Feeds buf[s, e), the payload of one CopyData message (or any next bytes of the stream). PostgreSQL
   * sends one row per CopyData, so the common case is scanned in place with no search for the newline;
   * anything else (a row split across messages, several rows in one) takes the general path.
   */
  writeRange(buf: Buffer, s: number, e: number): void {
    if (this.carry === undefined && e > s && buf[e - 1] === NL && this.scanRow(buf, s, e - 1)) return;
    let from = s;
    if (this.carry !== undefined) {
      const nl = buf.indexOf(NL, from);
      if (nl < 0 || nl >= e) {
        this.carry = Buffer.concat([this.carry, buf.subarray(from, e)]);
        return;
      }
      const row = Buffer.concat([this.carry, buf.subarray(from, nl)]);
      this.carry = undefined;
      this.scanRow(row, 0, row.length);
      from = nl + 1;
    }
    for (;;) {
      const nl = buf.indexOf(NL, from);
      if (nl < 0 || nl >= e) break;
      this.scanRow(buf, from, nl);
      from = nl + 1;
    }
    if (from < e) this.carry = Buffer.from(buf.subarray(from, e)); // a copy: the chunk is not kept alive
  }

  /** The stream ended: a row without its newline means the stream was cut. */
  end(): void {
    if (this.carry !== undefined) throw new Error(`the COPY stream ended inside a row (${this.carry.length} bytes without a newline)`);
  }

  /**
   * One row at buf[s, e) (without its newline). Pass 1 finds the fields' bounds and byte classes; it
   * returns false, with nothing done, when the bytes hold a newline (more than one row: the caller
   * splits them). Pass 2 reads the values and hands the record on.
   */
  private scanRow(buf: Buffer, s: number, e: number): boolean {
    const n = this.columns;
    const starts = this.starts;
    const ends = this.ends;
    const flags = this.flags;
    let i = s;
    let k = 0;
    for (let c = 0; c < n; c++) {
      starts[c] = i;
      let f = 0;
      while (i < e) {
        k = CLASS[buf[i]];
        if (k & (C_TAB | C_NL)) break;
        f |= k;
        i++;
      }
      if (i < e && k === C_NL) return false;
      ends[c] = i;
      flags[c] = f;
      if (c < n - 1 ? i >= e : i !== e) {
        if (c === n - 1) {
          for (let j = i; j < e; j++) if (buf[j] === NL) return false;
        }
        throw new Error(`COPY row ${this.rows + 1} has ${c < n - 1 ? c + 1 : 'more than ' + n} fields; expected ${n}`);
      }
      i++;
    }
    const values = this.values;
    const slots = this.slots;
    const kinds = this.kinds;
    for (let c = 0; c < n; c++) {
      const at = slots[c];
      if (at < 0) continue;
      const fs = starts[c];
      const fe = ends[c];
      const f = flags[c];
      let v: unknown;
      // the common cases in place; escapes, other types and unusual text in value()
      if (f === 0 && kinds[c] <= Kind.Int) {
        if (kinds[c] === Kind.Text) {
          const interner = this.interners[c];
          v = interner !== undefined && interner.on ? interner.get(buf, fs, fe) : (buf as Latin1).latin1Slice(fs, fe);
        } else {
          v = plainNumber(buf, fs, fe);
          if (v !== v) v = this.value(c, buf, fs, fe, f);
        }
      } else if (f === 0 && kinds[c] === Kind.Timestamptz) {
        v = this.timestamps.read(buf, fs, fe);
        if (v === undefined) v = this.value(c, buf, fs, fe, f);
      } else {
        v = this.value(c, buf, fs, fe, f);
      }
      values[at] = v;
    }
    const record = this.make(values);
    this.rows++;
    const reason = this.sink.row(record);
    if (reason !== undefined) {
      const key = this.keyIndex;
      this.sink.reject(this.value(key, buf, starts[key], ends[key], flags[key]), reason, record);
    }
    return true;
  }

  private value(c: number, buf: Buffer, s: number, e: number, flags: number): unknown {
    const b = buf as Latin1;
    if (flags & C_ESCAPE) {
      if (e - s === 2 && buf[s + 1] === 0x4e) return null; // \N
      return plain(this.parsers[c](unescape(buf, s, e).toString('utf8')));
    }
    switch (this.kinds[c]) {
      case Kind.Text: {
        if (flags & C_HIGH) return b.utf8Slice(s, e);
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
    return plain(this.parsers[c](flags & C_HIGH ? b.utf8Slice(s, e) : b.latin1Slice(s, e)));
  }
}

/** What the reader needs of node-postgres' Connection (its socket and the simple Query message). */
interface PgConnection {
  stream: NodeJS.ReadableStream & NodeJS.EventEmitter;
  query(text: string): void;
}

type DataListener = (chunk: Buffer) => void;

const MSG_COPY_DATA = 0x64; // 'd'
const MSG_COPY_DONE = 0x63; // 'c'
const MSG_COPY_OUT = 0x48; // 'H' CopyOutResponse
const MSG_NOTICE = 0x4e; // 'N' NoticeResponse
const MSG_PARAMETER = 0x53; // 'S' ParameterStatus
const MSG_NOTIFICATION = 0x41; // 'A' NotificationResponse

/**
 * `COPY ... TO STDOUT` read straight off the connection's socket: a node-postgres Submittable
 * (`client.query(new CopyOutReader(...))`) that, while the COPY runs, takes the socket's data from pg's
 * protocol parser and walks the backend messages itself over whole socket chunks. The payload of each
 * CopyData ('d') message goes to `onData` as a byte range of the chunk (no copy, no object per row);
 * CopyOutResponse ('H') and the messages the protocol allows in between (NoticeResponse 'N',
 * ParameterStatus 'S', NotificationResponse 'A') are stepped over. At CopyDone ('c'), or at an
 * ErrorResponse ('E') or any other message, the socket goes back to pg's parser with the bytes from
 * that message on, so pg handles CommandComplete, ReadyForQuery and errors as for any query: the
 * server's error (a failed statement, the statement timeout) and a dropped connection reject `done`.
 *
 * A failure of `onData` or of `afterChunk` (the reject writer) cannot stop the COPY on the connection:
 * the rest of the stream is read and dropped, and `done` rejects with that failure only once the
 * server is ready again, so the connection is free for the ROLLBACK. `afterChunk` runs after each
 * socket chunk; while the promise it returns is pending the socket is paused (backpressure).
 */
export class CopyOutReader {
  readonly done: Promise<void>;
  /** Bytes of CopyData payload received. */
  bytes = 0;
  private resolve!: () => void;
  private reject!: (err: Error) => void;
  private connection: PgConnection | undefined;
  private pgListener: DataListener | undefined;
  private readonly onSocketData: DataListener = (chunk) => this.chunk(chunk);
  /** The 5-byte header (type, length) of a message split across chunks. */
  private readonly header = Buffer.alloc(5);
  private headerBytes = 0;
  /** Type and unread body bytes of the message being read. */
  private type = 0;
  private remaining = 0;
  private failure: Error | undefined;
  private waiting = false;
  private ready = false;
  private settled = false;

  constructor(
    readonly text: string,
    private readonly onData: (buf: Buffer, s: number, e: number) => void,
    private readonly afterChunk?: () => Promise<void> | undefined,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(() => undefined); // handled by whoever awaits done; never an unhandled rejection
  }

  /** Called by pg's Client when the query's turn comes. */
  submit(connection: PgConnection): Error | undefined {
    const listeners = connection.stream.listeners('data') as DataListener[];
    if (listeners.length !== 1) return new Error(`COPY reader: expected one data listener on the connection, found ${listeners.length}`);
    this.connection = connection;
    this.pgListener = listeners[0];
    connection.stream.removeListener('data', this.pgListener);
    connection.stream.on('data', this.onSocketData);
    connection.query(this.text);
    return undefined;
  }

  private chunk(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.remaining > 0) {
        const e = Math.min(n, i + this.remaining);
        this.remaining -= e - i;
        if (this.type === MSG_COPY_DATA) this.data(chunk, i, e);
        i = e;
        continue;
      }
      let type: number;
      let length: number;
      let at = i; // where the message starts in this chunk (its header may have begun in the previous one)
      if (this.headerBytes === 0 && n - i >= 5) {
        type = chunk[i];
        length = chunk.readUInt32BE(i + 1);
        i += 5;
      } else {
        const take = Math.min(5 - this.headerBytes, n - i);
        chunk.copy(this.header, this.headerBytes, i, i + take);
        this.headerBytes += take;
        i += take;
        if (this.headerBytes < 5) return;
        at = -1;
        type = this.header[0];
        length = this.header.readUInt32BE(1);
      }
      const body = length - 4;
      if (type === MSG_COPY_DATA) {
        this.headerBytes = 0;
        this.type = type;
        // the common case: the whole message is in this chunk
        if (i + body <= n) {
          if (body > 0) this.data(chunk, i, i + body);
          i += body;
        } else {
          this.remaining = body;
        }
      } else if (type === MSG_COPY_OUT || type === MSG_NOTICE || type === MSG_PARAMETER || type === MSG_NOTIFICATION) {
        this.headerBytes = 0;
        this.type = type;
        this.remaining = body;
      } else if (type === MSG_COPY_DONE) {
        this.headerBytes = 0;
        this.detach(chunk.subarray(i));
        if (this.afterChunk && this.failure === undefined) this.wait();
        return;
      } else {
        // ErrorResponse (or anything else): pg's parser reads it from its first byte
        const rest = at >= 0 ? chunk.subarray(at) : Buffer.concat([this.header, chunk.subarray(i)]);
        this.headerBytes = 0;
        if (type !== 0x45) this.fail(new Error(`COPY reader: unexpected message '${String.fromCharCode(type)}' from the server during COPY OUT`));
        this.detach(rest);
        return;
      }
    }
    if (this.afterChunk && this.failure === undefined) this.wait();
  }

  private data(buf: Buffer, s: number, e: number): void {
    this.bytes += e - s;
    if (this.failure !== undefined) return; // draining after our own failure
    try {
      this.onData(buf, s, e);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private wait(): void {
    let pending: Promise<void> | undefined;
    try {
      pending = this.afterChunk!();
    } catch (err) {
      this.fail(err as Error);
    }
    if (!pending) return;
    const stream = this.connection!.stream;
    this.waiting = true;
    stream.pause();
    pending.then(
      () => undefined,
      (err: Error) => this.fail(err),
    ).finally(() => {
      this.waiting = false;
      stream.resume();
      this.settle();
    });
  }

  private fail(err: Error): void {
    if (this.failure === undefined) this.failure = err;
  }

  /** The socket back to pg's parser, starting with `rest` (the bytes after our part of the stream). */
  private detach(rest: Buffer): void {
    const connection = this.connection;
    const listener = this.pgListener;
    if (!connection || !listener) return;
    this.pgListener = undefined;
    connection.stream.removeListener('data', this.onSocketData);
    connection.stream.on('data', listener);
    if (rest.length > 0) listener(rest);
  }

  private settle(): void {
    if (this.settled || this.waiting || !this.ready) return;
    this.settled = true;
    if (this.failure !== undefined) this.reject(this.failure);
    else this.resolve();
  }

  // --- node-postgres' Submittable callbacks ---

  handleError(err: Error): void {
    this.detach(Buffer.alloc(0)); // a dropped connection: give the socket back all the same
    this.failure = err; // the server's error (or the lost connection) is what the caller must see
    this.ready = true;
    this.waiting = false;
    this.settle();
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.ready = true;
    this.settle();
  }

  handleRowDescription(): void {
    this.fail(new Error('COPY reader: the statement returned rows instead of a COPY stream'));
  }

  handleDataRow(): void {}

  handleEmptyQuery(): void {
    this.fail(new Error('COPY reader: the statement was empty'));
  }

  handleCopyInResponse(): void {
    this.fail(new Error('COPY reader: the statement is a COPY FROM, not a COPY TO'));
  }

  handleCopyData(): void {}

  handlePortalSuspended(): void {}
}
