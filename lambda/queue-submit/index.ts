import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { ChangeMessageVisibilityCommand, MessageAttributeValue, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import pLimit from 'p-limit';
import {
  BatchJobClient,
  IdempotencyConflictError,
  InvalidRequestError,
  JobIdConflictError,
  parseJobRoutes,
  QuotaExceededError,
  quotaFromEnv,
  sizingLimitsFromEnv,
  SubmitOptions,
  validateSubmitRequest,
} from '../../lib/client';
import { photoBundleSubmission, PhotoBundleSettings, republishFinished } from './photo-bundle';

export interface QueueSubmitDeps {
  readonly client: BatchJobClient;
  readonly sqs: SQSClient;
  readonly deadLetterQueueUrl: string;
  /** The queue's redrive maxReceiveCount: on that receive a failing message goes to the DLQ with its reason. */
  readonly maxReceiveCount: number;
  /** SubmitJob calls in flight in this invocation. */
  readonly concurrency: number;
  /**
   * Set when the queue carries photo-bundle messages (PhotoBundlesStack): each message is converted to
   * a `bundle-photos` submit request first (./photo-bundle.ts). @default - messages are submit requests
   */
  readonly photoBundle?: PhotoBundleSettings;
  /**
   * URL of the source queue itself: a message refused by a tenant quota on its last receive is sent
   * again with a delay (SQS would otherwise dead-letter a message that only had to wait).
   * @default - such a message is only hidden for its Retry-After (and may reach the DLQ by redrive)
   */
  readonly sourceQueueUrl?: string;
}

export type RecordOutcome = {
  messageId: string;
  /** `deferred`: refused by a tenant quota; hidden for `retryAfterSeconds` (a batch item failure) or sent again with that delay. */
  outcome: 'submitted' | 'duplicate' | 'dead-lettered' | 'retry' | 'deferred';
  retryAfterSeconds?: number;
  /** A deferred message that was sent again (a new message carrying the original id), rather than hidden. */
  requeued?: boolean;
  jobId?: string;
  reason?: string;
  /** Photo bundles: a duplicate of a finished bundle whose completion (the existing ZIP) was published again. */
  republished?: boolean;
};

const MAX_REASON_LENGTH = 4096;

/**
 * Turns each SQS message into a job. A message that can never become one (not JSON, invalid fields,
 * refused by Batch) goes to the DLQ at once with a `failure-reason` attribute; a transient failure
 * (throttling, 5xx) is reported as a batch item failure so SQS redelivers it, and on its last receive
 * it goes to the DLQ with its reason too. A message leaves the source queue only after it is a job or
 * in the DLQ, so none is lost. The message id is the default client token, so a redelivered message
 * never makes a second job.
 */
export async function handleRecords(records: readonly SQSRecord[], deps: QueueSubmitDeps): Promise<{ response: SQSBatchResponse; outcomes: RecordOutcome[] }> {
  const limit = pLimit(deps.concurrency);
  const outcomes = await Promise.all(records.map((record) => limit(() => handleRecord(record, deps))));
  return {
    response: { batchItemFailures: outcomes.filter((o) => o.outcome === 'retry' || (o.outcome === 'deferred' && !o.requeued)).map((o) => ({ itemIdentifier: o.messageId })) },
    outcomes,
  };
}

async function handleRecord(record: SQSRecord, deps: QueueSubmitDeps): Promise<RecordOutcome> {
  const messageId = record.messageId;
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(record.body);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    body = parsed as Record<string, unknown>;
  } catch {
    return deadLetter(record, deps, 'invalid message: the body must be a JSON object with the submit request fields');
  }
  let request: Record<string, unknown>;
  let options: SubmitOptions = {};
  try {
    if (deps.photoBundle) {
      const bundle = await photoBundleSubmission(body, deps.photoBundle);
      request = bundle.request as Record<string, unknown>;
      options = bundle.options;
    } else {
      // A message sent again after a quota refusal keeps its original id as the token (ORIGINAL_ID_ATTRIBUTE).
      request = { ...body, clientToken: body.clientToken ?? originalMessageId(record) };
    }
    // The submission policy, before anything is staged: a refused message goes to the DLQ with every field error.
    validateSubmitRequest(request, { sizingLimits: deps.client.sizingLimits });
  } catch (err) {
    if (err instanceof InvalidRequestError) return deadLetter(record, deps, `invalid message: ${err.message}`);
    return retryOrDeadLetter(record, deps, err);
  }
  try {
    const job = await deps.client.submit(request as Parameters<BatchJobClient['submit']>[0], options);
    if (!job.created && deps.photoBundle) {
      const again = await republishFinished(job.jobId, deps.photoBundle);
      return { messageId, outcome: 'duplicate', jobId: job.jobId, republished: again !== undefined };
    }
    return { messageId, outcome: job.created ? 'submitted' : 'duplicate', jobId: job.jobId };
  } catch (err) {
    if (err instanceof QuotaExceededError) return defer(record, deps, err);
    if (err instanceof InvalidRequestError) return deadLetter(record, deps, `refused: ${err.message}`);
    // A retry cannot resolve a conflict: the id or the token belongs to another request.
    if (err instanceof JobIdConflictError || err instanceof IdempotencyConflictError) return deadLetter(record, deps, `conflict: ${err.message}`);
    return retryOrDeadLetter(record, deps, err);
  }
}

