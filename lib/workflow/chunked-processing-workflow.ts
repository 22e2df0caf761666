import { Annotations, CfnResource, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct, IConstruct } from 'constructs';
import { handlerEntry, PlatformFunction } from '../common/node-function';
import { checkInteger, checkRange } from '../common/validation';
import { jobDefinitionNameOf } from '../common/job-definition-name';
import { nagResourceFindingId } from '../common/nag';
import { DeliveryTarget, mskTopicArn, validateDeliveryTargets } from './delivery-targets';

/** Distributed Map child executions at once (the seed's 50 concurrent chunks). */
export const DEFAULT_MAX_CONCURRENCY = 50;
/** Records per chunk when a run does not say (the seed's 500K-record chunks). */
export const DEFAULT_CHUNK_RECORDS = 500_000;
/** Chunks estimated at up to this many records run on Lambda; larger ones on Batch. */
export const DEFAULT_LAMBDA_MAX_RECORDS = 1_000_000;
/** Past this, a chunk may not finish inside Lambda's 15 minutes even at the engine's speed. */
export const LAMBDA_MAX_RECORDS_WARNING = 5_000_000;
export const DEFAULT_TOLERATED_FAILURE_PERCENTAGE = 0;
export const DEFAULT_CHUNK_FUNCTION_MEMORY_MB = 2048;
export const DEFAULT_RUN_TIMEOUT = Duration.hours(24);
/** Application errors of a chunk (a failed job, a failed chunk Lambda) are retried this many times. */
export const DEFAULT_CHUNK_RETRY_ATTEMPTS = 1;
export const DEFAULT_CHUNK_RETRY_INTERVAL = Duration.seconds(30);
export const DEFAULT_CHUNK_RETRY_BACKOFF_RATE = 2;

/** How the workflow retries a chunk that failed for an application reason. */
export interface ChunkRetryProps {
  /**
   * Retries after the first attempt (0-10); 0 turns the retry off.
   * @default 1
   */
  readonly maxAttempts?: number;
  /**
   * Wait before the first retry.
   * @default Duration.seconds(30)
   */
  readonly interval?: Duration;
  /**
   * Multiplier of the wait for each further retry (1-10).
   * @default 2
   */
  readonly backoffRate?: number;
}
/** Source and detail-type of the EventBridge event every finished run emits. */
export const RUN_EVENT_SOURCE = 'cdk-batch-platform.chunked-processing';
export const RUN_EVENT_DETAIL_TYPE = 'Chunked Processing Run Finished';

/** Names of the states, part of the contract: the local runner overrides tasks by these names. */
export const STATE_NAMES = {
  validate: 'ValidateInput',
  plan: 'PlanChunks',
  map: 'ProcessChunks',
  route: 'RouteChunk',
  skip: 'ChunkAlreadyDone',
  lambdaChunk: 'ProcessChunkOnLambda',
  batchChunk: 'ProcessChunkOnBatch',
  batchMarker: 'DescribeBatchChunk',
  batchDone: 'MarkBatchChunkDone',
  recordFailure: 'RecordChunkFailure',
  chunkFailed: 'ChunkFailed',
  aggregate: 'AggregateResults',
  failureSummary: 'SummarizeFailure',
  deliver: 'DeliverSummary',
  sendSqs: 'SendSummaryToQueue',
  putEvent: 'PutSummaryEvent',
  sendKafka: 'SendSummaryToKafka',
  checkDeliveries: 'CheckDeliveries',
  anyDeliveryFailed: 'AnyDeliveryFailed',
  deliveryFailed: 'DeliveryFailed',
  checkStatus: 'CheckRunStatus',
  failed: 'RunFailed',
  succeeded: 'RunFinished',
} as const;

