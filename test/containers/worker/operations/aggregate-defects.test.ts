import { aggregateDefects, utcDay } from '../../../../containers/worker/src/operations/aggregate-defects';
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
      depthMm: { count: 0, sum: 0, mean: null, max: null },
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
