import type { RecordCounts, RecordOperation } from './types';

/**
 * Nightly road-defect statistics and heatmap. Hot path: one Map lookup per segment, one per day, one
 * per heatmap cell keyed by a number (no per-record string building), depth sums kept as integer
 * micrometres so that chunk sums merged in any order equal a whole-object run bit for bit.
 */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const HEATMAP_CELL_DEG = 0.01;

interface SegmentStats {
  count: number;
  low: number;
  medium: number;
  high: number;
  critical: number;
  depthCount: number;
  /** Sum of depthMm in integer micrometres (exact below 2^53 um, i.e. 9e9 m of potholes). */
  depthSumUm: number;
  depthMax: number;
}

export interface AggregateDefectsState extends RecordCounts {
  segments: Map<string, SegmentStats>;
  days: Map<string, number>;
  /** key = (floor(lat*100) + 9000) * CELL_STRIDE + floor(lon*100) + 18000 */
  cells: Map<number, number>;
}

export interface AggregateDefectsResult {
  operation: 'aggregate-defects';
  records: number;
  rejected: number;
  segments: Record<
    string,
    {
      count: number;
      severity: Record<Severity, number>;
      depthMm: { count: number; sum: number; mean: number | null; max: number | null };
    }
  >;
  days: Record<string, number>;
  heatmap: { cellDeg: number; cells: Record<string, number> };
}

const CELL_STRIDE = 36001;
const LAT_OFFSET = 9000;
const LON_OFFSET = 18000;
// Fast path for the common `2024-05-01T12:00:00(.123)Z`; other ISO 8601 forms go through Date.parse.
const ISO_UTC = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?Z$/;
const ISO_ANY = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function newSegment(): SegmentStats {
  return { count: 0, low: 0, medium: 0, high: 0, critical: 0, depthCount: 0, depthSumUm: 0, depthMax: -1 };
}

/** UTC day of an ISO 8601 timestamp, or undefined when it is not one (or names an impossible date). */
export function utcDay(value: string): string | undefined {
  if (ISO_UTC.test(value)) {
    const day = value.slice(0, 10);
    // 2024-02-30 passes the regex; a round trip through Date catches it (once per distinct day).
    const t = Date.parse(day + 'T00:00:00Z');
    return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === day ? day : undefined;
  }
  if (!ISO_ANY.test(value)) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) return undefined;
  return new Date(t).toISOString().slice(0, 10);
}

function step(state: AggregateDefectsState, r: Record<string, unknown>): string | undefined {
  const segmentId = r.segmentId;
  if (typeof segmentId !== 'string' || segmentId.length === 0) return 'segmentId must be a non-empty string';
  const severity = r.severity;
  if (severity !== 'low' && severity !== 'medium' && severity !== 'high' && severity !== 'critical') {
    return 'severity must be one of low, medium, high, critical';
  }
  const lat = r.lat;
  if (typeof lat !== 'number' || !(lat >= -90 && lat <= 90)) return 'lat must be a number in [-90, 90]';
  const lon = r.lon;
  if (typeof lon !== 'number' || !(lon >= -180 && lon <= 180)) return 'lon must be a number in [-180, 180]';
  const detectedAt = r.detectedAt;
  if (typeof detectedAt !== 'string') return 'detectedAt must be an ISO 8601 string';
  // Fast path: a UTC timestamp of a day already seen costs one regex test and one Map lookup.
  let day: string | undefined;
  let dayCount: number | undefined;
  if (ISO_UTC.test(detectedAt)) {
    day = detectedAt.slice(0, 10);
    dayCount = state.days.get(day);
  }
  if (dayCount === undefined) {
    day = utcDay(detectedAt);
    if (day === undefined) return 'detectedAt must be an ISO 8601 string';
    dayCount = state.days.get(day);
  }
  const depth = r.depthMm;
  if (depth !== undefined && depth !== null && (typeof depth !== 'number' || !(depth >= 0) || depth === Infinity)) {
    return 'depthMm must be a number >= 0';
  }

  let seg = state.segments.get(segmentId);
  if (seg === undefined) {
    seg = newSegment();
    state.segments.set(segmentId, seg);
  }
  seg.count++;
  seg[severity]++;
  if (typeof depth === 'number') {
    seg.depthCount++;
    seg.depthSumUm += Math.round(depth * 1000);
    if (depth > seg.depthMax) seg.depthMax = depth;
  }
  state.days.set(day!, (dayCount ?? 0) + 1);
  const cell = (Math.floor(lat * 100) + LAT_OFFSET) * CELL_STRIDE + Math.floor(lon * 100) + LON_OFFSET;
  state.cells.set(cell, (state.cells.get(cell) ?? 0) + 1);
  return undefined;
}

