import { Annotations, Duration, Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { checkInteger, checkRange, propError } from '../common/validation';
import { checkRouteKeys, grantJobClient, jobClientEnvironment, JobRouteTargets, JobSizingLimits, sizingEnvironment } from './grants';
import { QuotaTable } from './quota-table';

export const DEFAULT_QUEUE_BATCH_SIZE = 10;
export const DEFAULT_QUEUE_MAX_BATCHING_WINDOW = Duration.seconds(5);
export const DEFAULT_QUEUE_MAX_CONCURRENCY = 2;
export const DEFAULT_QUEUE_SUBMIT_CONCURRENCY = 5;
export const DEFAULT_QUEUE_MAX_RECEIVE_COUNT = 3;
const FUNCTION_TIMEOUT = Duration.minutes(1);
/** AWS Batch accepts about 50 SubmitJob calls per second per account. */
const SUBMIT_JOB_TPS = 50;

export interface QueueTriggeredJobsProps {
  readonly jobQueue: batch.IJobQueue;
  readonly jobDefinition: batch.IJobDefinition;
  /**
   * Queues and job definitions of operations placed elsewhere than the default (EC2, streaming worker),
   * by placement key `<EC2|FARGATE>:<image>`, e.g. `{ 'FARGATE:ocr': { jobQueue, jobDefinition } }`:
   * the handlers send each operation to its placement's route and find its jobs there.
   * @default - none: operations placed elsewhere are refused with an error naming the route they need
   */
  readonly routes?: JobRouteTargets;
  /** Bucket that receives `jobs/{jobId}/inputs.json`. */
  readonly inputBucket: s3.IBucket;
  /** @default - the input bucket */
  readonly outputBucket?: s3.IBucket;
  /** Messages per Lambda invocation. @default 10 */
  readonly batchSize?: number;
  /** How long SQS gathers a batch. @default Duration.seconds(5) */
  readonly maxBatchingWindow?: Duration;
  /** Concurrent Lambda invocations (2-1000). @default 2 */
  readonly maxConcurrency?: number;
  /** SubmitJob calls in flight per invocation. @default 5 */
  readonly submitConcurrency?: number;
  /** Receives before SQS moves a message to the DLQ; the handler moves it itself, with its reason, on the last one. @default 3 */
  readonly maxReceiveCount?: number;
  /** Whether the job queue uses fair-share scheduling. @default - true if the queue has a scheduling policy, else detected at run time */
  readonly fairShare?: boolean;
  /** Batch job names are `<prefix>-<jobId>`. @default 'job' */
  readonly jobNamePrefix?: string;
  /**
   * Retention of the log group of the submitting Lambda.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * More environment for the submitting Lambda, e.g. `MESSAGE_FORMAT: 'photo-bundle'` with its settings
   * (see lambda/queue-submit). Cannot replace the variables this construct sets.
   * @default - none
   */
  readonly handlerEnvironment?: Record<string, string>;
  /**
   * The stack's ceiling on `vcpus` / `memoryMiB` a message may ask for (on top of each operation's
   * declared bounds). @default - only the operations' bounds
   */
  readonly sizingLimits?: JobSizingLimits;
  /**
   * Per-tenant quotas (active jobs, submissions per minute): a message above them stays in the queue,
   * hidden for the Retry-After, and is submitted later. @default - no quotas
   */
  readonly quota?: QuotaTable;
}

/**
 * An SQS queue whose messages become Batch jobs, with a DLQ that receives every message that cannot
 * become one, together with the reason.
 *
 * Why a Lambda and not EventBridge Pipes: a Pipe with a Batch job-queue target can pass the message
 * as parameters, but it cannot validate the body, stage the input in S3, set the worker's environment
 * contract, make the submit idempotent or say why a message was refused; a failed target invocation
 * only retries and then redrives the bare message. This handler is a thin adapter over BatchJobClient.
 *
 * Throttling: SubmitJob allows about 50 calls per second per account; maxConcurrency x
 * submitConcurrency bounds the calls in flight (10 by default), and the client retries throttling with
 * backoff and jitter.
 */
export class QueueTriggeredJobs extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly submitFunction: PlatformFunction;
  public readonly eventSource: lambdaEventSources.SqsEventSource;

  constructor(scope: Construct, id: string, props: QueueTriggeredJobsProps) {
    super(scope, id);
    const batchSize = props.batchSize ?? DEFAULT_QUEUE_BATCH_SIZE;
    const maxBatchingWindow = props.maxBatchingWindow ?? DEFAULT_QUEUE_MAX_BATCHING_WINDOW;
    const maxConcurrency = props.maxConcurrency ?? DEFAULT_QUEUE_MAX_CONCURRENCY;
    const submitConcurrency = props.submitConcurrency ?? DEFAULT_QUEUE_SUBMIT_CONCURRENCY;
    const maxReceiveCount = props.maxReceiveCount ?? DEFAULT_QUEUE_MAX_RECEIVE_COUNT;
    checkRouteKeys(this, props.routes);
    checkInteger(this, 'batchSize', batchSize, 1);
    checkRange(this, 'batchSize', batchSize, 1, maxBatchingWindow.toSeconds() > 0 ? 10000 : 10);
    checkInteger(this, 'maxConcurrency', maxConcurrency, 2);
    checkRange(this, 'maxConcurrency', maxConcurrency, 2, 1000);
    checkInteger(this, 'submitConcurrency', submitConcurrency, 1);
    checkRange(this, 'submitConcurrency', submitConcurrency, 1, SUBMIT_JOB_TPS);
    checkInteger(this, 'maxReceiveCount', maxReceiveCount, 1);
    checkRange(this, 'maxReceiveCount', maxReceiveCount, 1, 1000);
    if (maxBatchingWindow.toSeconds() > 300) throw propError(this, 'maxBatchingWindow', `${maxBatchingWindow.toSeconds()}s`, '0 to 300 seconds');
    if (!Token.isUnresolved(maxConcurrency) && !Token.isUnresolved(submitConcurrency) && maxConcurrency * submitConcurrency > SUBMIT_JOB_TPS) {
      Annotations.of(this).addWarningV2(
        'cdk-batch-platform:queueSubmitAboveSubmitJobQuota',
        `maxConcurrency x submitConcurrency (${maxConcurrency * submitConcurrency}) SubmitJob calls in flight can exceed AWS Batch's ~${SUBMIT_JOB_TPS} per second; expect throttling retries`,
      );
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS recommends six times the function timeout, so a retried batch never overlaps a running one.
      visibilityTimeout: Duration.seconds(FUNCTION_TIMEOUT.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });
    this.submitFunction = new PlatformFunction(this, 'SubmitFunction', {
      entry: handlerEntry('queue-submit/index.ts'),
      description: 'Turns SQS messages into Batch jobs; invalid messages go to the DLQ with their reason',
      timeout: FUNCTION_TIMEOUT,
      logRetention: props.logRetention,
      environment: {
        ...this.checkedHandlerEnvironment(props.handlerEnvironment),
        ...jobClientEnvironment(props),
        ...sizingEnvironment(this, props.sizingLimits),
        // With quotas, a refused message is hidden or sent again on its own queue.
        ...(props.quota ? { ...props.quota.environment, SOURCE_QUEUE_URL: this.queue.queueUrl } : {}),
        DLQ_URL: this.deadLetterQueue.queueUrl,
        MAX_RECEIVE_COUNT: String(maxReceiveCount),
        SUBMIT_CONCURRENCY: String(submitConcurrency),
      },
    });
    grantJobClient(this, this.submitFunction, { jobQueue: props.jobQueue, jobDefinition: props.jobDefinition, routes: props.routes, inputBucket: props.inputBucket, submit: true });
    this.deadLetterQueue.grantSendMessages(this.submitFunction);
    if (props.quota) {
      props.quota.grantAdmit(this.submitFunction);
      // A message refused by a quota is hidden for its Retry-After (ChangeMessageVisibility), or re-queued
      // with a delay before its last receive so the redrive policy never dead-letters a message that only waited.
      this.queue.grant(this.submitFunction, 'sqs:ChangeMessageVisibility');
      this.queue.grantSendMessages(this.submitFunction);
    }
    this.eventSource = new lambdaEventSources.SqsEventSource(this.queue, {
      batchSize,
      maxBatchingWindow: maxBatchingWindow.toSeconds() > 0 ? maxBatchingWindow : undefined,
      reportBatchItemFailures: true,
      maxConcurrency,
    });
    this.submitFunction.addEventSource(this.eventSource);
  }

  private checkedHandlerEnvironment(env: Record<string, string> = {}): Record<string, string> {
    const reserved = ['JOB_QUEUE', 'JOB_DEFINITION', 'INPUT_BUCKET', 'DLQ_URL', 'MAX_RECEIVE_COUNT', 'SUBMIT_CONCURRENCY', 'FAIR_SHARE', 'JOB_NAME_PREFIX'];
    for (const name of Object.keys(env)) {
      if (reserved.includes(name)) throw propError(this, `handlerEnvironment.${name}`, env[name], `names other than ${reserved.join(', ')} (set from the other props)`, 'is set by this construct');
    }
    return env;
  }

  /** Lets a producer send job messages. */
  public grantSend(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grantSendMessages(grantee);
  }
}
