import { S3Client } from '@aws-sdk/client-s3';
import { chunkableOperations } from '../planner/operations';
import { checkInputExists, DEFAULT_LAMBDA_MAX_RECORDS, validateRunRequest, ValidatedRun } from './validate';

/** What the workflow's ValidateInput state sends: the execution input and the execution name. */
export interface ValidateEvent {
  readonly input: unknown;
  readonly executionName?: string;
}

export interface ValidateDeps {
  readonly s3: S3Client;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * First state of a run: a bad request (unknown operation, non-positive chunk size, missing object)
 * fails here with `InvalidRunInput` and a message naming every problem, before any chunk runs.
 */
export function createValidateHandler(deps: ValidateDeps): (event: ValidateEvent) => Promise<ValidatedRun> {
  const env = deps.env ?? process.env;
  return async (event) => {
    const run = validateRunRequest(event.input, {
      operations: chunkableOperations(),
      defaultRunId: event.executionName,
      defaultLambdaMaxRecords: positiveOr(env.LAMBDA_MAX_RECORDS, DEFAULT_LAMBDA_MAX_RECORDS),
    });
    await checkInputExists(deps.s3, run);
    return run;
  };
}

export function positiveOr(raw: string | undefined, fallback: number): number {
  const n = Number(raw);
  return raw !== undefined && raw !== '' && Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

let live: ((event: ValidateEvent) => Promise<ValidatedRun>) | undefined;

export async function handler(event: ValidateEvent): Promise<ValidatedRun> {
  live ??= createValidateHandler({ s3: new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' }) });
  return live(event);
}
