import { S3Client } from '@aws-sdk/client-s3';
import { retentionDaysFrom, tagWrites } from '../../containers/worker/src/retention';
import { positiveOr } from '../validate-input';
import { DEFAULT_CHUNK_RECORDS, DEFAULT_LAMBDA_MAX_RECORDS, validateRunRequest } from '../validate-input/validate';
import { chunkableOperations } from './operations';
import { PlanOutput, planRun } from './plan';

export interface PlannerHandlerDeps {
  readonly s3: S3Client;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The PlanChunks state: takes the validated run (ValidateInput's output), writes
 * `runs/{runId}/manifest.jsonl` + `plan.json` to RUNS_BUCKET and returns a small plan summary
 * (never the chunk list: the Distributed Map reads that from S3).
 */
export function createPlannerHandler(deps: PlannerHandlerDeps): (event: unknown) => Promise<PlanOutput> {
  const env = deps.env ?? process.env;
  const runsBucket = env.RUNS_BUCKET;
  // runs/{runId}/manifest.jsonl and plan.json expire by the stage's retention (RETENTION_DAYS).
  const s3 = tagWrites(deps.s3, { retentionDays: retentionDaysFrom(env) });
  return async (event) => {
    if (!runsBucket) throw new Error('RUNS_BUCKET is not set: the planner does not know where to write the manifest');
    // Validated again: the planner can be invoked on its own, and it must never plan a bad request.
    const run = validateRunRequest(event, {
      operations: chunkableOperations(),
      defaultLambdaMaxRecords: positiveOr(env.LAMBDA_MAX_RECORDS, DEFAULT_LAMBDA_MAX_RECORDS),
    });
    const withDefaults =
      run.chunkRecords === undefined && run.chunkBytes === undefined
        ? { ...run, chunkRecords: positiveOr(env.DEFAULT_CHUNK_RECORDS, DEFAULT_CHUNK_RECORDS) || DEFAULT_CHUNK_RECORDS }
        : run;
    return planRun(withDefaults, { s3, runsBucket });
  };
}

let live: ((event: unknown) => Promise<PlanOutput>) | undefined;

export async function handler(event: unknown): Promise<PlanOutput> {
  live ??= createPlannerHandler({ s3: new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' }) });
  return live(event);
}
