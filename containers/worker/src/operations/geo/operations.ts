import area from '@turf/area';
import bboxClip from '@turf/bbox-clip';
import { booleanPointInPolygon } from '@turf/boolean-point-in-polygon';
import buffer from '@turf/buffer';
import { featureCollection } from '@turf/helpers';
import intersect from '@turf/intersect';
import length from '@turf/length';
import simplify from '@turf/simplify';
import union from '@turf/union';
import type { BBox, Feature, Geometry, MultiPolygon, Polygon } from 'geojson';
import type { z } from 'zod';
import type { Placement } from '../placement';
import type { RecordCounts, RecordOperation, StepContext } from '../types';
import { featureCrs, lookupCrs, transformBetween, WGS84, type Crs, type Transform } from './crs';
import {
  bufferConfigSchema,
  clipConfigSchema,
  dissolveConfigSchema,
  GEO_PLACEMENTS,
  geoStatsConfigSchema,
  measureConfigSchema,
  reprojectConfigSchema,
  simplifyConfigSchema,
} from './declarations';
import { asFeature, eachPosition, lonLatProblem, topologyProblem } from './feature';

/**
 * The geoprocessing operations over newline-delimited GeoJSON (one Feature per line, chunkable like
 * JSON lines; a FeatureCollection is streamed into the same records). Geometry is turf's and proj4's;
 * this module validates, dispatches and keeps counts. Every record is checked first (a Feature, a
 * well-formed geometry, longitude/latitude in range, valid topology): a failure is a reject with the
 * record's byte offset, written by the engine to the rejects object.
 */


type GeoOperation<S extends RecordCounts, C> = RecordOperation<S, C> & { readonly placement: Placement };

/** Parses with a declaration's schema; the error names the field, the problem and the operation. */
function parseWith<T extends z.ZodType>(name: string, schema: T, raw: unknown, expected: string): z.infer<T> {
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw new Error(`${name} config: ${problems}; expected ${expected}`);
  }
  return parsed.data;
}

/** Sets an own property; `__proto__` (a data name like any other) needs defineProperty, which is slower. */
function defineOwn(target: Record<string, unknown>, name: string, value: unknown): void {
  if (name === '__proto__') Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
  else target[name] = value;
}

/** A WGS 84 feature ready for turf, or the reason it is rejected. */
function wgs84Feature(record: Record<string, unknown>): Feature<Geometry> | string {
  const crs = featureCrs(record);
  if (typeof crs === 'string') return crs;
  if (crs !== undefined && crs.name !== WGS84) return `feature is in ${crs.name}; this operation takes WGS 84 (EPSG:4326): reproject it first`;
  const f = asFeature(record, true);
  if (typeof f === 'string') return f;
  return topologyProblem(f) ?? f;
}

function noGeometryCollection(f: Feature<Geometry>, op: string): string | undefined {
  return f.geometry.type === 'GeometryCollection' ? `${op} takes one geometry per feature, not a GeometryCollection` : undefined;
}

interface CountState extends RecordCounts {
  /** Features accepted but not written (clip: wholly outside). */
  dropped: number;
}

interface CountSummary {
  operation: string;
  records: number;
  rejected: number;
  dropped: number;
}

/** The shared part of the record-to-record geo operations: counts only, merged by adding. */
function recordOperation<C>(
  name: keyof typeof GEO_PLACEMENTS,
  parseConfig: (raw: unknown) => C,
  step: (config: C, record: Record<string, unknown>, ctx: StepContext, state: CountState) => string | undefined,
): GeoOperation<CountState & { config: C }, C> {
  return {
    name,
    kind: 'records',
    output: 'records',
    placement: GEO_PLACEMENTS[name],
    parseConfig,
    init: (config) => ({ records: 0, rejected: 0, dropped: 0, config }),
    step: (state, record, ctx) => step(state.config, record, ctx, state),
    merge: (a, b) => ({ config: a.config, records: a.records + b.records, rejected: a.rejected + b.rejected, dropped: a.dropped + b.dropped }),
    serialize: (s) => ({ operation: name, records: s.records, rejected: s.rejected, dropped: s.dropped }) satisfies CountSummary,
    deserialize(doc) {
      const d = doc as CountSummary;
      if (!d || d.operation !== name || !Number.isInteger(d.records) || !Number.isInteger(d.rejected) || !Number.isInteger(d.dropped)) {
        throw new Error(`not a ${name} summary document`);
      }
      return { records: d.records, rejected: d.rejected, dropped: d.dropped, config: undefined as unknown as C };
    },
  };
}

