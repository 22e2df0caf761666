import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { InputFormat, RUN_ID_PATTERN, RUN_IDENTITY_FIELDS, RunIdentity, UNSET_IDENTITY } from '../planner/run-layout';

/** Default target size of a chunk, from the seed workload (60M records in 500K-record chunks). */
export const DEFAULT_CHUNK_RECORDS = 500_000;
/** Chunks estimated at up to this many records run on Lambda; larger ones on Batch. */
export const DEFAULT_LAMBDA_MAX_RECORDS = 1_000_000;

/** What a caller gives the workflow (the execution input). */
export interface RunRequest {
  readonly runId?: string;
  readonly bucket: string;
  /** One object to process; exactly one of `key` and `prefix`. */
  readonly key?: string;
  /** Every object under the prefix (keys under `runs/` are ignored). */
  readonly prefix?: string;
  readonly operation: string;
  /** @default 500000 */
  readonly chunkRecords?: number;
  /** Target bytes per chunk; wins over chunkRecords when given. */
  readonly chunkBytes?: number;
  /** @default - from the key's extension */
  readonly format?: InputFormat;
  /** JSON object or JSON text handed to the operation (`OPERATION_CONFIG`). */
  readonly operationConfig?: unknown;
  /** @default - the stack's LAMBDA_MAX_RECORDS (1,000,000) */
  readonly lambdaMaxRecords?: number;
  /** The seed's input document fields naming whose run this is (see RUN_IDENTITY_FIELDS). */
  readonly customerId?: string;
  readonly tenantId?: string;
  readonly batchId?: string;
  readonly deployment?: string;
  readonly snapshotId?: string;
  /**
   * Retry a finished run (`batchctl runs retry`): rerun only the chunks that failed or whose bytes
   * changed, with the run's original chunk rule, and merge into the same result.
   * @default false
   */
  readonly retry?: boolean;
}

/** The validated, normalized request every later step works from: the RunRequest fields, checked, plus these. */
export interface ValidatedRun extends Omit<RunRequest, 'runId' | 'operationConfig' | 'lambdaMaxRecords' | keyof RunIdentity> {
  readonly runId: string;
  /** The identifying fields, every one set (`"none"` when the input left it out). */
  readonly identity: RunIdentity;
  /** Always JSON text (what the worker reads from OPERATION_CONFIG). */
  readonly operationConfig: string;
  readonly lambdaMaxRecords: number;
}

/** Thrown for input a user must fix; Step Functions sees the error name `InvalidRunInput`. */
export class InvalidRunInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRunInput';
  }
}

const FORMATS: readonly InputFormat[] = ['jsonl', 'csv', 'json-array'];

/**
 * An identifying field becomes a Batch job tag value and a CloudWatch metric dimension value, so it
 * keeps to the characters both accept.
 */
export const IDENTITY_VALUE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/=+@-]{0,127}$/;
const identityValue = z
  .string({ error: (i) => `must be a string, got ${describe(i.input)}` })
  .regex(IDENTITY_VALUE_PATTERN, {
    error: (i) => `(${describe(i.input)}) is not allowed; allowed: 1-128 characters of A-Z a-z 0-9 . _ : / = + @ -, starting with a letter or digit`,
  });
const identitySchema = z.object(Object.fromEntries(RUN_IDENTITY_FIELDS.map((f) => [f, identityValue.optional()])));

/** The identity fields of a run input, each checked; problems name the field, the value and what is allowed. */
export function parseIdentity(raw: Record<string, unknown>, problems: string[]): RunIdentity {
  const picked = Object.fromEntries(RUN_IDENTITY_FIELDS.filter((f) => raw[f] !== undefined && raw[f] !== null).map((f) => [f, raw[f]]));
  const parsed = identitySchema.safeParse(picked);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')} ${issue.message}`);
    return { ...UNSET_IDENTITY };
  }
  const out: Record<string, string> = { ...UNSET_IDENTITY };
  for (const [k, v] of Object.entries(parsed.data)) if (typeof v === 'string') out[k] = v;
  return out as unknown as RunIdentity;
}

export interface ValidateOptions {
  /** Names of the operations the worker knows (its registry). */
  readonly operations: readonly string[];
  /** Used as run id when the request has none (the Step Functions execution name). */
  readonly defaultRunId?: string;
  /** @default DEFAULT_LAMBDA_MAX_RECORDS */
  readonly defaultLambdaMaxRecords?: number;
}

/**
 * Checks the shape of a run request without touching S3, collecting every problem into one message
 * so a user fixes them in one go.
 */
