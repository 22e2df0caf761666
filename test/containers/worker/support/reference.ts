import type { DefectRecord } from '../../../../containers/worker/src/sample-data';

/**
 * An independent, deliberately plain computation of the aggregate-defects result (no shared code with
 * the operation), used as the expected value in tests.
 */
export function referenceAggregate(records: Iterable<DefectRecord>, rejected = 0): Record<string, unknown> {
  const segs: Record<string, { count: number; severity: Record<string, number>; depths: number[] }> = {};
  const days: Record<string, number> = {};
  const cells: Record<string, number> = {};
  let n = 0;
  for (const r of records) {
    n++;
    const s = (segs[r.segmentId] ??= { count: 0, severity: { low: 0, medium: 0, high: 0, critical: 0 }, depths: [] });
    s.count++;
    s.severity[r.severity]++;
    if (r.depthMm !== undefined) s.depths.push(r.depthMm);
    const day = new Date(r.detectedAt).toISOString().slice(0, 10);
    days[day] = (days[day] ?? 0) + 1;
    const cell = `${Math.floor(r.lat * 100)}:${Math.floor(r.lon * 100)}`;
    cells[cell] = (cells[cell] ?? 0) + 1;
  }
  const segments: Record<string, unknown> = {};
  for (const id of Object.keys(segs).sort()) {
    const s = segs[id];
    const sumUm = s.depths.reduce((a, d) => a + Math.round(d * 1000), 0);
    segments[id] = {
      count: s.count,
      severity: s.severity,
      depthMm: {
        count: s.depths.length,
        sum: sumUm / 1000,
        sumUm,
        mean: s.depths.length ? Math.round(sumUm / s.depths.length) / 1000 : null,
        max: s.depths.length ? Math.max(...s.depths) : null,
      },
    };
  }
  const cellKeys = Object.keys(cells).sort((a, b) => {
    const [a1, a2] = a.split(':').map(Number);
    const [b1, b2] = b.split(':').map(Number);
    return a1 - b1 || a2 - b2;
  });
  return {
    operation: 'aggregate-defects',
    records: n,
    rejected,
    segments,
    days: Object.fromEntries(Object.keys(days).sort().map((d) => [d, days[d]])),
    heatmap: { cellDeg: 0.01, cells: Object.fromEntries(cellKeys.map((c) => [c, cells[c]])) },
  };
}
