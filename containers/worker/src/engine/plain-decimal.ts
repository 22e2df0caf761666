/**
 * The one reader of plain decimals shared by the byte-level scanners (the JSON-lines field scanner of
 * aggregate-defects and the PostgreSQL COPY text scanner): `-?(0|[1-9]d*)(.d+)?` with at most 15
 * significant digits, not followed by an exponent, read in place from bytes. Anything else (leading
 * zeros, exponents, longer numbers, a lone `-` or `.`) is not read, and the caller takes its general
 * path (JSON.parse, pg's type parser), so a value read here is always the one that path would give.
 *
 * Exactness: a mantissa below 10^15 and a power of ten up to 10^15 are both exact doubles, so one IEEE
 * division gives the correctly rounded value, which is what JSON.parse, parseFloat and Number give.
 *
 * Speed: it runs two or three times per record on the hot path, so it returns a position (a small
 * integer, never allocated) and leaves the value in a Float64Array: a double returned in an object or
 * kept in a module variable would be boxed (a heap allocation) on every store.
 */
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
const MAX_DIGITS = 15;

/** The value of the last decimal `readPlainDecimal` read (element 0). */
export const plainDecimal = new Float64Array(1);

/**
 * Reads a plain decimal starting at buf[i] (every byte read is below `e`) into plainDecimal[0] and
 * returns the position just after it, or -1 when the bytes there do not start one (or it is followed by
 * an exponent). The number ends at the first byte that cannot continue it: the caller checks what
 * follows (a separator, the end of the field). Reads stay below `e` because a read past a typed
 * array's end would deoptimize the caller's hot loop for good.
 */
export function readPlainDecimal(buf: Buffer, i: number, e: number): number {
  if (i >= e) return -1;
  const neg = buf[i] === MINUS;
  if (neg && ++i >= e) return -1;
  let d = buf[i] - ZERO;
  if (d < 0 || d > 9) return -1;
  let m = d;
  let digits = 0;
  i++;
  if (d === 0) {
    if (i < e && (d = buf[i] - ZERO) >= 0 && d <= 9) return -1; // a leading zero: not a plain decimal
  } else {
    digits = 1;
    while (i < e && (d = buf[i] - ZERO) >= 0 && d <= 9) {
      m = m * 10 + d;
      digits++;
      i++;
    }
  }
  let frac = 0;
  if (i < e && buf[i] === DOT) {
    const fs = ++i;
    while (i < e && (d = buf[i] - ZERO) >= 0 && d <= 9) {
      m = m * 10 + d;
      i++;
    }
    frac = i - fs;
    if (frac === 0) return -1;
    digits += frac;
  }
  if (digits > MAX_DIGITS) return -1;
  if (i < e) {
    const b = buf[i];
    if (b === LOWER_E || b === UPPER_E) return -1;
  }
  const v = frac === 0 ? m : m / POW10[frac];
  plainDecimal[0] = neg ? -v : v;
  return i;
}