export function validateRunRequest(raw: unknown, options: ValidateOptions): ValidatedRun {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidRunInputError(`run input must be a JSON object, got ${describe(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = r[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length === 0) {
      problems.push(`${name} (${describe(v)}) must be a non-empty string`);
      return undefined;
    }
    return v;
  };
  const positiveInt = (name: string, min = 1): number | undefined => {
    const v = r[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      problems.push(`${name} (${describe(v)}) must be a whole number >= ${min}`);
      return undefined;
    }
    return v;
  };

  const bucket = str('bucket');
  if (r.bucket === undefined) problems.push('bucket is required');
  const key = str('key');
  const prefix = typeof r.prefix === 'string' ? r.prefix : undefined;
  if (r.prefix !== undefined && typeof r.prefix !== 'string') problems.push(`prefix (${describe(r.prefix)}) must be a string`);
  if ((key === undefined) === (r.prefix === undefined)) problems.push('give exactly one of key and prefix');
  const operation = str('operation');
  if (r.operation === undefined) problems.push('operation is required');
  else if (operation !== undefined && !options.operations.includes(operation)) {
    problems.push(`operation (${JSON.stringify(operation)}) is unknown; allowed: ${options.operations.join(', ')}`);
  }
  const chunkRecords = positiveInt('chunkRecords');
  const chunkBytes = positiveInt('chunkBytes');
  const lambdaMaxRecords = positiveInt('lambdaMaxRecords', 0);
  const format = str('format');
  if (format !== undefined && !FORMATS.includes(format as InputFormat)) {
    problems.push(`format (${JSON.stringify(format)}) is unknown; allowed: ${FORMATS.join(', ')}`);
  }
  let operationConfig = '{}';
  if (r.operationConfig !== undefined && r.operationConfig !== null) {
    if (typeof r.operationConfig === 'string') {
      try {
        JSON.parse(r.operationConfig);
        operationConfig = r.operationConfig;
      } catch (err) {
        problems.push(`operationConfig is not valid JSON: ${(err as Error).message}`);
      }
    } else {
      operationConfig = JSON.stringify(r.operationConfig);
    }
  }
  if (r.retry !== undefined && r.retry !== null && typeof r.retry !== 'boolean') problems.push(`retry (${describe(r.retry)}) must be true or false`);
  const identity = parseIdentity(r, problems);
  const runId = str('runId') ?? sanitizeRunId(options.defaultRunId);
  if (runId === undefined) problems.push('runId is required (no execution name to default to)');
  else if (!RUN_ID_PATTERN.test(runId)) {
    problems.push(`runId (${JSON.stringify(runId)}) is invalid; allowed: 1-80 characters of A-Z a-z 0-9 _ -, starting with a letter or digit`);
  }
  if (problems.length > 0) throw new InvalidRunInputError(`invalid run input: ${problems.join('; ')}`);
  return {
    runId: runId!,
    bucket: bucket!,
    ...(key !== undefined ? { key } : { prefix }),
    operation: operation!,
    ...(chunkRecords !== undefined ? { chunkRecords } : {}),
    ...(chunkBytes !== undefined ? { chunkBytes } : {}),
    ...(format !== undefined ? { format: format as InputFormat } : {}),
    operationConfig,
    lambdaMaxRecords: lambdaMaxRecords ?? options.defaultLambdaMaxRecords ?? DEFAULT_LAMBDA_MAX_RECORDS,
    identity,
    ...(r.retry === true ? { retry: true } : {}),
  };
}

/** Execution names allow characters run ids do not (they name S3 prefixes and Batch jobs). */
function sanitizeRunId(name: string | undefined): string | undefined {
  if (!name) return undefined;
  const cleaned = name.replace(/[^A-Za-z0-9_-]/g, '-').replace(/^[-_]+/, '').slice(0, 80);
  return cleaned.length > 0 ? cleaned : undefined;
}

/**
 * Confirms the input exists and is readable: HeadObject for a key, one listing page for a prefix.
 * Runs before any chunk so a typo fails in seconds, not after a Batch job started.
 */
export async function checkInputExists(s3: S3Client, run: ValidatedRun): Promise<void> {
  if (run.key !== undefined) {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: run.bucket, Key: run.key }));
    } catch (err) {
      throw new InvalidRunInputError(`input s3://${run.bucket}/${run.key} cannot be read: ${s3ErrorText(err)}`);
    }
    return;
  }
  let page;
  try {
    page = await s3.send(new ListObjectsV2Command({ Bucket: run.bucket, Prefix: run.prefix, MaxKeys: 1000 }));
  } catch (err) {
    throw new InvalidRunInputError(`input prefix s3://${run.bucket}/${run.prefix} cannot be listed: ${s3ErrorText(err)}`);
  }
  const usable = (page.Contents ?? []).filter((o) => o.Key && !o.Key.startsWith('runs/') && !o.Key.endsWith('/'));
  if (usable.length === 0 && !page.IsTruncated) {
    throw new InvalidRunInputError(`input prefix s3://${run.bucket}/${run.prefix} holds no objects`);
  }
}

/** S3 404s on HEAD carry no message; say what they mean. */
export function s3ErrorText(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  if (status === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey') return 'no such object (404)';
  if (status === 403 || e?.name === 'AccessDenied' || e?.name === 'Forbidden') return 'access denied (403)';
  if (e?.name === 'NoSuchBucket') return 'no such bucket';
  return `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
