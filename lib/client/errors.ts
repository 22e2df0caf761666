/**
 * Typed errors of the BatchJobClient. Each carries a stable `code` and the batchctl exit code it maps
 * to, so scripts, the CLI and the HTTP handlers can react without parsing messages. Errors that come
 * from an AWS response carry its request id (`requestId`, for AWS support) and, for the usual setup
 * mistakes (credentials, region, endpoint, missing bucket), a `hint` saying what to fix.
 */

/** batchctl exit codes (docs/submitting.md "Exit codes"): one per kind of outcome a script acts on. */
export const EXIT_CODES = {
  /** Success. */
  OK: 0,
  /** The job ran and ended FAILED. */
  JOB_FAILED: 1,
  /** Usage, configuration, validation or input-file error: nothing was submitted or changed. */
  USAGE: 2,
  /** No such job in the queue, or a finished job wrote no output. */
  NOT_FOUND: 3,
  /** `wait` gave up before the job finished. */
  TIMEOUT: 4,
  /** AWS or the network failed: credentials, region, endpoint, missing bucket, throttling after retries, any other AWS error. */
  INFRASTRUCTURE: 5,
  /** The request contradicts the job's state: cancel of a finished job, result of an unfinished one, a job id that already exists. */
  CONFLICT: 6,
  /** Refused by a per-tenant quota (active jobs or submissions per minute): retry after `retryAfterSeconds`. */
  QUOTA: 7,
  /** Interrupted (SIGINT) while waiting. */
  INTERRUPTED: 130,
} as const;

export interface ErrorDetails {
  readonly cause?: unknown;
  /** `$metadata.requestId` of the AWS response. */
  readonly requestId?: string;
  /** What to check or fix. */
  readonly hint?: string;
}

export abstract class BatchClientError extends Error {
  /** Stable machine-readable code, e.g. `JOB_NOT_FOUND`. */
  public abstract readonly code: string;
  /** The batchctl exit code for this error (EXIT_CODES). */
  public abstract readonly exitCode: number;
  /** The AWS request id of the failed call, when AWS answered. */
  public readonly requestId?: string;
  /** What to check or fix, for the usual setup mistakes. */
  public readonly hint?: string;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.requestId = details.requestId ?? requestIdOf(details.cause);
    this.hint = details.hint;
  }

  /** The JSON shape batchctl --json prints on stderr. */
  public toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, requestId: this.requestId };
  }
}

export interface FieldError {
  /** Dotted path of the offending field (`input`, `environment.FOO`, `retentionDays`). */
  readonly field: string;
  readonly message: string;
  /** The value given (omitted when it is large or absent). */
  readonly value?: unknown;
}

/** The request is wrong and no AWS call was made (or AWS rejected it as a client error). */
export class InvalidRequestError extends BatchClientError {
  public readonly code = 'INVALID_REQUEST';
  public readonly exitCode = EXIT_CODES.USAGE;
  constructor(message: string, public readonly errors: FieldError[] = [], details?: ErrorDetails) {
    super(errors.length ? `${message}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}` : message, details);
  }

  public override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), errors: this.errors };
  }
}

/** No job with this id in the client's queue (or not visible to this tenant). */
export class JobNotFoundError extends BatchClientError {
  public readonly code = 'JOB_NOT_FOUND';
  public readonly exitCode = EXIT_CODES.NOT_FOUND;
  constructor(public readonly jobId: string, public readonly jobQueue?: string) {
    super(`job ${jobId} not found in the job queue${jobQueue ? ` ${jobQueue}` : ''} (Batch keeps finished jobs for about 7 days)`);
  }
}

/** The job SUCCEEDED but its output object does not exist. */
export class OutputNotFoundError extends BatchClientError {
  public readonly code = 'OUTPUT_NOT_FOUND';
  public readonly exitCode = EXIT_CODES.NOT_FOUND;
  constructor(public readonly jobId: string, public readonly location: string) {
    super(`job ${jobId} SUCCEEDED but ${location} does not exist: the operation wrote no output there, or it expired (retention-days) or was deleted`);
  }
}

/** A result a command reads (e.g. a day's road-metrics result for `batchctl report`) does not exist. */
export class ResultNotFoundError extends BatchClientError {
  public readonly code = 'RESULT_NOT_FOUND';
  public readonly exitCode = EXIT_CODES.NOT_FOUND;
}