export interface ChunkedProcessingWorkflowProps {
  /** Queue that runs the Batch-route chunks. */
  readonly jobQueue: batch.IJobQueue;
  /** The worker job definition (containers/worker); chunks reach it through environment overrides. */
  readonly jobDefinition: batch.IJobDefinition;
  /**
   * The work bucket: `runs/{runId}/...` (manifest, chunk results, done-markers, result, summary)
   * lives here, and inputs may be read from it.
   */
  readonly bucket: s3.IBucket;
  /**
   * More buckets the workflow may read input objects from (read-only).
   * @default - inputs only from `bucket`
   */
  readonly inputBuckets?: s3.IBucket[];
  /**
   * Chunks processed at once (Distributed Map MaxConcurrency), 1-10000.
   * @default 50
   */
  readonly maxConcurrency?: number;
  /**
   * Percentage of failed chunks (0-100) up to which a run still counts as PARTIAL rather than
   * FAILED. Also the Distributed Map's ToleratedFailurePercentage for iterations that fail outside
   * the per-chunk error handling.
   * @default 0
   */
  readonly toleratedFailurePercentage?: number;
  /**
   * Chunks estimated at up to this many records run on the chunk Lambda; larger ones as Batch jobs.
   * 0 sends every chunk to Batch. A run's input may lower or raise it (`lambdaMaxRecords`).
   * @default 1000000
   */
  readonly lambdaMaxRecords?: number;
  /**
   * Records per chunk for runs that give neither chunkRecords nor chunkBytes.
   * @default 500000
   */
  readonly defaultChunkRecords?: number;
  /**
   * Memory of the chunk Lambda (CPU grows with it; 1769 MB is one vCPU).
   * @default 2048
   */
  readonly chunkFunctionMemorySize?: number;
  /**
   * Queue that receives every run summary (shorthand for the default targets; not with `deliveryTargets`).
   * @default - an SQS queue (SSE, SSL only) with a dead-letter queue
   */
  readonly summaryQueue?: sqs.IQueue;
  /**
   * Bus that receives the run-finished event (shorthand for the default targets; not with `deliveryTargets`).
   * @default - the account's default event bus
   */
  readonly eventBus?: events.IEventBus;
  /**
   * Where every run's message (the summary, `schemaVersion: 1`) goes: SQS queues, EventBridge buses and
   * Amazon MSK topics (`DeliveryTargets.sqs() / .eventBridge() / .kafka({...})`), 1-10 targets. All targets
   * are tried; one that fails is recorded and the execution then ends `DeliveryFailed` (the run's summary
   * and result in S3 stay as they are).
   * @default - [the summary queue, the default event bus]
   */
  readonly deliveryTargets?: DeliveryTarget[];
  /**
   * Retry of a chunk's application errors (a failed Batch job, a chunk Lambda error such as too many
   * rejects), in the state machine's Retry on both chunk tasks, with full jitter. Infrastructure
   * failures are retried by the job definition's retry strategy first.
   * @default - once, after 30 s
   */
  readonly chunkRetry?: ChunkRetryProps;
  /**
   * Longest a run may take.
   * @default Duration.hours(24)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the state machine's and the functions' log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to log groups and the summary queue when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * `retention-days` tag of every `runs/` object the workflow writes (manifest, plan, chunk results,
   * rejects, checkpoints, done-markers, failure records, result, summary): a value the bucket has an
   * expiry rule for (StagingBuckets `objectRetentionDays`).
   * @default 30
   */
  readonly retentionDays?: number;
}

/** `retention-days` of the workflow's objects when `retentionDays` is not given (StagingBuckets' DEFAULT_OBJECT_RETENTION_DAYS). */
export const DEFAULT_WORKFLOW_RETENTION_DAYS = 30;

/**
 * The chunked processing workflow: validate -> plan (record-aligned byte ranges into
 * `runs/{runId}/manifest.jsonl`) -> Distributed Map over the manifest, each chunk on Lambda (the
 * worker engine in-process) or as a Batch job (`.sync`) by its estimated size -> aggregate the
 * chunk results from S3 with the operation's merge -> summary to SQS and EventBridge.
 *
 * A failing chunk never stops the others: its error is written to `runs/{runId}/failures/{index}.json`
 * and the aggregator reports the run PARTIAL (within `toleratedFailurePercentage`) or FAILED.
 * Finished chunks leave `runs/{runId}/done/{index}`; a new execution with the same run id skips them.
 */