/** Message attribute of a message sent again after a quota refusal: the id of the message it continues. */
export const ORIGINAL_ID_ATTRIBUTE = 'original-message-id';
/** SQS's longest DelaySeconds. */
const MAX_DELAY_SECONDS = 900;

function originalMessageId(record: SQSRecord): string {
  const original = record.messageAttributes?.[ORIGINAL_ID_ATTRIBUTE]?.stringValue;
  return original && /^[A-Za-z0-9-]{1,128}$/.test(original) ? original : record.messageId;
}

/**
 * The tenant is at a quota: the message waits, it is never dead-lettered or lost for that. Before its
 * last receive it is hidden for Retry-After (ChangeMessageVisibility) and reported as a batch item
 * failure; on its last receive (the redrive policy would move it to the DLQ on the next) it is sent
 * again with DelaySeconds = Retry-After and the original message id as an attribute (the same client
 * token, so the copy can never make a second job), and the original is deleted.
 */
async function defer(record: SQSRecord, deps: QueueSubmitDeps, err: QuotaExceededError): Promise<RecordOutcome> {
  const messageId = record.messageId;
  const receives = Number(record.attributes?.ApproximateReceiveCount ?? '1');
  const retryAfterSeconds = err.retryAfterSeconds;
  const base = { messageId, outcome: 'deferred' as const, reason: err.message, retryAfterSeconds };
  if (receives >= deps.maxReceiveCount && deps.sourceQueueUrl) {
    try {
      await deps.sqs.send(
        new SendMessageCommand({
          QueueUrl: deps.sourceQueueUrl,
          MessageBody: record.body,
          DelaySeconds: Math.min(retryAfterSeconds, MAX_DELAY_SECONDS),
          MessageAttributes: { ...copyAttributes(record), [ORIGINAL_ID_ATTRIBUTE]: { DataType: 'String', StringValue: originalMessageId(record) } },
        }),
      );
      console.warn(JSON.stringify({ level: 'warn', messageId, receives, retryAfterSeconds, message: `quota: sent again with a delay: ${err.message}` }));
      return { ...base, requeued: true };
    } catch (sendErr) {
      console.error(JSON.stringify({ level: 'error', messageId, message: `quota: could not send the message again: ${(sendErr as Error).message}` }));
    }
  }
  if (record.receiptHandle && deps.sourceQueueUrl) {
    try {
      await deps.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: deps.sourceQueueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: retryAfterSeconds }));
    } catch (visErr) {
      // The queue's own visibility timeout applies instead; the message is still redelivered.
      console.warn(JSON.stringify({ level: 'warn', messageId, message: `quota: could not change the visibility: ${(visErr as Error).message}` }));
    }
  }
  console.warn(JSON.stringify({ level: 'warn', messageId, receives, retryAfterSeconds, message: `quota: retry later: ${err.message}` }));
  return base;
}