/** The request contradicts the state of a job (e.g. a job id that already exists). */
export class ConflictError extends BatchClientError {
  public readonly code: string = 'CONFLICT';
  public readonly exitCode = EXIT_CODES.CONFLICT;
}

/** `cancel` of a job that is already SUCCEEDED or FAILED: nothing was changed. */
export class JobAlreadyFinishedError extends ConflictError {
  public override readonly code = 'JOB_ALREADY_FINISHED';
  constructor(public readonly jobId: string, public readonly status: string) {
    super(`job ${jobId} already finished (${status}); nothing to cancel`);
  }
}

/** `result` was asked for before the job wrote its output. */
export class ResultNotReadyError extends ConflictError {
  public override readonly code = 'RESULT_NOT_READY';
  constructor(public readonly jobId: string, public readonly status: string, public readonly location: string) {
    super(`job ${jobId} is ${status} and has not written ${location} yet; run \`batchctl wait ${jobId}\` first`);
  }
}

/** The job ended FAILED. */
export class JobFailedError extends BatchClientError {
  public readonly code = 'JOB_FAILED';
  public readonly exitCode = EXIT_CODES.JOB_FAILED;
  constructor(public readonly jobId: string, public readonly reason: string | undefined, public readonly jobExitCode: number | undefined) {
    super(`job ${jobId} failed: ${reason ?? 'no reason given'}${jobExitCode === undefined ? '' : ` (exit code ${jobExitCode})`}`);
  }
}

