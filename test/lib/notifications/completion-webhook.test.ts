import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { CompletionWebhook } from '../../../lib/notifications/completion-webhook';
import { JobNotifications } from '../../../lib/notifications/job-notifications';
import { fixtureStack } from '../monitoring/fixtures';

const { stack, fx } = fixtureStack();
const notifications = new JobNotifications(stack, 'Notifications', { jobQueues: [fx.queue] });
const bucket = s3.Bucket.fromBucketName(stack, 'Staging', 'staging-bucket');
const webhook = new CompletionWebhook(stack, 'Webhook', { topics: [notifications.topic], outputBucket: bucket, throttlingRateLimit: 20, throttlingBurstLimit: 40 });
notifications.addWebhook(webhook.url);
const template = Template.fromStack(stack);

test('routes POST /webhooks/batch-complete to the handler Lambda', () => {
  template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'batch-complete' });
  template.hasResourceProperties('AWS::ApiGateway::Method', {
    HttpMethod: 'POST',
    Integration: Match.objectLike({ Type: 'AWS_PROXY' }),
  });
  expect(Object.values(template.findResources('AWS::ApiGateway::Method')).map((m) => (m as { Properties: { HttpMethod: string } }).Properties.HttpMethod)).toEqual(['POST']);
});

test('the stage writes JSON access logs and throttles', () => {
  template.hasResourceProperties('AWS::ApiGateway::Stage', {
    AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
    MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 })],
  });
});

test('records into a PAY_PER_REQUEST table keyed by jobId and status, with PITR and encryption', () => {
  template.hasResourceProperties('AWS::DynamoDB::Table', {
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: [
      { AttributeName: 'jobId', KeyType: 'HASH' },
      { AttributeName: 'status', KeyType: 'RANGE' },
    ],
    PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    SSESpecification: { SSEEnabled: true },
  });
  template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
});

test('the handler knows the table, the allowed topic and the output bucket', () => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('Verifies SNS-signed'),
    Environment: {
      Variables: Match.objectLike({
        TABLE_NAME: stack.resolve(webhook.table.tableName),
        ALLOWED_TOPIC_ARNS: stack.resolve(notifications.topic.topicArn),
        OUTPUT_BUCKET: 'staging-bucket',
      }),
    },
  });
});

test('the handler may only PutItem on its table', () => {
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([{ Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: [stack.resolve(webhook.table.tableArn)] }]),
    },
  });
});

test('the topic gets an HTTPS subscription to the webhook URL', () => {
  template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'https', Endpoint: stack.resolve(webhook.url), RawMessageDelivery: false });
});

test('refuses to be built without an allowed topic', () => {
  const { stack: s } = fixtureStack();
  expect(() => new CompletionWebhook(s, 'Webhook', { topics: [] })).toThrow(/\[TestStack\/Webhook\] topics \(\[\]\) is empty/);
});
