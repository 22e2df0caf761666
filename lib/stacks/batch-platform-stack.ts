import { CfnOutput, Duration, Size, Stack, StackProps, TimeZone } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { JobRouteTargets, jobRoutesJson } from '../api/grants';
import { QueueTriggeredJobs } from '../api/queue-triggered-jobs';
import { QuotaTable, QuotaTableProps } from '../api/quota-table';
import { SubmitApi } from '../api/submit-api';
import { JobCleanup } from '../cleanup/job-cleanup';
import { Ec2ComputeEnvironment } from '../compute/ec2-compute-environment';
import { FargateComputeEnvironment } from '../compute/fargate-compute-environment';
import { ScheduledJob } from '../jobs/scheduled-job';
import { WorkerImage } from '../jobs/worker-image';
import { WorkerJobDefinition } from '../jobs/worker-job-definition';
import { BatchMonitoring } from '../monitoring/batch-monitoring';
import { BatchNetwork } from '../network/batch-network';
import { CompletionWebhook } from '../notifications/completion-webhook';
import { JobNotifications } from '../notifications/job-notifications';
import { BatchJobQueue } from '../queue/batch-job-queue';
import { StagingBuckets } from '../storage/staging-buckets';
import { expectedOperationDurations } from './operation-durations';
import { ChunkJobDefinition } from '../workflow/chunk-job-definition';
import { INPUT_REQUEST_METRICS_ID, RUNS_REQUEST_METRICS_ID } from '../workflow/workflow-dashboard';
import { StageConfig } from './stage-config';

/** The ocr job's size: Fargate 2 vCPU / 4 GiB, as the ocr operation's placement declares. */
export const OCR_JOB_VCPUS = 2;
export const OCR_JOB_MEMORY_MIB = 4096;

export interface BatchPlatformStackProps extends StackProps {
  /** Stage settings (see `STAGES` in stage-config.ts). */
  readonly config: StageConfig;
  /**
   * Per-tenant quotas on the submit API, the queue path and (through the QuotaTableName / QuotaLimits
   * outputs) batchctl: a QuotaTable releasing slots on the terminal events of the stack's queues.
   * @default - no quotas
   */
  readonly quota?: Omit<QuotaTableProps, 'jobQueues'>;
  /**
   * Browser origins that may PUT to presigned URLs of the input bucket (a CORS rule on it; see
   * `StagingBuckets` `uploadCorsOrigins`). `addPlatformStacks` sets it to the stage's OCR API CORS origins.
   * @default - none: no CORS rule on the input bucket
   */
  readonly uploadCorsOrigins?: readonly string[];
}

/**
 * The whole platform for one stage: network without NAT, staging buckets, a Spot-first EC2 queue with
 * an On-Demand fallback, an optional Fargate queue, worker job definitions for both, completion
 * notifications with a verified webhook, monitoring (alarms on every Lambda and DLQ of the stack),
 * cleanup, scheduled jobs, the submit API and queue-triggered jobs, and the outputs
 * `batchctl --stack` reads.
 */
export class BatchPlatformStack extends Stack {
  public readonly config: StageConfig;
  public readonly network: BatchNetwork;
  public readonly buckets: StagingBuckets;
  public readonly computeEnvironments: readonly Ec2ComputeEnvironment[];
  public readonly jobQueue: BatchJobQueue;
  public readonly jobDefinition: WorkerJobDefinition;
  /** The streaming worker image in its own ECR repository (both worker job definitions use it). */
  public readonly workerImage: WorkerImage;
  /** The Dockerfile's `ocr` target in its own ECR repository (only with a Fargate queue). */
  public readonly ocrImage?: WorkerImage;
  /** The chunked workflow's Batch chunk jobs: EC2, the stage's chunk size, WORKER_THREADS = its vCPUs. */
  public readonly chunkJobDefinition: ChunkJobDefinition;
  public readonly fargateComputeEnvironments: readonly FargateComputeEnvironment[];
  public readonly fargateJobQueue?: BatchJobQueue;
  public readonly fargateJobDefinition?: WorkerJobDefinition;
  /** The `ocr` operation's job definition: Fargate, the Dockerfile's `ocr` image target (only with a Fargate queue). */
  public readonly ocrJobDefinition?: WorkerJobDefinition;
  /**
   * Where operations placed elsewhere than EC2 + streaming worker go, by placement key (lib/api/grants.ts
   * JobRouteTargets): `FARGATE:worker` and `FARGATE:ocr` when the stage has a Fargate queue.
   */
  public readonly jobRoutes: JobRouteTargets;
  public readonly notifications: JobNotifications;
  public readonly webhook: CompletionWebhook;
  public readonly monitoring: BatchMonitoring;
  public readonly cleanup: JobCleanup;
  /** Per-tenant quotas (only with the `quota` prop). */
  public readonly quota?: QuotaTable;
  public readonly scheduledJobs: readonly ScheduledJob[];
  public readonly submitApi: SubmitApi;
  public readonly queueTriggeredJobs: QueueTriggeredJobs;

