import { readFileSync } from 'fs';
import * as path from 'path';
import proj4 from 'proj4';
import COMMON from './crs-common.json';

/**
 * EPSG codes to proj4 definitions, from the `epsg-index` package shipped with the worker (one small
 * JSON file per code under epsg-index/s/, about 8,000 codes): nothing is fetched at run time, and only
 * the codes a run uses are read. Where the package's files are not on disk (the chunk Lambda is one
 * esbuild bundle), the definitions of common codes bundled in crs-common.json are used: WGS 84, Web
 * Mercator, every WGS 84 UTM zone and a few national grids, copied from epsg-index (a test checks they
 * still match). A code is the text `EPSG:<digits>` (also `urn:ogc:def:crs:EPSG::<digits>` and the OGC
 * CRS84 names for WGS 84 longitude/latitude, which legacy GeoJSON `crs` members use).
 */
let epsgDir: string | null | undefined;

/** The directory of epsg-index's per-code files, or null when the package is not installed (a bundle). */
function epsgIndexDir(): string | null {
  if (epsgDir === undefined) {
    try {
      epsgDir = path.join(path.dirname(require.resolve('epsg-index/package.json')), 's');
    } catch {
      epsgDir = null;
    }
  }
  return epsgDir;
}

/** WGS 84 longitude/latitude: the CRS of RFC 7946 GeoJSON. */
export const WGS84 = 'EPSG:4326';

const CRS_NAME = /^(?:EPSG:|urn:ogc:def:crs:EPSG::?(?:[\d.]*:)?)(\d{1,6})$/i;
const CRS84 = /^(?:urn:ogc:def:crs:OGC:(?:1\.3:)?CRS84|OGC:CRS84)$/i;

export interface Crs {
  /** Normalised name, `EPSG:<code>`. */
  readonly name: string;
  /** True for a longitude/latitude CRS in degrees (coordinates are range-checked). */
  readonly geographic: boolean;
  /** The proj4 definition string. */
  readonly definition: string;
}

const cache = new Map<string, Crs | string>();

/** The EPSG code a CRS name refers to, or undefined when the name is not one of the accepted forms. */
export function epsgCode(name: string): string | undefined {
  if (CRS84.test(name)) return '4326';
  const m = CRS_NAME.exec(name);
  return m ? String(Number(m[1])) : undefined;
}

/** The CRS for a name, or a reason it is unknown (a string), naming the value and what is allowed. */
export function lookupCrs(name: unknown): Crs | string {
  if (typeof name !== 'string') return `CRS ${JSON.stringify(name)?.slice(0, 60)} is not a name such as "EPSG:4326"`;
  const code = epsgCode(name);
  if (code === undefined) return `unknown CRS "${name.slice(0, 80)}": expected "EPSG:<code>" (e.g. EPSG:4326, EPSG:3857, EPSG:32633)`;
  const hit = cache.get(code);
  if (hit !== undefined) return hit;
  const found = load(code, name);
  cache.set(code, found);
  return found;
}

function load(code: string, name: string): Crs | string {
  let entry: { proj4?: unknown; kind?: unknown };
  const dir = epsgIndexDir();
  if (dir === null) {
    const bundled = (COMMON as Record<string, string>)[code];
    if (!Object.hasOwn(COMMON, code)) {
      return `unknown CRS "${name.slice(0, 80)}": EPSG:${code} is not among the common definitions bundled here (the full EPSG set needs the epsg-index package: run on the worker container)`;
    }
    entry = { proj4: bundled, kind: 'CRS-' };
  } else {
    try {
      entry = JSON.parse(readFileSync(path.join(dir, `${code}.json`), 'utf8')) as typeof entry;
    } catch {
      return `unknown CRS "${name.slice(0, 80)}": EPSG:${code} is not in the EPSG definitions shipped with the worker (epsg-index)`;
    }
  }
  if (typeof entry.proj4 !== 'string' || entry.proj4.length === 0 || !String(entry.kind).startsWith('CRS-')) {
    return `unknown CRS "${name.slice(0, 80)}": EPSG:${code} has no proj4 definition (it is not a coordinate reference system proj4 can use)`;
  }
  try {
    proj4(entry.proj4); // parses the definition: a bad one is an unknown CRS, not a failure mid-run
    const geographic = /\+proj=longlat\b/.test(entry.proj4);
    return { name: `EPSG:${code}`, geographic, definition: entry.proj4 };
  } catch (err) {
    return `unknown CRS "${name.slice(0, 80)}": proj4 cannot use the definition of EPSG:${code} (${(err as Error).message})`;
  }
}

/** The CRS a legacy (GeoJSON 2008) `crs` member names, undefined when there is none, or a reason. */
export function featureCrs(feature: Record<string, unknown>): Crs | string | undefined {
  if (!Object.hasOwn(feature, 'crs') || feature.crs === null || feature.crs === undefined) return undefined;
  const crs = feature.crs as { type?: unknown; properties?: { name?: unknown } };
  if (typeof crs !== 'object' || crs.type !== 'name' || typeof crs.properties !== 'object' || crs.properties === null) {
    return 'crs member must be {"type":"name","properties":{"name":"EPSG:<code>"}}';
  }
  return lookupCrs(crs.properties.name);
}

export type Transform = (xy: number[]) => number[];

const transforms = new Map<string, Transform>();

/** proj4's forward transform from one CRS to another (cached per pair; proj4 itself caches nothing). */
export function transformBetween(from: Crs, to: Crs): Transform {
  const key = `${from.name}>${to.name}`;
  let t = transforms.get(key);
  if (t === undefined) {
    const converter = proj4(from.definition, to.definition);
    t = (xy: number[]) => converter.forward(xy);
    transforms.set(key, t);
  }
  return t;
}
