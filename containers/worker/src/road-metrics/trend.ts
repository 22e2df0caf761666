import type { AggregateDefectsResult } from '../operations/aggregate-defects';
import { SEVERITIES, Severity } from '../operations/aggregate-defects';

/**
 * The trend: N daily results merged into per-segment series, from the results alone (never the raw
 * data). Series are aligned on `days`: index i of every series is day i; a segment without defects
 * that day has 0.
 */
export interface DailyResult {
  date: string;
  result: AggregateDefectsResult;
}

export interface Trend {
  kind: 'road-defects-trend';
  days: string[];
  totals: { defects: number[]; rejected: number[] };
  segments: Record<string, { defects: number[]; critical: number[]; depthMeanMm: (number | null)[] } & { severity: Record<Severity, number> }>;
}

export function buildTrend(daily: readonly DailyResult[]): Trend {
  const sorted = [...daily].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].date === sorted[i - 1].date) throw new Error(`day ${sorted[i].date} is given twice`);
  }
  const n = sorted.length;
  const segments: Trend['segments'] = {};
  sorted.forEach(({ result }, i) => {
    for (const [id, s] of Object.entries(result.segments)) {
      let t = segments[id];
      if (!t) {
        t = {
          defects: new Array<number>(n).fill(0),
          critical: new Array<number>(n).fill(0),
          depthMeanMm: new Array<number | null>(n).fill(null),
          severity: { low: 0, medium: 0, high: 0, critical: 0 },
        };
        segments[id] = t;
      }
      t.defects[i] = s.count;
      t.critical[i] = s.severity.critical;
      t.depthMeanMm[i] = s.depthMm.mean;
      for (const sev of SEVERITIES) t.severity[sev] += s.severity[sev];
    }
  });
  const ordered = Object.fromEntries(Object.keys(segments).sort().map((id) => [id, segments[id]]));
  return {
    kind: 'road-defects-trend',
    days: sorted.map((d) => d.date),
    totals: { defects: sorted.map((d) => d.result.records), rejected: sorted.map((d) => d.result.rejected) },
    segments: ordered,
  };
}