  constructor(scope: Construct, id: string, props: BatchPlatformStackProps) {
    super(scope, id, props);
    const config = props.config;
    this.config = config;

    this.network = new BatchNetwork(this, 'Network', {
      natGateways: config.natGateways,
      egress: config.egress ? { natGateways: config.egress } : undefined,
      enableSsmEndpoints: config.ssmEndpoints,
      flowLogRetention: config.logRetention,
      removalPolicy: config.removalPolicy,
    });
    const placement = {
      vpc: this.network.vpc,
      vpcSubnets: this.network.subnetSelection,
      securityGroups: [this.network.batchSecurityGroup],
    };

    this.buckets = new StagingBuckets(this, 'Staging', {
      removalPolicy: config.removalPolicy,
      autoDeleteObjects: false,
      objectRetentionDays: config.retentionDays,
      uploadCorsOrigins: props.uploadCorsOrigins,
    });

    // S3 publishes request metrics only for a metrics configuration: the workflow dashboard reads these two.
    for (const [bucket, id, prefix] of [
      [this.buckets.outputBucket, RUNS_REQUEST_METRICS_ID, 'runs/'],
      [this.buckets.inputBucket, INPUT_REQUEST_METRICS_ID, undefined],
    ] as const) {
      if (bucket instanceof s3.Bucket) bucket.addMetric({ id, prefix });
    }

    // Spot first, On-Demand as the fallback the queue turns to when Spot has no capacity.
    this.computeEnvironments = [
      ...(config.useSpot ? [new Ec2ComputeEnvironment(this, 'SpotCompute', { ...placement, capacity: 'SPOT', maxvCpus: config.maxvCpus })] : []),
      new Ec2ComputeEnvironment(this, 'OnDemandCompute', { ...placement, capacity: 'ON_DEMAND', maxvCpus: config.maxvCpus }),
    ];
    this.jobQueue = new BatchJobQueue(this, 'JobQueue', {
      computeEnvironments: this.computeEnvironments,
      runnableTimeout: Duration.minutes(config.runnableTimeoutMinutes),
    });

    // The staging buckets exist only for jobs: the worker reads any input and writes (and reads back
    // checkpoints of) any output, whether it runs as a job (jobs/), a workflow chunk (runs/) or a
    // scheduled job. Narrower prefixes would make one of those fail with AccessDenied on AWS.
    const jobIo = {
      inputBucket: this.buckets.inputBucket,
      inputPrefix: '',
      outputBucket: this.buckets.outputBucket,
      outputPrefix: '',
      allowOutputRead: true,
      timeout: Duration.minutes(config.jobTimeoutMinutes),
      logRetention: config.logRetention,
      // A job submitted through BatchJobClient overrides it with its own retentionDays.
      environment: this.buckets.retentionEnvironment(),
    };
    // Worker images live in repositories of our own (scan on push, lifecycle, immutable tags), copied
    // there at deploy from the image assets cdk builds.
    const images = { removalPolicy: config.removalPolicy, keptImages: config.keptImages };
    this.workerImage = new WorkerImage(this, 'WorkerImage', images);
    this.jobDefinition = new WorkerJobDefinition(this, 'WorkerJob', { ...jobIo, platform: 'EC2', workerImage: this.workerImage });
    if (config.chunkJob.vCpus > config.maxvCpus) {
      throw new Error(`[${this.node.path}] chunkJob.vCpus (${config.chunkJob.vCpus}) is larger than maxvCpus; allowed: at most maxvCpus (${config.maxvCpus})`);
    }
    this.chunkJobDefinition = new ChunkJobDefinition(this, 'ChunkJob', {
      ...jobIo,
      workerImage: this.workerImage,
      vCpus: config.chunkJob.vCpus,
      memory: Size.mebibytes(config.chunkJob.memoryMiB),
    });

    this.fargateComputeEnvironments = config.fargate
      ? [
        new FargateComputeEnvironment(this, 'FargateSpotCompute', { ...placement, spot: true, maxvCpus: config.maxvCpus }),
        new FargateComputeEnvironment(this, 'FargateCompute', { ...placement, spot: false, maxvCpus: config.maxvCpus }),
      ]
      : [];
    if (config.fargate) {
      this.fargateJobQueue = new BatchJobQueue(this, 'FargateJobQueue', {
        computeEnvironments: this.fargateComputeEnvironments,
        runnableTimeout: Duration.minutes(config.runnableTimeoutMinutes),
      });
      this.fargateJobDefinition = new WorkerJobDefinition(this, 'FargateWorkerJob', { ...jobIo, platform: 'FARGATE', workerImage: this.workerImage });
      this.ocrImage = new WorkerImage(this, 'OcrImage', { ...images, target: 'ocr' });
      // The size is the ocr operation's placement (containers/worker/src/operations/placement.ts
      // OCR_PLACEMENT); constructs do not import runtime code, so a test checks the two agree.
      this.ocrJobDefinition = new WorkerJobDefinition(this, 'OcrJob', {
        ...jobIo,
        platform: 'FARGATE',
        workerImage: this.ocrImage,
        cpu: OCR_JOB_VCPUS,
        memory: Size.mebibytes(OCR_JOB_MEMORY_MIB),
      });
    }
    this.jobRoutes = this.fargateJobQueue && this.fargateJobDefinition && this.ocrJobDefinition
      ? {
        'FARGATE:worker': { jobQueue: this.fargateJobQueue.jobQueue, jobDefinition: this.fargateJobDefinition.jobDefinition },
        'FARGATE:ocr': { jobQueue: this.fargateJobQueue.jobQueue, jobDefinition: this.ocrJobDefinition.jobDefinition },
      }
      : {};

    // Job lifecycle: notifications -> verified webhook, metrics + alarms, cleanup, schedules.
    const queues = [this.jobQueue.jobQueue, ...(this.fargateJobQueue ? [this.fargateJobQueue.jobQueue] : [])];
    const definitions = [
      this.jobDefinition.jobDefinition,
      this.chunkJobDefinition.jobDefinition,
      ...(this.fargateJobDefinition ? [this.fargateJobDefinition.jobDefinition] : []),
      ...(this.ocrJobDefinition ? [this.ocrJobDefinition.jobDefinition] : []),
    ];
    this.notifications = new JobNotifications(this, 'Notifications', { jobQueues: queues, sqsSubscription: true });
    this.webhook = new CompletionWebhook(this, 'CompletionWebhook', {
      topics: [this.notifications.topic],
      outputBucket: this.buckets.outputBucket,
      callbacks: { inputBucket: this.buckets.inputBucket, allowedCidrs: config.callbackAllowedCidrs },
      tableRemovalPolicy: config.removalPolicy,
      retentionDays: this.buckets.objectRetentionDays,
      accessLogRetention: config.logRetention,
      logRetention: config.logRetention,
    });
    this.notifications.addWebhook(this.webhook.url);
    this.monitoring = new BatchMonitoring(this, 'Monitoring', {
      jobQueues: queues,
      logRetention: config.logRetention,
      operationDurations: expectedOperationDurations(),
      failureRateThresholdPercent: config.failureRateThresholdPercent,
      // Off in dev (no costAnomalyThresholdUsd): its spend is a few NAT/endpoint hours a day, so the
      // anomalies would be noise, and each stage's custom monitor counts against the account's limit.
      costAnomalyDetection:
        config.costAnomalyThresholdUsd === undefined ? undefined : { tag: { key: 'stage', value: config.stage }, thresholdUsd: config.costAnomalyThresholdUsd },
    });
    this.cleanup = new JobCleanup(this, 'Cleanup', {
      jobQueues: queues,
      jobDefinitions: definitions,
      stuckAfter: Duration.minutes(config.runnableTimeoutMinutes * 2),
      maxRunTime: Duration.minutes(config.jobTimeoutMinutes * 2),
      logRetention: config.logRetention,
    });
    this.scheduledJobs = config.schedules.map(
      (s) =>
        new ScheduledJob(this, s.name, {
          jobQueue: this.jobQueue.jobQueue,
          jobDefinition: this.jobDefinition.jobDefinition,
          jobName: s.name,
          schedule: scheduler.ScheduleExpression.cron({ ...s.cron, timeZone: TimeZone.of(s.timeZone) }),
          environment: {
            JOB_ID: s.name,
            OPERATION: s.operation,
            INPUT_S3_BUCKET: this.buckets.inputBucket.bucketName,
            INPUT_S3_KEY: s.inputKey,
            OUTPUT_S3_BUCKET: this.buckets.outputBucket.bucketName,
            OUTPUT_S3_KEY: s.outputKey,
          },
        }),
    );
    // Submission: HTTP API (IAM auth) and SQS-triggered jobs, both thin Lambdas over BatchJobClient.
    const submitTarget = {
      jobQueue: this.jobQueue.jobQueue,
      jobDefinition: this.jobDefinition.jobDefinition,
      inputBucket: this.buckets.inputBucket,
      outputBucket: this.buckets.outputBucket,
      routes: this.jobRoutes,
    };
    if (props.quota) {
      const queues = [this.jobQueue.jobQueue, ...(this.fargateJobQueue ? [this.fargateJobQueue.jobQueue] : [])];
      this.quota = new QuotaTable(this, 'Quota', { logRetention: config.logRetention, ...props.quota, jobQueues: queues });
    }
    this.submitApi = new SubmitApi(this, 'SubmitApi', { ...submitTarget, quota: this.quota, accessLogRetention: config.logRetention, logRetention: config.logRetention });
    this.queueTriggeredJobs = new QueueTriggeredJobs(this, 'QueueTriggeredJobs', { ...submitTarget, quota: this.quota, logRetention: config.logRetention });

    const api = this.submitApi;
    this.watch([this.webhook.handler, this.cleanup.function, api.submitFunction, api.statusFunction, api.cancelFunction, this.queueTriggeredJobs.submitFunction, ...(this.quota ? [this.quota.releaseFunction] : [])], [
      ...(this.quota ? [this.quota.releaseDeadLetterQueue] : []),
      this.queueTriggeredJobs.deadLetterQueue,
      this.notifications.deadLetterQueue,
      ...(this.webhook.callbackDeadLetterQueue ? [this.webhook.callbackDeadLetterQueue] : []),
      ...(this.notifications.subscriptionDeadLetterQueue ? [this.notifications.subscriptionDeadLetterQueue] : []),
      ...this.scheduledJobs.map((j) => j.deadLetterQueue),
    ]);

    this.addOutputs();
  }

