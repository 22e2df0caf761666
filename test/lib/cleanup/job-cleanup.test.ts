import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { JobCleanup } from '../../../lib/cleanup/job-cleanup';
import { fixtureStack } from '../monitoring/fixtures';

const { stack, fx } = fixtureStack();
const cleanup = new JobCleanup(stack, 'Cleanup', { jobQueues: [fx.queue, fx.secondQueue], jobDefinitions: [fx.jobDefinition], keepRevisions: 3, dryRun: true });
const template = Template.fromStack(stack);

test('runs every 6 hours by default', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    ScheduleExpression: 'rate(6 hours)',
    State: 'ENABLED',
    Targets: [Match.objectLike({ Arn: stack.resolve(cleanup.function.functionArn) })],
  });
});

test('passes queues, revision-free job definition names, thresholds and dry run to the Lambda', () => {
  template.hasResourceProperties('AWS::Lambda::Function', {
    ReservedConcurrentExecutions: 1,
    Environment: {
      Variables: Match.objectLike({
        JOB_QUEUES: { 'Fn::Join': ['', [stack.resolve(fx.queue.jobQueueArn), ',', stack.resolve(fx.secondQueue.jobQueueArn)]] },
        JOB_DEFINITION_NAMES: { 'Fn::Select': [0, { 'Fn::Split': [':', Match.anyValue()] }] },
        STUCK_AFTER_SECONDS: '7200',
        MAX_RUN_TIME_SECONDS: '86400',
        KEEP_REVISIONS: '3',
        DRY_RUN: 'true',
      }),
    },
  });
});

test('may list and describe everywhere, terminate only jobs and deregister only its job definitions (all revisions)', () => {
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        { Sid: 'ListAndDescribe', Effect: 'Allow', Action: ['batch:ListJobs', 'batch:DescribeJobs', 'batch:DescribeJobDefinitions'], Resource: '*' },
        { Sid: 'TerminateJobs', Effect: 'Allow', Action: 'batch:TerminateJob', Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':batch:eu-central-1:123456789012:job/*']] } },
        Match.objectLike({ Sid: 'DeregisterOldRevisions', Action: 'batch:DeregisterJobDefinition', Resource: { 'Fn::Join': ['', Match.arrayWith([':batch:eu-central-1:123456789012:job-definition/', ':*'])] } }),
      ]),
    },
  });
});

test('switched off (enabled: false): the function stays, its schedule is disabled', () => {
  const { stack: s, fx: f } = fixtureStack();
  new JobCleanup(s, 'Cleanup', { jobQueues: [f.queue], enabled: false });
  const t = Template.fromStack(s);
  t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(6 hours)', State: 'DISABLED' });
  t.resourcePropertiesCountIs('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ JOB_QUEUES: Match.anyValue() }) } }, 1);
});

test('has no deregister permission without job definitions', () => {
  const { stack: s, fx: f } = fixtureStack();
  new JobCleanup(s, 'Cleanup', { jobQueues: [f.queue], stuckAfter: Duration.hours(1), maxRunTime: Duration.hours(12), rate: Duration.hours(1) });
  const t = Template.fromStack(s);
  expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).not.toContain('DeregisterJobDefinition');
  t.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ STUCK_AFTER_SECONDS: '3600', MAX_RUN_TIME_SECONDS: '43200', DRY_RUN: 'false', JOB_DEFINITION_NAMES: '' }) } });
  t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
});

test('rejects keepRevisions below 1', () => {
  const { stack: s, fx: f } = fixtureStack();
  expect(() => new JobCleanup(s, 'Cleanup', { jobQueues: [f.queue], keepRevisions: 0 })).toThrow(/\[TestStack\/Cleanup\] keepRevisions \(0\) is invalid; allowed: a whole number >= 1/);
});

test('rejects a stuckAfter shorter than 5 minutes', () => {
  const { stack: s, fx: f } = fixtureStack();
  expect(() => new JobCleanup(s, 'Cleanup', { jobQueues: [f.queue], stuckAfter: Duration.minutes(1) })).toThrow(/\[TestStack\/Cleanup\] stuckAfter \("1 minute"\) is too short; allowed: 300 seconds or more/);
});
