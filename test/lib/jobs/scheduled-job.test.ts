import { Duration, TimeZone } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import { ScheduledJob } from '../../../lib/jobs/scheduled-job';
import { fixtureStack } from '../monitoring/fixtures';

const { stack, fx } = fixtureStack();
const nightly = new ScheduledJob(stack, 'NightlyRoadDefects', {
  jobQueue: fx.queue,
  jobDefinition: fx.jobDefinition,
  jobName: 'road-defect-aggregation',
  schedule: ScheduleExpression.cron({ minute: '0', hour: '2', timeZone: TimeZone.EUROPE_BERLIN }),
  parameters: { operation: 'aggregate-road-defects' },
  environment: { OPERATION: 'aggregate-road-defects', TENANT_ID: 'city-of-berlin' },
  tags: { 'tenant-id': 'city-of-berlin' },
  retryAttempts: 5,
  maxEventAge: Duration.hours(2),
});
const template = Template.fromStack(stack);

function schedule(): { Properties: Record<string, any> } {
  return Object.values(template.findResources('AWS::Scheduler::Schedule'))[0] as { Properties: Record<string, any> };
}

test('runs at 02:00 Europe/Berlin', () => {
  expect(schedule().Properties).toMatchObject({ ScheduleExpression: 'cron(0 2 * * ? *)', ScheduleExpressionTimezone: 'Europe/Berlin', State: 'ENABLED' });
});

test('calls Batch SubmitJob through the Scheduler universal target', () => {
  expect(schedule().Properties.Target.Arn).toEqual({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':scheduler:::aws-sdk:batch:submitJob']] });
});

test('submits the job definition to the queue with parameters, environment and tags', () => {
  const input = JSON.parse(JSON.stringify(stack.resolve(nightly.submitJobInput)));
  expect(input).toEqual({
    jobName: 'road-defect-aggregation',
    jobQueue: stack.resolve(fx.queue.jobQueueArn),
    jobDefinition: stack.resolve(fx.jobDefinition.jobDefinitionArn),
    parameters: { operation: 'aggregate-road-defects' },
    containerOverrides: { environment: [{ name: 'OPERATION', value: 'aggregate-road-defects' }, { name: 'TENANT_ID', value: 'city-of-berlin' }] },
    tags: { 'tenant-id': 'city-of-berlin' },
  });
  expect(JSON.stringify(schedule().Properties.Target.Input)).toContain('road-defect-aggregation');
});

test('retries and dead-letters to an encrypted, SSL-only queue', () => {
  expect(schedule().Properties.Target).toMatchObject({
    RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 7200 },
    DeadLetterConfig: { Arn: stack.resolve(nightly.deadLetterQueue.queueArn) },
  });
  template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
});

test('the schedule role may submit only to this queue and this job definition (all revisions)', () => {
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        {
          Effect: 'Allow',
          Action: 'batch:SubmitJob',
          Resource: [stack.resolve(fx.queue.jobQueueArn), { 'Fn::Join': ['', Match.arrayWith([':batch:eu-central-1:123456789012:job-definition/', ':*'])] }],
        },
      ]),
    },
  });
});

test('rejects a job name Batch would refuse', () => {
  const { stack: s, fx: f } = fixtureStack();
  expect(() => new ScheduledJob(s, 'Job', { jobQueue: f.queue, jobDefinition: f.jobDefinition, jobName: 'nightly run!', schedule: ScheduleExpression.rate(Duration.hours(1)) })).toThrow(
    /\[TestStack\/Job\] jobName \("nightly run!"\) is invalid; allowed: 1-128 letters, digits, hyphens and underscores/,
  );
});

test('rejects a maxEventAge over 24 hours', () => {
  const { stack: s, fx: f } = fixtureStack();
  expect(() => new ScheduledJob(s, 'Job', { jobQueue: f.queue, jobDefinition: f.jobDefinition, schedule: ScheduleExpression.rate(Duration.hours(1)), maxEventAge: Duration.hours(48) })).toThrow(
    /\[TestStack\/Job\] maxEventAge \(seconds\) \(172800\) is out of range; allowed: 60 to 86400/,
  );
});

test('the schedule assumes its own role, trusted only by EventBridge Scheduler of this account', () => {
  expect(schedule().Properties.Target.RoleArn).toEqual(stack.resolve(nightly.role.roleArn));
  template.hasResourceProperties('AWS::IAM::Role', {
    AssumeRolePolicyDocument: {
      Statement: [Match.objectLike({ Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } })],
    },
  });
});