function init(): AggregateDefectsState {
  return { records: 0, rejected: 0, segments: new Map(), days: new Map(), cells: new Map() };
}

function addInto<K>(target: Map<K, number>, source: Map<K, number>): void {
  for (const [k, v] of source) target.set(k, (target.get(k) ?? 0) + v);
}

function merge(a: AggregateDefectsState, b: AggregateDefectsState): AggregateDefectsState {
  const out = init();
  out.records = a.records + b.records;
  out.rejected = a.rejected + b.rejected;
  for (const src of [a, b]) {
    for (const [id, s] of src.segments) {
      const t = out.segments.get(id) ?? newSegment();
      t.count += s.count;
      t.low += s.low;
      t.medium += s.medium;
      t.high += s.high;
      t.critical += s.critical;
      t.depthCount += s.depthCount;
      t.depthSumUm += s.depthSumUm;
      if (s.depthMax > t.depthMax) t.depthMax = s.depthMax;
      out.segments.set(id, t);
    }
    addInto(out.days, src.days);
    addInto(out.cells, src.cells);
  }
  return out;
}

const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

function cellName(key: number): string {
  const latCell = Math.floor(key / CELL_STRIDE) - LAT_OFFSET;
  const lonCell = (key % CELL_STRIDE) - LON_OFFSET;
  return `${latCell}:${lonCell}`;
}

/** Keys sorted so that equal states serialize to identical bytes (idempotent output). */
function serialize(state: AggregateDefectsState): Record<string, unknown> {
  const segments: AggregateDefectsResult['segments'] = {};
  for (const [id, s] of [...state.segments].sort(byKey)) {
    const sum = s.depthSumUm / 1000;
    segments[id] = {
      count: s.count,
      severity: { low: s.low, medium: s.medium, high: s.high, critical: s.critical },
      depthMm: {
        count: s.depthCount,
        sum,
        mean: s.depthCount > 0 ? Math.round((s.depthSumUm / s.depthCount)) / 1000 : null,
        max: s.depthCount > 0 ? s.depthMax : null,
      },
    };
  }
  const cells: Record<string, number> = {};
  for (const [k, v] of [...state.cells].sort((x, y) => x[0] - y[0])) cells[cellName(k)] = v;
  const result: AggregateDefectsResult = {
    operation: 'aggregate-defects',
    records: state.records,
    rejected: state.rejected,
    segments,
    days: Object.fromEntries([...state.days].sort(byKey)),
    heatmap: { cellDeg: HEATMAP_CELL_DEG, cells },
  };
  return result as unknown as Record<string, unknown>;
}

function deserialize(doc: unknown): AggregateDefectsState {
  const d = doc as AggregateDefectsResult;
  if (!d || d.operation !== 'aggregate-defects') throw new Error('not an aggregate-defects result document');
  const state = init();
  state.records = d.records;
  state.rejected = d.rejected;
  for (const [id, s] of Object.entries(d.segments)) {
    state.segments.set(id, {
      count: s.count,
      low: s.severity.low,
      medium: s.severity.medium,
      high: s.severity.high,
      critical: s.severity.critical,
      depthCount: s.depthMm.count,
      depthSumUm: Math.round(s.depthMm.sum * 1000),
      depthMax: s.depthMm.max ?? -1,
    });
  }
  for (const [day, n] of Object.entries(d.days)) state.days.set(day, n);
  for (const [name, n] of Object.entries(d.heatmap.cells)) {
    const [latCell, lonCell] = name.split(':').map(Number);
    state.cells.set((latCell + LAT_OFFSET) * CELL_STRIDE + lonCell + LON_OFFSET, n);
  }
  return state;
}

export const aggregateDefects: RecordOperation<AggregateDefectsState, Record<string, never>> = {
  name: 'aggregate-defects',
  kind: 'records',
  output: 'document',
  parseConfig: () => ({}),
  init,
  step,
  merge,
  serialize,
  deserialize,
};
