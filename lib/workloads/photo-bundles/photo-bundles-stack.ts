import { CfnOutput, CfnParameter, Duration, RemovalPolicy, Size, Stack, StackProps, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { QueueTriggeredJobs } from '../../api/queue-triggered-jobs';
import { handlerEntry, PlatformFunction } from '../../common/node-function';
import { checkInteger, checkRange, propError } from '../../common/validation';
import { Ec2ComputeEnvironment } from '../../compute/ec2-compute-environment';
import { ComputeArchitecture } from '../../compute/instance-presets';
import { WorkerImage } from '../../jobs/worker-image';
import { WorkerJobDefinition } from '../../jobs/worker-job-definition';
import { acknowledgeLambdaBasics, acknowledgeWildcardResource } from '../../monitoring/nag';
import { BatchJobQueue } from '../../queue/batch-job-queue';

export const DEFAULT_BUNDLE_MAX_VCPUS = 100;
export const DEFAULT_BUNDLE_DOWNLOAD_CONCURRENCY = 5;
export const BUNDLE_JOB_CPU = 2;
export const BUNDLE_JOB_MEMORY = Size.gibibytes(4);
export const DEFAULT_BUNDLE_JOB_TIMEOUT = Duration.hours(1);
/** A bundle with a few dead links is still delivered (failures listed); above this share of failed photos it is not. */
export const DEFAULT_MAX_FAILED_PHOTO_RATIO = 0.25;
export const BUNDLE_JOB_NAME_PREFIX = 'bundle';
/** Manifests (`manifestKey`) live under this prefix of the input bucket (lambda/queue-submit/photo-bundle.ts). */
export const BUNDLE_MANIFEST_PREFIX = 'photo-manifests/';
/** Namespace of the EMF metrics bundle-photos emits (containers/worker/src/operations/bundle-metrics.ts). */
export const BUNDLE_METRIC_NAMESPACE = 'CdkBatchPlatform/PhotoBundles';

export interface PhotoBundlesStackProps extends StackProps {
  /** Stage name, for names and descriptions. */
  readonly stage: string;
  /** The platform's VPC and its egress placement (`BatchNetwork.egressSubnetSelection` / `egressSecurityGroup`). */
  readonly vpc: ec2.IVpc;
  readonly egressSubnets: ec2.SubnetSelection;
  readonly egressSecurityGroup: ec2.ISecurityGroup;
  /** The platform's input bucket: staged bundle inputs (`jobs/`) and manifests (`photo-manifests/`). */
  readonly inputBucket: s3.IBucket;
  /** The platform's notification topic: one message per finished bundle. */
  readonly notificationTopic: sns.ITopic;
  /** Where alarms go (the platform's operations topic). @default - alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /**
   * R2's S3 endpoint, `https://<account id>.r2.cloudflarestorage.com`.
   * @default - a CloudFormation parameter `R2Endpoint` given at deploy time
   */
  readonly r2Endpoint?: string;
  /** The R2 bucket every ZIP goes to (a message's `destination.bucket` must name it). */
  readonly r2Bucket: string;
  /**
   * Secret holding the R2 access key pair as JSON `{"accessKeyId","secretAccessKey"}`; the job reads it
   * as job-definition secrets (never plain environment).
   * @default - a new secret (fill it with `aws secretsmanager put-secret-value` before the first bundle)
   */
  readonly r2CredentialsSecret?: secretsmanager.ISecret;
  /** Instances of the network-optimised preset: c5n/m5n/c6in... (X86_64) or c6gn/c7gn (ARM64). @default 'X86_64' */
  readonly architecture?: ComputeArchitecture;
  /**
   * Tagged images the worker image repository keeps.
   * @default 10
   */
  readonly keptImages?: number;
  /**
   * What happens to the worker image repository when it leaves the stack (DESTROY deletes its images too).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Upper bound of both compute environments. @default 100 */
  readonly maxvCpus?: number;
  /** Parallel downloads per bundle. @default 5 */
  readonly downloadConcurrency?: number;
  /** @default Duration.hours(1) */
  readonly jobTimeout?: Duration;
  /**
   * Largest share of photos that may fail (404, 500, timeouts) for the ZIP still to be written; the
   * completion message lists the failures either way.
   * @default 0.25
   */
  readonly maxFailedPhotoRatio?: number;
  /**
   * Verified SES identity to send "your bundle is ready" e-mails from, to a message's `notify.email`.
   * @default - no e-mail
   */
  readonly emailFrom?: string;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * `PhotoBundles-<stage>`: one SQS message per event becomes a ZIP of its photos in Cloudflare R2.
 * Consumes the platform's VPC (egress subnets and HTTPS-only security group), input bucket and
 * notification topic; adds a Spot-first queue on the network-optimised preset (0..100 vCPUs, On-Demand
 * fallback), the bundle job definition (2 vCPU / 4 GiB, R2 endpoint in its environment, R2 keys as
 * secrets), the message queue + DLQ (QueueTriggeredJobs in photo-bundle mode), the completion notifier,
 * and a dashboard row with alarms.
 */
export class PhotoBundlesStack extends Stack {
  public readonly computeEnvironments: readonly Ec2ComputeEnvironment[];
  public readonly jobQueue: BatchJobQueue;
  public readonly jobDefinition: WorkerJobDefinition;
  /** The worker image the job runs, in this stack's own ECR repository. */
  public readonly workerImage: WorkerImage;
  public readonly r2CredentialsSecret: secretsmanager.ISecret;
  public readonly messages: QueueTriggeredJobs;
  public readonly notifyFunction: PlatformFunction;
  public readonly notifyRule: events.Rule;
  public readonly notifyDeadLetterQueue: sqs.Queue;
  public readonly dashboard: cloudwatch.Dashboard;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: PhotoBundlesStackProps) {
    super(scope, id, props);
    const maxvCpus = props.maxvCpus ?? DEFAULT_BUNDLE_MAX_VCPUS;
    const concurrency = props.downloadConcurrency ?? DEFAULT_BUNDLE_DOWNLOAD_CONCURRENCY;
    checkInteger(this, 'maxvCpus', maxvCpus, BUNDLE_JOB_CPU);
    checkInteger(this, 'downloadConcurrency', concurrency, 1);
    checkRange(this, 'downloadConcurrency', concurrency, 1, 64);
    const maxFailedRatio = props.maxFailedPhotoRatio ?? DEFAULT_MAX_FAILED_PHOTO_RATIO;
    checkRange(this, 'maxFailedPhotoRatio', maxFailedRatio, 0, 1);
    if (!Token.isUnresolved(props.r2Bucket) && !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(props.r2Bucket)) {
      throw propError(this, 'r2Bucket', props.r2Bucket, 'an R2 bucket name: 3-63 lower-case letters, digits or -');
    }
    const r2Endpoint = props.r2Endpoint ?? new CfnParameter(this, 'R2Endpoint', {
      type: 'String',
      description: "Cloudflare R2 S3 endpoint, https://<account id>.r2.cloudflarestorage.com",
      allowedPattern: '^https://[a-z0-9.-]+$',
      constraintDescription: 'an https:// endpoint without a path',
    }).valueAsString;
    if (!Token.isUnresolved(r2Endpoint) && !/^https:\/\/[a-z0-9.-]+$/.test(r2Endpoint)) {
      throw propError(this, 'r2Endpoint', r2Endpoint, 'an https:// endpoint without a path, e.g. https://<account id>.r2.cloudflarestorage.com');
    }

    // Compute: Spot first, On-Demand when Spot has no capacity; network-optimised instances, egress placement.
    const placement = { vpc: props.vpc, vpcSubnets: props.egressSubnets, securityGroups: [props.egressSecurityGroup] };
    const architecture = props.architecture ?? 'X86_64';
    this.computeEnvironments = [
      new Ec2ComputeEnvironment(this, 'SpotCompute', { ...placement, capacity: 'SPOT', preset: 'NETWORK_OPTIMIZED', architecture, maxvCpus }),
      new Ec2ComputeEnvironment(this, 'OnDemandCompute', { ...placement, capacity: 'ON_DEMAND', preset: 'NETWORK_OPTIMIZED', architecture, maxvCpus }),
    ];
    this.jobQueue = new BatchJobQueue(this, 'JobQueue', { computeEnvironments: this.computeEnvironments });

    this.r2CredentialsSecret = props.r2CredentialsSecret ?? new secretsmanager.Secret(this, 'R2Credentials', {
      description: `R2 access key pair of the ${props.stage} photo bundles: {"accessKeyId","secretAccessKey"}`,
    });
    if (!props.r2CredentialsSecret) {
      Validations.of(this.r2CredentialsSecret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'An R2 API token is created in the Cloudflare dashboard; Secrets Manager cannot rotate it. Rotate it there and put the new pair into this secret (docs/workloads/photo-bundles.md).',
      });
    }
    // The worker image (built for `architecture`) in a repository of this stack.
    this.workerImage = new WorkerImage(this, 'WorkerImage', {
      architecture,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      keptImages: props.keptImages,
    });
    this.jobDefinition = new WorkerJobDefinition(this, 'BundleJob', {
      platform: 'EC2',
      architecture,
      workerImage: this.workerImage,
      cpu: BUNDLE_JOB_CPU,
      memory: BUNDLE_JOB_MEMORY,
      timeout: props.jobTimeout ?? DEFAULT_BUNDLE_JOB_TIMEOUT,
      logRetention: props.logRetention,
      inputBucket: props.inputBucket,
      inputPrefix: 'jobs/',
      environment: {
        OUTPUT_S3_ENDPOINT: r2Endpoint,
        OUTPUT_S3_REGION: 'auto',
        MAX_REJECT_RATIO: String(maxFailedRatio),
      },
      secrets: {
        OUTPUT_S3_ACCESS_KEY_ID: batch.Secret.fromSecretsManager(this.r2CredentialsSecret, 'accessKeyId'),
        OUTPUT_S3_SECRET_ACCESS_KEY: batch.Secret.fromSecretsManager(this.r2CredentialsSecret, 'secretAccessKey'),
      },
    });

    // Messages -> jobs: the shared queue construct, in photo-bundle mode (validation, manifest, dedup by eventId).
    this.messages = new QueueTriggeredJobs(this, 'Messages', {
      jobQueue: this.jobQueue.jobQueue,
      jobDefinition: this.jobDefinition.jobDefinition,
      inputBucket: props.inputBucket,
      fairShare: false,
      jobNamePrefix: BUNDLE_JOB_NAME_PREFIX,
      logRetention: props.logRetention,
      handlerEnvironment: {
        MESSAGE_FORMAT: 'photo-bundle',
        BUNDLE_DESTINATION_BUCKET: props.r2Bucket,
        BUNDLE_DOWNLOAD_CONCURRENCY: String(concurrency),
        NOTIFICATION_TOPIC_ARN: props.notificationTopic.topicArn,
      },
    });
    props.inputBucket.grantRead(this.messages.submitFunction, `${BUNDLE_MANIFEST_PREFIX}*`);
    // A re-sent finished event: its recorded completion (under jobs/, already readable) goes out again.
    props.notificationTopic.grantPublish(this.messages.submitFunction);

    // Completion: Batch job state change of this queue -> notifier -> the platform's topic (+ SES).
    this.notifyDeadLetterQueue = new sqs.Queue(this, 'NotifyDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.notifyDeadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue of the completion rule target (EventBridge DeadLetterConfig, which cdk-nag does not see).',
    });
    this.notifyFunction = new PlatformFunction(this, 'NotifyFunction', {
      entry: handlerEntry('photo-bundle-notify/index.ts'),
      description: 'Publishes a finished photo bundle (ZIP location, size, photo count, failures) on the platform topic',
      timeout: Duration.seconds(30),
      logRetention: props.logRetention,
      environment: {
        INPUT_BUCKET: props.inputBucket.bucketName,
        R2_ENDPOINT: r2Endpoint,
        R2_CREDENTIALS_SECRET_ARN: this.r2CredentialsSecret.secretArn,
        NOTIFICATION_TOPIC_ARN: props.notificationTopic.topicArn,
        JOB_NAME_PREFIX: BUNDLE_JOB_NAME_PREFIX,
        ...(props.emailFrom ? { EMAIL_FROM: props.emailFrom } : {}),
      },
    });
    props.inputBucket.grantRead(this.notifyFunction, 'jobs/*/inputs.json');
    props.inputBucket.grantPut(this.notifyFunction, 'jobs/*/completion.json');
    this.r2CredentialsSecret.grantRead(this.notifyFunction);
    props.notificationTopic.grantPublish(this.notifyFunction);
    if (props.emailFrom) {
      this.notifyFunction.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['ses:SendEmail'],
          resources: [this.formatArn({ service: 'ses', resource: 'identity', resourceName: '*' })],
          conditions: { StringEquals: { 'ses:FromAddress': props.emailFrom } },
        }),
      );
    }
    acknowledgeLambdaBasics(
      this.notifyFunction,
      props.emailFrom ? 'ses:SendEmail on identity/* is limited by the ses:FromAddress condition to the one sender' : undefined,
    );
    Validations.of(this.notifyFunction.role!).acknowledge(
      { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: 'Reads the staged input of a bundle job (grantRead includes the version/tagging variants).' },
      { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: 'Bucket metadata reads that bucket.grantRead includes.' },
      { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: 'grantRead includes List, scoped to the bucket; a missing input is then a 404.' },
      { id: 'AwsSolutions-IAM5[Action::s3:Abort*]', reason: 'grantPut includes aborting its own multipart uploads.' },
      { id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', reason: "Publishing to the platform's KMS-encrypted topic (topic.grantPublish)." },
      { id: 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]', reason: "grantRead on the bucket's KMS key, when it has one." },
    );
    // The bucket (platform stack) resolves to its Fn::ImportValue only after the prepare phase, and the
    // finding ids name it: so the cross-stack acknowledgements happen at validation time (as in RoadMetricsStack).
    this.node.addValidation({
      validate: () => {
        const submitRole = this.messages.submitFunction.role!;
        acknowledgeWildcardResource(submitRole, props.inputBucket.arnForObjects(`${BUNDLE_MANIFEST_PREFIX}*`), 'A message may name any photo manifest under the manifests prefix; the handler reads nothing else there.');
        acknowledgeWildcardResource(submitRole, props.inputBucket.arnForObjects('jobs/*'), 'BatchJobClient stages each job input under jobs/{jobId}/, one folder per job.');
        acknowledgeWildcardResource(submitRole, props.inputBucket.arnForObjects('jobs/*/submit.lock'), 'The idempotency lock of each job (deleted only there).');
        acknowledgeWildcardResource(this.jobDefinition.jobRole, props.inputBucket.arnForObjects('jobs/*'), 'The bundle job reads its staged input under jobs/{jobId}/.');
        acknowledgeWildcardResource(this.notifyFunction.role!, props.inputBucket.arnForObjects('jobs/*/inputs.json'), 'The input of the finished job; job ids are known only at run time.');
        acknowledgeWildcardResource(this.notifyFunction.role!, props.inputBucket.arnForObjects('jobs/*/completion.json'), 'The completion record of the finished job; job ids are known only at run time.');
        return [];
      },
    });
    this.notifyRule = new events.Rule(this, 'NotifyRule', {
      description: `Finished photo bundles (${props.stage})`,
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { jobQueue: [this.jobQueue.jobQueueArn], status: ['SUCCEEDED', 'FAILED'] },
      },
      targets: [
        new targets.LambdaFunction(this.notifyFunction, {
          deadLetterQueue: this.notifyDeadLetterQueue,
          retryAttempts: 8,
          maxEventAge: Duration.hours(6),
        }),
      ],
    });

    this.dashboard = this.buildDashboard(props);
    this.addOutputs(props);
  }

  /** A bundle-photos EMF metric (see containers/worker/src/operations/bundle-metrics.ts). */
  public metricBundle(metricName: 'Bundles' | 'BundleFailures' | 'BundleSeconds' | 'DownloadBytesPerSecond', options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: BUNDLE_METRIC_NAMESPACE,
      metricName,
      dimensionsMap: { JobQueue: this.jobQueue.jobQueueName },
      period: Duration.hours(1),
      statistic: 'Sum',
      ...options,
    });
  }

  private buildDashboard(props: PhotoBundlesStackProps): cloudwatch.Dashboard {
    const bundles = this.metricBundle('Bundles', { label: 'bundles / hour' });
    const failures = this.metricBundle('BundleFailures', { label: 'failed bundles / hour' });
    const p50 = this.metricBundle('BundleSeconds', { statistic: 'p50', period: Duration.minutes(15), label: 'median bundle time (s)' });
    const p95 = this.metricBundle('BundleSeconds', { statistic: 'p95', period: Duration.minutes(15), label: 'p95 bundle time (s)' });
    const speed = this.metricBundle('DownloadBytesPerSecond', { statistic: 'Average', period: Duration.minutes(15), label: 'bytes downloaded / s per job' });
    const dlq = this.messages.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' });

    const alarm = (id: string, metric: cloudwatch.IMetric, threshold: number, description: string) => {
      const a = new cloudwatch.Alarm(this, id, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (props.alarmTopic) a.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
      this.alarms.push(a);
      return a;
    };
    alarm('BundleFailuresAlarm', failures, 1, 'A photo bundle failed (too many photos failed, or the job failed): see the completion message and the job log.');
    alarm('BundleTimeAlarm', p95, (props.jobTimeout ?? DEFAULT_BUNDLE_JOB_TIMEOUT).toSeconds() * 0.8, 'p95 bundle time is above 80% of the job timeout: bundles are about to time out.');
    alarm('MessagesDlqAlarm', dlq, 1, 'Photo-bundle messages were refused (invalid) or could not be submitted: read their failure-reason attribute in the DLQ.');
    alarm('NotifyDlqAlarm', this.notifyDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), 1, 'Completion notifications could not be published: requesters were not told.');
    alarm('NotifyErrorsAlarm', this.notifyFunction.metricErrors({ period: Duration.minutes(5) }), 1, 'The bundle completion notifier failed.');
    alarm('SubmitErrorsAlarm', this.messages.submitFunction.metricErrors({ period: Duration.minutes(5) }), 1, 'The photo-bundle submit Lambda failed.');

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(1) });
    dashboard.addWidgets(
      new cloudwatch.TextWidget({ markdown: `## Photo bundles (${props.stage})`, width: 24, height: 1 }),
      new cloudwatch.GraphWidget({ title: 'Bundles and failures per hour', left: [bundles, failures], width: 6 }),
      new cloudwatch.GraphWidget({ title: 'Bundle time (median, p95)', left: [p50, p95], width: 6 }),
      new cloudwatch.GraphWidget({ title: 'Download speed per job', left: [speed], width: 6 }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 6 }),
    );
    return dashboard;
  }

  /**
   * `batchctl --stack PhotoBundles-<stage>` reads JobQueueArn, JobDefinitionArn and OutputBucketName; the
   * input bucket is the platform's (an output re-exporting an import is cfn-lint W6001): BATCH_INPUT_BUCKET.
   */
  private addOutputs(props: PhotoBundlesStackProps): void {
    new CfnOutput(this, 'OutputBucketName', { value: props.r2Bucket, description: 'The R2 bucket the ZIPs go to' });
    new CfnOutput(this, 'BundleQueueUrl', { value: this.messages.queue.queueUrl, description: 'SQS queue: one photo-bundle message per event' });
    new CfnOutput(this, 'BundleQueueArn', { value: this.messages.queue.queueArn, description: 'For the sender policy (sqs:SendMessage)' });
    new CfnOutput(this, 'BundleDeadLetterQueueUrl', { value: this.messages.deadLetterQueue.queueUrl, description: 'Refused messages with their failure-reason' });
    new CfnOutput(this, 'JobQueueArn', { value: this.jobQueue.jobQueueArn, description: 'Bundle job queue (batchctl --queue)' });
    new CfnOutput(this, 'JobDefinitionArn', { value: this.jobDefinition.jobDefinitionArn, description: 'Bundle job definition (batchctl --job-definition)' });
    new CfnOutput(this, 'R2CredentialsSecretArn', { value: this.r2CredentialsSecret.secretArn, description: 'Put {"accessKeyId","secretAccessKey"} of the R2 token here' });
  }
}