  /** Alarms on every Lambda's errors and every dead-letter queue's depth, to the operations topic. */
  private watch(functions: lambda.IFunction[], deadLetterQueues: sqs.IQueue[]): void {
    functions.forEach((fn) => this.monitoring.addLambdaErrorAlarm(fn));
    deadLetterQueues.forEach((q) => this.monitoring.addDlqAlarm(q));
  }

  /** Outputs read by `batchctl --stack <name>` (keys are a contract: see docs/submitting.md). */
  private addOutputs(): void {
    new CfnOutput(this, 'JobQueueArn', { value: this.jobQueue.jobQueue.jobQueueArn, description: 'EC2 (Spot first) job queue' });
    new CfnOutput(this, 'JobDefinitionArn', { value: this.jobDefinition.jobDefinition.jobDefinitionArn, description: 'Worker job definition (EC2)' });
    new CfnOutput(this, 'ChunkJobDefinitionArn', {
      value: this.chunkJobDefinition.jobDefinition.jobDefinitionArn,
      description: `Chunked workflow's Batch chunk jobs (${this.chunkJobDefinition.vCpus} vCPU, WORKER_THREADS=${this.chunkJobDefinition.vCpus})`,
    });
    if (this.fargateJobQueue && this.fargateJobDefinition) {
      new CfnOutput(this, 'FargateJobQueueArn', { value: this.fargateJobQueue.jobQueue.jobQueueArn, description: 'Fargate (Spot first) job queue' });
      new CfnOutput(this, 'FargateJobDefinitionArn', { value: this.fargateJobDefinition.jobDefinition.jobDefinitionArn, description: 'Worker job definition (Fargate)' });
    }
    if (Object.keys(this.jobRoutes).length) {
      new CfnOutput(this, 'JobRoutes', { value: jobRoutesJson(this, this.jobRoutes), description: 'Queue and job definition per placement (JSON): batchctl --stack routes ocr jobs by it' });
    }
    new CfnOutput(this, 'InputBucketName', { value: this.buckets.inputBucket.bucketName, description: 'Staging bucket for job inputs' });
    new CfnOutput(this, 'OutputBucketName', { value: this.buckets.outputBucket.bucketName, description: 'Staging bucket for job outputs' });
    new CfnOutput(this, 'SubmitApiUrl', { value: this.submitApi.api.url, description: 'HTTP submit API (IAM auth): POST /jobs' });
    new CfnOutput(this, 'SubmitQueueUrl', { value: this.queueTriggeredJobs.queue.queueUrl, description: 'SQS queue whose messages become jobs' });
    if (this.quota) {
      new CfnOutput(this, 'QuotaTableName', { value: this.quota.table.tableName, description: 'Per-tenant quota table: batchctl --stack enforces the quotas too' });
      new CfnOutput(this, 'QuotaLimits', { value: this.quota.limitsJson, description: 'Per-tenant quota limits (JSON)' });
    }
    new CfnOutput(this, 'NotificationTopicArn', { value: this.notifications.topic.topicArn, description: 'SNS topic: one JSON message per job state change' });
    new CfnOutput(this, 'WebhookUrl', { value: this.webhook.baseUrl, description: 'Completion webhook (SNS HTTPS subscriber) without its secret path segment' });
    new CfnOutput(this, 'OperationsTopicArn', { value: this.monitoring.operationsTopic.topicArn, description: 'Alarm notifications' });
  }
}