/** The record's string/number attributes in SendMessage's shape (what the submit step reads survives the copy). */
function copyAttributes(record: SQSRecord): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, a] of Object.entries(record.messageAttributes ?? {})) {
    if (name === ORIGINAL_ID_ATTRIBUTE || a.stringValue === undefined) continue;
    out[name] = { DataType: a.dataType, StringValue: a.stringValue };
  }
  return out;
}

/** A transient failure: SQS redelivers the message, and on its last receive it goes to the DLQ with the reason. */
async function retryOrDeadLetter(record: SQSRecord, deps: QueueSubmitDeps, err: unknown): Promise<RecordOutcome> {
  const messageId = record.messageId;
  const receives = Number(record.attributes?.ApproximateReceiveCount ?? '1');
  if (receives >= deps.maxReceiveCount) return deadLetter(record, deps, `gave up after ${receives} receives: ${(err as Error).message}`);
  console.warn(JSON.stringify({ level: 'warn', messageId, receives, message: `will retry: ${(err as Error).message}` }));
  return { messageId, outcome: 'retry', reason: (err as Error).message };
}

async function deadLetter(record: SQSRecord, deps: QueueSubmitDeps, reason: string): Promise<RecordOutcome> {
  try {
    await deps.sqs.send(
      new SendMessageCommand({
        QueueUrl: deps.deadLetterQueueUrl,
        MessageBody: record.body,
        MessageAttributes: {
          'failure-reason': { DataType: 'String', StringValue: reason.slice(0, MAX_REASON_LENGTH) },
          'source-message-id': { DataType: 'String', StringValue: record.messageId },
          'receive-count': { DataType: 'Number', StringValue: record.attributes?.ApproximateReceiveCount ?? '1' },
        },
      }),
    );
    console.warn(JSON.stringify({ level: 'warn', messageId: record.messageId, message: 'sent to the DLQ', reason }));
    return { messageId: record.messageId, outcome: 'dead-lettered', reason };
  } catch (err) {
    // Could not record it: leave it on the source queue (redelivered, then redriven by SQS).
    console.error(JSON.stringify({ level: 'error', messageId: record.messageId, message: `DLQ send failed: ${(err as Error).message}`, reason }));
    return { messageId: record.messageId, outcome: 'retry', reason };
  }
}

let deps: QueueSubmitDeps | undefined;

function depsFromEnv(): QueueSubmitDeps {
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: the QueueTriggeredJobs construct sets it on the function`);
    return v;
  };
  return {
    client: new BatchJobClient({
      jobQueue: env('JOB_QUEUE'),
      jobDefinition: env('JOB_DEFINITION'),
      routes: parseJobRoutes(process.env.JOB_ROUTES, 'JOB_ROUTES'),
      inputBucket: env('INPUT_BUCKET'),
      outputBucket: process.env.OUTPUT_BUCKET,
      fairShare: process.env.FAIR_SHARE === undefined ? undefined : process.env.FAIR_SHARE === 'true',
      jobNamePrefix: process.env.JOB_NAME_PREFIX,
      sizingLimits: sizingLimitsFromEnv(),
      quota: quotaFromEnv(),
    }),
    sourceQueueUrl: process.env.SOURCE_QUEUE_URL,
    sqs: new SQSClient({}),
    deadLetterQueueUrl: env('DLQ_URL'),
    maxReceiveCount: Number(process.env.MAX_RECEIVE_COUNT ?? '3'),
    concurrency: Number(process.env.SUBMIT_CONCURRENCY ?? '5'),
    photoBundle: process.env.MESSAGE_FORMAT === 'photo-bundle'
      ? {
        destinationBucket: env('BUNDLE_DESTINATION_BUCKET'),
        downloadConcurrency: Number(process.env.BUNDLE_DOWNLOAD_CONCURRENCY ?? '5'),
        inputBucket: env('INPUT_BUCKET'),
        s3: new S3Client({}),
        completions: process.env.NOTIFICATION_TOPIC_ARN ? { sns: new SNSClient({}), topicArn: process.env.NOTIFICATION_TOPIC_ARN } : undefined,
      }
      : undefined,
  };
}

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  deps ??= depsFromEnv();
  return (await handleRecords(event.Records, deps)).response;
}
