import { BatchClient } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { RetryStrategyV2 } from '@smithy/types';
import { BatchClientError, InvalidRequestError, toClientError } from './errors';
import type { JobRoutes } from './routing';
import type { SizingLimits } from './policy/sizing';
import type { QuotaSettings } from './quota';
import { withRetry } from './retry';
import { S3Location } from './types';

/**
 * What the client's modules (staging, submission, lookup, waiting, results) share: the settings of
 * one BatchJobClient, its SDK clients and its two caches. Internal: not exported from the package.
 */
export interface ClientContext {
  readonly jobQueue: string;
  readonly jobDefinition?: string;
  /** Routes of operations placed elsewhere (routing.ts). */
  readonly routes?: JobRoutes;
  /** The client's queue and every route's: where status and cancel look for a job. */
  readonly jobQueues: readonly string[];
  readonly inputBucket: string;
  readonly outputBucket: string;
  readonly jobNamePrefix: string;
  readonly batch: BatchClient;
  readonly s3: S3Client;
  readonly logs: CloudWatchLogsClient;
  /** The SDK retry strategy every call of this client goes through (one token bucket / rate limiter). */
  readonly retryStrategy: RetryStrategyV2;
  /** Pause between polls of the submit lock and of `logs --follow` (injected by tests). */
  readonly sleep: (ms: number) => Promise<void>;
  readonly maxOverridesBytes: number;
  readonly lockStaleMs: number;
  readonly lockWaitMs: number;
  readonly logGroupOverride?: string;
  readonly retentionDaysValues: readonly number[];
  /** The stack's ceiling on vcpus / memoryMiB per job. */
  readonly sizingLimits: SizingLimits;
  /** Per-tenant admission quotas (quota.ts), when the stack has a quota table. */
  readonly quota?: QuotaSettings;
  /** Whether the client's queue uses fair-share scheduling (given, or looked up once; a failed lookup is not kept). */
  fairShare?: Promise<boolean>;
  /** The same for each routed queue, by queue. */
  readonly routedFairShare: Map<string, Promise<boolean>>;
  /** awslogs-group per job definition. */
  readonly logGroups: Map<string, Promise<string>>;
}

/** The AWS operation an error came from, so the facade can name it (errors stay raw inside the modules). */
const failedOperation = new WeakMap<object, string>();

/** One AWS call under the client's retry strategy; a final failure remembers its operation. */
export async function call<T>(ctx: ClientContext, operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withRetry(operation, ctx.retryStrategy, fn);
  } catch (err) {
    if (err && typeof err === 'object' && !failedOperation.has(err)) failedOperation.set(err, operation);
    throw err;
  }
}

/**
 * A view of an SDK client whose `send` goes through `call` (so through the retry strategy), for the
 * SDK paginators, which call `client.send` themselves and require an instance of the client class.
 */
export function retrying<C extends { send(command: never): Promise<unknown> }>(ctx: ClientContext, client: C, operation: string): C {
  const send = (command: never) => call(ctx, operation, () => client.send(command));
  return Object.create(client, { send: { value: send } }) as C;
}

/** Any error leaving the client -> a typed BatchClientError naming the operation, with request id and hint. */
export function publicError(ctx: ClientContext, err: unknown, fallbackOperation: string): BatchClientError {
  const operation = (typeof err === 'object' && err !== null ? failedOperation.get(err) : undefined) ?? fallbackOperation;
  const e = err as { name?: string };
  const bucket = e?.name === 'NoSuchBucket' ? ctx.inputBucket + (ctx.outputBucket !== ctx.inputBucket ? ` or ${ctx.outputBucket}` : '') : undefined;
  return toClientError(err, operation, { bucket });
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
