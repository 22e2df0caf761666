import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { QueueTriggeredJobs, SubmitApi } from '../../../lib/api';
import { JobCleanup } from '../../../lib/cleanup/job-cleanup';
import { WorkerJobDefinition } from '../../../lib/jobs/worker-job-definition';
import { BatchMonitoring } from '../../../lib/monitoring/batch-monitoring';
import { CompletionWebhook } from '../../../lib/notifications/completion-webhook';
import { StagingBuckets } from '../../../lib/storage/staging-buckets';
import { apiTestStack } from '../api/api-test-stack';
import { nagFindings } from '../../support/compliance';
import { expectPropErrorAt } from '../../support/stacks';
import * as sns from 'aws-cdk-lib/aws-sns';

/** Retention of every Lambda log group (AWS::Logs::LogGroup named *...FunctionLogGroup / HandlerLogGroup) in the stack. */
function lambdaLogRetentions(stack: Stack): number[] {
  const template = Template.fromStack(stack);
  const functions = template.findResources('AWS::Lambda::Function');
  const groups = template.findResources('AWS::Logs::LogGroup');
  return Object.values(functions).map((fn) => {
    const ref = fn.Properties.LoggingConfig?.LogGroup?.Ref as string;
    return groups[ref]?.Properties.RetentionInDays as number;
  });
}

describe('Lambda log retention is settable wherever a construct creates a Lambda', () => {
  test('SubmitApi: logRetention applies to the submit, status and cancel functions', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', { ...t, logRetention: logs.RetentionDays.ONE_WEEK });
    expect(lambdaLogRetentions(t.stack)).toEqual([7, 7, 7]);
  });

  test('QueueTriggeredJobs: logRetention applies to the submitting function', () => {
    const t = apiTestStack();
    new QueueTriggeredJobs(t.stack, 'Jobs', { ...t, logRetention: logs.RetentionDays.TWO_WEEKS });
    expect(lambdaLogRetentions(t.stack)).toEqual([14]);
  });

  test('JobCleanup: logRetention applies to the cleanup function', () => {
    const t = apiTestStack();
    new JobCleanup(t.stack, 'Cleanup', { jobQueues: [t.jobQueue], logRetention: logs.RetentionDays.THREE_MONTHS });
    expect(lambdaLogRetentions(t.stack)).toEqual([90]);
  });

  test('BatchMonitoring: logRetention applies to the job-metrics and backlog-probe functions', () => {
    const t = apiTestStack();
    new BatchMonitoring(t.stack, 'Monitoring', { jobQueues: [t.jobQueue], logRetention: logs.RetentionDays.ONE_DAY });
    expect(lambdaLogRetentions(t.stack)).toEqual([1, 1]);
  });

  test('CompletionWebhook: logRetention applies to the handler', () => {
    const t = apiTestStack();
    new CompletionWebhook(t.stack, 'Webhook', { topics: [new sns.Topic(t.stack, 'Topic')], logRetention: logs.RetentionDays.FIVE_DAYS });
    expect(lambdaLogRetentions(t.stack)).toEqual([5]);
  });

  test('without logRetention every function keeps one month', () => {
    const t = apiTestStack();
    new SubmitApi(t.stack, 'SubmitApi', t);
    expect(lambdaLogRetentions(t.stack)).toEqual([30, 30, 30]);
  });
});

describe('grants', () => {
  test('SubmitApi.grantInvoke leaves no unacknowledged cdk-nag finding on the grantee role', () => {
    const t = apiTestStack();
    const api = new SubmitApi(t.stack, 'SubmitApi', t);
    const role = new iam.Role(t.stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(role);
    expect(nagFindings(t.app).filter((f) => f.includes('ApiTest/Caller'))).toEqual([]);
  });

  test('the grantInvoke policy allows execute-api:Invoke on /jobs and /jobs/* only', () => {
    const t = apiTestStack();
    const api = new SubmitApi(t.stack, 'SubmitApi', t);
    const role = new iam.Role(t.stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(role);
    const policies = Template.fromStack(t.stack).findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: t.stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }] } });
    const text = JSON.stringify(Object.values(policies));
    expect(text).toContain('execute-api:Invoke');
    expect(text).toContain('/*/jobs"');
    expect(text).toContain('/*/jobs/*"');
  });

  test('StagingBuckets.grantJobIo returns the iam.Grant it made', () => {
    const stack = new Stack(new App(), 'Stack');
    const buckets = new StagingBuckets(stack, 'Staging');
    const role = new iam.Role(stack, 'Job', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const grant = buckets.grantJobIo(role);
    expect(grant).toBeInstanceOf(iam.Grant);
    expect(grant.success).toBe(true);
    expect(grant.principalStatements.flatMap((s) => s.actions)).toEqual(expect.arrayContaining(['s3:GetObject*', 's3:PutObject']));
  });
});

describe('WorkerJobDefinition key prefixes', () => {
  test("inputPrefix without a trailing '/' is refused: 'data' would also grant 'data-private/...'", () => {
    const stack = new Stack(new App(), 'Stack');
    const bucket = new s3.Bucket(stack, 'In');
    expectPropErrorAt('Stack/Worker', () => new WorkerJobDefinition(stack, 'Worker', { inputBucket: bucket, inputPrefix: 'data' }),
      'inputPrefix ("data") does not end in \'/\'', "allowed: '' (the whole bucket) or a prefix ending in '/' (e.g. 'data/')");
  });

  test("outputPrefix without a trailing '/' is refused", () => {
    const stack = new Stack(new App(), 'Stack');
    const bucket = new s3.Bucket(stack, 'Out');
    expectPropErrorAt('Stack/Worker', () => new WorkerJobDefinition(stack, 'Worker', { outputBucket: bucket, outputPrefix: 'results' }),
      'outputPrefix ("results") does not end in \'/\'');
  });

  test("'' and prefixes ending in '/' are accepted", () => {
    const stack = new Stack(new App(), 'Stack');
    const bucket = new s3.Bucket(stack, 'In');
    expect(() => new WorkerJobDefinition(stack, 'A', { inputBucket: bucket, inputPrefix: '' })).not.toThrow();
    expect(() => new WorkerJobDefinition(stack, 'B', { inputBucket: bucket, inputPrefix: 'data/' })).not.toThrow();
  });
});
