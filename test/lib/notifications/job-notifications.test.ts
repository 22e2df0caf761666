import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { DEFAULT_WEBHOOK_RETRY_POLICY, JobNotifications } from '../../../lib/notifications/job-notifications';
import { fixtureStack } from '../monitoring/fixtures';

function build(props: Partial<ConstructorParameters<typeof JobNotifications>[2]> = {}) {
  const { stack, fx } = fixtureStack();
  const notifications = new JobNotifications(stack, 'Notifications', { jobQueues: [fx.queue], ...props });
  return { stack, fx, notifications, template: Template.fromStack(stack) };
}

test('matches Batch Job State Change events of the given queues, SUCCEEDED and FAILED by default', () => {
  const { template, stack, fx } = build();
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: {
      source: ['aws.batch'],
      'detail-type': ['Batch Job State Change'],
      detail: { jobQueue: [stack.resolve(fx.queue.jobQueueArn)], status: ['SUCCEEDED', 'FAILED'] },
    },
  });
});

test('matches only the statuses given', () => {
  const { template } = build({ statuses: ['FAILED', 'RUNNABLE'] });
  template.hasResourceProperties('AWS::Events::Rule', { EventPattern: Match.objectLike({ detail: Match.objectLike({ status: ['FAILED', 'RUNNABLE'] }) }) });
});

test('rejects an unknown status with the construct path', () => {
  expect(() => build({ statuses: ['DONE' as never] })).toThrow(/\[TestStack\/Notifications\] statuses \(\["DONE"\]\) contains an unknown status "DONE"; allowed: SUBMITTED, PENDING, RUNNABLE/);
});

test('rejects an empty queue list', () => {
  expect(() => build({ jobQueues: [] })).toThrow(/\[TestStack\/Notifications\] jobQueues \(\[\]\) is empty/);
});

test('publishes to a topic encrypted with a rotating customer key, SSL-only, signature version 2', () => {
  const { template } = build();
  template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue(), SignatureVersion: '2' });
  template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  template.hasResourceProperties('AWS::SNS::TopicPolicy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
  });
});

test('lets EventBridge use the topic key, only from this account', () => {
  const { template } = build();
  template.hasResourceProperties('AWS::KMS::Key', {
    KeyPolicy: {
      Statement: Match.arrayWith([
        Match.objectLike({
          Principal: { Service: 'events.amazonaws.com' },
          Action: ['kms:GenerateDataKey*', 'kms:Decrypt'],
          Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
        }),
      ]),
    },
  });
});

test('the rule target retries, ages out and dead-letters to an encrypted queue', () => {
  const { template } = build({ retryAttempts: 3, maxEventAge: Duration.hours(2) });
  template.hasResourceProperties('AWS::Events::Rule', {
    Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 7200 }, DeadLetterConfig: { Arn: Match.anyValue() } })],
  });
  template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
});

test('builds one readable JSON message per change with an input transformer', () => {
  const { template } = build();
  const rule = Object.values(template.findResources('AWS::Events::Rule'))[0] as { Properties: { Targets: Array<{ InputTransformer: { InputPathsMap: Record<string, string>; InputTemplate: string } }> } };
  const { InputPathsMap, InputTemplate } = rule.Properties.Targets[0].InputTransformer;
  const paths = Object.values(InputPathsMap);
  for (const p of ['$.detail.jobId', '$.detail.jobName', '$.detail.jobQueue', '$.detail.status', '$.detail.statusReason', '$.detail.container.exitCode', '$.detail.attempts', '$.detail.container.logStreamName', '$.detail.startedAt', '$.detail.stoppedAt', '$.detail.tags.tenant-id']) {
    expect(paths).toContain(p);
  }
  // Render the template as EventBridge would for the SUCCEEDED example and parse it as JSON.
  const values: Record<string, string> = {
    '$.detail.jobId': '"4c7599ae"', '$.detail.jobName': '"event-test"', '$.detail.jobQueue': '"arn:q"', '$.detail.jobDefinition': '"arn:d:1"',
    '$.detail.status': '"SUCCEEDED"', '$.detail.statusReason': '"Essential container in task exited"', '$.detail.container.exitCode': '0',
    '$.detail.attempts': '[]', '$.detail.container.logStreamName': '"s"', '$.detail.createdAt': '1', '$.detail.startedAt': '2', '$.detail.stoppedAt': '3',
    '$.detail.tags.tenant-id': '"tenant-a"', '$.time': '"2022-01-11T23:36:40Z"', '$.region': '"us-east-1"', '$.account': '"123456789012"',
  };
  let rendered = InputTemplate;
  for (const [key, path] of Object.entries(InputPathsMap)) rendered = rendered.split(`<${key}>`).join(values[path]);
  expect(JSON.parse(rendered)).toMatchObject({ jobId: '4c7599ae', status: 'SUCCEEDED', exitCode: 0, tenantId: 'tenant-a', attempts: [] });
});

