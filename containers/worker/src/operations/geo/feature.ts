import booleanValid from '@turf/boolean-valid';
import kinks from '@turf/kinks';
import type { Feature, Geometry, Polygon, MultiPolygon } from 'geojson';

/**
 * Checks one record as a GeoJSON Feature before any operation touches it. The structure (types,
 * nesting, finite numbers) is checked here because turf assumes it and fails deep inside otherwise;
 * topology (closed rings of at least four positions, no spikes, holes inside shells, no self-crossing
 * rings) is turf's: `@turf/boolean-valid` and `@turf/kinks`. Each failure is a reason string, which the
 * engine writes as a reject with the record's byte offset.
 */
const GEOMETRY_DEPTH: Record<string, number> = {
  Point: 0,
  MultiPoint: 1,
  LineString: 1,
  MultiLineString: 2,
  Polygon: 2,
  MultiPolygon: 3,
};

/**
 * The feature, or the reason the record is not a usable one. With `lonLat`, every position must also be a
 * WGS 84 longitude/latitude (checked in the same walk over the coordinates).
 */
export function asFeature(record: Record<string, unknown>, lonLat = false): Feature<Geometry> | string {
  if (record.type !== 'Feature') {
    return `record is not a GeoJSON Feature (type is ${JSON.stringify(record.type)?.slice(0, 40) ?? 'missing'}); each line must be {"type":"Feature","geometry":{...},"properties":{...}}`;
  }
  const geometry = record.geometry as Geometry | null | undefined;
  if (geometry === null || geometry === undefined) return 'feature has no geometry (geometry is null or missing)';
  if (typeof geometry !== 'object' || Array.isArray(geometry)) return 'geometry is not a GeoJSON geometry object';
  const structural = checkGeometry(geometry, lonLat);
  if (structural !== undefined) return structural;
  if (record.properties === undefined || record.properties === null) record.properties = {};
  else if (typeof record.properties !== 'object' || Array.isArray(record.properties)) return 'properties must be an object or null';
  return record as unknown as Feature<Geometry>;
}

function checkGeometry(g: Geometry, lonLat: boolean): string | undefined {
  if (g.type === 'GeometryCollection') {
    if (!Array.isArray(g.geometries)) return 'invalid geometry: GeometryCollection without a geometries array';
    for (const member of g.geometries) {
      if (member === null || typeof member !== 'object') return 'invalid geometry: a GeometryCollection member is not a geometry';
      const r = checkGeometry(member, lonLat);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  const depth = GEOMETRY_DEPTH[g.type as string];
  if (depth === undefined || !Object.hasOwn(GEOMETRY_DEPTH, g.type)) {
    return `invalid geometry: type ${JSON.stringify(g.type)?.slice(0, 40)} is not one of Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon, GeometryCollection`;
  }
  return checkCoordinates((g as { coordinates?: unknown }).coordinates, depth, g.type, lonLat);
}

function checkCoordinates(c: unknown, depth: number, type: string, lonLat: boolean): string | undefined {
  if (!Array.isArray(c)) return `invalid geometry: ${type} coordinates are not ${depth === 0 ? 'a position [x, y]' : 'an array'}`;
  if (depth === 0) {
    if (c.length < 2 || c.length > 3) return `invalid geometry: a position has ${c.length} numbers (2 or 3 allowed)`;
    for (const n of c) if (typeof n !== 'number' || !Number.isFinite(n)) return `invalid geometry: position ${JSON.stringify(c).slice(0, 60)} has a value that is not a finite number`;
    return lonLat ? lonLatOf(c as number[]) : undefined;
  }
  // A line (a LineString, or a member of a MultiLineString) needs two positions.
  if (depth === 1 && (type === 'LineString' || type === 'MultiLineString') && c.length < 2) return `invalid geometry: a ${type} line needs at least 2 positions`;
  for (const child of c) {
    const r = checkCoordinates(child, depth - 1, type, lonLat);
    if (r !== undefined) return r;
  }
  return undefined;
}

function lonLatOf(p: number[]): string | undefined {
  return p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90
    ? `coordinates out of range: [${p[0]}, ${p[1]}] is not a longitude in [-180, 180] and latitude in [-90, 90] (WGS 84, EPSG:4326)`
    : undefined;
}

/**
 * Topology as turf sees it; undefined when valid. Points and lines have none beyond the structure
 * asFeature checked (turf's booleanValid checks no more for them), so only polygons and collections go to turf.
 */
export function topologyProblem(feature: Feature<Geometry>): string | undefined {
  const g = feature.geometry;
  if (g.type !== 'Polygon' && g.type !== 'MultiPolygon' && g.type !== 'GeometryCollection') return undefined;
  if (!booleanValid(feature)) {
    return `invalid geometry: ${g.type} is not valid (rings must be closed, have at least 4 positions, no spikes, holes inside their shell)`;
  }
  if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
    const crossings = kinks(feature as Feature<Polygon | MultiPolygon>).features.length;
    if (crossings > 0) return `invalid geometry: ${g.type} ring crosses itself (${crossings} self-intersection${crossings > 1 ? 's' : ''})`;
  }
  return undefined;
}

/** Every position of a geometry (GeometryCollections included), for range checks and reprojection. */
export function eachPosition(g: Geometry, f: (p: number[]) => string | undefined): string | undefined {
  if (g.type === 'GeometryCollection') {
    for (const m of g.geometries) {
      const r = eachPosition(m, f);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  return walk(g.coordinates, GEOMETRY_DEPTH[g.type], f);
}

function walk(c: unknown, depth: number, f: (p: number[]) => string | undefined): string | undefined {
  if (depth === 0) return f(c as number[]);
  for (const child of c as unknown[]) {
    const r = walk(child, depth - 1, f);
    if (r !== undefined) return r;
  }
  return undefined;
}

/** Longitude/latitude within [-180, 180] x [-90, 90]; undefined when every position is in range. */
export function lonLatProblem(g: Geometry): string | undefined {
  return eachPosition(g, lonLatOf);
}
