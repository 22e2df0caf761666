import { z } from 'zod';
import { FieldError, InvalidRequestError } from './errors';

/** Names the worker reads (issue 3, "Environment contract"); callers may not override them. */
export const CONTRACT_ENV_NAMES = [
  'JOB_ID',
  'OPERATION',
  'INPUT_S3_BUCKET',
  'INPUT_S3_KEY',
  'OUTPUT_S3_BUCKET',
  'OUTPUT_S3_KEY',
  'TENANT_ID',
  'USER_ID',
  'CALLBACK_URL',
  'OPERATION_CONFIG',
  'RETENTION_DAYS',
] as const;

export const DEFAULT_RETENTION_DAYS = 30;

/** A platform job id: also a path segment and part of a Batch job name (128 chars max). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Batch job names: letters, digits, `-` and `_`, first character alphanumeric, 1-128 characters. */
export const JOB_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** What tag values accept (S3 object tags and Batch job tags). */
const TAG_VALUE_PATTERN = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

const tagValue = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(256, `${what} must be at most 256 characters`)
    .regex(TAG_VALUE_PATTERN, `${what} may contain letters, digits, spaces and _ . : / = + - @ only (it becomes a tag value)`);

const jsonObject = z.record(z.string(), z.unknown());

export const submitRequestSchema = z
  .strictObject({
    operation: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'operation must be a lower-case name like "aggregate-defects" (letters, digits, -)'),
    input: z.unknown().optional(),
    inputKey: z.string().min(1).max(1024).optional(),
    jobId: z.string().regex(JOB_ID_PATTERN, 'jobId must be 1-64 letters, digits, - or _, starting with a letter or digit').optional(),
    jobName: z.string().regex(JOB_NAME_PATTERN, 'jobName must be 1-128 letters, digits, - or _, starting with a letter or digit').optional(),
    tenantId: tagValue('tenantId').optional(),
    userId: tagValue('userId').optional(),
    callbackUrl: z.url({ protocol: /^https?$/, error: 'callbackUrl must be an http(s) URL' }).optional(),
    retentionDays: z.number().int('retentionDays must be a whole number').min(1).max(3650).default(DEFAULT_RETENTION_DAYS),
    shareIdentifier: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,255}$/, 'shareIdentifier must be 1-255 letters, digits or _')
      .optional(),
    schedulingPriority: z.number().int().min(0).max(9999).optional(),
    operationConfig: jsonObject.optional(),
    clientToken: z.string().min(1).max(256).optional(),
    timeoutSeconds: z.number().int().min(60, 'timeoutSeconds must be >= 60 (the Batch minimum)').optional(),
    environment: z.record(z.string(), z.string()).optional(),
    /** vCPUs of this job (containerOverrides.resourceRequirements), within what the operation and the stack allow. */
    vcpus: z.number({ error: 'vcpus must be a number' }).positive('vcpus must be > 0').optional(),
    /** Memory of this job in MiB, within what the operation and the stack allow. */
    memoryMiB: z.number({ error: 'memoryMiB must be a number' }).int('memoryMiB must be a whole number of MiB').positive('memoryMiB must be > 0').optional(),
  })
  .superRefine((req, ctx) => {
    const hasInput = req.input !== undefined;
    if (hasInput === (req.inputKey !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: hasInput ? ['inputKey'] : ['input'],
        message: hasInput
          ? 'give either input (staged as jobs/{jobId}/inputs.json) or inputKey (an object already in the input bucket), not both'
          : 'input (any JSON value) or inputKey (an object already in the input bucket) is required',
      });
    }
    for (const name of Object.keys(req.environment ?? {})) {
      let problem: string | undefined;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) problem = 'is not a valid environment variable name';
      else if (name.startsWith('AWS_BATCH')) problem = 'starts with AWS_BATCH, which Batch reserves';
      else if ((CONTRACT_ENV_NAMES as readonly string[]).includes(name)) problem = 'is set by the client from the request (worker contract)';
      if (problem) ctx.addIssue({ code: 'custom', path: ['environment', name], message: `${name} ${problem}` });
    }
  });

export type SubmitRequestInput = z.input<typeof submitRequestSchema>;
export type SubmitRequest = z.output<typeof submitRequestSchema>;

/** Validates a submit request; every problem becomes one field error of an InvalidRequestError. */
export function parseSubmitRequest(raw: unknown): SubmitRequest {
  const parsed = submitRequestSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new InvalidRequestError('invalid submit request', issuesToFieldErrors(parsed.error.issues, raw));
}

/** zod issues -> `{ field, message, value }`, the shape the HTTP API returns in a 400. */
export function issuesToFieldErrors(issues: readonly z.core.$ZodIssue[], raw: unknown): FieldError[] {
  return issues.map((issue) => {
    const field = issue.path.map(String).join('.') || '(body)';
    const value = valueAt(raw, issue.path);
    const short = value === undefined || JSON.stringify(value)?.length > 200 ? undefined : value;
    return short === undefined ? { field, message: issue.message } : { field, message: issue.message, value: short };
  });
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}
