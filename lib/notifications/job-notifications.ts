import { Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { checkInteger, checkRange, propError } from '../common/validation';

/** Batch job statuses (https://docs.aws.amazon.com/batch/latest/userguide/job_states.html). */
export const BATCH_JOB_STATUSES = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED'] as const;
export type BatchJobStatusName = (typeof BATCH_JOB_STATUSES)[number];

export const DEFAULT_NOTIFY_STATUSES: readonly BatchJobStatusName[] = ['SUCCEEDED', 'FAILED'];
export const DEFAULT_TARGET_RETRY_ATTEMPTS = 8;
export const DEFAULT_TARGET_MAX_EVENT_AGE = Duration.hours(24);
export const DEFAULT_SUBSCRIPTION_MAX_RECEIVE_COUNT = 5;
const DLQ_RETENTION = Duration.days(14);

/**
 * SNS's default for HTTPS is 3 retries 20 s apart: one minute of throttling or a deploy sends a
 * completion to the DLQ. This policy retries 40 times over about 50 minutes (3 at 10 s, 20 with
 * exponential backoff from 10 s to 120 s, 17 at 120 s), inside SNS's one-hour limit.
 */
export const DEFAULT_WEBHOOK_RETRY_POLICY: sns.HealthyRetryPolicy = {
  numRetries: 40,
  numNoDelayRetries: 0,
  numMinDelayRetries: 3,
  numMaxDelayRetries: 17,
  minDelayTarget: Duration.seconds(10),
  maxDelayTarget: Duration.seconds(120),
  backoffFunction: sns.BackoffFunction.EXPONENTIAL,
};
/**
 * Deliveries per second to one HTTPS subscription: well below the webhook stage's 50 rps, so a
 * burst of finished jobs waits at SNS instead of being throttled (and retried) at API Gateway.
 */
export const DEFAULT_WEBHOOK_MAX_RECEIVES_PER_SECOND = 20;

/** Delivery policy of one HTTPS subscription. */
export interface WebhookSubscriptionOptions {
  /** @default DEFAULT_WEBHOOK_RETRY_POLICY (40 retries over about 50 minutes) */
  readonly retryPolicy?: sns.HealthyRetryPolicy;
  /** @default 20 */
  readonly maxReceivesPerSecond?: number;
}

/** Job tag whose value becomes `tenantId` in the message (tag jobs at SubmitJob: `tags: { 'tenant-id': ... }`). */
export const TENANT_TAG = 'tenant-id';

/** Bring your own subscription queue. */
export interface JobNotificationsSqsSubscription {
  /** The queue subscribed to the topic; SNS delivery failures go to the construct's subscription DLQ. */
  readonly queue: sqs.IQueue;
}

export interface JobNotificationsProps {
  /** Queues whose jobs are reported; events of other queues are not matched. */
  readonly jobQueues: batch.IJobQueue[];
  /**
   * Job statuses that produce a message.
   * @default ['SUCCEEDED', 'FAILED']
   */
  readonly statuses?: BatchJobStatusName[];
  /**
   * How often EventBridge retries a failed publish to the topic (0 to 185).
   * @default 8
   */
  readonly retryAttempts?: number;
  /**
   * How long EventBridge keeps retrying an event (1 minute to 24 hours).
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
  /**
   * Subscribe an SQS queue: `true` creates an encrypted, SSL-only queue with its own DLQ; or give one.
   * @default - no SQS subscription
   */
  readonly sqsSubscription?: boolean | JobNotificationsSqsSubscription;
  /**
   * HTTPS endpoints subscribed to the topic (raw delivery off, so they can verify SNS signatures).
   * `http://` is refused: the message would travel in clear text.
   * @default - none
   */
  readonly webhookUrls?: string[];
  /**
   * KMS key of the topic. A given key must allow events.amazonaws.com kms:GenerateDataKey* and kms:Decrypt.
   * @default - a new customer managed key with rotation, usable by EventBridge in this account
   */
  readonly masterKey?: kms.IKey;
}

/**
 * "Tell me when my job finishes": Batch Job State Change events of the given queues and statuses,
 * turned into one readable JSON message each (see `messageFormat`) on an encrypted, SSL-only SNS
 * topic with signature version 2. The EventBridge target retries and keeps what it cannot deliver
 * in an SQS dead-letter queue.
 */
export class JobNotifications extends Construct {
  /** The message each subscriber receives; values are EventBridge paths into the Batch event. */
  public static messageFormat(): Record<string, string> {
    return {
      jobId: '$.detail.jobId',
      jobName: '$.detail.jobName',
      jobQueue: '$.detail.jobQueue',
      jobDefinition: '$.detail.jobDefinition',
      status: '$.detail.status',
      statusReason: '$.detail.statusReason',
      exitCode: '$.detail.container.exitCode',
      attempts: '$.detail.attempts',
      logStream: '$.detail.container.logStreamName',
      createdAt: '$.detail.createdAt',
      startedAt: '$.detail.startedAt',
      stoppedAt: '$.detail.stoppedAt',
      tenantId: `$.detail.tags.${TENANT_TAG}`,
      eventTime: '$.time',
      region: '$.region',
      account: '$.account',
    };
  }

  public readonly topic: sns.Topic;
  public readonly masterKey: kms.IKey;
  public readonly rule: events.Rule;
  /** Events EventBridge could not publish, and messages SNS could not deliver to an HTTPS endpoint. */
  public readonly deadLetterQueue: sqs.Queue;
  public readonly subscriptionQueue?: sqs.IQueue;
  /** Messages the subscription queue's consumers failed to process, and SNS could not deliver to it. */
  public readonly subscriptionDeadLetterQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: JobNotificationsProps) {
    super(scope, id);
    if (!props.jobQueues || props.jobQueues.length === 0) {
      throw propError(this, 'jobQueues', props.jobQueues ?? [], 'at least one job queue', 'is empty');
    }
    const statuses = props.statuses ?? [...DEFAULT_NOTIFY_STATUSES];
    if (statuses.length === 0) throw propError(this, 'statuses', statuses, BATCH_JOB_STATUSES.join(', '), 'is empty');
    for (const s of statuses) {
      if (!(BATCH_JOB_STATUSES as readonly string[]).includes(s)) throw propError(this, 'statuses', statuses, BATCH_JOB_STATUSES.join(', '), `contains an unknown status ${JSON.stringify(s)}`);
    }
    checkInteger(this, 'retryAttempts', props.retryAttempts, 0);
    checkRange(this, 'retryAttempts', props.retryAttempts, 0, 185);
    const maxEventAge = props.maxEventAge ?? DEFAULT_TARGET_MAX_EVENT_AGE;
    if (!Token.isUnresolved(maxEventAge.toSeconds())) checkRange(this, 'maxEventAge (seconds)', maxEventAge.toSeconds(), 60, 86400);
    for (const url of props.webhookUrls ?? []) this.checkWebhookUrl(url);

    this.masterKey = props.masterKey ?? this.createKey();
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'Batch job state changes',
      masterKey: this.masterKey,
      enforceSSL: true,
      signatureVersion: '2',
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DLQ_RETENTION,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the EventBridge target and of the HTTPS subscriptions; EventBridge/SNS DLQs are not SQS redrive sources, so cdk-nag cannot see it is one.',
    });

    this.rule = new events.Rule(this, 'Rule', {
      description: `Batch job state changes (${statuses.join(', ')}) of the platform queues -> SNS`,
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: {
          jobQueue: props.jobQueues.map((q) => q.jobQueueArn),
          status: statuses,
        },
      },
    });
    const format = JobNotifications.messageFormat();
    const message: Record<string, string> = {};
    for (const [key, path] of Object.entries(format)) message[key] = events.EventField.fromPath(path);
    this.rule.addTarget(
      new targets.SnsTopic(this.topic, {
        message: events.RuleTargetInput.fromObject(message),
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: props.retryAttempts ?? DEFAULT_TARGET_RETRY_ATTEMPTS,
        maxEventAge,
      }),
    );

    if (props.sqsSubscription) {
      this.subscriptionDeadLetterQueue = new sqs.Queue(this, 'SubscriptionDeadLetterQueue', {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: DLQ_RETENTION,
      });
      if (props.sqsSubscription === true) {
        this.subscriptionQueue = new sqs.Queue(this, 'SubscriptionQueue', {
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          deadLetterQueue: { queue: this.subscriptionDeadLetterQueue, maxReceiveCount: DEFAULT_SUBSCRIPTION_MAX_RECEIVE_COUNT },
        });
      } else {
        this.subscriptionQueue = props.sqsSubscription.queue;
        Validations.of(this.subscriptionDeadLetterQueue).acknowledge({
          id: 'AwsSolutions-SQS3',
          reason: 'Dead-letter queue of the SNS subscription of a queue the user brought; SNS subscription DLQs are not SQS redrive sources.',
        });
      }
      this.topic.addSubscription(new subs.SqsSubscription(this.subscriptionQueue, { deadLetterQueue: this.subscriptionDeadLetterQueue }));
    }

    for (const url of props.webhookUrls ?? []) this.addWebhook(url);
  }

  /**
   * Subscribes an HTTPS endpoint (e.g. `CompletionWebhook.url`) with a delivery policy that retries
   * for about 50 minutes and throttles deliveries (see `WebhookSubscriptionOptions`); throws for `http://`.
   */
  public addWebhook(url: string, options: WebhookSubscriptionOptions = {}): sns.Subscription {
    this.checkWebhookUrl(url);
    checkInteger(this, 'maxReceivesPerSecond', options.maxReceivesPerSecond, 1);
    const index = this.node.children.filter((c) => c.node.id.startsWith('Webhook')).length;
    return new sns.Subscription(this, `Webhook${index}`, {
      topic: this.topic,
      protocol: sns.SubscriptionProtocol.HTTPS,
      endpoint: url,
      rawMessageDelivery: false,
      deadLetterQueue: this.deadLetterQueue,
      deliveryPolicy: {
        healthyRetryPolicy: options.retryPolicy ?? DEFAULT_WEBHOOK_RETRY_POLICY,
        throttlePolicy: { maxReceivesPerSecond: options.maxReceivesPerSecond ?? DEFAULT_WEBHOOK_MAX_RECEIVES_PER_SECOND },
      },
    });
  }

  private checkWebhookUrl(url: string): void {
    if (Token.isUnresolved(url)) return;
    if (!/^https:\/\/[^\s/]+/i.test(url)) {
      throw propError(this, 'webhookUrls', url, 'https:// URLs', url.toLowerCase().startsWith('http://') ? 'is plain http (messages would travel unencrypted)' : 'is not an https URL');
    }
  }

  private createKey(): kms.Key {
    const key = new kms.Key(this, 'TopicKey', {
      description: 'Encrypts the Batch job notifications topic',
      enableKeyRotation: true,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowEventBridgeToPublishToTheEncryptedTopic',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    return key;
  }
}
