/**
 * The state of aggregate-defects, shared by its general path (`step` in ./aggregate-defects, over the
 * record JSON.parse gives) and its byte-level path (./aggregate-defects-scan). Counters are small
 * mutable objects held by the Maps, so the byte-level path can keep its own index from bytes to the
 * very same objects and add to them without building a string key or doing a Map update per record.
 */
import type { RecordCounts } from './types';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const HEATMAP_CELL_DEG = 0.01;

/** Valid range of `depthMm`, in millimetres (a 10 m deep defect is already a collapsed road). */
export const DEPTH_MM_MAX = 10_000;
/**
 * A segment's depth sum is an integer number of micrometres kept in a double, exact up to 2^53 - 1 um
 * (over 900 million readings of the 10 m maximum); a reading that would pass it is rejected, and a merge
 * that would pass it throws, so no sum is ever rounded.
 */
export const DEPTH_SUM_UM_MAX = Number.MAX_SAFE_INTEGER;
/** Calendar years accepted in `detectedAt`, as written (before applying the offset). */
export const YEAR_MIN = 1900;
export const YEAR_MAX = 2100;

/** Heatmap cell key = (floor(lat*100) + LAT_OFFSET) * CELL_STRIDE + floor(lon*100) + LON_OFFSET. */
export const CELL_STRIDE = 36001;
export const LAT_OFFSET = 9000;
export const LON_OFFSET = 18000;

export interface SegmentStats {
  count: number;
  low: number;
  medium: number;
  high: number;
  critical: number;
  depthCount: number;
  /** Sum of depthMm in integer micrometres; never above DEPTH_SUM_UM_MAX, so always exact. */
  depthSumUm: number;
  depthMax: number;
}

/** A count held by reference, so an index other than the Map's own can add to it. */
export interface Tally {
  n: number;
}

export interface AggregateDefectsState extends RecordCounts {
  segments: Map<string, SegmentStats>;
  /** UTC day `YYYY-MM-DD` -> records. A day is only ever added once it has been fully checked. */
  days: Map<string, Tally>;
  /** Heatmap cell key (see CELL_STRIDE) -> records. */
  cells: Map<number, Tally>;
  /** From OPERATION_CONFIG defaultUtcOffset; undefined: timestamps without an offset are rejected. */
  defaultOffsetMinutes?: number;
  /**
   * The byte-level path's indexes into the Maps above (segment id bytes, day and cell numbers), built
   * lazily as records come; not part of the result, never serialized, empty after merge/deserialize.
   */
  scanIndex?: unknown;
}

export function newSegment(): SegmentStats {
  return { count: 0, low: 0, medium: 0, high: 0, critical: 0, depthCount: 0, depthSumUm: 0, depthMax: -1 };
}

/** The heatmap cell of a position (both already checked to be in range). */
export function cellKey(lat: number, lon: number): number {
  return (Math.floor(lat * 100) + LAT_OFFSET) * CELL_STRIDE + Math.floor(lon * 100) + LON_OFFSET;
}
