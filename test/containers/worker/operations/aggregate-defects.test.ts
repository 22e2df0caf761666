import { aggregateDefects, DEPTH_SUM_UM_MAX, parseDetectedAt, utcDay } from '../../../../containers/worker/src/operations/aggregate-defects';
import { defectRecords, prng } from '../../../../containers/worker/src/sample-data';

const op = aggregateDefects;
const noEmit = { emit: () => undefined };

function stateOf(records: Iterable<Record<string, unknown>>) {
  const s = op.init({});
  for (const r of records) if (op.step(s, { ...r }, noEmit) === undefined) s.records++;
  return s;
}

describe('aggregate-defects', () => {
  const all = [...defectRecords({ count: 3000, seed: 2, segments: 40 })] as unknown as Record<string, unknown>[];
  const parts = [all.slice(0, 700), all.slice(700, 1900), all.slice(1900)].map((p) => stateOf(p));
  const whole = op.serialize(stateOf(all));

  test('merge is commutative', () => {
    expect(op.serialize(op.merge(parts[0], parts[1]))).toEqual(op.serialize(op.merge(parts[1], parts[0])));
  });

  test('merge is associative and merged parts equal the whole, to the last bit of the depth sums', () => {
    const left = op.merge(op.merge(parts[0], parts[1]), parts[2]);
    const right = op.merge(parts[0], op.merge(parts[1], parts[2]));
    expect(JSON.stringify(op.serialize(left))).toBe(JSON.stringify(whole));
    expect(JSON.stringify(op.serialize(right))).toBe(JSON.stringify(whole));
  });

  test('deserialize(serialize(state)) gives back the state', () => {
    expect(op.serialize(op.deserialize(JSON.parse(JSON.stringify(whole))))).toEqual(whole);
  });

  test('always lists all four severities and null depth figures for a segment without depths', () => {
    const s = stateOf([{ segmentId: 'x', severity: 'high', lat: 0, lon: 0, detectedAt: '2024-01-01T00:00:00Z' }]);
    expect((op.serialize(s).segments as Record<string, unknown>).x).toEqual({
      count: 1,
      severity: { low: 0, medium: 0, high: 1, critical: 0 },
      depthMm: { count: 0, sum: 0, sumUm: 0, mean: null, max: null },
    });
  });

  test('heatmap cells are floor(lat*100):floor(lon*100), negative coordinates included', () => {
    const s = stateOf([{ segmentId: 'x', severity: 'low', lat: -33.8691, lon: -0.001, detectedAt: '2024-01-01T00:00:00Z' }]);
    expect(op.serialize(s).heatmap).toEqual({ cellDeg: 0.01, cells: { '-3387:-1': 1 } });
  });

  test('days are UTC days, also for timestamps with an offset', () => {
    expect(utcDay('2024-03-01T23:30:00-02:00')).toBe('2024-03-02');
    expect(utcDay('2024-03-01T23:30:00.123Z')).toBe('2024-03-01');
    expect(utcDay('2024-02-29T10:00:00Z')).toBe('2024-02-29');
    expect(utcDay('2023-02-29T10:00:00Z')).toBeUndefined();
    expect(utcDay('yesterday')).toBeUndefined();
  });

  test('rejects records with missing or out-of-range fields with a reason', () => {
    const ok = { segmentId: 'x', severity: 'low', lat: 1, lon: 1, detectedAt: '2024-01-01T00:00:00Z' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, segmentId: 5 }, /segmentId/],
      [{ ...ok, severity: 'LOW' }, /severity/],
      [{ ...ok, lat: '1' }, /lat/],
      [{ ...ok, lon: 180.5 }, /lon/],
      [{ ...ok, detectedAt: 1704067200 }, /detectedAt/],
      [{ ...ok, depthMm: 'deep' }, /depthMm/],
    ];
    for (const [rec, reason] of cases) expect(op.step(op.init({}), rec, noEmit)).toMatch(reason);
  });

  test('random partitions in random merge orders all give the same result', () => {
    const rnd = prng(99);
    for (let trial = 0; trial < 5; trial++) {
      const states = [op.init({})];
      for (const r of all) {
        if (rnd() < 0.01) states.push(op.init({}));
        const s = states[states.length - 1];
        if (op.step(s, { ...r }, noEmit) === undefined) s.records++;
      }
      while (states.length > 1) {
        const a = states.splice(Math.floor(rnd() * states.length), 1)[0];
        const b = states.splice(Math.floor(rnd() * states.length), 1)[0];
        states.push(op.merge(a, b));
      }
      expect(JSON.stringify(op.serialize(states[0]))).toBe(JSON.stringify(whole));
    }
  });
});

