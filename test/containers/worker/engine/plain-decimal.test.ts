import { plainDecimal, readPlainDecimal } from '../../../../containers/worker/src/engine/plain-decimal';
import { prng } from '../../../../containers/worker/src/sample-data';

/** The value read from the whole of `text`, or undefined when the reader does not take all of it. */
function read(text: string): number | undefined {
  const buf = Buffer.from(text, 'latin1');
  return readPlainDecimal(buf, 0, buf.length) === buf.length ? plainDecimal[0] : undefined;
}

describe('readPlainDecimal (the one plain-decimal reader of the byte-level scanners)', () => {
  test('reads plain decimals to exactly the double JSON.parse gives, and returns the position after them', () => {
    const rnd = prng(7);
    for (let k = 0; k < 20000; k++) {
      const int = Math.floor(rnd() * 10 ** Math.floor(rnd() * 8)).toString();
      const fracLen = Math.floor(rnd() * (15 - Math.min(int.length, 15)));
      let frac = '';
      for (let j = 0; j < fracLen; j++) frac += Math.floor(rnd() * 10).toString();
      const text = (rnd() < 0.3 ? '-' : '') + int + (frac ? '.' + frac : '');
      expect(Object.is(read(text), JSON.parse(text))).toBe(true);
    }
    expect(Object.is(read('-0'), -0)).toBe(true);
    expect(read('0.123456789012345')).toBe(0.123456789012345);
    // the number ends at the first byte that cannot continue it
    const buf = Buffer.from('[12.5,"x"]');
    expect(readPlainDecimal(buf, 1, buf.length)).toBe(5);
    expect(plainDecimal[0]).toBe(12.5);
  });

  test('refuses what is not a plain decimal of at most 15 significant digits', () => {
    for (const text of ['', '-', '.5', '5.', '01', '-01', '00.5', '1e5', '1.5E-3', '1234567890123456', '0.1234567890123456', '+1', 'x1', 'NaN']) {
      expect(read(text)).toBeUndefined();
    }
    // never reads at or past `e`
    const buf = Buffer.from('12345');
    expect(readPlainDecimal(buf, 0, 3)).toBe(3);
    expect(plainDecimal[0]).toBe(123);
    expect(readPlainDecimal(buf, 3, 3)).toBe(-1);
  });
});
