import { Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { QueueTriggeredJobs } from '../../../lib/api';
import { apiTestStack } from './api-test-stack';

describe('QueueTriggeredJobs', () => {
  test('encrypts both queues, enforces SSL and redrives to the DLQ after 3 receives', () => {
    const t = apiTestStack();
    new QueueTriggeredJobs(t.stack, 'Jobs', t);
    const template = Template.fromStack(t.stack);
    template.resourceCountIs('AWS::SQS::Queue', 2);
    for (const q of Object.values(template.findResources('AWS::SQS::Queue'))) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 3 },
      VisibilityTimeout: 360,
    });
    template.resourceCountIs('AWS::SQS::QueuePolicy', 2);
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: { Statement: [Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })] },
    });
  });

  test('feeds the submit function in batches with partial failures and bounded concurrency', () => {
    const t = apiTestStack();
    new QueueTriggeredJobs(t.stack, 'Jobs', { ...t, batchSize: 20, maxBatchingWindow: Duration.seconds(10), maxConcurrency: 3 });
    Template.fromStack(t.stack).hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 20,
      MaximumBatchingWindowInSeconds: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 3 },
    });
  });

  test('tells the function where the DLQ is and lets it send there', () => {
    const t = apiTestStack();
    new QueueTriggeredJobs(t.stack, 'Jobs', t);
    const template = Template.fromStack(t.stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DLQ_URL: Match.anyValue(), MAX_RECEIVE_COUNT: '3', SUBMIT_CONCURRENCY: '5' }) },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'] })]) },
    });
  });

  test('rejects a batch size above 10 without a batching window', () => {
    const t = apiTestStack();
    expect(() => new QueueTriggeredJobs(t.stack, 'Jobs', { ...t, batchSize: 50, maxBatchingWindow: Duration.seconds(0) })).toThrow(
      /\[ApiTest\/Jobs\] batchSize \(50\) is out of range; allowed: 1 to 10/,
    );
  });

  test('rejects a maxConcurrency below the SQS minimum of 2', () => {
    const t = apiTestStack();
    expect(() => new QueueTriggeredJobs(t.stack, 'Jobs', { ...t, maxConcurrency: 1 })).toThrow(/\[ApiTest\/Jobs\] maxConcurrency \(1\) is invalid; allowed: a whole number >= 2/);
  });

  test('warns when the submits in flight can exceed the SubmitJob quota', () => {
    const t = apiTestStack();
    new QueueTriggeredJobs(t.stack, 'Jobs', { ...t, maxConcurrency: 20, submitConcurrency: 10 });
    Annotations.fromStack(t.stack).hasWarning('/ApiTest/Jobs', Match.stringLikeRegexp('cdk-batch-platform:queueSubmitAboveSubmitJobQuota'));
  });
});
