/**
 * RFC 4180 CSV on top of the line splitter: a record is one line, or several when a quoted field holds
 * a line break (then the lines are joined with "\n"). Fields: `""` inside quotes is one quote; an
 * unquoted field that looks like a number becomes a number; an unquoted empty field is left out of the
 * record (so optional columns read as missing); quoted fields always stay strings. Operations that ask for
 * exact values get every field as its text.
 */
const NUMERIC = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Whether `text` leaves a quoted field open (an odd number of quote characters). */
export function quoteParityOdd(text: string, odd: boolean): boolean {
  let i = text.indexOf('"');
  while (i !== -1) {
    odd = !odd;
    i = text.indexOf('"', i + 1);
  }
  return odd;
}

/** Splits one complete record into fields; `quoted[i]` says whether field i was quoted. Returns undefined on a syntax error. */
export function splitCsv(text: string, fields: string[], quoted: boolean[]): string | undefined {
  fields.length = 0;
  quoted.length = 0;
  if (text.indexOf('"') === -1) {
    let start = 0;
    for (;;) {
      const comma = text.indexOf(',', start);
      if (comma === -1) {
        fields.push(text.slice(start));
        quoted.push(false);
        return undefined;
      }
      fields.push(text.slice(start, comma));
      quoted.push(false);
      start = comma + 1;
    }
  }
  let i = 0;
  const n = text.length;
  for (;;) {
    if (text.charCodeAt(i) === 34 /* " */) {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q === -1) return 'unterminated quoted field';
        value += text.slice(j, q);
        if (text.charCodeAt(q + 1) === 34) {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      quoted.push(true);
      if (i === n) return undefined;
      if (text.charCodeAt(i) !== 44 /* , */) return `unexpected character after closing quote at column ${i + 1}`;
      i++;
    } else {
      const comma = text.indexOf(',', i);
      const end = comma === -1 ? n : comma;
      const value = text.slice(i, end);
      if (value.indexOf('"') !== -1) return `quote inside an unquoted field at column ${i + 1}`;
      fields.push(value);
      quoted.push(false);
      if (comma === -1) return undefined;
      i = comma + 1;
    }
  }
}

/**
 * Builds the record object for one row; returns a reject reason instead when the row does not fit the
 * header. `inferNumbers` false keeps every field as its text (`02134` stays `"02134"`). Column names are
 * data: each becomes an own property, so a column named `__proto__` is a field, not a prototype.
 */
export function csvRecord(
  header: readonly string[],
  fields: string[],
  quoted: boolean[],
  inferNumbers = true,
): Record<string, unknown> | string {
  if (fields.length !== header.length) return `expected ${header.length} fields, got ${fields.length}`;
  const record: Record<string, unknown> = {};
  for (let i = 0; i < header.length; i++) {
    const v = fields[i];
    let value: unknown;
    if (quoted[i]) value = v;
    else if (v.length === 0) continue;
    else if (inferNumbers && NUMERIC.test(v)) value = Number(v);
    else value = v;
    const name = header[i];
    if (name === '__proto__') Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
    else record[name] = value;
  }
  return record;
}

/** Parses a header line (BOM already stripped). */
export function parseHeader(line: string): string[] {
  const fields: string[] = [];
  const quoted: boolean[] = [];
  const err = splitCsv(line, fields, quoted);
  if (err) throw new Error(`CSV header row: ${err}`);
  if (fields.some((f) => f.length === 0)) throw new Error('CSV header row has an empty column name');
  return fields;
}
