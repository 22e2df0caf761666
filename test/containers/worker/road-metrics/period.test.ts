import { resolveDays } from '../../../../containers/worker/src/road-metrics/period';
import { buildTrend } from '../../../../containers/worker/src/road-metrics/trend';
import type { AggregateDefectsResult } from '../../../../containers/worker/src/operations/aggregate-defects';

test('no date means yesterday in UTC, as one day [D, D+1)', () => {
  const [day] = resolveDays({}, new Date('2024-03-01T00:30:00+02:00'));
  expect(day.date).toBe('2024-02-28');
  expect([day.from.toISOString(), day.to.toISOString()]).toEqual(['2024-02-28T00:00:00.000Z', '2024-02-29T00:00:00.000Z']);
});

test('--from/--to gives every day of [from, to)', () => {
  expect(resolveDays({ from: '2023-12-30', to: '2024-01-02' }).map((d) => d.date)).toEqual(['2023-12-30', '2023-12-31', '2024-01-01']);
});

test('bad periods are refused with the option and the value', () => {
  expect(() => resolveDays({ date: '2023-02-30' })).toThrow('--date "2023-02-30" is not a calendar date; expected YYYY-MM-DD');
  expect(() => resolveDays({ from: '2023-11-02', to: '2023-11-02' })).toThrow('--to (2023-11-02) must be after --from (2023-11-02)');
  expect(() => resolveDays({ from: '2023-11-02' })).toThrow('--from and --to go together');
  expect(() => resolveDays({ date: '2023-11-02', from: '2023-11-01', to: '2023-11-03' })).toThrow('either --date or --from/--to');
  expect(() => resolveDays({ from: '2020-01-01', to: '2022-01-01' })).toThrow('spans 731 days; at most 366');
});

function day(segments: Record<string, [number, number]>): AggregateDefectsResult {
  const out: AggregateDefectsResult['segments'] = {};
  let records = 0;
  for (const [id, [count, critical]] of Object.entries(segments)) {
    records += count;
    out[id] = { count, severity: { low: count - critical, medium: 0, high: 0, critical }, depthMm: { count: 0, sum: 0, sumUm: 0, mean: null, max: null } };
  }
  return { operation: 'aggregate-defects', records, rejected: 0, segments: out, days: {}, heatmap: { cellDeg: 0.01, cells: {} } };
}

test('the trend aligns every segment on the days, 0 where a segment had no defects', () => {
  const trend = buildTrend([
    { date: '2023-11-02', result: day({ b: [5, 1] }) },
    { date: '2023-11-01', result: day({ a: [2, 0], b: [3, 3] }) },
  ]);
  expect(trend.days).toEqual(['2023-11-01', '2023-11-02']);
  expect(trend.totals.defects).toEqual([5, 5]);
  expect(trend.segments.a.defects).toEqual([2, 0]);
  expect(trend.segments.b).toMatchObject({ defects: [3, 5], critical: [3, 1], severity: { low: 4, critical: 4 } });
  expect(() => buildTrend([{ date: '2023-11-01', result: day({}) }, { date: '2023-11-01', result: day({}) }])).toThrow('day 2023-11-01 is given twice');
});