export class ChunkedProcessingWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly logGroup: logs.LogGroup;
  public readonly validateFunction: PlatformFunction;
  public readonly plannerFunction: PlatformFunction;
  public readonly chunkFunction: PlatformFunction;
  public readonly aggregateFunction: PlatformFunction;
  /** The queue of the first SQS delivery target (the workflow's own unless one was given); none without an SQS target. */
  public readonly summaryQueue?: sqs.IQueue;
  /** One delivery Lambda per Kafka target, in the order of the targets. */
  public readonly kafkaDeliveryFunctions: PlatformFunction[] = [];
  /** The dead-letter queue of the summary queue this construct created, if it created one. */
  public readonly summaryDeadLetterQueue?: sqs.Queue;
  public readonly eventBus?: events.IEventBus;
  public readonly processChunks: sfn.DistributedMap;

  private readonly props: ChunkedProcessingWorkflowProps;

  constructor(scope: Construct, id: string, props: ChunkedProcessingWorkflowProps) {
    super(scope, id);
    this.props = props;
    const maxConcurrency = props.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    const tolerated = props.toleratedFailurePercentage ?? DEFAULT_TOLERATED_FAILURE_PERCENTAGE;
    const lambdaMaxRecords = props.lambdaMaxRecords ?? DEFAULT_LAMBDA_MAX_RECORDS;
    const defaultChunkRecords = props.defaultChunkRecords ?? DEFAULT_CHUNK_RECORDS;
    const chunkMemory = props.chunkFunctionMemorySize ?? DEFAULT_CHUNK_FUNCTION_MEMORY_MB;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    const retentionDays = props.retentionDays ?? DEFAULT_WORKFLOW_RETENTION_DAYS;
    checkInteger(this, 'retentionDays', retentionDays, 1);
    const retention = { RETENTION_DAYS: String(retentionDays) };
    // The same tags the runtime's tagWrites sets (containers/worker/src/retention.ts), for the S3 states.
    const runsTagging = `retention-days=${retentionDays}`;

    const retryAttempts = props.chunkRetry?.maxAttempts ?? DEFAULT_CHUNK_RETRY_ATTEMPTS;
    const retryInterval = props.chunkRetry?.interval ?? DEFAULT_CHUNK_RETRY_INTERVAL;
    const retryBackoff = props.chunkRetry?.backoffRate ?? DEFAULT_CHUNK_RETRY_BACKOFF_RATE;
    checkInteger(this, 'chunkRetry.maxAttempts', retryAttempts, 0);
    checkRange(this, 'chunkRetry.maxAttempts', retryAttempts, 0, 10);
    checkRange(this, 'chunkRetry.backoffRate', retryBackoff, 1, 10);
    checkInteger(this, 'maxConcurrency', maxConcurrency, 1);
    checkRange(this, 'maxConcurrency', maxConcurrency, 1, 10_000);
    checkRange(this, 'toleratedFailurePercentage', tolerated, 0, 100);
    checkInteger(this, 'lambdaMaxRecords', lambdaMaxRecords, 0);
    checkInteger(this, 'defaultChunkRecords', defaultChunkRecords, 1);
    checkInteger(this, 'chunkFunctionMemorySize', chunkMemory, 128);
    checkRange(this, 'chunkFunctionMemorySize', chunkMemory, 128, 10_240);
    if (!Token.isUnresolved(lambdaMaxRecords) && lambdaMaxRecords > LAMBDA_MAX_RECORDS_WARNING) {
      Annotations.of(this).addWarningV2(
        'cdk-batch-platform:lambdaChunkTooLarge',
        `lambdaMaxRecords (${lambdaMaxRecords}) sends chunks of more than ${LAMBDA_MAX_RECORDS_WARNING} records to Lambda, ` +
          'which may not finish them within its 15-minute limit; lower it so large chunks go to Batch',
      );
    }

    const bucket = props.bucket;
    const inputBuckets = [bucket, ...(props.inputBuckets ?? []).filter((b) => b !== bucket)];
    const runsObjects = 'runs/*';
    const fnDefaults = { logRetention, logRemovalPolicy: removalPolicy };

    this.validateFunction = new PlatformFunction(this, 'ValidateFunction', {
      ...fnDefaults,
      entry: handlerEntry('validate-input/index.ts'),
      description: 'Chunked processing: checks a run request and that its input exists, before any chunk runs',
      environment: { LAMBDA_MAX_RECORDS: String(lambdaMaxRecords) },
    });
    this.plannerFunction = new PlatformFunction(this, 'PlannerFunction', {
      ...fnDefaults,
      entry: handlerEntry('planner/index.ts'),
      description: 'Chunked processing: splits input objects into record-aligned byte ranges (runs/{runId}/manifest.jsonl)',
      // A json-array input is planned by one streaming pass over the whole object (about a minute per
      // 10 GB at S3 read speed); JSON lines and CSV need one 64 KiB read per chunk.
      timeout: Duration.minutes(15),
      memorySize: 1769,
      environment: {
        RUNS_BUCKET: bucket.bucketName,
        LAMBDA_MAX_RECORDS: String(lambdaMaxRecords),
        DEFAULT_CHUNK_RECORDS: String(defaultChunkRecords),
        ...retention,
      },
    });
    this.chunkFunction = new PlatformFunction(this, 'ChunkFunction', {
      ...fnDefaults,
      entry: handlerEntry('chunk-processor/index.ts'),
      description: 'Chunked processing: runs the worker engine in-process on one small chunk',
      timeout: Duration.minutes(15),
      memorySize: chunkMemory,
      environment: { RUNS_BUCKET: bucket.bucketName, ...retention },
    });
    this.aggregateFunction = new PlatformFunction(this, 'AggregateFunction', {
      ...fnDefaults,
      entry: handlerEntry('aggregate/index.ts'),
      description: 'Chunked processing: merges chunk results from S3 into runs/{runId}/result.json and a summary',
      timeout: Duration.minutes(15),
      memorySize: 1024,
      environment: { RUNS_BUCKET: bucket.bucketName, TOLERATED_FAILURE_PERCENTAGE: String(tolerated), ...retention },
    });

    // Explicit statements rather than bucket.grantRead/grantReadWrite: those add s3:GetObject*,
    // s3:GetBucket*, s3:List* and s3:DeleteObject*/Abort* on every function, far more than each needs.
    const inputObjects = inputBuckets.map((b) => b.arnForObjects('*'));
    const runsArn = bucket.arnForObjects(runsObjects);
    const readInputs = (fn: PlatformFunction): void => {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: inputObjects }));
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: inputBuckets.map((b) => b.bucketArn) }));
      for (const b of inputBuckets) b.encryptionKey?.grantDecrypt(fn);
    };
    const useRuns = (fn: PlatformFunction, actions: string[]): void => {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources: [runsArn] }));
      // ListBucket turns a missing marker or checkpoint into 404 instead of 403.
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
      bucket.encryptionKey?.grantEncryptDecrypt(fn);
    };
    readInputs(this.validateFunction);
    readInputs(this.plannerFunction);
    // s3:PutObjectTagging: every object is written with its retention-days tag (a Tagging header).
    // Delete: a retry removes the done-markers and failure records of the chunks it reruns, and the old result.
    useRuns(this.plannerFunction, ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject']);
    readInputs(this.chunkFunction);
    // Delete and abort: the engine removes its checkpoint and aborts a rejected multipart output.
    useRuns(this.chunkFunction, ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject', 's3:AbortMultipartUpload']);
    useRuns(this.aggregateFunction, ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging']);
    // A run that did not succeed gets fingerprints of its finished chunks' input bytes (retry proof).
    readInputs(this.aggregateFunction);

    if (props.deliveryTargets && (props.summaryQueue || props.eventBus)) {
      throw new Error(`[${this.node.path}] summaryQueue/eventBus (set) cannot be combined with deliveryTargets; allowed: one of them (list the queue and bus as targets)`);
    }
    const targets: DeliveryTarget[] = props.deliveryTargets ?? [
      { type: 'sqs', queue: props.summaryQueue },
      { type: 'eventbridge', eventBus: props.eventBus },
    ];
    validateDeliveryTargets(this, targets);
    const firstSqs = targets.find((t) => t.type === 'sqs');
    if (firstSqs?.type === 'sqs' && firstSqs.queue) {
      this.summaryQueue = firstSqs.queue;
    } else if (targets.some((t) => t.type === 'sqs' && !t.queue)) {
      this.summaryDeadLetterQueue = new sqs.Queue(this, 'SummaryDeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
        removalPolicy,
      });
      this.summaryQueue = new sqs.Queue(this, 'SummaryQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
        deadLetterQueue: { queue: this.summaryDeadLetterQueue, maxReceiveCount: 5 },
        removalPolicy,
      });
    }
    this.eventBus = targets.find((t): t is Extract<DeliveryTarget, { type: 'eventbridge' }> => t.type === 'eventbridge')?.eventBus;

    // ---- the per-chunk item processor ----
    const lambdaChunk = new tasks.LambdaInvoke(this, STATE_NAMES.lambdaChunk, {
      lambdaFunction: this.chunkFunction,
      payload: sfn.TaskInput.fromJsonPathAt('$'),
      resultSelector: { 'records.$': '$.Payload.records', 'rejected.$': '$.Payload.rejected' },
      resultPath: '$.result',
      comment: 'Runs the worker engine in-process; writes the chunk result and its done-marker',
    });
    lambdaChunk.addRetry({
      errors: ['Lambda.TooManyRequestsException'],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 8,
      maxDelay: Duration.minutes(2),
      jitterStrategy: sfn.JitterType.FULL,
    });
    // Raised when the chunk neared the Lambda deadline: a checkpoint was saved, the retry resumes it.
    lambdaChunk.addRetry({ errors: ['ChunkInterrupted'], interval: Duration.seconds(1), maxAttempts: 3, backoffRate: 1 });

    const jobDefinitionName = jobDefinitionNameOf(props.jobDefinition.jobDefinitionArn);
    const batchChunk = new ScopedBatchSubmitJob(this, STATE_NAMES.batchChunk, {
      jobName: sfn.JsonPath.format('{}-chunk-{}', sfn.JsonPath.stringAt('$.runId'), sfn.JsonPath.stringAt('$.chunk.index')),
      jobQueueArn: props.jobQueue.jobQueueArn,
      jobDefinitionArn: props.jobDefinition.jobDefinitionArn,
      containerOverrides: {
        environment: {
          JOB_ID: sfn.JsonPath.format('{}-chunk-{}', sfn.JsonPath.stringAt('$.runId'), sfn.JsonPath.stringAt('$.chunk.index')),
          OPERATION: sfn.JsonPath.stringAt('$.operation'),
          OPERATION_CONFIG: sfn.JsonPath.stringAt('$.operationConfig'),
          INPUT_S3_BUCKET: sfn.JsonPath.stringAt('$.chunk.bucket'),
          INPUT_S3_KEY: sfn.JsonPath.stringAt('$.chunk.key'),
          INPUT_FORMAT: sfn.JsonPath.stringAt('$.chunk.inputFormat'),
          CHUNK_START_BYTE: sfn.JsonPath.format('{}', sfn.JsonPath.stringAt('$.chunk.startByte')),
          CHUNK_END_BYTE: sfn.JsonPath.format('{}', sfn.JsonPath.stringAt('$.chunk.endByte')),
          OUTPUT_S3_BUCKET: bucket.bucketName,
          OUTPUT_S3_KEY: sfn.JsonPath.stringAt('$.chunk.outputKey'),
          // The run's dimensions for the worker's per-chunk progress metrics (same names as the Lambda route's).
          RUN_ID: sfn.JsonPath.stringAt('$.runId'),
          CHUNK_INDEX: sfn.JsonPath.format('{}', sfn.JsonPath.stringAt('$.chunk.index')),
          RUN_CUSTOMER_ID: sfn.JsonPath.stringAt('$.chunk.identity.customerId'),
          RUN_TENANT_ID: sfn.JsonPath.stringAt('$.chunk.identity.tenantId'),
          RUN_BATCH_ID: sfn.JsonPath.stringAt('$.chunk.identity.batchId'),
          RUN_DEPLOYMENT: sfn.JsonPath.stringAt('$.chunk.identity.deployment'),
          RUN_SNAPSHOT_ID: sfn.JsonPath.stringAt('$.chunk.identity.snapshotId'),
          ...retention,
        },
      },
      // The run's identifying fields as job tags (cost allocation, finding a customer's jobs).
      tags: {
        RunId: sfn.JsonPath.stringAt('$.runId'),
        CustomerId: sfn.JsonPath.stringAt('$.chunk.identity.customerId'),
        TenantId: sfn.JsonPath.stringAt('$.chunk.identity.tenantId'),
        BatchId: sfn.JsonPath.stringAt('$.chunk.identity.batchId'),
        Deployment: sfn.JsonPath.stringAt('$.chunk.identity.deployment'),
        SnapshotId: sfn.JsonPath.stringAt('$.chunk.identity.snapshotId'),
      },
      resultSelector: { 'jobId.$': '$.JobId', 'status.$': '$.Status' },
      resultPath: '$.batch',
      comment: 'Runs the worker container on one chunk and waits for the job (.sync)',
    }, [
      Stack.of(this).formatArn({ service: 'batch', resource: 'job-definition', resourceName: `${jobDefinitionName}:*` }),
      props.jobQueue.jobQueueArn,
    ]);
    // Batch throttles SubmitJob per account; these are the API's errors, not the job's (a failed job
    // is States.TaskFailed, which the job definition's own retry strategy has already handled).
    batchChunk.addRetry({
      errors: ['Batch.AWSBatchException', 'Batch.TooManyRequestsException', 'Batch.ServerException'],
      interval: Duration.seconds(10),
      backoffRate: 2,
      maxAttempts: 8,
      maxDelay: Duration.minutes(5),
      jitterStrategy: sfn.JitterType.FULL,
    });

    // Last retrier of each chunk task: States.TaskFailed matches any error the earlier retriers did not
    // (Step Functions uses the first retrier that matches), i.e. the chunk's own failure.
    if (retryAttempts > 0) {
      for (const task of [lambdaChunk, batchChunk]) {
        task.addRetry({
          errors: ['States.TaskFailed'],
          interval: retryInterval,
          backoffRate: retryBackoff,
          maxAttempts: retryAttempts,
          jitterStrategy: sfn.JitterType.FULL,
        });
      }
    }

    const batchMarker = new sfn.Pass(this, STATE_NAMES.batchMarker, {
      parameters: {
        'index.$': '$.chunk.index',
        route: 'batch',
        'jobId.$': '$.batch.jobId',
      },
      resultPath: '$.marker',
    });
    const batchDone = new tasks.CallAwsService(this, STATE_NAMES.batchDone, {
      service: 's3',
      action: 'putObject',
      parameters: {
        Bucket: bucket.bucketName,
        Key: sfn.JsonPath.stringAt('$.chunk.doneKey'),
        Body: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$.marker')),
        ContentType: 'application/json',
        Tagging: runsTagging,
      },
      iamAction: 's3:PutObject',
      iamResources: [bucket.arnForObjects(runsObjects)],
      additionalIamStatements: [new iam.PolicyStatement({ actions: ['s3:PutObjectTagging'], resources: [bucket.arnForObjects(runsObjects)] })],
      resultPath: sfn.JsonPath.DISCARD,
    });

    const chunkFailed = new sfn.Pass(this, STATE_NAMES.chunkFailed, {
      comment: 'The failure is recorded in S3; the iteration succeeds so other chunks keep running',
    });
    const recordFailure = new tasks.CallAwsService(this, STATE_NAMES.recordFailure, {
      service: 's3',
      action: 'putObject',
      parameters: {
        Bucket: bucket.bucketName,
        Key: sfn.JsonPath.stringAt('$.chunk.failureKey'),
        Body: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$.failure')),
        ContentType: 'application/json',
        Tagging: runsTagging,
      },
      iamAction: 's3:PutObject',
      iamResources: [bucket.arnForObjects(runsObjects)],
      additionalIamStatements: [new iam.PolicyStatement({ actions: ['s3:PutObjectTagging'], resources: [bucket.arnForObjects(runsObjects)] })],
      resultPath: sfn.JsonPath.DISCARD,
    });
    recordFailure.next(chunkFailed);
    lambdaChunk.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.failure' });
    batchChunk.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.failure' });
    batchDone.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.failure' });

    const route = new sfn.Choice(this, STATE_NAMES.route)
      .when(sfn.Condition.booleanEquals('$.chunk.done', true), new sfn.Succeed(this, STATE_NAMES.skip, {
        comment: 'A previous execution of this run id finished the chunk',
      }))
      .when(sfn.Condition.stringEquals('$.chunk.route', 'batch'), batchChunk.next(batchMarker).next(batchDone))
      .otherwise(lambdaChunk);

    const manifestReader = new sfn.S3JsonLItemReader({ bucket, key: sfn.JsonPath.stringAt('$.plan.manifestKey') });
    this.processChunks = new sfn.DistributedMap(this, STATE_NAMES.map, {
      itemReader: manifestReader,
      itemSelector: {
        runId: sfn.JsonPath.stringAt('$.runId'),
        operation: sfn.JsonPath.stringAt('$.operation'),
        operationConfig: sfn.JsonPath.stringAt('$.operationConfig'),
        chunk: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
      },
      maxConcurrency,
      toleratedFailurePercentage: tolerated,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      resultPath: sfn.JsonPath.DISCARD,
      label: 'Chunks',
    });
    this.processChunks.itemProcessor(route);

    // ---- the run ----
    const validate = new tasks.LambdaInvoke(this, STATE_NAMES.validate, {
      lambdaFunction: this.validateFunction,
      payload: sfn.TaskInput.fromObject({ input: sfn.JsonPath.entirePayload, executionName: sfn.JsonPath.executionName }),
      outputPath: '$.Payload',
    });
    const plan = new tasks.LambdaInvoke(this, STATE_NAMES.plan, {
      lambdaFunction: this.plannerFunction,
      payload: sfn.TaskInput.fromJsonPathAt('$'),
      resultSelector: {
        'manifestBucket.$': '$.Payload.manifestBucket',
        'manifestKey.$': '$.Payload.manifestKey',
        'chunkCount.$': '$.Payload.chunkCount',
        'chunksDone.$': '$.Payload.chunksDone',
        'estimatedRecords.$': '$.Payload.estimatedRecords',
        'bytesRead.$': '$.Payload.bytesRead',
        'totalBytes.$': '$.Payload.totalBytes',
        'resumed.$': '$.Payload.resumed',
        'warnings.$': '$.Payload.warnings',
      },
      resultPath: '$.plan',
    });
    const aggregate = new tasks.LambdaInvoke(this, STATE_NAMES.aggregate, {
      lambdaFunction: this.aggregateFunction,
      payload: sfn.TaskInput.fromJsonPathAt('$'),
      outputPath: '$.Payload',
      comment: 'Reads chunk results from S3 (never the Map output) and merges them with the operation',
    });
    this.processChunks.addCatch(aggregate, { errors: ['States.ALL'], resultPath: '$.mapError' });
    for (const t of [validate, plan, aggregate]) {
      t.addRetry({
        errors: ['Lambda.TooManyRequestsException'],
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxAttempts: 6,
        jitterStrategy: sfn.JitterType.FULL,
      });
    }

    const failureSummary = new sfn.Pass(this, STATE_NAMES.failureSummary, {
      parameters: {
        status: 'FAILED',
        'executionName.$': '$$.Execution.Name',
        'error.$': '$.error.Error',
        'cause.$': '$.error.Cause',
      },
    });
    for (const t of [validate, plan, aggregate]) t.addCatch(failureSummary, { errors: ['States.ALL'], resultPath: '$.error' });

    const deliver = new sfn.Parallel(this, STATE_NAMES.deliver, {
      resultPath: '$.delivery',
      comment: 'The run message to every delivery target; a target that fails is recorded, the others still get it',
    });
    const counts: Record<string, number> = {};
    const stateName = (base: string): string => {
      counts[base] = (counts[base] ?? 0) + 1;
      return counts[base] === 1 ? base : `${base}${counts[base]}`;
    };
    for (const target of targets) {
      let task: sfn.TaskStateBase;
      let name: string;
      if (target.type === 'sqs') {
        name = stateName(STATE_NAMES.sendSqs);
        task = new tasks.SqsSendMessage(this, name, {
          queue: target.queue ?? this.summaryQueue!,
          messageBody: sfn.TaskInput.fromJsonPathAt('$'),
          resultSelector: { target: name, status: 'DELIVERED', 'messageId.$': '$.MessageId' },
        });
      } else if (target.type === 'eventbridge') {
        name = stateName(STATE_NAMES.putEvent);
        task = new tasks.EventBridgePutEvents(this, name, {
          entries: [{ detail: sfn.TaskInput.fromJsonPathAt('$'), detailType: RUN_EVENT_DETAIL_TYPE, source: RUN_EVENT_SOURCE, eventBus: target.eventBus }],
          resultSelector: { target: name, status: 'DELIVERED', 'failedEntryCount.$': '$.FailedEntryCount' },
        });
      } else {
        name = stateName(STATE_NAMES.sendKafka);
        const fn = this.kafkaFunction(name, target, fnDefaults, runsArn);
        task = new tasks.LambdaInvoke(this, name, {
          lambdaFunction: fn,
          payload: sfn.TaskInput.fromObject({ message: sfn.JsonPath.entirePayload }),
          resultSelector: { target: name, 'status.$': '$.Payload.status', 'partition.$': '$.Payload.partition', 'offset.$': '$.Payload.offset' },
          comment: `Produces the run message to Kafka topic ${target.topic} (MSK, IAM auth), key = run id`,
        });
        task.addRetry({ errors: ['Lambda.TooManyRequestsException', 'KafkaDeliveryFailed'], interval: Duration.seconds(5), backoffRate: 2, maxAttempts: 2, jitterStrategy: sfn.JitterType.FULL });
      }
      const failed = new sfn.Pass(this, `${name}Failed`, {
        parameters: { target: name, status: 'FAILED', 'error.$': '$.failure.Error', 'cause.$': '$.failure.Cause' },
      });
      task.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.failure' });
      deliver.branch(task);
    }
    const checkDeliveries = new sfn.Pass(this, STATE_NAMES.checkDeliveries, {
      parameters: { 'anyFailed.$': "States.ArrayContains($.delivery[*].status, 'FAILED')" },
      resultPath: '$.deliveryCheck',
    });
    const checkStatus = new sfn.Choice(this, STATE_NAMES.checkStatus)
      .when(
        sfn.Condition.stringEquals('$.status', 'FAILED'),
        new sfn.Fail(this, STATE_NAMES.failed, { error: 'RunFailed', cause: 'The run failed; its summary went to the delivery targets' }),
      )
      .otherwise(new sfn.Succeed(this, STATE_NAMES.succeeded));
    const anyDeliveryFailed = new sfn.Choice(this, STATE_NAMES.anyDeliveryFailed)
      .when(
        sfn.Condition.booleanEquals('$.deliveryCheck.anyFailed', true),
        new sfn.Fail(this, STATE_NAMES.deliveryFailed, {
          error: 'DeliveryFailed',
          cause: 'A delivery target failed (the others were tried); its error is in the DeliverSummary output ($.delivery, status FAILED) '
            + 'and, for Kafka, in runs/{runId}/deliveries/. The run summary and result in S3 are unchanged.',
        }),
      )
      .otherwise(checkStatus);
    deliver.next(checkDeliveries).next(anyDeliveryFailed);

    failureSummary.next(deliver);
    const definition = validate.next(plan).next(this.processChunks).next(aggregate).next(deliver);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logRetention, removalPolicy });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout ?? DEFAULT_RUN_TIMEOUT,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      comment: 'cdk-batch-platform chunked processing: plan -> chunks on Lambda or Batch -> aggregate -> deliver',
    });
    // .sync polls the job and stops it when the execution is stopped (AWS's documented policy for
    // batch:submitJob.sync); the L2 task grants only SubmitJob and the managed rule.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['batch:DescribeJobs'],
        resources: ['*'],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        // SubmitJob with Tags also needs TagResource on the new job.
        actions: ['batch:TerminateJob', 'batch:TagResource'],
        resources: [Stack.of(this).formatArn({ service: 'batch', resource: 'job', resourceName: '*' })],
      }),
    );

    // The StateMachine L2 adds a DependsOn its role next to the GetAtt of its ARN, which cfn-lint
    // reports as W3005; harmless, so ignored on this resource only (PlatformFunction does the same).
    (this.stateMachine.node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
    const terminateArn = Stack.of(this).formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    const submitArn = Stack.of(this).formatArn({ service: 'batch', resource: 'job-definition', resourceName: `${jobDefinitionName}:*` });
    // Finding ids name resolved ARNs, and cross-stack references (the bucket from the platform stack)
    // only resolve to their Fn::ImportValue after the prepare phase: so acknowledge at validation time.
    this.node.addValidation({
      validate: () => {
        this.acknowledgeFindings({
          functions: [this.validateFunction, this.plannerFunction, this.chunkFunction, this.aggregateFunction, ...this.kafkaDeliveryFunctions],
          inputObjects,
          runsArn,
          itemReaderArns: manifestReader.providePolicyStatements().flatMap((st) => st.resources),
          submitArn,
          terminateArn,
        });
        return [];
      },
    });
  }

  /** The delivery Lambda of one Kafka target: in the cluster's VPC, IAM auth scoped to the cluster and the topic. */
  private kafkaFunction(
    name: string,
    target: Extract<DeliveryTarget, { type: 'kafka' }>,
    fnDefaults: { logRetention: logs.RetentionDays; logRemovalPolicy: RemovalPolicy },
    runsArn: string,
  ): PlatformFunction {
    const fn = new PlatformFunction(this, `${name}Function`, {
      ...fnDefaults,
      entry: handlerEntry('deliver-kafka/index.ts'),
      description: `Chunked processing: delivers the run message to Kafka topic ${target.topic} (Amazon MSK, IAM auth)`,
      // Connect 3 s + request 10 s, 2 retries each (lambda/deliver-kafka/kafka.ts): well inside a minute.
      timeout: Duration.minutes(1),
      environment: {
        RUNS_BUCKET: this.props.bucket.bucketName,
        KAFKA_BROKERS: target.bootstrapBrokers,
        KAFKA_TOPIC: target.topic,
        KAFKA_CLIENT_ID: 'cdk-batch-platform-delivery',
      },
      vpc: target.vpc,
      vpcSubnets: target.vpcSubnets,
      securityGroups: target.securityGroups,
    });
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['kafka-cluster:Connect', 'kafka-cluster:WriteDataIdempotently'],
      resources: [target.clusterArn],
    }));
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData'],
      resources: [mskTopicArn(target.clusterArn, target.topic)],
    }));
    // The outcome record runs/{runId}/deliveries/kafka-<topic>.json.
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [runsArn] }));
    this.props.bucket.encryptionKey?.grantEncrypt(fn);
    this.kafkaDeliveryFunctions.push(fn);
    return fn;
  }

  /** Lets `grantee` start runs of this workflow. */
  public grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  private acknowledgeFindings(a: {
    functions: PlatformFunction[];
    inputObjects: string[];
    runsArn: string;
    itemReaderArns: string[];
    submitArn: string;
    terminateArn: string;
  }): void {
    const stack = Stack.of(this);
    const iam5 = (arn: string): string => `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, arn)}]`;
    const ack = (scope: IConstruct | undefined, id: string, reason: string): void => {
      if (scope) Validations.of(scope).acknowledge({ id, reason });
    };
    const inputReason = 'input object keys are chosen per run, so reads cover the objects of the input buckets (read-only)';
    const runsReason = 'run ids are chosen per execution; access is limited to the runs/ prefix of the work bucket';
    for (const fn of a.functions) {
      const policy = fn.role?.node.tryFindChild('DefaultPolicy');
      ack(policy, 'AwsSolutions-IAM5[Resource::*]', 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions');
      for (const arn of a.inputObjects) ack(policy, iam5(arn), inputReason);
      ack(policy, iam5(a.runsArn), runsReason);
    }
    const smPolicy = this.stateMachine.role.node.tryFindChild('DefaultPolicy');
    for (const fn of a.functions) {
      ack(smPolicy, `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, fn.functionArn)}:*]`,
        'LambdaInvoke grants the function and its versions/aliases (<arn>:*); only this workflow\'s functions');
    }
    ack(smPolicy, 'AwsSolutions-IAM5[Resource::*]',
      'batch:DescribeJobs (used by submitJob.sync) and X-Ray trace writes support no resource-level permissions');
    ack(smPolicy, iam5(a.runsArn), `${runsReason} (failure records and Batch done-markers)`);
    for (const arn of a.itemReaderArns) {
      ack(smPolicy, iam5(arn), 'the Distributed Map ItemReader reads runs/{runId}/manifest.jsonl, whose key is known only at run time');
    }
    ack(smPolicy, iam5(a.submitArn), 'SubmitJob on every revision (name:*) of the worker job definition only, so a new revision needs no redeploy');
    ack(smPolicy, iam5(a.terminateArn), 'TerminateJob stops the .sync job of a stopped execution; job ids exist only at run time');
    const mapPolicy = this.stateMachine.node.tryFindChild('DistributedMapPolicy') as iam.Policy | undefined;
    if (mapPolicy) {
      const doc = stack.resolve(mapPolicy.document.toJSON()) as { Statement?: { Resource?: unknown }[] };
      for (const st of doc.Statement ?? []) {
        for (const r of ([] as unknown[]).concat(st.Resource ?? [])) {
          ack(mapPolicy, `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, r)}]`,
            'Distributed Map child executions of this state machine only (execution ids exist at run time)');
        }
      }
    }
  }
}

/**
 * The L2 BatchSubmitJob grants batch:SubmitJob on `job-definition/*`: every job definition of the
 * account. This narrows it to the revisions of our worker job definition (`name:*`) and our queue.
 */
class ScopedBatchSubmitJob extends tasks.BatchSubmitJob {
  constructor(scope: Construct, id: string, props: tasks.BatchSubmitJobProps, submitResources: string[]) {
    super(scope, id, props);
    const policies = this.taskPolicies ?? [];
    const i = policies.findIndex((s) => s.actions.includes('batch:SubmitJob'));
    if (i < 0) throw new Error(`[${this.node.path}] BatchSubmitJob no longer has a batch:SubmitJob statement to scope`);
    policies[i] = new iam.PolicyStatement({ actions: ['batch:SubmitJob'], resources: submitResources });
  }
}
