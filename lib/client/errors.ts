/**
 * Typed errors of the BatchJobClient. Each carries a stable `code` and the CLI exit code it maps to,
 * so scripts, the CLI and the HTTP handlers can react without parsing messages.
 */
export abstract class BatchClientError extends Error {
  /** Stable machine-readable code, e.g. `JOB_NOT_FOUND`. */
  public abstract readonly code: string;
  /** The batchctl exit code for this error (docs/submitting.md: 1 failed, 2 invalid, 3 not found, 4 timeout, 5 conflict). */
  public abstract readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
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
  public readonly exitCode = 2;
  constructor(message: string, public readonly errors: FieldError[] = [], options?: { cause?: unknown }) {
    super(errors.length ? `${message}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}` : message, options);
  }
}

/** No job with this id in the client's queue (or not visible to this tenant). */
export class JobNotFoundError extends BatchClientError {
  public readonly code = 'JOB_NOT_FOUND';
  public readonly exitCode = 3;
  constructor(public readonly jobId: string) {
    super(`job ${jobId} not found in the job queue (Batch keeps finished jobs for about 7 days)`);
  }
}

/** AWS kept throttling after every retry. */
export class ThrottledError extends BatchClientError {
  public readonly code = 'THROTTLED';
  public readonly exitCode = 1;
  constructor(public readonly operation: string, public readonly attempts: number, options?: { cause?: unknown }) {
    super(`${operation} was throttled ${attempts} times; slow down (SubmitJob allows about 50 calls per second per account) or raise maxRetries`, options);
  }
}

/** The job ended FAILED. */
export class JobFailedError extends BatchClientError {
  public readonly code = 'JOB_FAILED';
  public readonly exitCode = 1;
  constructor(public readonly jobId: string, public readonly reason: string | undefined, public readonly jobExitCode: number | undefined) {
    super(`job ${jobId} failed: ${reason ?? 'no reason given'}${jobExitCode === undefined ? '' : ` (exit code ${jobExitCode})`}`);
  }
}

/** `wait` gave up before the job reached SUCCEEDED or FAILED. */
export class WaitTimeoutError extends BatchClientError {
  public readonly code = 'WAIT_TIMEOUT';
  public readonly exitCode = 4;
  constructor(public readonly jobId: string, public readonly timeoutMs: number, public readonly lastStatus: string | undefined) {
    super(`job ${jobId} still ${lastStatus ?? 'unknown'} after ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** `result` was asked for before the job wrote its output. */
export class ResultNotReadyError extends BatchClientError {
  public readonly code = 'RESULT_NOT_READY';
  public readonly exitCode = 1;
  constructor(public readonly jobId: string, public readonly status: string, public readonly location: string) {
    super(`job ${jobId} is ${status} and ${location} does not exist yet; run \`batchctl wait ${jobId}\` first`);
  }
}

/** A caller-chosen job id that already belongs to another submission: nothing was staged, overwritten or submitted. */
export class JobIdConflictError extends BatchClientError {
  public readonly code = 'JOB_ID_CONFLICT';
  /** batchctl exit code 5: conflict. */
  public readonly exitCode = 5;
  constructor(public readonly jobId: string, public readonly batchJobId?: string) {
    super(`job id ${jobId} is already taken${batchJobId ? ` (Batch job ${batchJobId})` : ''}; choose another --job-id, or use a client token to retry the same submission`);
  }
}

/** The idempotency key (client token) was used before with a different request: nothing was submitted. */
export class IdempotencyConflictError extends BatchClientError {
  public readonly code = 'IDEMPOTENCY_CONFLICT';
  /** batchctl exit code 5: conflict. */
  public readonly exitCode = 5;
  constructor(public readonly jobId: string, public readonly batchJobId?: string) {
    super(`the client token was already used for job ${jobId} with a different request; use a new token for a new request`);
  }
}
