import { App, Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { QueueTriggeredJobs, QuotaTable, SubmitApi } from '../../../lib/api';
import { cfnLintFindings, nagFindings } from '../../support/compliance';
import { apiTestStack } from './api-test-stack';

function build(app = new App()) {
  const t = apiTestStack(app);
  const quota = new QuotaTable(t.stack, 'Quota', {
    jobQueues: [t.jobQueue],
    defaultLimits: { maxActiveJobs: 5, submissionsPerMinute: 30 },
    tenantLimits: { 'apikey:big': { maxActiveJobs: 50 } },
    leaseDuration: Duration.hours(6),
  });
  const api = new SubmitApi(t.stack, 'SubmitApi', { ...t, quota, sizingLimits: { maxVcpus: 8, maxMemoryMiB: 32768 } });
  const queue = new QueueTriggeredJobs(t.stack, 'QueueJobs', { ...t, quota, sizingLimits: { maxVcpus: 4 } });
  return { ...t, quota, api, queue };
}

describe('QuotaTable', () => {
  let built: ReturnType<typeof build>;
  let template: Template;
  beforeAll(() => {
    built = build();
    template = Template.fromStack(built.stack);
  });

  test('an on-demand, encrypted table with point-in-time recovery and TTL on expiresAt', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  test('terminal Batch events of the queues go to the release Lambda, with a DLQ', () => {
    const { jobQueue } = built;
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'], detail: { jobQueue: [jobQueue.jobQueueArn], status: ['SUCCEEDED', 'FAILED'] } },
      Targets: [Match.objectLike({ DeadLetterConfig: Match.anyValue(), RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 43200 } })],
    });
  });

  test('the submit Lambdas get the table, the limits, the lease and the sizing ceiling in their environment', () => {
    const { stack, api, queue } = built;
    const envOf = (fn: { node: { defaultChild?: unknown } }) => {
      const id = stack.getLogicalId(fn.node.defaultChild as never);
      return template.toJSON().Resources[id].Properties.Environment.Variables as Record<string, unknown>;
    };
    const apiEnv = envOf(api.submitFunction);
    expect(apiEnv).toMatchObject({ QUOTA_LEASE_SECONDS: '21600', MAX_JOB_VCPUS: '8', MAX_JOB_MEMORY_MIB: '32768', QUOTA_TABLE: { Ref: expect.stringMatching(/^QuotaTable/) } });
    expect(JSON.parse(apiEnv.QUOTA_LIMITS as string)).toEqual({ default: { maxActiveJobs: 5, submissionsPerMinute: 30 }, tenants: { 'apikey:big': { maxActiveJobs: 50 } } });
    const queueEnv = envOf(queue.submitFunction);
    expect(queueEnv).toMatchObject({ MAX_JOB_VCPUS: '4', SOURCE_QUEUE_URL: { Ref: expect.stringMatching(/^QueueJobsQueue/) }, QUOTA_TABLE: { Ref: expect.stringMatching(/^QuotaTable/) } });
    expect(queueEnv.MAX_JOB_MEMORY_MIB).toBeUndefined();
    // The status and cancel functions admit nothing: no quota table.
    expect(envOf(api.statusFunction).QUOTA_TABLE).toBeUndefined();
  });

  test('the submit Lambdas may run the admission transaction; the queue Lambda may hide and re-send its messages', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyName: Match.stringLikeRegexp('^SubmitApiSubmitFunction'),
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: Match.arrayWith(['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query']) })]) },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyName: Match.stringLikeRegexp('^QueueJobsSubmitFunction'),
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sqs:ChangeMessageVisibility' })]) },
    });
  });

  test('bad limits and tenant ids are refused naming the prop, the value and what is allowed', () => {
    const t = apiTestStack();
    expect(() => new QuotaTable(t.stack, 'A', { jobQueues: [t.jobQueue], defaultLimits: { maxActiveJobs: -1, submissionsPerMinute: 10 } })).toThrow(
      /\[ApiTest\/A\] defaultLimits.maxActiveJobs \(-1\) is invalid; allowed: a whole number >= 0/,
    );
    expect(() => new QuotaTable(t.stack, 'B', { jobQueues: [t.jobQueue], tenantLimits: { 'a/b': { maxActiveJobs: 1 } } })).toThrow(/tenantLimits\["a\/b"\].*allowed: a tenant id/);
    expect(() => new QuotaTable(t.stack, 'C', { jobQueues: [] })).toThrow(/jobQueues .* is empty/);
    expect(() => new SubmitApi(t.stack, 'D', { ...t, sizingLimits: { maxVcpus: 0 } })).toThrow(/sizingLimits.maxVcpus \(0\) must be a number > 0/);
  });

  test('cdk-nag finds nothing and cfn-lint passes', () => {
    const app = new App();
    const { stack } = build(app);
    expect(nagFindings(app)).toEqual([]);
    expect(cfnLintFindings(app.synth().getStackByName(stack.stackName).template, { ignoreChecks: ['W3005'] })).toBe('');
  });
});
