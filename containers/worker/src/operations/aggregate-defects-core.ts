import {
  AggregateDefectsState,
  cellKey,
  CELL_STRIDE,
  DEPTH_MM_MAX,
  DEPTH_SUM_UM_MAX,
  HEATMAP_CELL_DEG,
  LAT_OFFSET,
  LON_OFFSET,
  newSegment,
  Severity,
  Tally,
  YEAR_MAX,
  YEAR_MIN,
} from './aggregate-defects-state';
import { scanLinesDefect } from './aggregate-defects-scan';
import type { RecordOperation } from './types';

/**
 * aggregate-defects without its zod schemas (those are in ./aggregate-defects, with parseConfig and
 * deserialize): what a scan thread loads (engine/thread-operations.ts), a few KB instead of zod's 0.7 MB
 * to compile and initialise in every thread.
 *
 * Nightly road-defect statistics and heatmap. Hot path: the byte-level scanner (./aggregate-defects-scan)
 * adds a record of the usual shape straight from its bytes; anything else is JSON.parse'd and goes
 * through `step`, which applies the same rules. Depth sums are kept as integer micrometres so that chunk
 * sums merged in any order equal a whole-object run bit for bit.
 */

export interface AggregateDefectsResult {
  operation: 'aggregate-defects';
  records: number;
  rejected: number;
  segments: Record<
    string,
    {
      count: number;
      severity: Record<Severity, number>;
      /** `sumUm`: the exact sum in integer micrometres (what merges use); `sum` is it in millimetres. */
      depthMm: { count: number; sum: number; sumUm: number; mean: number | null; max: number | null };
    }
  >;
  days: Record<string, number>;
  heatmap: { cellDeg: number; cells: Record<string, number> };
}

/** OPERATION_CONFIG of aggregate-defects (checked by ./aggregate-defects's parseConfig). */
export interface AggregateDefectsConfig {
  /**
   * Offset applied to `detectedAt` values that carry none, e.g. "+02:00" or "Z". Without it such
   * values are rejected: the machine's time zone never decides a day.
   */
  defaultUtcOffset?: string;
}

/** UTC offsets that exist on Earth: -12:00 to +14:00. */
const OFFSET_MIN_MINUTES = -12 * 60;
const OFFSET_MAX_MINUTES = 14 * 60;