describe('aggregate-defects value rules', () => {
  const ok = { segmentId: 'x', severity: 'low', lat: 1, lon: 1, detectedAt: '2024-01-01T00:00:00Z' };

  test('depthMm must lie in [0, 10000] mm; the edges are accepted, anything beyond is rejected with the range', () => {
    for (const depthMm of [0, 0.0005, 9999.9995, 10_000]) expect(op.step(op.init({}), { ...ok, depthMm }, noEmit)).toBeUndefined();
    for (const depthMm of [-0.001, 10_000.001, 1.23e29, 1e306, Infinity]) {
      expect(op.step(op.init({}), { ...ok, depthMm }, noEmit)).toBe('depthMm must be a number in [0, 10000] (millimetres)');
    }
  });

  test('a segment depth sum is exact up to 2^53 - 1 um, and a reading that would pass it is rejected', () => {
    const s = op.init({});
    expect(op.step(s, { ...ok, depthMm: 0 }, noEmit)).toBeUndefined();
    s.segments.get('x')!.depthSumUm = DEPTH_SUM_UM_MAX - 10_000_000;
    expect(op.step(s, { ...ok, depthMm: 10_000 }, noEmit)).toBeUndefined();
    expect(op.step(s, { ...ok, depthMm: 0.001 }, noEmit)).toMatch(/depth sum of segment "x" would pass 9007199254740991 um/);
    const doc = JSON.parse(JSON.stringify(op.serialize(s)));
    expect(doc.segments.x.depthMm.sumUm).toBe(9007199254740991);
    expect(BigInt(doc.segments.x.depthMm.sumUm)).toBe(2n ** 53n - 1n);
    expect(doc.segments.x.depthMm.count).toBe(2);
    // round trip and merge keep the exact integer; a merge past the bound fails loudly instead of rounding
    expect(op.serialize(op.deserialize(doc))).toEqual(doc);
    const small = op.init({});
    op.step(small, { ...ok, depthMm: 0.001 }, noEmit);
    expect(() => op.merge(op.deserialize(doc), small)).toThrow(/passes 9007199254740991 um/);
  });

  test('sums of awkward depths equal an exact BigInt sum of the rounded micrometres', () => {
    const depths = [0.0005, 0.0015, 9999.9995, 0.1, 0.2, 0.3, 1234.5675, 10_000, 7.0005];
    const s = stateOf(depths.map((depthMm) => ({ ...ok, depthMm })));
    const exact = depths.reduce((a, d) => a + BigInt(Math.round(d * 1000)), 0n);
    const got = (op.serialize(s).segments as Record<string, { depthMm: { sumUm: number } }>).x.depthMm.sumUm;
    expect(BigInt(got)).toBe(exact);
  });

  test('segment ids that name Object.prototype members are counted and present', () => {
    const ids = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__proto__'];
    const s = stateOf(ids.map((segmentId) => ({ ...ok, segmentId, depthMm: 1 })));
    const doc = JSON.parse(JSON.stringify(op.serialize(s)));
    expect(doc.records).toBe(5);
    expect(Object.keys(doc.segments).sort()).toEqual(['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
    expect(doc.segments['__proto__']).toMatchObject({ count: 2, depthMm: { count: 2, sumUm: 2000 } });
    expect(Object.getPrototypeOf(doc.segments)).toBe(Object.prototype);
    const merged = op.serialize(op.merge(op.deserialize(doc), op.deserialize(doc))) as { segments: Record<string, { count: number }> };
    expect(Object.hasOwn(merged.segments, '__proto__')).toBe(true);
    expect(merged.segments['__proto__'].count).toBe(4);
  });

  test.each([
    ['2024-05-01T20:00:00Z', '2024-05-01'],
    ['2024-05-01T20:00Z', '2024-05-01'],
    ['2024-05-01T20:00:00.123456789Z', '2024-05-01'],
    ['2024-03-01T23:30:00-02:00', '2024-03-02'],
    ['2024-03-01T23:30:00-0200', '2024-03-02'],
    ['2024-01-01T05:00:00+14:00', '2023-12-31'],
    ['2100-12-31T23:59:59-12:00', '2101-01-01'],
    ['1900-01-01T00:30:00+01:00', '1899-12-31'],
    ['2024-02-29T12:00:00+01:00', '2024-02-29'],
  ])('detectedAt %s counts on UTC day %s', (value, day) => {
    expect(parseDetectedAt(value)).toEqual({ day });
  });

  test.each([
    ['2024-05-01T20:00:00', /has no UTC offset; add Z or \+HH:MM, or set defaultUtcOffset/],
    ['2024-02-30T12:00:00+01:00', /2024-02-30 is not a calendar date/],
    ['2024-02-30T12:00:00Z', /2024-02-30 is not a calendar date/],
    ['2023-02-29T12:00:00Z', /2023-02-29 is not a calendar date/],
    ['2024-04-31T12:00:00-05:00', /is not a calendar date/],
    ['2024-05-01T24:00:00+01:00', /time 24:00:00 is not a time of day/],
    ['2024-05-01T24:00Z', /is not a time of day/],
    ['2024-12-31T23:59:60Z', /is not a time of day/],
    ['9999-12-31T23:59:59-23:59', /year 9999 is outside 1900-2100/],
    ['1899-12-31T23:59:59Z', /year 1899 is outside 1900-2100/],
    ['2024-05-01T12:00:00+14:01', /offset \+14:01 is not between -12:00 and \+14:00/],
    ['2024-05-01T12:00:00-12:30', /offset -12:30 is not between/],
    ['2024-05-01T12:00:00+01:60', /offset \+01:60 is not between/],
    ['2024-05-01 12:00:00Z', /must be an ISO 8601 date-time/],
    ['2024-05-01t12:00:00z', /must be an ISO 8601 date-time/],
    ['2024-05-01', /must be an ISO 8601 date-time/],
    ['+010000-01-01T00:00:00Z', /must be an ISO 8601 date-time/],
  ])('detectedAt %s is rejected', (value, reason) => {
    const r = parseDetectedAt(value);
    expect(r).toEqual({ reason: expect.stringMatching(reason) });
    expect(op.step(op.init({}), { ...ok, detectedAt: value }, noEmit)).toMatch(reason);
  });

  test('a record after the same day was counted is still checked (fast path does not skip impossible times)', () => {
    const s = op.init({});
    expect(op.step(s, { ...ok, detectedAt: '2024-05-01T10:00:00Z' }, noEmit)).toBeUndefined();
    expect(op.step(s, { ...ok, detectedAt: '2024-05-01T24:00:00Z' }, noEmit)).toMatch(/not a time of day/);
  });

  test('timestamps without an offset take the configured defaultUtcOffset (machine time zone: see main.test.ts)', () => {
    expect(op.step(op.init({}), { ...ok, detectedAt: '2024-05-01T20:00:00' }, noEmit)).toMatch(/no UTC offset/);
    const utc = op.init(op.parseConfig({ defaultUtcOffset: 'Z' }));
    expect(op.step(utc, { ...ok, detectedAt: '2024-05-01T20:00:00' }, noEmit)).toBeUndefined();
    expect([...utc.days.keys()]).toEqual(['2024-05-01']);
    const la = op.init(op.parseConfig({ defaultUtcOffset: '-07:00' }));
    expect(op.step(la, { ...ok, detectedAt: '2024-05-01T20:00:00' }, noEmit)).toBeUndefined();
    expect(op.step(la, { ...ok, detectedAt: '2024-05-01T20:00:00+02:00' }, noEmit)).toBeUndefined();
    expect((op.serialize(la) as { days: Record<string, number> }).days).toEqual({ '2024-05-02': 1, '2024-05-01': 1 });
  });

  test('OPERATION_CONFIG is checked by a schema: not an object, unknown keys and bad offsets are errors', () => {
    expect(() => op.parseConfig([1, 2])).toThrow(/^aggregate-defects config: \(root\): .*expected object/);
    expect(() => op.parseConfig({ defaultZone: 'UTC' })).toThrow(/aggregate-defects config: .*defaultZone/);
    expect(() => op.parseConfig({ defaultUtcOffset: '+25:00' })).toThrow(/defaultUtcOffset: must be "Z" or an offset from -12:00 to \+14:00/);
    expect(op.parseConfig(undefined)).toEqual({});
  });

  test('deserialize refuses documents that are not aggregate-defects results', () => {
    expect(() => op.deserialize({ operation: 'aggregate-defects' })).toThrow(/not an aggregate-defects result document: records/);
    expect(() => op.deserialize([1, 2])).toThrow(/not an aggregate-defects result document/);
  });
});