// ---------------------------------------------------------------- reproject

export interface ReprojectConfig {
  from: Crs;
  to: Crs;
  /** from -> to, resolved once: most features carry no CRS of their own. */
  forward: Transform;
}

function crsOrThrow(field: string, name: string): Crs {
  const crs = lookupCrs(name);
  if (typeof crs === 'string') throw new Error(`reproject config: ${field}: ${crs}`);
  return crs;
}

export const reproject = recordOperation<ReprojectConfig>(
  'reproject',
  (raw) => {
    const c = parseWith('reproject', reprojectConfigSchema, raw, '{"from":"EPSG:4326","to":"EPSG:3857"}');
    const from = crsOrThrow('from', c.from);
    const to = crsOrThrow('to', c.to);
    return { from, to, forward: transformBetween(from, to) };
  },
  (config, record, ctx) => {
    const f = asFeature(record);
    if (typeof f === 'string') return f;
    const own = featureCrs(record);
    if (typeof own === 'string') return own;
    const from = own ?? config.from;
    const g = f.geometry;
    if (from.geographic) {
      const range = lonLatProblem(g);
      if (range !== undefined) return range;
    }
    const topology = topologyProblem(f);
    if (topology !== undefined) return topology;
    const forward = own === undefined ? config.forward : transformBetween(own, config.to);
    const problem = eachPosition(g, (p) => {
      const q = forward(p);
      if (!Number.isFinite(q[0]) || !Number.isFinite(q[1])) {
        return `coordinates out of range: [${p[0]}, ${p[1]}] in ${from.name} has no finite position in ${config.to.name}`;
      }
      p[0] = q[0];
      p[1] = q[1];
      return undefined;
    });
    if (problem !== undefined) return problem;
    // RFC 7946 GeoJSON is WGS 84; other output names its CRS the way GeoJSON 2008 did, so a later step knows.
    if (config.to.name === WGS84) delete record.crs;
    else record.crs = { type: 'name', properties: { name: config.to.name } };
    ctx.emit(record);
    return undefined;
  },
);

// ---------------------------------------------------------------- buffer

export type BufferConfig = z.infer<typeof bufferConfigSchema>;

export const bufferOperation = recordOperation<BufferConfig>(
  'buffer',
  (raw) => parseWith('buffer', bufferConfigSchema, raw, `{"distance":100,"units":"meters","steps":8}`),
  (config, record, ctx, state) => {
    const f = wgs84Feature(record);
    if (typeof f === 'string') return f;
    const gc = noGeometryCollection(f, 'buffer');
    if (gc !== undefined) return gc;
    const out = buffer(f, config.distance, { units: config.units, steps: config.steps });
    if (out === undefined || out === null || !out.geometry || (out.geometry.coordinates as unknown[]).length === 0) {
      // A negative distance can shrink a polygon away: accepted, nothing left to write.
      state.dropped++;
      return undefined;
    }
    record.geometry = out.geometry;
    ctx.emit(record);
    return undefined;
  },
);

// ---------------------------------------------------------------- simplify

export type SimplifyConfig = z.infer<typeof simplifyConfigSchema>;