// Fast path for the common `2024-05-01T12:00:00(.123)Z`: a day already seen costs one regex test and one
// Map lookup (the day was fully checked the first time it was counted).
const ISO_UTC = /^(?:19\d\d|20\d\d|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?Z$/;
// The one accepted shape: date, `T`, hours and minutes, optional seconds and fraction, `Z` or an offset.
const ISO_STRICT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;
const OFFSET = /^(?:Z|([+-])(\d{2}):?(\d{2}))$/;

const DETECTED_AT_RULE = `an ISO 8601 date-time with Z or a UTC offset, e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00, years ${YEAR_MIN}-${YEAR_MAX}`;


/** Minutes east of UTC for `Z`, `+HH:MM` or `+HHMM`; undefined when malformed or outside -12:00..+14:00. */
export function parseOffset(text: string): number | undefined {
  const m = OFFSET.exec(text);
  if (!m) return undefined;
  if (m[1] === undefined) return 0;
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  if (minutes > 59) return undefined;
  const total = (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
  return total >= OFFSET_MIN_MINUTES && total <= OFFSET_MAX_MINUTES ? total : undefined;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * The UTC day (`YYYY-MM-DD`) of a `detectedAt` value, or the reason it is not accepted. One rule,
 * whatever the offset: `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by `Z` or `+HH:MM`/`-HH:MM`
 * (`+HHMM` too), a real calendar date and time (no 02-30, no 24:00, no leap second 60), years
 * YEAR_MIN..YEAR_MAX, offsets -12:00..+14:00. A value without an offset takes `defaultOffsetMinutes`
 * when configured and is rejected otherwise.
 */
export function parseDetectedAt(value: string, defaultOffsetMinutes?: number): { day: string } | { reason: string } {
  const m = ISO_STRICT.exec(value);
  if (!m) return { reason: `detectedAt must be ${DETECTED_AT_RULE}` };
  const year = Number(m[1]);
  const month = Number(m[2]);
  const dayOfMonth = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (year < YEAR_MIN || year > YEAR_MAX) return { reason: `detectedAt year ${year} is outside ${YEAR_MIN}-${YEAR_MAX}` };
  if (month < 1 || month > 12 || dayOfMonth < 1 || dayOfMonth > daysInMonth(year, month)) {
    return { reason: `detectedAt ${m[1]}-${m[2]}-${m[3]} is not a calendar date` };
  }
  if (hour > 23 || minute > 59 || second > 59) return { reason: `detectedAt time ${value.slice(11, 19)} is not a time of day (00:00:00-23:59:59)` };
  let offset: number | undefined;
  if (m[7] === undefined) {
    if (defaultOffsetMinutes === undefined) {
      return { reason: `detectedAt has no UTC offset; add Z or +HH:MM, or set defaultUtcOffset in OPERATION_CONFIG` };
    }
    offset = defaultOffsetMinutes;
  } else {
    offset = parseOffset(m[7]);
    if (offset === undefined) return { reason: `detectedAt offset ${m[7]} is not between -12:00 and +14:00` };
  }
  const t = Date.UTC(year, month - 1, dayOfMonth, hour, minute) - offset * 60_000;
  return { day: new Date(t).toISOString().slice(0, 10) };
}

/** UTC day of a `detectedAt` value (see parseDetectedAt), or undefined when it is not accepted. */
export function utcDay(value: string, defaultOffsetMinutes?: number): string | undefined {
  const r = parseDetectedAt(value, defaultOffsetMinutes);
  return 'day' in r ? r.day : undefined;
}

export function step(state: AggregateDefectsState, r: Record<string, unknown>): string | undefined {
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
  if (typeof detectedAt !== 'string') return `detectedAt must be ${DETECTED_AT_RULE}`;
  let day: string | undefined;
  let dayTally: Tally | undefined;
  if (ISO_UTC.test(detectedAt)) {
    day = detectedAt.slice(0, 10);
    dayTally = state.days.get(day);
  }
  if (dayTally === undefined) {
    const parsed = parseDetectedAt(detectedAt, state.defaultOffsetMinutes);
    if ('reason' in parsed) return parsed.reason;
    day = parsed.day;
    dayTally = state.days.get(day);
  }
  const depth = r.depthMm;
  let depthUm = 0;
  const hasDepth = depth !== undefined && depth !== null;
  if (hasDepth) {
    if (typeof depth !== 'number' || !(depth >= 0 && depth <= DEPTH_MM_MAX)) return `depthMm must be a number in [0, ${DEPTH_MM_MAX}] (millimetres)`;
    depthUm = Math.round(depth * 1000);
  }

  let seg = state.segments.get(segmentId);
  if (seg === undefined) {
    seg = newSegment();
    state.segments.set(segmentId, seg);
  } else if (hasDepth && seg.depthSumUm > DEPTH_SUM_UM_MAX - depthUm) {
    return `depthMm: the depth sum of segment ${JSON.stringify(segmentId)} would pass ${DEPTH_SUM_UM_MAX} um; split the input by segment`;
  }
  seg.count++;
  seg[severity]++;
  if (hasDepth) {
    seg.depthCount++;
    seg.depthSumUm += depthUm;
    if ((depth as number) > seg.depthMax) seg.depthMax = depth as number;
  }
  if (dayTally === undefined) state.days.set(day!, { n: 1 });
  else dayTally.n++;
  const cell = cellKey(lat, lon);
  const cellTally = state.cells.get(cell);
  if (cellTally === undefined) state.cells.set(cell, { n: 1 });
  else cellTally.n++;
  return undefined;
}

export function init(config: AggregateDefectsConfig = {}): AggregateDefectsState {
  return {
    records: 0,
    rejected: 0,
    segments: new Map(),
    days: new Map(),
    cells: new Map(),
    defaultOffsetMinutes: config.defaultUtcOffset === undefined ? undefined : parseOffset(config.defaultUtcOffset),
  };
}

function addInto<K>(target: Map<K, Tally>, source: Map<K, Tally>): void {
  for (const [k, v] of source) {
    const t = target.get(k);
    if (t === undefined) target.set(k, { n: v.n });
    else t.n += v.n;
  }
}

export function merge(a: AggregateDefectsState, b: AggregateDefectsState): AggregateDefectsState {
  const out = init();
  out.defaultOffsetMinutes = a.defaultOffsetMinutes;
  out.records = a.records + b.records;
  out.rejected = a.rejected + b.rejected;
  for (const src of [a, b]) {
    for (const [id, s] of src.segments) {
      const t = out.segments.get(id) ?? newSegment();
      if (t.depthSumUm > DEPTH_SUM_UM_MAX - s.depthSumUm) {
        throw new Error(`aggregate-defects: the depth sum of segment ${JSON.stringify(id)} passes ${DEPTH_SUM_UM_MAX} um; it cannot be kept exact`);
      }
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

/**
 * Keys sorted so that equal states serialize to identical bytes (idempotent output). Objects keyed by
 * data are built with Object.fromEntries (own properties), so a segment named "__proto__" is a key like
 * any other and never touches a prototype.
 */
export function serialize(state: AggregateDefectsState): Record<string, unknown> {
  const segments = Object.fromEntries(
    [...state.segments].sort(byKey).map(([id, s]) => [
      id,
      {
        count: s.count,
        severity: { low: s.low, medium: s.medium, high: s.high, critical: s.critical },
        depthMm: {
          count: s.depthCount,
          sum: s.depthSumUm / 1000,
          sumUm: s.depthSumUm,
          mean: s.depthCount > 0 ? Math.round(s.depthSumUm / s.depthCount) / 1000 : null,
          max: s.depthCount > 0 ? s.depthMax : null,
        },
      },
    ]),
  ) as AggregateDefectsResult['segments'];
  const cells = Object.fromEntries([...state.cells].sort((x, y) => x[0] - y[0]).map(([k, v]) => [cellName(k), v.n]));
  const result: AggregateDefectsResult = {
    operation: 'aggregate-defects',
    records: state.records,
    rejected: state.rejected,
    segments,
    days: Object.fromEntries([...state.days].sort(byKey).map(([k, v]) => [k, v.n])),
    heatmap: { cellDeg: HEATMAP_CELL_DEG, cells },
  };
  return result as unknown as Record<string, unknown>;
}

/** The state of a document known to come from `serialize` (see RecordOperation.restore): no shape check. */
export function restore(d: AggregateDefectsResult): AggregateDefectsState {
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
      // Documents from before sumUm existed carry only the sum in millimetres.
      depthSumUm: s.depthMm.sumUm ?? Math.round(s.depthMm.sum * 1000),
      depthMax: s.depthMm.max ?? -1,
    });
  }
  for (const [day, n] of Object.entries(d.days)) state.days.set(day, { n });
  for (const [name, n] of Object.entries(d.heatmap.cells)) {
    const [latCell, lonCell] = name.split(':').map(Number);
    state.cells.set((latCell + LAT_OFFSET) * CELL_STRIDE + lonCell + LON_OFFSET, { n });
  }
  return state;
}


/** What aggregate-defects' scan threads run: the operation minus parseConfig/deserialize (their config arrives parsed). */
export const aggregateDefectsThread: Pick<RecordOperation<AggregateDefectsState, AggregateDefectsConfig>, 'name' | 'kind' | 'values' | 'scanLines' | 'init' | 'step' | 'serialize'> = {
  name: 'aggregate-defects',
  kind: 'records',
  scanLines: scanLinesDefect,
  init,
  step,
  serialize,
};
