import { z } from 'zod';
import { INPUT_FORMATS } from '../engine/format';
import {
  bufferConfigSchema,
  clipConfigSchema,
  dissolveConfigSchema,
  geoStatsConfigSchema,
  measureConfigSchema,
  reprojectConfigSchema,
  GEO_PLACEMENTS,
  GEO_SIZING,
  simplifyConfigSchema,
} from './geo/declarations';
import { DEFAULT_PLACEMENT, OCR_PLACEMENT, Placement } from './placement';

/**
 * What a submitter may ask of each operation, without loading the operation's code: its name, the
 * schema of its OPERATION_CONFIG, and the environment variables a submitter may set (name -> value
 * pattern). The worker's registry checks at load that every operation it runs has exactly one entry
 * here, and the submission policy (lib/client/policy) reads this table, so the SDK, the submit API
 * and the queue path refuse what the worker would refuse, before anything is staged or submitted.
 *
 * Light on purpose: only zod and the format names. The SDK imports this module, never the operations
 * themselves (bundle-photos pulls in archiver and friends).
 */
export interface EnvironmentVariableDeclaration {
  /** The whole value must match (anchored). */
  readonly pattern: RegExp;
  /** What is allowed, in words, for error messages and docs. */
  readonly allowed: string;
}

export interface OperationDeclaration {
  readonly name: string;
  /** Checks OPERATION_CONFIG (the operation's parseConfig applies the same schema in the worker). */
  readonly configSchema: z.ZodType;
  /** Variables a submitter may set for this operation; anything else is refused. */
  readonly environment: Readonly<Record<string, EnvironmentVariableDeclaration>>;
  /**
   * Where its jobs run (the same value as the operation module's `placement`; the registry checks
   * they agree). The submit paths route by it without loading the operation.
   * @default DEFAULT_PLACEMENT (EC2 queue, streaming worker image)
   */
  readonly placement?: Placement;
  /**
   * How long one job of this operation is expected to take at most, in minutes: the monitoring
   * raises the operation's P95 duration alarm (worker metric `DurationMs`, dimension `Operation`)
   * when the p95 over an hour is above it.
   * @default DEFAULT_EXPECTED_DURATION_MINUTES (30)
   */
  readonly expectedDurationMinutes?: number;
  /**
   * The vCPU and memory a submitter may ask for per job (`vcpus` / `memoryMiB` of a submit request),
   * inclusive bounds; the job runs with its placement's values when the request names none.
   * @default - only the placement's own values (the operation cannot be resized per submit)
   */
  readonly sizing?: SizingBounds;
}

export interface SizingBounds {
  readonly vcpus: { readonly min: number; readonly max: number };
  readonly memoryMiB: { readonly min: number; readonly max: number };
}

/** Expected duration of an operation that declares none (half the dev stage's 60-minute job timeout). */
export const DEFAULT_EXPECTED_DURATION_MINUTES = 30;

const LOG_LEVEL: EnvironmentVariableDeclaration = { pattern: /^(debug|info|warn|error)$/, allowed: 'debug, info, warn or error' };
const MAX_REJECT_RATIO: EnvironmentVariableDeclaration = { pattern: /^(0(\.\d{1,6})?|1(\.0{1,6})?)$/, allowed: 'a number between 0 and 1' };
/** Records longer than this are rejected without being buffered (8 digits: under 100 MB, so a submitter cannot make the worker hold more). */
const MAX_RECORD_BYTES: EnvironmentVariableDeclaration = { pattern: /^[1-9]\d{0,7}$/, allowed: 'a whole number of bytes from 1 to 99999999' };
const INPUT_FORMAT: EnvironmentVariableDeclaration = {
  pattern: new RegExp(`^(${INPUT_FORMATS.map((f) => f.replace('.', '\\.')).join('|')})$`),
  allowed: INPUT_FORMATS.join(', '),
};

/** Variables every record operation (the shared chunk engine) reads besides the contract. */
const RECORD_ENVIRONMENT = { INPUT_FORMAT, MAX_REJECT_RATIO, MAX_RECORD_BYTES, LOG_LEVEL };

/** Types `transform-records` can convert a field to (see its `types` config). */
export const TRANSFORM_FIELD_TYPES = ['string', 'number', 'integer', 'boolean'] as const;

export const transformRecordsConfigSchema = z
  .object({
    rename: z.record(z.string(), z.string().min(1, 'field names must not be empty')).default({}),
    set: z.record(z.string(), z.unknown()).default({}),
    drop: z.array(z.string()).default([]),
    require: z.array(z.string()).default([]),
    types: z.record(z.string(), z.enum(TRANSFORM_FIELD_TYPES)).default({}),
  })
  .strict();

/** Largest entry a ZIP without ZIP64 records can describe (photos/zip-writer.ts uses the same bound). */
export const ZIP_MAX_ENTRY_BYTES = 0xfffffffe;

