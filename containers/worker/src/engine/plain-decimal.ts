/**
 * The one reader of plain decimals shared by the byte-level scanners (the JSON-lines field scanner of
 * aggregate-defects and the PostgreSQL COPY text scanner): `-?(0|[1-9]d*)(.d+)?` with at most 15
 * significant digits, read in place from bytes. Anything else (leading zeros, exponents, longer
 * numbers, a lone `-` or `.`) is not read, and the caller takes its general path (JSON.parse, pg's
 * type parser), so a value read here is always the one that path would give.
 *
 * Exactness: a mantissa below 10^15 and a power of ten up to 10^15 are both exact doubles, so one IEEE
 * division gives the correctly rounded value, which is what JSON.parse, parseFloat and Number give.
 */
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
const MAX_DIGITS = 15;

/** What the last successful `scanPlainDecimal` read: its value and the position just after it. */
export const scannedDecimal = { value: 0, end: 0 };

/**
 * Reads a plain decimal starting at buf[s] (within buf[s, e)) into `scannedDecimal`; false when the
 * bytes there do not start one. The number ends at the first byte that cannot continue it: the caller
 * checks what follows (a separator, the end of the field, no exponent).
 */
export function scanPlainDecimal(buf: Buffer, s: number, e: number): boolean {
  let i = s;
  let neg = false;
  if (i < e && buf[i] === MINUS) {
    neg = true;
    i++;
  }
  if (i >= e) return false;
  let b = buf[i];
  if (b < ZERO || b > NINE) return false;
  let m = 0;
  let digits = 0;
  if (b === ZERO) {
    i++;
    if (i < e && buf[i] >= ZERO && buf[i] <= NINE) return false; // a leading zero: not a plain decimal
  } else {
    while (i < e && (b = buf[i]) >= ZERO && b <= NINE) {
      m = m * 10 + (b - ZERO);
      digits++;
      i++;
    }
  }
  let frac = 0;
  if (i < e && buf[i] === DOT) {
    i++;
    const fs = i;
    while (i < e && (b = buf[i]) >= ZERO && b <= NINE) {
      m = m * 10 + (b - ZERO);
      i++;
    }
    frac = i - fs;
    if (frac === 0) return false;
    digits += frac;
  }
  if (digits > MAX_DIGITS) return false;
  const v = frac === 0 ? m : m / POW10[frac];
  scannedDecimal.value = neg ? -v : v;
  scannedDecimal.end = i;
  return true;
}