/** `wait` gave up before the job reached SUCCEEDED or FAILED. */
export class WaitTimeoutError extends BatchClientError {
  public readonly code = 'WAIT_TIMEOUT';
  public readonly exitCode = EXIT_CODES.TIMEOUT;
  constructor(public readonly jobId: string, public readonly timeoutMs: number, public readonly lastStatus: string | undefined) {
    super(`job ${jobId} still ${lastStatus ?? 'unknown'} after ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** `wait` stopped because its AbortSignal fired. */
export class WaitAbortedError extends BatchClientError {
  public readonly code = 'WAIT_ABORTED';
  public readonly exitCode = EXIT_CODES.INTERRUPTED;
  constructor(public readonly jobId: string, public readonly lastStatus: string | undefined) {
    super(`stopped waiting for job ${jobId} (last seen ${lastStatus ?? 'unknown'}); the job itself keeps running`);
  }
}

/** AWS kept throttling after every retry. */
export class ThrottledError extends BatchClientError {
  public readonly code = 'THROTTLED';
  public readonly exitCode = EXIT_CODES.INFRASTRUCTURE;
  constructor(public readonly operation: string, public readonly attempts: number, details?: ErrorDetails) {
    super(`${operation} was throttled ${attempts} times; slow down (SubmitJob allows about 50 calls per second per account) or raise maxRetries`, {
      hint: 'AWS is rate-limiting this account: lower the submit rate, or use retryMode "adaptive"',
      ...details,
    });
  }
}

/**
 * The tenant is at one of its quotas (quota.ts): nothing was staged or submitted. Retry after
 * `retryAfterSeconds` (the submit API answers 429 with Retry-After; the queue path keeps the message).
 */
export class QuotaExceededError extends BatchClientError {
  public readonly code = 'QUOTA_EXCEEDED';
  public readonly exitCode = EXIT_CODES.QUOTA;
  constructor(
    public readonly tenantId: string | undefined,
    public readonly limit: 'maxActiveJobs' | 'submissionsPerMinute',
    public readonly limitValue: number,
    public readonly retryAfterSeconds: number,
  ) {
    const who = tenantId === undefined ? 'requests without a tenant' : `tenant ${tenantId}`;
    const what = limit === 'maxActiveJobs' ? `${limitValue} active jobs` : `${limitValue} submissions per minute`;
    super(`quota exceeded: ${who} may have at most ${what}; retry after ${retryAfterSeconds} s`, {
      hint: limit === 'maxActiveJobs' ? 'wait for a job of this tenant to finish (or cancel one)' : 'spread submissions over time',
    });
  }

  public override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), limit: this.limit, limitValue: this.limitValue, retryAfterSeconds: this.retryAfterSeconds };
  }
}

/** An AWS call (or the network or credentials under it) failed. `awsCode` is the AWS error name. */
export class AwsError extends BatchClientError {
  public readonly code = 'AWS_ERROR';
  public readonly exitCode = EXIT_CODES.INFRASTRUCTURE;
  constructor(
    public readonly operation: string,
    public readonly awsCode: string,
    message: string,
    public readonly httpStatusCode: number | undefined,
    details?: ErrorDetails,
  ) {
    super(`${operation} failed: ${awsCode}: ${message}`, details);
  }

  public override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), operation: this.operation, awsCode: this.awsCode, httpStatusCode: this.httpStatusCode };
  }
}

interface RawAwsError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string; extendedRequestId?: string };
}

function requestIdOf(err: unknown): string | undefined {
  const e = err as RawAwsError | undefined;
  return (e && typeof e === 'object' && e.$metadata?.requestId) || undefined;
}

const CREDENTIAL_REJECTED = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidSignatureException',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** What to fix for the usual setup mistakes, or undefined. */
export function hintFor(err: unknown, context: { bucket?: string } = {}): string | undefined {
  const e = (err ?? {}) as RawAwsError;
  const name = e.name ?? '';
  const message = e.message ?? '';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return 'no AWS credentials found: set AWS_PROFILE (then `aws sso login` if it is an SSO profile) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';
  }
  if (CREDENTIAL_REJECTED.has(name)) {
    return 'AWS rejected the credentials: they are expired, mistyped, or for another partition; refresh them (`aws sso login`, `aws sts get-caller-identity` to check)';
  }
  if (/Region is missing/i.test(message) || name === 'UnknownEndpoint') {
    return 'no AWS region: give --region or set AWS_REGION (or a region in the AWS profile)';
  }
  if (name === 'AccessDenied' || name === 'AccessDeniedException') {
    return "the credentials lack permission for this call: use a role the platform granted access to (the stack's grantSubmit), or check --queue / --input-bucket point at your deployment";
  }
  if (name === 'NoSuchBucket') {
    return `the bucket${context.bucket ? ` ${context.bucket}` : ''} does not exist in this account and region: check --input-bucket / --output-bucket (or BATCH_INPUT_BUCKET / BATCH_OUTPUT_BUCKET), --region, or use --stack <name>`;
  }
  // The message test also catches errors the SDK re-wrapped ("AWS SDK error wrapper for Error: connect ECONNREFUSED").
  if (NETWORK_CODES.has(e.code ?? '') || NETWORK_CODES.has(name) || name === 'TimeoutError' || [...NETWORK_CODES].some((c) => message.includes(c))) {
    return 'could not reach the AWS endpoint: check the network, --region / AWS_REGION, and AWS_ENDPOINT_URL if you set one';
  }
  return undefined;
}

/**
 * Any failure of an AWS call -> a BatchClientError: kept when it already is one, else an AwsError
 * carrying the request id, the AWS error name, the HTTP status and a hint.
 */
export function toClientError(err: unknown, operation: string, context: { bucket?: string } = {}): BatchClientError {
  if (err instanceof BatchClientError) return err;
  const e = (err ?? {}) as RawAwsError;
  const awsCode = e.name && e.name !== 'Error' ? e.name : (e.code ?? 'Error');
  return new AwsError(operation, awsCode, e.message ?? String(err), e.$metadata?.httpStatusCode, { cause: err, hint: hintFor(err, context) });
}

/** A caller-chosen job id that already belongs to another submission: nothing was staged, overwritten or submitted. */
export class JobIdConflictError extends ConflictError {
  public override readonly code = 'JOB_ID_CONFLICT';
  constructor(public readonly jobId: string, public readonly batchJobId?: string) {
    super(`job id ${jobId} is already taken${batchJobId ? ` (Batch job ${batchJobId})` : ''}; choose another --job-id, or use a client token to retry the same submission`);
  }
}

/** The idempotency key (client token) was used before with a different request: nothing was submitted. */
export class IdempotencyConflictError extends ConflictError {
  public override readonly code = 'IDEMPOTENCY_CONFLICT';
  constructor(public readonly jobId: string, public readonly batchJobId?: string) {
    super(`the client token was already used for job ${jobId} with a different request; use a new token for a new request`);
  }
}
