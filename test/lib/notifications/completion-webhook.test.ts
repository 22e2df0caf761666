import { App, Duration, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { CompletionWebhook } from '../../../lib/notifications/completion-webhook';
import { JobNotifications } from '../../../lib/notifications/job-notifications';
import { cfnLintFindings, nagFindings } from '../../support/compliance';
import { fixtureStack } from '../monitoring/fixtures';

const { stack, fx } = fixtureStack();
const notifications = new JobNotifications(stack, 'Notifications', { jobQueues: [fx.queue] });
const bucket = s3.Bucket.fromBucketName(stack, 'Staging', 'staging-bucket');
const webhook = new CompletionWebhook(stack, 'Webhook', { topics: [notifications.topic], outputBucket: bucket, throttlingRateLimit: 20, throttlingBurstLimit: 40 });
notifications.addWebhook(webhook.url);
const template = Template.fromStack(stack);

test('routes POST /webhooks/batch-complete/{secret} to the handler Lambda', () => {
  template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'batch-complete' });
  template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{secret}' });
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
        PATH_SECRET_ARN: stack.resolve(webhook.pathSecret.secretArn),
        SIGNATURE_VERSIONS: '2',
        CONFIRMATION_MAX_AGE_SECONDS: '3600',
        NOTIFICATION_MAX_AGE_SECONDS: '86400',
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

test('generates a 48-character letters-and-digits path secret the handler may read', () => {
  template.hasResourceProperties('AWS::SecretsManager::Secret', {
    GenerateSecretString: Match.objectLike({ PasswordLength: 48, ExcludePunctuation: true, IncludeSpace: false }),
  });
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: stack.resolve(webhook.pathSecret.secretArn) }),
      ]),
    },
  });
});

test('the subscribed URL ends in the secret as a dynamic reference, never its value', () => {
  const endpoint = JSON.stringify(stack.resolve(webhook.url));
  expect(endpoint).toContain('/webhooks/batch-complete/');
  expect(endpoint).toMatch(/\{\{resolve:secretsmanager:.*:SecretString:::\}\}/);
  expect(JSON.stringify(stack.resolve(webhook.baseUrl))).not.toContain('resolve:secretsmanager');
});

test('no web ACL unless asked for', () => {
  template.resourceCountIs('AWS::WAFv2::WebACL', 0);
  template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
});

test('wafRateLimitPerIp adds a regional web ACL with a per-IP rate rule, associated with the stage', () => {
  const { stack: s, fx: f } = fixtureStack();
  const n = new JobNotifications(s, 'Notifications', { jobQueues: [f.queue] });
  const w = new CompletionWebhook(s, 'Webhook', { topics: [n.topic], wafRateLimitPerIp: 300 });
  const t = Template.fromStack(s);
  t.hasResourceProperties('AWS::WAFv2::WebACL', {
    Scope: 'REGIONAL',
    DefaultAction: { Allow: {} },
    Rules: [Match.objectLike({ Action: { Block: {} }, Statement: { RateBasedStatement: { Limit: 300, AggregateKeyType: 'IP', EvaluationWindowSec: 300 } } })],
  });
  t.hasResourceProperties('AWS::WAFv2::WebACLAssociation', { ResourceArn: s.resolve(w.api.deploymentStage.stageArn), WebACLArn: s.resolve(w.webAcl!.attrArn) });
});

test('acceptSignatureVersion1 and the Timestamp windows reach the handler', () => {
  const { stack: s, fx: f } = fixtureStack();
  const n = new JobNotifications(s, 'Notifications', { jobQueues: [f.queue] });
  new CompletionWebhook(s, 'Webhook', { topics: [n.topic], acceptSignatureVersion1: true, confirmationMaxAge: Duration.minutes(10), notificationMaxAge: Duration.hours(2) });
  Template.fromStack(s).hasResourceProperties('AWS::Lambda::Function', {
    Environment: { Variables: Match.objectLike({ SIGNATURE_VERSIONS: '1,2', CONFIRMATION_MAX_AGE_SECONDS: '600', NOTIFICATION_MAX_AGE_SECONDS: '7200' }) },
  });
});

test.each([
  [{ wafRateLimitPerIp: 5 }, /wafRateLimitPerIp \(5\) is invalid; allowed: a whole number >= 10/],
  [{ confirmationMaxAge: Duration.days(2) }, /confirmationMaxAge \(seconds\) \(172800\) is out of range; allowed: 1 to 86400/],
  [{ notificationMaxAge: Duration.seconds(30) }, /notificationMaxAge \(seconds\) \(30\) is out of range; allowed: 60 to 1209600/],
])('refuses %j with the construct path', (props, message) => {
  const { stack: s, fx: f } = fixtureStack();
  const n = new JobNotifications(s, 'Notifications', { jobQueues: [f.queue] });
  expect(() => new CompletionWebhook(s, 'Webhook', { topics: [n.topic], ...props })).toThrow(message);
});

test('refuses to be built without an allowed topic', () => {
  const { stack: s } = fixtureStack();
  expect(() => new CompletionWebhook(s, 'Webhook', { topics: [] })).toThrow(/\[TestStack\/Webhook\] topics \(\[\]\) is empty/);
});