export const simplifyOperation = recordOperation<SimplifyConfig>(
  'simplify',
  (raw) => parseWith('simplify', simplifyConfigSchema, raw, '{"tolerance":0.001,"highQuality":false}'),
  (config, record, ctx) => {
    const f = wgs84Feature(record);
    if (typeof f === 'string') return f;
    const gc = noGeometryCollection(f, 'simplify');
    if (gc !== undefined) return gc;
    simplify(f, { tolerance: config.tolerance, highQuality: config.highQuality, mutate: true });
    ctx.emit(record);
    return undefined;
  },
);

// ---------------------------------------------------------------- clip

export interface ClipConfig {
  bbox?: BBox;
  polygon?: Feature<Polygon | MultiPolygon>;
}

export const clip = recordOperation<ClipConfig>(
  'clip',
  (raw) => {
    const c = parseWith('clip', clipConfigSchema, raw, '{"bbox":[west,south,east,north]} or {"polygon":{"type":"Polygon","coordinates":[...]}}');
    if (c.bbox) return { bbox: c.bbox as BBox };
    const candidate = wgs84Feature({ type: 'Feature', properties: {}, geometry: c.polygon });
    if (typeof candidate === 'string') throw new Error(`clip config: polygon: ${candidate}`);
    return { polygon: candidate as Feature<Polygon | MultiPolygon> };
  },
  (config, record, ctx, state) => {
    const f = wgs84Feature(record);
    if (typeof f === 'string') return f;
    const g = f.geometry;
    if (g.type === 'GeometryCollection') return 'clip takes one geometry per feature, not a GeometryCollection';
    let clipped: Geometry | undefined;
    if (g.type === 'Point' || g.type === 'MultiPoint') {
      const points = g.type === 'Point' ? [g.coordinates] : g.coordinates;
      const inside = points.filter((p) => (config.bbox ? inBbox(p, config.bbox) : booleanPointInPolygon(p, config.polygon!)));
      if (inside.length > 0) clipped = g.type === 'Point' ? g : { type: 'MultiPoint', coordinates: inside };
    } else if (config.bbox) {
      const out = bboxClip(f as Feature<Polygon | MultiPolygon | import('geojson').LineString | import('geojson').MultiLineString>, config.bbox).geometry;
      if ((out.coordinates as unknown[]).length > 0) clipped = out;
    } else if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
      const out = intersect(featureCollection([f as Feature<Polygon | MultiPolygon>, config.polygon!]));
      if (out) clipped = out.geometry;
    } else {
      return `clip to a polygon takes Point and Polygon geometries (a ${g.type} can be clipped to a bbox)`;
    }
    if (clipped === undefined) {
      state.dropped++;
      return undefined;
    }
    record.geometry = clipped;
    ctx.emit(record);
    return undefined;
  },
);

function inBbox(p: number[], [w, s, e, n]: BBox): boolean {
  return p[0] >= w && p[0] <= e && p[1] >= s && p[1] <= n;
}

// ---------------------------------------------------------------- measure

export type MeasureConfig = z.infer<typeof measureConfigSchema>;

/**
 * turf's measures, both geodesic on a sphere of radius 6 371 008.8 m (the mean Earth radius), not on the
 * WGS 84 ellipsoid: `area` is the spherical polygon area (edges as great-circle-like segments in
 * longitude, exact for longitude/latitude rectangles); `length` sums haversine great-circle distances.
 * They differ from ellipsoidal values by up to about 0.5 % depending on latitude.
 */
export function geodesicMeasures(f: Feature<Geometry>): { area: number; length: number } {
  return { area: area(f), length: length(f, { units: 'meters' }) };
}

export const measure = recordOperation<MeasureConfig>(
  'measure',
  (raw) => parseWith('measure', measureConfigSchema, raw, '{"areaProperty":"area_m2","lengthProperty":"length_m"}'),
  (config, record, ctx) => {
    const f = wgs84Feature(record);
    if (typeof f === 'string') return f;
    const m = geodesicMeasures(f);
    const props = f.properties as Record<string, unknown>;
    defineOwn(props, config.areaProperty, m.area);
    defineOwn(props, config.lengthProperty, m.length);
    ctx.emit(record);
    return undefined;
  },
);