test('sqsSubscription: true creates an encrypted, SSL-only queue with its own DLQ, subscribed to the topic', () => {
  const { template, notifications, stack } = build({ sqsSubscription: true });
  expect(notifications.subscriptionQueue).toBeDefined();
  template.hasResourceProperties('AWS::SNS::Subscription', {
    Protocol: 'sqs',
    Endpoint: stack.resolve(notifications.subscriptionQueue!.queueArn),
    RedrivePolicy: { deadLetterTargetArn: stack.resolve(notifications.subscriptionDeadLetterQueue!.queueArn) },
  });
  template.hasResourceProperties('AWS::SQS::Queue', {
    SqsManagedSseEnabled: true,
    RedrivePolicy: { deadLetterTargetArn: stack.resolve(notifications.subscriptionDeadLetterQueue!.queueArn), maxReceiveCount: 5 },
  });
});

test('sqsSubscription with a given queue subscribes that queue', () => {
  const { stack, fx } = fixtureStack();
  const queue = new sqs.Queue(stack, 'Mine', { enforceSSL: true });
  const n = new JobNotifications(stack, 'Notifications', { jobQueues: [fx.queue], sqsSubscription: { queue } });
  expect(n.subscriptionQueue).toBe(queue);
  Template.fromStack(stack).hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'sqs', Endpoint: stack.resolve(queue.queueArn) });
});

test('subscribes HTTPS webhooks without raw delivery so they can verify signatures', () => {
  const { template } = build({ webhookUrls: ['https://hooks.example.com/batch'] });
  template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'https', Endpoint: 'https://hooks.example.com/batch', RawMessageDelivery: false });
});

test('an http:// webhook fails synth with the construct path', () => {
  expect(() => build({ webhookUrls: ['http://hooks.example.com/batch'] })).toThrow(
    /\[TestStack\/Notifications\] webhookUrls \("http:\/\/hooks.example.com\/batch"\) is plain http .*; allowed: https:\/\/ URLs/,
  );
});

test('addWebhook refuses http:// as well', () => {
  const { notifications } = build();
  expect(() => notifications.addWebhook('http://x.example.com')).toThrow(/webhookUrls .* is plain http/);
});

test('rejects retryAttempts above 185', () => {
  expect(() => build({ retryAttempts: 200 })).toThrow(/\[TestStack\/Notifications\] retryAttempts \(200\) is out of range; allowed: 0 to 185/);
});

test('an HTTPS subscription retries for about 50 minutes and is throttled to 20 deliveries per second', () => {
  const { template } = build({ webhookUrls: ['https://hooks.example.com/batch'] });
  template.hasResourceProperties('AWS::SNS::Subscription', {
    Protocol: 'https',
    DeliveryPolicy: {
      healthyRetryPolicy: { numRetries: 40, numNoDelayRetries: 0, numMinDelayRetries: 3, numMaxDelayRetries: 17, minDelayTarget: 10, maxDelayTarget: 120, backoffFunction: 'EXPONENTIAL' },
      throttlePolicy: { maxReceivesPerSecond: 20 },
    },
  });
});

test('the default retry policy stays inside SNS\'s one-hour limit', () => {
  // Delays as SNS spaces them: min phase, exponential backoff phase, max phase.
  const p = DEFAULT_WEBHOOK_RETRY_POLICY;
  const min = p.minDelayTarget!.toSeconds();
  const max = p.maxDelayTarget!.toSeconds();
  const backoff = p.numRetries! - p.numNoDelayRetries! - p.numMinDelayRetries! - p.numMaxDelayRetries!;
  let total = p.numMinDelayRetries! * min + p.numMaxDelayRetries! * max;
  for (let i = 0; i < backoff; i += 1) total += min * Math.pow(max / min, i / (backoff - 1));
  expect(total).toBeGreaterThan(30 * 60);
  expect(total).toBeLessThanOrEqual(3600);
});

test('addWebhook takes a retry policy and a throttle of its own', () => {
  const { stack, fx } = fixtureStack();
  const n = new JobNotifications(stack, 'Notifications', { jobQueues: [fx.queue] });
  n.addWebhook('https://hooks.example.com/b', { maxReceivesPerSecond: 5, retryPolicy: { numRetries: 10, minDelayTarget: Duration.seconds(5), maxDelayTarget: Duration.seconds(60) } });
  Template.fromStack(stack).hasResourceProperties('AWS::SNS::Subscription', {
    DeliveryPolicy: { healthyRetryPolicy: Match.objectLike({ numRetries: 10, minDelayTarget: 5, maxDelayTarget: 60 }), throttlePolicy: { maxReceivesPerSecond: 5 } },
  });
});

test('addWebhook refuses a throttle below one delivery per second', () => {
  const { notifications } = build();
  expect(() => notifications.addWebhook('https://hooks.example.com/b', { maxReceivesPerSecond: 0 })).toThrow(/maxReceivesPerSecond \(0\) is invalid; allowed: a whole number >= 1/);
});
