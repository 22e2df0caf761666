import { PutObjectCommand } from '@aws-sdk/client-s3';
import { taggingHeader } from '../../containers/worker/src/retention';
import { call, ClientContext } from './context';
import { FieldError } from './errors';
import { S3Location } from './types';

/** Where a job's input is staged (or read from, with `inputKey`) and where the worker writes its output. */
export function stagingLocations(ctx: ClientContext, jobId: string, inputKey: string | undefined): { input: S3Location; output: S3Location } {
  return {
    input: { bucket: ctx.inputBucket, key: inputKey ?? `jobs/${jobId}/inputs.json` },
    output: { bucket: ctx.outputBucket, key: `jobs/${jobId}/output/result.json` },
  };
}

/** Every object the client writes carries the tags the bucket lifecycle rules expire it by. */
export function tagging(jobId: string, retentionDays: number): string {
  return taggingHeader({ retentionDays, jobId });
}

/** A retention-days value the staging buckets have no lifecycle rule for (such objects would never expire). */
export function retentionError(ctx: ClientContext, days: number): FieldError | undefined {
  if (ctx.retentionDaysValues.includes(days)) return undefined;
  return { field: 'retentionDays', message: `the staging buckets expire objects tagged retention-days ${ctx.retentionDaysValues.join(', ')} only`, value: days };
}

/** Writes the job's input document as JSON, tagged for expiry. */
export async function stageInput(ctx: ClientContext, location: S3Location, input: unknown, jobId: string, retentionDays: number, options: { ifNoneMatch?: boolean } = {}): Promise<void> {
  await call(ctx, 'PutObject', () =>
    ctx.s3.send(
      new PutObjectCommand({
        Bucket: location.bucket,
        Key: location.key,
        Body: JSON.stringify(input),
        ContentType: 'application/json',
        Tagging: tagging(jobId, retentionDays),
        IfNoneMatch: options.ifNoneMatch ? '*' : undefined,
      }),
    ),
  );
}