// ---------------------------------------------------------------- grouping by a property

/** The group key of a feature: the property's value (missing is null), or a reason when it is not a scalar. */
function groupOf(f: Feature<Geometry>, by: string): { key: string; value: string | number | boolean | null } | string {
  const props = f.properties as Record<string, unknown>;
  const value = Object.hasOwn(props, by) ? props[by] : null;
  if (value !== null && typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    return `property ${by} is ${Array.isArray(value) ? 'an array' : 'an object'}; features are grouped by a string, number, boolean or null`;
  }
  return { key: JSON.stringify(value), value };
}

// ---------------------------------------------------------------- stats

export interface StatsGroup {
  value: string | number | boolean | null;
  count: number;
  area_m2: number;
  length_m: number;
}

interface StatsState extends RecordCounts {
  by: string;
  groups: Map<string, StatsGroup>;
}

export interface StatsDocument {
  operation: 'stats';
  by: string;
  records: number;
  rejected: number;
  /** One entry per property value, ordered by the value's JSON text. */
  groups: StatsGroup[];
}

export const stats: GeoOperation<StatsState, { by: string }> = {
  name: 'stats',
  kind: 'records',
  output: 'document',
  placement: GEO_PLACEMENTS.stats,
  parseConfig: (raw) => parseWith('stats', geoStatsConfigSchema, raw, '{"by":"<property name>"}'),
  init: (config) => ({ records: 0, rejected: 0, by: config.by, groups: new Map() }),
  step(state, record) {
    const f = wgs84Feature(record);
    if (typeof f === 'string') return f;
    const group = groupOf(f, state.by);
    if (typeof group === 'string') return group;
    const m = geodesicMeasures(f);
    const g = state.groups.get(group.key);
    if (g === undefined) state.groups.set(group.key, { value: group.value, count: 1, area_m2: m.area, length_m: m.length });
    else {
      g.count++;
      g.area_m2 += m.area;
      g.length_m += m.length;
    }
    return undefined;
  },
  merge(a, b) {
    const groups = new Map<string, StatsGroup>();
    for (const g of [...a.groups.values(), ...b.groups.values()]) {
      const key = JSON.stringify(g.value);
      const have = groups.get(key);
      if (have === undefined) groups.set(key, { ...g });
      else groups.set(key, { value: g.value, count: have.count + g.count, area_m2: have.area_m2 + g.area_m2, length_m: have.length_m + g.length_m });
    }
    return { records: a.records + b.records, rejected: a.rejected + b.rejected, by: a.by, groups };
  },
  serialize(s) {
    const groups = [...s.groups.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, g]) => ({ ...g }));
    return { operation: 'stats', by: s.by, records: s.records, rejected: s.rejected, groups } satisfies StatsDocument;
  },
  deserialize(doc) {
    const d = doc as StatsDocument;
    if (!d || d.operation !== 'stats' || typeof d.by !== 'string' || !Array.isArray(d.groups) || !Number.isInteger(d.records)) {
      throw new Error('not a stats result document');
    }
    const groups = new Map<string, StatsGroup>();
    for (const g of d.groups) groups.set(JSON.stringify(g.value), { value: g.value, count: g.count, area_m2: g.area_m2, length_m: g.length_m });
    return { records: d.records, rejected: d.rejected, by: d.by, groups };
  },
};

// ---------------------------------------------------------------- dissolve

/** Polygons waiting to be unioned into a group: unioning many at once is much cheaper than one by one. */
const UNION_BATCH = 256;

interface DissolveGroup {
  value: string | number | boolean | null;
  count: number;
  geometry: Polygon | MultiPolygon | null;
  pending: (Polygon | MultiPolygon)[];
}

interface DissolveState extends RecordCounts {
  by: string;
  groups: Map<string, DissolveGroup>;
}

