import { z } from 'zod';
import { INPUT_FORMATS } from './engine/format';
import { hasOperation, operationNames } from './operations/registry';
import { RETENTION_DAYS_ENV, retentionDaysFrom } from './retention';

/**
 * The worker's environment contract, validated once at start. Any missing or invalid variable is a
 * ConfigError naming it; the entrypoint turns that into exit code 2 (Batch then does not retry it:
 * retrying a misconfigured job cannot help).
 */
export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const nonEmpty = z.string().trim().min(1, 'must not be empty');
const byteOffset = z
  .string()
  .regex(/^\d+$/, 'must be a non-negative integer (bytes)')
  .transform(Number)
  .refine((n) => Number.isSafeInteger(n), 'is too large');
const optional = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());

const envSchema = z.object({
  JOB_ID: nonEmpty,
  OPERATION: nonEmpty.refine(hasOperation, { message: `must be one of ${operationNames().join(', ')}` }),
  INPUT_S3_BUCKET: optional(nonEmpty),
  INPUT_S3_KEY: optional(nonEmpty),
  OUTPUT_S3_BUCKET: nonEmpty,
  OUTPUT_S3_KEY: nonEmpty,
  TENANT_ID: optional(nonEmpty),
  USER_ID: optional(nonEmpty),
  CALLBACK_URL: optional(z.string().url('must be an http(s) URL')),
  OPERATION_CONFIG: optional(
    z.string().transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be JSON (${(err as Error).message})` });
        return z.NEVER;
      }
    }),
  ),
  INPUT_FORMAT: optional(z.enum(INPUT_FORMATS)),
  CHUNK_START_BYTE: optional(byteOffset),
  CHUNK_END_BYTE: optional(byteOffset),
  MANIFEST_S3_BUCKET: optional(nonEmpty),
  MANIFEST_S3_KEY: optional(nonEmpty),
  AWS_BATCH_JOB_ARRAY_INDEX: optional(z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number)),
  MAX_REJECT_RATIO: optional(
    z
      .string()
      .regex(/^(0(\.\d+)?|1(\.0+)?)$/, 'must be a number between 0 and 1')
      .transform(Number),
  ),
  MAX_RECORD_BYTES: optional(z.string().regex(/^[1-9]\d*$/, 'must be a positive integer (bytes)').transform(Number)),
  OUTPUT_S3_ENDPOINT: optional(z.string().url('must be a URL')),
  OUTPUT_S3_REGION: optional(nonEmpty),
  OUTPUT_S3_ACCESS_KEY_ID: optional(nonEmpty),
  OUTPUT_S3_SECRET_ACCESS_KEY: optional(nonEmpty),
  OUTPUT_S3_FORCE_PATH_STYLE: optional(z.enum(['true', 'false'])),
  LOG_LEVEL: optional(z.enum(['debug', 'info', 'warn', 'error'])),
  RETENTION_DAYS: optional(z.string()),
  // A chunk of the chunked workflow's Batch route: the run it belongs to, set by the state machine's
  // container overrides (from its own manifest), so the worker emits the run's per-chunk progress metrics.
  RUN_ID: optional(nonEmpty),
  CHUNK_INDEX: optional(z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number)),
  RUN_CUSTOMER_ID: optional(nonEmpty),
  RUN_TENANT_ID: optional(nonEmpty),
  RUN_BATCH_ID: optional(nonEmpty),
  RUN_DEPLOYMENT: optional(nonEmpty),
  RUN_SNAPSHOT_ID: optional(nonEmpty),
});

export type WorkerEnv = z.infer<typeof envSchema>;

/** Where the chunk comes from. */
export type ChunkSource =
  | { kind: 'whole' }
  | { kind: 'range'; startByte: number; endByte: number }
  | { kind: 'manifest'; bucket: string; key: string; index: number };

export interface WorkerConfig {
  env: WorkerEnv;
  jobId: string;
  operation: string;
  operationConfig?: unknown;
  input?: { bucket: string; key: string };
  output: { bucket: string; key: string };
  chunk: ChunkSource;
  maxRejectRatio?: number;
  maxRecordBytes?: number;
  /** retention-days tag of every object the worker writes to the platform's S3 (RETENTION_DAYS; absent: 30). */
  retentionDays: number;
  outputStore: {
    endpoint?: string;
    region?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    forcePathStyle?: boolean;
  };
}

/** Validates an environment (process.env, or the body of POST /process) into the worker's config. */
export function parseConfig(source: Record<string, unknown>): WorkerConfig {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = source[key];
    // POST /process bodies may carry numbers and objects; the environment only has strings.
    if (v === undefined || v === null) continue;
    raw[key] = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? 'environment');
    const problem = raw[variable] === undefined ? 'is required but not set' : issue.message;
    throw new ConfigError(variable, problem);
  }
  const env = parsed.data;

  let chunk: ChunkSource = { kind: 'whole' };
  const hasStart = env.CHUNK_START_BYTE !== undefined;
  const hasEnd = env.CHUNK_END_BYTE !== undefined;
  if (hasStart !== hasEnd) {
    throw new ConfigError(hasStart ? 'CHUNK_END_BYTE' : 'CHUNK_START_BYTE', 'is required when the other chunk bound is set');
  }
  if (hasStart && hasEnd) {
    if (env.CHUNK_END_BYTE! < env.CHUNK_START_BYTE!) {
      throw new ConfigError('CHUNK_END_BYTE', `(${env.CHUNK_END_BYTE}) must be >= CHUNK_START_BYTE (${env.CHUNK_START_BYTE})`);
    }
    chunk = { kind: 'range', startByte: env.CHUNK_START_BYTE!, endByte: env.CHUNK_END_BYTE! };
  }
  if (env.MANIFEST_S3_KEY !== undefined) {
    if (hasStart) throw new ConfigError('MANIFEST_S3_KEY', 'cannot be combined with CHUNK_START_BYTE/CHUNK_END_BYTE');
    if (env.AWS_BATCH_JOB_ARRAY_INDEX === undefined) {
      throw new ConfigError('AWS_BATCH_JOB_ARRAY_INDEX', 'is required with MANIFEST_S3_KEY (run the job as an array job)');
    }
    if (!env.OUTPUT_S3_KEY.includes('{index}')) {
      throw new ConfigError('OUTPUT_S3_KEY', 'must contain {index} with MANIFEST_S3_KEY, or the array children overwrite each other');
    }
    chunk = {
      kind: 'manifest',
      bucket: env.MANIFEST_S3_BUCKET ?? env.OUTPUT_S3_BUCKET,
      key: env.MANIFEST_S3_KEY,
      index: env.AWS_BATCH_JOB_ARRAY_INDEX,
    };
  } else {
    if (env.INPUT_S3_BUCKET === undefined) throw new ConfigError('INPUT_S3_BUCKET', 'is required but not set');
    if (env.INPUT_S3_KEY === undefined) throw new ConfigError('INPUT_S3_KEY', 'is required but not set');
  }

  let retentionDays: number;
  try {
    retentionDays = retentionDaysFrom({ RETENTION_DAYS: env.RETENTION_DAYS });
  } catch (err) {
    throw new ConfigError(RETENTION_DAYS_ENV, (err as Error).message.replace(/^RETENTION_DAYS /, ''));
  }

  return {
    env,
    jobId: env.JOB_ID,
    retentionDays,
    operation: env.OPERATION,
    operationConfig: env.OPERATION_CONFIG,
    input: env.INPUT_S3_BUCKET && env.INPUT_S3_KEY ? { bucket: env.INPUT_S3_BUCKET, key: env.INPUT_S3_KEY } : undefined,
    output: { bucket: env.OUTPUT_S3_BUCKET, key: env.OUTPUT_S3_KEY },
    chunk,
    maxRejectRatio: env.MAX_REJECT_RATIO,
    maxRecordBytes: env.MAX_RECORD_BYTES,
    outputStore: {
      endpoint: env.OUTPUT_S3_ENDPOINT,
      region: env.OUTPUT_S3_REGION,
      accessKeyId: env.OUTPUT_S3_ACCESS_KEY_ID,
      secretAccessKey: env.OUTPUT_S3_SECRET_ACCESS_KEY,
      forcePathStyle: env.OUTPUT_S3_FORCE_PATH_STYLE === undefined ? undefined : env.OUTPUT_S3_FORCE_PATH_STYLE === 'true',
    },
  };
}
