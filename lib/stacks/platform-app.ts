import { App, RemovalPolicy, StackProps, Validations } from 'aws-cdk-lib';
import { BatchPlatformStack } from './batch-platform-stack';
import { StageConfig } from './stage-config';
import { ChunkedProcessingStack } from '../workflow/chunked-processing-stack';
import { OcrApiStack } from '../workloads/ocr-api/ocr-api-stack';
import { PhotoBundlesStack } from '../workloads/photo-bundles/photo-bundles-stack';
import { RoadMetricsStack } from '../workloads/road-metrics/road-metrics-stack';

export interface PlatformStacks {
  readonly platform: BatchPlatformStack;
  readonly workflow: ChunkedProcessingStack;
  readonly roadMetrics?: RoadMetricsStack;
  readonly photoBundles?: PhotoBundlesStack;
  readonly ocrApi?: OcrApiStack;
}

/**
 * Adds one stage's stacks to an app: `BatchPlatform-<stage>` and `ChunkedProcessing-<stage>` built on it.
 * `bin/app.ts` and the tests both call this, so the tests check exactly what `cdk synth` deploys.
 */
export function addPlatformStacks(app: App, config: StageConfig): PlatformStacks {
  const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
  const tags = { project: 'cdk-batch-platform', stage: config.stage };
  const platform = new BatchPlatformStack(app, `BatchPlatform-${config.stage}`, {
    config,
    ...(config.quota ? { quota: { defaultLimits: config.quota, removalPolicy: config.removalPolicy } } : {}),
    // The OCR API's browser callers PUT their images to presigned URLs of the input bucket: same origins.
    uploadCorsOrigins: config.ocrApi?.corsAllowedOrigins,
    env,
    tags,
    description: `cdk-batch-platform: AWS Batch platform (${config.stage})`,
  });
  const workflow = new ChunkedProcessingStack(app, `ChunkedProcessing-${config.stage}`, {
    env,
    tags,
    description: `cdk-batch-platform: chunked processing workflow (${config.stage})`,
    stage: config,
    jobQueue: platform.jobQueue.jobQueue,
    jobDefinition: platform.chunkJobDefinition.jobDefinition,
    bucket: platform.buckets.outputBucket,
    inputBuckets: [platform.buckets.inputBucket],
    alarmTopic: platform.monitoring.operationsTopic,
  });
  const road = config.roadMetrics;
  const roadMetrics = road
    ? new RoadMetricsStack(app, `RoadMetrics-${config.stage}`, {
        env,
        tags,
        description: `cdk-batch-platform: road-metrics workload (${config.stage})`,
        stage: config.stage,
        vpc: platform.network.vpc,
        vpcSubnets: platform.network.subnetSelection,
        workerSecurityGroup: platform.network.batchSecurityGroup,
        jobQueue: platform.jobQueue.jobQueue,
        outputBucket: platform.buckets.outputBucket,
        database: { kind: 'aurora', minCapacity: road.minCapacity, maxCapacity: road.maxCapacity },
        monthlyBudgetUsd: road.monthlyBudgetUsd,
        logRetention: config.logRetention,
        removalPolicy: config.removalPolicy === RemovalPolicy.RETAIN ? RemovalPolicy.RETAIN : RemovalPolicy.SNAPSHOT,
        keptImages: config.keptImages,
      })
    : undefined;
  const photoBundles = config.photoBundles ? addPhotoBundles(app, config, platform, env, tags) : undefined;
  const ocrApi = config.ocrApi ? addOcrApi(app, config, platform, env, tags) : undefined;
  return { platform, workflow, roadMetrics, photoBundles, ocrApi };
}

function addOcrApi(app: App, config: StageConfig, platform: BatchPlatformStack, env: StackProps['env'], tags: Record<string, string>): OcrApiStack {
  const ocr = config.ocrApi!;
  if (!platform.fargateJobQueue || !platform.ocrJobDefinition) {
    throw new Error(`stage ${config.stage}: ocrApi needs the Fargate queue and the OcrJob definition; allowed: set fargate to true in STAGES.${config.stage}`);
  }
  return new OcrApiStack(app, `OcrApi-${config.stage}`, {
    env,
    tags,
    description: `cdk-batch-platform: OCR API workload (${config.stage})`,
    stage: config.stage,
    jobQueue: platform.fargateJobQueue.jobQueue,
    jobDefinition: platform.ocrJobDefinition.jobDefinition,
    inputBucket: platform.buckets.inputBucket,
    outputBucket: platform.buckets.outputBucket,
    alarmTopic: platform.monitoring.operationsTopic,
    corsAllowedOrigins: ocr.corsAllowedOrigins,
    pointInTimeRecovery: ocr.pointInTimeRecovery,
    cleanup: ocr.cleanup,
    tableRemovalPolicy: config.removalPolicy,
    logRetention: config.logRetention,
  });
}

function addPhotoBundles(app: App, config: StageConfig, platform: BatchPlatformStack, env: StackProps['env'], tags: Record<string, string>): PhotoBundlesStack {
  const bundles = config.photoBundles!;
  const network = platform.network;
  if (!network.egressSubnetSelection || !network.egressSecurityGroup) {
    throw new Error(`stage ${config.stage}: photoBundles needs internet egress (photos, R2); allowed: set egress to 'ONE' or 'PER_AZ' in STAGES.${config.stage}`);
  }
  return new PhotoBundlesStack(app, `PhotoBundles-${config.stage}`, {
    env,
    tags,
    description: `cdk-batch-platform: photo-bundles workload (${config.stage})`,
    stage: config.stage,
    vpc: network.vpc,
    egressSubnets: network.egressSubnetSelection,
    egressSecurityGroup: network.egressSecurityGroup,
    inputBucket: platform.buckets.inputBucket,
    notificationTopic: platform.notifications.topic,
    alarmTopic: platform.monitoring.operationsTopic,
    r2Bucket: bundles.r2Bucket,
    maxvCpus: bundles.maxvCpus,
    architecture: bundles.architecture,
    logRetention: config.logRetention,
    removalPolicy: config.removalPolicy,
    keptImages: config.keptImages,
  });
}

/** Runs cdk-nag's AwsSolutions pack on every synth: an unacknowledged finding fails it. */
export function addComplianceChecks(app: App): void {
  // Loaded here, not at import: an app that never calls this does not pay for cdk-nag's rule packs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { AwsSolutionsChecks } = require('cdk-nag') as typeof import('cdk-nag');
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}
