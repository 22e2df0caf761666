import { z } from 'zod';
import type { SizingBounds } from '../declarations';
import type { Placement } from '../placement';

/** Where each geo operation runs by default (operations/placement.ts); the submit paths read it. */
export const GEO_PLACEMENTS = {
  reproject: { runsOn: 'EC2', vcpus: 1, memoryMiB: 2048, image: 'worker' },
  measure: { runsOn: 'EC2', vcpus: 1, memoryMiB: 2048, image: 'worker' },
  simplify: { runsOn: 'EC2', vcpus: 1, memoryMiB: 2048, image: 'worker' },
  clip: { runsOn: 'EC2', vcpus: 1, memoryMiB: 2048, image: 'worker' },
  // JSTS buffers allocate a lot per feature.
  buffer: { runsOn: 'EC2', vcpus: 1, memoryMiB: 4096, image: 'worker' },
  stats: { runsOn: 'EC2', vcpus: 1, memoryMiB: 2048, image: 'worker' },
  // Holds one unioned geometry per property value.
  dissolve: { runsOn: 'EC2', vcpus: 2, memoryMiB: 8192, image: 'worker' },
} as const satisfies Record<string, Placement>;

/**
 * What a submitter may ask per job (`vcpus` / `memoryMiB`): from the placement's memory (what the
 * operation is known to need) up to 16 vCPU / 64 GiB, so a large input can get a larger job without
 * a new job definition; the stack's own ceiling (SubmitApi/QueueTriggeredJobs `sizingLimits`) applies too.
 */
export const GEO_SIZING: Record<keyof typeof GEO_PLACEMENTS, SizingBounds> = Object.fromEntries(
  Object.entries(GEO_PLACEMENTS).map(([name, p]) => [name, { vcpus: { min: 1, max: 16 }, memoryMiB: { min: p.memoryMiB, max: 65536 } }]),
) as Record<keyof typeof GEO_PLACEMENTS, SizingBounds>;

/**
 * Config schemas of the geoprocessing operations (see operations/declarations.ts for why schemas live
 * apart from the operations' code: the SDK checks submits with them without loading turf or proj4).
 */
const CRS_NAME = z
  .string()
  .regex(/^(EPSG:\d{1,6}|urn:ogc:def:crs:EPSG::?\d{1,6}|urn:ogc:def:crs:OGC:(1\.3:)?CRS84)$/i, 'a CRS must be named "EPSG:<code>", e.g. "EPSG:4326", "EPSG:3857" or "EPSG:32633"');

export const reprojectConfigSchema = z
  .object({
    /** The CRS of the input, unless a feature names its own in a legacy `crs` member. Default WGS 84 (RFC 7946). */
    from: CRS_NAME.default('EPSG:4326'),
    to: CRS_NAME,
  })
  .strict();

export const BUFFER_UNITS = ['meters', 'kilometers', 'miles', 'feet', 'degrees'] as const;

export const bufferConfigSchema = z
  .object({
    /** Buffer distance; negative shrinks polygons. */
    distance: z.number().finite().refine((n) => n !== 0, 'distance must not be 0'),
    units: z.enum(BUFFER_UNITS).default('meters'),
    /** Segments per quarter circle (turf/JSTS quadrant segments). */
    steps: z.number().int().min(1).max(64).default(8),
  })
  .strict();

export const simplifyConfigSchema = z
  .object({
    /** Douglas-Peucker tolerance in degrees (the input is WGS 84 longitude/latitude). */
    tolerance: z.number().finite().positive(),
    highQuality: z.boolean().default(false),
  })
  .strict();

const LON = z.number().min(-180).max(180);
const LAT = z.number().min(-90).max(90);
const POSITION = z.tuple([LON, LAT]).rest(z.number());

export const clipConfigSchema = z
  .object({
    /** [west, south, east, north] in degrees. */
    bbox: z.tuple([LON, LAT, LON, LAT]).refine(([w, s, e, n]) => w < e && s < n, 'bbox must be [west, south, east, north] with west < east and south < north').optional(),
    /** A Polygon or MultiPolygon geometry in WGS 84. */
    polygon: z
      .object({
        type: z.enum(['Polygon', 'MultiPolygon']),
        coordinates: z.union([z.array(z.array(POSITION).min(4)).min(1), z.array(z.array(z.array(POSITION).min(4)).min(1)).min(1)]),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((c) => (c.bbox === undefined) !== (c.polygon === undefined), 'give exactly one of bbox or polygon');

const PROPERTY_NAME = z.string().min(1, 'property names must not be empty').max(256);

export const measureConfigSchema = z
  .object({
    /** Property the geodesic area (square metres) is written to. */
    areaProperty: PROPERTY_NAME.default('area_m2'),
    /** Property the geodesic length (metres; the perimeter for polygons) is written to. */
    lengthProperty: PROPERTY_NAME.default('length_m'),
  })
  .strict();

export const dissolveConfigSchema = z.object({ by: PROPERTY_NAME }).strict();
export const geoStatsConfigSchema = z.object({ by: PROPERTY_NAME }).strict();
