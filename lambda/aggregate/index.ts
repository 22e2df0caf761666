import { S3Client } from '@aws-sdk/client-s3';
import { retentionDaysFrom, tagWrites } from '../../containers/worker/src/retention';
import { aggregateRun, AggregateEvent, RunSummary } from './aggregate';

export interface AggregateHandlerDeps {
  readonly s3: S3Client;
  readonly env?: NodeJS.ProcessEnv;
}

/** The AggregateResults state: RUNS_BUCKET and TOLERATED_FAILURE_PERCENTAGE come from the stack. */
export function createAggregateHandler(deps: AggregateHandlerDeps): (event: AggregateEvent) => Promise<RunSummary> {
  const env = deps.env ?? process.env;
  // runs/{runId}/result.json (or result.jsonl) and summary.json expire by the stage's retention (RETENTION_DAYS).
  const s3 = tagWrites(deps.s3, { retentionDays: retentionDaysFrom(env) });
  return async (event) => {
    const runsBucket = env.RUNS_BUCKET;
    if (!runsBucket) throw new Error('RUNS_BUCKET is not set: the aggregator does not know where the run lives');
    const tolerated = Number(env.TOLERATED_FAILURE_PERCENTAGE ?? '0');
    if (!Number.isFinite(tolerated) || tolerated < 0 || tolerated > 100) {
      throw new Error(`TOLERATED_FAILURE_PERCENTAGE (${env.TOLERATED_FAILURE_PERCENTAGE}) must be a number from 0 to 100`);
    }
    return aggregateRun(event, { s3, runsBucket, toleratedFailurePercentage: tolerated });
  };
}

let live: ((event: AggregateEvent) => Promise<RunSummary>) | undefined;

export async function handler(event: AggregateEvent): Promise<RunSummary> {
  live ??= createAggregateHandler({ s3: new S3Client({ forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true' }) });
  return live(event);
}
