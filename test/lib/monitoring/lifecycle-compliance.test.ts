import { App, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { JobCleanup } from '../../../lib/cleanup/job-cleanup';
import { ScheduledJob } from '../../../lib/jobs/scheduled-job';
import { BatchMonitoring } from '../../../lib/monitoring/batch-monitoring';
import { CompletionWebhook } from '../../../lib/notifications/completion-webhook';
import { JobNotifications } from '../../../lib/notifications/job-notifications';
import { cfnLintFindings, nagFindings } from '../../support/compliance';
import { BatchFixture, ENV } from './fixtures';

/** Every construct of the job-lifecycle issue in one stack, wired the way the platform stack will. */
function lifecycleStack(app: App): Stack {
  const stack = new Stack(app, 'LifecycleStack', { env: ENV });
  const fx = new BatchFixture(stack, 'Fixture');
  // The fixture stands in for other helpers' constructs; its findings are theirs, not this issue's.
  Validations.of(fx).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:eu-central-1:123456789012:log-group:/aws/batch/job:*]',
    reason: 'Test fixture: the aws-cdk-lib L2 job definition default log permissions.',
  });
  const queues = [fx.queue, fx.secondQueue];
  const notifications = new JobNotifications(stack, 'Notifications', { jobQueues: queues, sqsSubscription: true });
  const webhook = new CompletionWebhook(stack, 'Webhook', {
    topics: [notifications.topic],
    outputBucket: s3.Bucket.fromBucketName(stack, 'Staging', 'staging-bucket'),
  });
  notifications.addWebhook(webhook.url);
  const monitoring = new BatchMonitoring(stack, 'Monitoring', { jobQueues: queues });
  const cleanup = new JobCleanup(stack, 'Cleanup', { jobQueues: queues, jobDefinitions: [fx.jobDefinition] });
  const nightly = new ScheduledJob(stack, 'NightlyRoadDefects', {
    jobQueue: fx.queue,
    jobDefinition: fx.jobDefinition,
    jobName: 'road-defect-aggregation',
    schedule: ScheduleExpression.cron({ minute: '0', hour: '2', timeZone: TimeZone.EUROPE_BERLIN }),
    environment: { OPERATION: 'aggregate-road-defects' },
  });
  monitoring.addLambdaErrorAlarm(webhook.handler);
  monitoring.addLambdaErrorAlarm(cleanup.function);
  monitoring.addDlqAlarm(notifications.deadLetterQueue);
  monitoring.addDlqAlarm(notifications.subscriptionDeadLetterQueue!);
  monitoring.addDlqAlarm(nightly.deadLetterQueue);
  return stack;
}

test('cdk-nag AwsSolutions reports no unacknowledged finding', () => {
  const app = new App();
  lifecycleStack(app);
  expect(nagFindings(app)).toEqual([]);
});

test('cfn-lint reports nothing on the synthesized template', () => {
  const app = new App();
  const stack = lifecycleStack(app);
  expect(cfnLintFindings(app.synth().getStackByName(stack.stackName).template)).toBe('');
});