describe('with the WAF option, compliance', () => {
  function wafStack(app: App): Stack {
    const stack = new Stack(app, 'WafWebhookStack', { env: { account: '123456789012', region: 'eu-central-1' } });
    const topic = new sns.Topic(stack, 'Topic', { masterKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }), enforceSSL: true, signatureVersion: '2' });
    const w = new CompletionWebhook(stack, 'Webhook', { topics: [topic], wafRateLimitPerIp: 500 });
    new sns.Subscription(stack, 'Subscription', { topic, protocol: sns.SubscriptionProtocol.HTTPS, endpoint: w.url });
    return stack;
  }

  test('cdk-nag AwsSolutions reports no unacknowledged finding (APIG3 satisfied by the web ACL)', () => {
    expect(nagFindings((() => { const app = new App(); wafStack(app); return app; })())).toEqual([]);
  });

  test('cfn-lint reports nothing on the synthesized template', () => {
    const app = new App();
    const stack = wafStack(app);
    expect(cfnLintFindings(app.synth().getStackByName(stack.stackName).template)).toBe('');
  });
});

describe('with callbacks', () => {
  function callbackStack(app: App, allowedCidrs?: string[]): { stack: Stack; webhook: CompletionWebhook } {
    const s = new Stack(app, 'CallbackWebhookStack', { env: { account: '123456789012', region: 'eu-central-1' } });
    const topic = new sns.Topic(s, 'Topic', { masterKey: new kms.Key(s, 'Key', { enableKeyRotation: true }), enforceSSL: true, signatureVersion: '2' });
    const buckets = ['In', 'Out'].map((n) => s3.Bucket.fromBucketName(s, n, `staging-${n.toLowerCase()}`));
    const w = new CompletionWebhook(s, 'Webhook', { topics: [topic], outputBucket: buckets[1], callbacks: { inputBucket: buckets[0], allowedCidrs } });
    new sns.Subscription(s, 'Subscription', { topic, protocol: sns.SubscriptionProtocol.HTTPS, endpoint: w.url });
    return { stack: s, webhook: w };
  }

  test('generates the HMAC key and a callback DLQ and hands both, plus the allowed CIDRs, to the handler', () => {
    const { stack: s, webhook: w } = callbackStack(new App(), ['10.0.0.0/16']);
    const t = Template.fromStack(s);
    t.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 64, ExcludePunctuation: true }) });
    t.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('Verifies SNS-signed'),
      Timeout: 45,
      Environment: {
        Variables: Match.objectLike({
          CALLBACK_SECRET_ARN: s.resolve(w.callbackSecret!.secretArn),
          CALLBACK_DLQ_URL: s.resolve(w.callbackDeadLetterQueue!.queueUrl),
          CALLBACK_ALLOWED_CIDRS: '10.0.0.0/16',
        }),
      },
    });
  });

  test('the handler may describe jobs, write only completion records and send to the callback DLQ', () => {
    const t = Template.fromStack(callbackStack(new App()).stack);
    const statements = Object.values(t.findResources('AWS::IAM::Policy')).flatMap(
      (p) => (p as { Properties: { PolicyDocument: { Statement: { Action: string | string[]; Resource: unknown }[] } } }).Properties.PolicyDocument.Statement,
    );
    const actions = statements.flatMap((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]));
    expect(actions).toEqual(expect.arrayContaining(['batch:DescribeJobs', 'sqs:SendMessage', 's3:PutObjectTagging', 's3:GetObjectTagging']));
    const put = statements.find((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]).includes('s3:PutObject'))!;
    expect(JSON.stringify(put.Resource)).toContain('/jobs/*/completion.json');
    expect(actions.filter((a) => a.startsWith('s3:')).sort()).toEqual(['s3:GetObjectTagging', 's3:ListBucket', 's3:PutObject', 's3:PutObjectTagging']);
  });

  test('refuses callbacks without outputBucket and allowedCidrs that are not CIDRs', () => {
    const { stack: s, fx: f } = fixtureStack();
    const n = new JobNotifications(s, 'Notifications', { jobQueues: [f.queue] });
    const inputBucket = s3.Bucket.fromBucketName(s, 'In', 'staging-in');
    expect(() => new CompletionWebhook(s, 'W1', { topics: [n.topic], callbacks: { inputBucket } })).toThrow(/\[TestStack\/W1\] callbacks .* without outputBucket/);
    expect(() => new CompletionWebhook(s, 'W2', { topics: [n.topic], outputBucket: inputBucket, callbacks: { inputBucket, allowedCidrs: ['intranet'] } })).toThrow(/callbacks\.allowedCidrs \("intranet"\)/);
  });

  test('cdk-nag AwsSolutions reports no unacknowledged finding', () => {
    const app = new App();
    callbackStack(app);
    expect(nagFindings(app)).toEqual([]);
  });

  test('cfn-lint reports nothing on the synthesized template', () => {
    const app = new App();
    const { stack: s } = callbackStack(app);
    expect(cfnLintFindings(app.synth().getStackByName(s.stackName).template)).toBe('');
  });
});
