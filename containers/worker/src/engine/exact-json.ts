import { isLosslessNumber, LosslessNumber, parse, stringify } from 'lossless-json';

/**
 * JSON that keeps numbers as the text they were written in, for operations that pass values through
 * (transform-records): `12345678901234567890` or `1.50` come out exactly as they came in, where
 * JSON.parse would round the first to 12345678901234567000. Built on lossless-json, whose parser defines
 * `__proto__` as an own property like JSON.parse does. Duplicate keys keep the last value, as in JSON.parse.
 */
export function parseExact(text: string): unknown {
  return parse(text, undefined, { onDuplicateKey: ({ newValue }) => newValue });
}

/** JSON text of a value that may hold exact numbers; numbers keep their text. */
export function stringifyExact(value: unknown): string {
  const out = stringify(value);
  if (out === undefined) throw new Error('value has no JSON representation');
  return out;
}

/** An exact JSON number from its text (must be a JSON number: no leading zeros or `+`). */
export function exactNumber(text: string): unknown {
  return new LosslessNumber(text);
}

export function isExactNumber(value: unknown): boolean {
  return isLosslessNumber(value);
}