export interface DissolveDocument {
  type: 'FeatureCollection';
  operation: 'dissolve';
  by: string;
  records: number;
  rejected: number;
  /** One feature per property value (ordered by the value's JSON text): the union of its polygons. */
  features: Feature<Polygon | MultiPolygon | null, { value: string | number | boolean | null; count: number }>[];
}

function unionAll(geometries: (Polygon | MultiPolygon)[]): Polygon | MultiPolygon | null {
  if (geometries.length === 0) return null;
  if (geometries.length === 1) return geometries[0];
  const out = union(featureCollection(geometries.map((geometry) => ({ type: 'Feature' as const, properties: {}, geometry }))));
  return out ? out.geometry : null;
}

function flush(g: DissolveGroup): void {
  if (g.pending.length === 0) return;
  g.geometry = unionAll(g.geometry ? [g.geometry, ...g.pending] : g.pending);
  g.pending = [];
}

export const dissolve: GeoOperation<DissolveState, { by: string }> = {
  name: 'dissolve',
  kind: 'records',
  output: 'document',
  placement: GEO_PLACEMENTS.dissolve,
  parseConfig: (raw) => parseWith('dissolve', dissolveConfigSchema, raw, '{"by":"<property name>"}'),
  init: (config) => ({ records: 0, rejected: 0, by: config.by, groups: new Map() }),
  step(state, record) {
    const f = wgs84Feature(record);
    if (typeof f === 'string') return f;
    const geometry = f.geometry;
    if (geometry.type !== 'Polygon' && geometry.type !== 'MultiPolygon') return `dissolve unions Polygon and MultiPolygon geometries, not ${geometry.type}`;
    const group = groupOf(f, state.by);
    if (typeof group === 'string') return group;
    let g = state.groups.get(group.key);
    if (g === undefined) {
      g = { value: group.value, count: 0, geometry: null, pending: [] };
      state.groups.set(group.key, g);
    }
    g.count++;
    g.pending.push(geometry);
    if (g.pending.length >= UNION_BATCH) flush(g);
    return undefined;
  },
  // Union is associative and commutative, so groups merge in any order and grouping.
  merge(a, b) {
    const groups = new Map<string, DissolveGroup>();
    for (const g of [...a.groups.values(), ...b.groups.values()]) {
      const key = JSON.stringify(g.value);
      const have = groups.get(key);
      const parts = [g.geometry, ...g.pending].filter((x): x is Polygon | MultiPolygon => x !== null);
      if (have === undefined) groups.set(key, { value: g.value, count: g.count, geometry: null, pending: parts });
      else {
        have.count += g.count;
        have.pending.push(...parts);
      }
    }
    for (const g of groups.values()) flush(g);
    return { records: a.records + b.records, rejected: a.rejected + b.rejected, by: a.by, groups };
  },
  serialize(s) {
    const entries = [...s.groups.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    const features = entries.map(([, g]) => {
      flush(g);
      return { type: 'Feature' as const, properties: { value: g.value, count: g.count }, geometry: g.geometry };
    });
    return { type: 'FeatureCollection', operation: 'dissolve', by: s.by, records: s.records, rejected: s.rejected, features } satisfies DissolveDocument;
  },
  deserialize(doc) {
    const d = doc as DissolveDocument;
    if (!d || d.operation !== 'dissolve' || typeof d.by !== 'string' || !Array.isArray(d.features) || !Number.isInteger(d.records)) {
      throw new Error('not a dissolve result document');
    }
    const groups = new Map<string, DissolveGroup>();
    for (const f of d.features) {
      groups.set(JSON.stringify(f.properties.value), { value: f.properties.value, count: f.properties.count, geometry: f.geometry, pending: [] });
    }
    return { records: d.records, rejected: d.rejected, by: d.by, groups };
  },
};

export const GEO_OPERATIONS = [reproject, bufferOperation, simplifyOperation, clip, measure, stats, dissolve] as const;