export const bundlePhotosConfigSchema = z
  .object({
    concurrency: z.number().int().min(1).max(64).optional(),
    retries: z.number().int().min(0).max(10).default(3),
    backoffMs: z.number().int().min(0).default(200),
    /** Longest wait for response headers or for the next bytes of a body. */
    timeoutMs: z.number().int().min(1).default(30_000),
    /** At most a ZIP entry's 32-bit size (the bundle writes no ZIP64 entries). */
    maxFileBytes: z.number().int().min(1).max(ZIP_MAX_ENTRY_BYTES).default(200 * 1024 * 1024),
    /** Size of the staged parts (S3's minimum is 5 MiB). */
    partSizeMb: z.number().int().min(5).max(512).default(8),
  })
  .strict();

/** Pixels of one page above which `ocr` refuses the input before decoding it (a decompression bomb). */
export const DEFAULT_MAX_PAGE_PIXELS = 50_000_000;
export const DEFAULT_MAX_PAGES = 500;

export const ocrConfigSchema = z
  .object({
    lang: z
      .string()
      .regex(/^[A-Za-z_]+(\+[A-Za-z_]+)*$/, 'lang must be language codes joined by "+", e.g. "eng" or "eng+deu"')
      .default('eng'),
    psm: z.union([z.literal(1), z.literal(3), z.literal(4), z.literal(6), z.literal(11), z.literal(12)]).default(3),
    maxPagePixels: z.number().int().min(1).max(200_000_000).default(DEFAULT_MAX_PAGE_PIXELS),
    maxPages: z.number().int().min(1).max(10_000).default(DEFAULT_MAX_PAGES),
  })
  .strict();

/** aggregate-defects takes no configuration: an empty object (or none) only. */
export const aggregateDefectsConfigSchema = z.object({}).strict();

export const OPERATION_DECLARATIONS: ReadonlyMap<string, OperationDeclaration> = new Map(
  ([
    { name: 'aggregate-defects', configSchema: aggregateDefectsConfigSchema, environment: RECORD_ENVIRONMENT },
    { name: 'transform-records', configSchema: transformRecordsConfigSchema, environment: RECORD_ENVIRONMENT },
    // Downloads thousands of photos over the internet: the slowest operation by design.
    { name: 'bundle-photos', configSchema: bundlePhotosConfigSchema, environment: { MAX_REJECT_RATIO, LOG_LEVEL }, expectedDurationMinutes: 45 },
    // One document per job (at most DEFAULT_MAX_PAGES pages): minutes, not half an hour.
    { name: 'ocr', configSchema: ocrConfigSchema, environment: { LOG_LEVEL }, placement: OCR_PLACEMENT, expectedDurationMinutes: 15 },
    // Geoprocessing (operations/geo): record operations over GeoJSON, so the chunk engine's variables.
    { name: 'reproject', configSchema: reprojectConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.reproject, sizing: GEO_SIZING.reproject },
    { name: 'buffer', configSchema: bufferConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.buffer, sizing: GEO_SIZING.buffer },
    { name: 'simplify', configSchema: simplifyConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.simplify, sizing: GEO_SIZING.simplify },
    { name: 'clip', configSchema: clipConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.clip, sizing: GEO_SIZING.clip },
    { name: 'measure', configSchema: measureConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.measure, sizing: GEO_SIZING.measure },
    { name: 'stats', configSchema: geoStatsConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.stats, sizing: GEO_SIZING.stats },
    { name: 'dissolve', configSchema: dissolveConfigSchema, environment: RECORD_ENVIRONMENT, placement: GEO_PLACEMENTS.dissolve, sizing: GEO_SIZING.dissolve },
  ] as OperationDeclaration[]).map((d: OperationDeclaration): [string, OperationDeclaration] => [d.name, d]),
);

/** The declaration of an operation, by own key only (a Map: `__proto__` or `constructor` are just unknown names). */
export function operationDeclaration(name: string): OperationDeclaration | undefined {
  return OPERATION_DECLARATIONS.get(name);
}

/** Where an operation's jobs run, from its declaration; undefined for an unknown operation. */
export function declaredPlacement(name: string): Placement | undefined {
  const declaration = OPERATION_DECLARATIONS.get(name);
  return declaration ? (declaration.placement ?? DEFAULT_PLACEMENT) : undefined;
}

/** Expected duration (minutes) of each declared operation, by name: what the P95 duration alarms compare with. */
export function declaredExpectedDurations(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of OPERATION_DECLARATIONS.values()) out[d.name] = d.expectedDurationMinutes ?? DEFAULT_EXPECTED_DURATION_MINUTES;
  return out;
}

export function declaredOperationNames(): string[] {
  return [...OPERATION_DECLARATIONS.keys()];
}
