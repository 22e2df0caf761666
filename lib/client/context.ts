import { BatchClient } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BatchClientError, InvalidRequestError } from './errors';
import { RetryPolicy, withRetry } from './retry';
import { S3Location } from './types';

/**
 * What the client's modules (staging, submission, lookup, waiting, results) share: the settings of
 * one BatchJobClient, its SDK clients and its two caches. Internal: not exported from the package.
 */
export interface ClientContext {
  readonly jobQueue: string;
  readonly jobDefinition?: string;
  readonly inputBucket: string;
  readonly outputBucket: string;
  readonly jobNamePrefix: string;
  readonly batch: BatchClient;
  readonly s3: S3Client;
  readonly logs: CloudWatchLogsClient;
  readonly retry: RetryPolicy;
  readonly maxOverridesBytes: number;
  readonly lockStaleMs: number;
  readonly lockWaitMs: number;
  readonly logGroupOverride?: string;
  readonly retentionDaysValues: readonly number[];
  /** Whether the queue uses fair-share scheduling (looked up once; a failed lookup is not kept). */
  fairShare?: Promise<boolean>;
  /** awslogs-group per job definition. */
  readonly logGroups: Map<string, Promise<string>>;
}

export function call<T>(ctx: ClientContext, operation: string, fn: () => Promise<T>): Promise<T> {
  return withRetry(operation, ctx.retry, fn);
}

/** The object's text, or undefined when it does not exist. */
export async function getText(ctx: ClientContext, location: S3Location): Promise<string | undefined> {
  try {
    const res = await call(ctx, 'GetObject', () => ctx.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key })));
    return await res.Body!.transformToString('utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export function mapError(err: unknown, operation: string): unknown {
  if (err instanceof BatchClientError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'ClientException' || e?.$metadata?.httpStatusCode === 400) {
    return new InvalidRequestError(`${operation} rejected the request: ${e.message}`, [], { cause: err });
  }
  return err;
}

export function toDate(ms: number | undefined): Date | undefined {
  return ms === undefined ? undefined : new Date(ms);
}

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** 412 PreconditionFailed, or 409 ConditionalRequestConflict when two conditional writes race. */
export function isConditionFailure(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 412 || e?.$metadata?.httpStatusCode === 409 || e?.name === 'PreconditionFailed';
}
