import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CfnAlarm } from 'aws-cdk-lib/aws-cloudwatch';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { BatchMonitoring } from '../../../lib/monitoring/batch-monitoring';
import { fixtureStack } from './fixtures';

const { stack, fx } = fixtureStack();
const monitoring = new BatchMonitoring(stack, 'Monitoring', { jobQueues: [fx.queue], backlogThreshold: 50, dashboardName: 'batch-platform' });
const extraDlq = new sqs.Queue(stack, 'OtherDlq', { enforceSSL: true });
const extraAlarm = monitoring.addDlqAlarm(extraDlq);
const template = Template.fromStack(stack);

function alarmOn(metricName: string): Record<string, unknown> {
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, unknown> }>;
  const found = alarms.find((a) => a.Properties.MetricName === metricName || JSON.stringify(a.Properties.Metrics ?? '').includes(`"MetricName":"${metricName}"`));
  if (!found) throw new Error(`no alarm on ${metricName}`);
  return found.Properties;
}

test('feeds every Batch Job State Change of the queues to the job-metrics Lambda, with a DLQ', () => {
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'], detail: { jobQueue: [stack.resolve(fx.queue.jobQueueArn)] } },
    Targets: [Match.objectLike({ Arn: stack.resolve(monitoring.metricsFunction.functionArn), DeadLetterConfig: { Arn: stack.resolve(monitoring.metricsDeadLetterQueue.queueArn) } })],
  });
});

test('runs the backlog probe every 5 minutes by default with the queues in its environment', () => {
  template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  template.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('RUNNABLE'),
    Environment: { Variables: Match.objectLike({ JOB_QUEUES: stack.resolve(fx.queue.jobQueueArn) }) },
  });
});

test('the probe may only ListJobs', () => {
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: Match.arrayWith([{ Effect: 'Allow', Action: 'batch:ListJobs', Resource: '*' }]) },
    Roles: [stack.resolve(monitoring.probeFunction.role!.roleName)],
  });
});

test('alarms on >= 1 failed job in 5 minutes, missing data not breaching', () => {
  expect(alarmOn('JobsFailed')).toMatchObject({
    Namespace: 'CdkBatchPlatform', Statistic: 'Sum', Period: 300, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching',
    Dimensions: [{ Name: 'JobQueue', Value: stack.resolve(fx.queue.jobQueueName) }],
  });
});

test('alarms on a failure rate above 5% (the default) over 15 minutes with metric math', () => {
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: { Metrics?: Array<{ Expression?: string; MetricStat?: { Period: number } }>; Threshold: number } }>;
  const rate = alarms.find((a) => a.Properties.Metrics?.some((m) => m.Expression === '100 * failed / (succeeded + failed)'));
  expect(rate?.Properties.Threshold).toBe(5);
  expect(rate?.Properties.Metrics?.filter((m) => m.MetricStat).every((m) => m.MetricStat!.Period === 900)).toBe(true);
});

test('alarms on a RUNNABLE backlog above the threshold for 3 probe periods', () => {
  expect(alarmOn('RunnableJobs')).toMatchObject({ Threshold: 50, EvaluationPeriods: 3, Period: 300, ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'missing' });
});

test('alarms on the oldest RUNNABLE job waiting more than 30 minutes', () => {
  expect(alarmOn('OldestRunnableAgeSeconds')).toMatchObject({ Threshold: 1800, ComparisonOperator: 'GreaterThanThreshold' });
});

test('alarms on errors of each of its Lambdas and on its DLQ', () => {
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, unknown> }>;
  expect(alarms.filter((a) => a.Properties.MetricName === 'Errors' && a.Properties.Namespace === 'AWS/Lambda')).toHaveLength(2);
  expect(alarms.filter((a) => a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible')).toHaveLength(2);
});

test('addDlqAlarm watches a queue of another construct and is listed in alarms', () => {
  expect(monitoring.alarms).toContain(extraAlarm);
  template.hasResourceProperties('AWS::CloudWatch::Alarm', {
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: stack.resolve(extraDlq.queueName) }],
    Threshold: 1,
  });
});

test('every alarm notifies the operations topic on ALARM and OK', () => {
  const topicRef = stack.resolve((monitoring.operationsTopic as sns.Topic).topicArn);
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: { AlarmActions: unknown[]; OKActions: unknown[] } }>;
  expect(alarms).toHaveLength(monitoring.alarms.length);
  for (const a of alarms) {
    expect(a.Properties.AlarmActions).toEqual([topicRef]);
    expect(a.Properties.OKActions).toEqual([topicRef]);
  }
});

test('creates an encrypted, SSL-only operations topic CloudWatch may publish to', () => {
  template.hasResourceProperties('AWS::KMS::Key', {
    KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' } })]) },
  });
});

test('the dashboard shows every alarm, including those added later, and the queue metrics', () => {
  const dash = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as { Properties: { DashboardName: string; DashboardBody: unknown } };
  expect(dash.Properties.DashboardName).toBe('batch-platform');
  const body = JSON.stringify(dash.Properties.DashboardBody);
  for (const m of ['JobsSubmitted', 'JobsSucceeded', 'JobsFailed', 'JobRunTimeSeconds', 'RunnableJobs', 'OldestRunnableAgeSeconds']) expect(body).toContain(m);
  expect(body).toContain(stack.getLogicalId(extraAlarm.node.defaultChild as CfnAlarm));
  expect((body.match(/"type\\":\\"alarm/g) ?? []).length).toBe(1);
});

test('uses a given operations topic instead of creating one', () => {
  const { stack: s, fx: f } = fixtureStack();
  const topic = new sns.Topic(s, 'Ops', { enforceSSL: true });
  const m = new BatchMonitoring(s, 'Monitoring', { jobQueues: [f.queue], operationsTopic: topic });
  expect(m.operationsTopic).toBe(topic);
  expect(Object.keys(Template.fromStack(s).findResources('AWS::SNS::Topic')).filter((k) => k.startsWith('Monitoring'))).toEqual([]);
});

test('rejects a probe rate below one minute', () => {
  const { stack: s, fx: f } = fixtureStack();
  expect(() => new BatchMonitoring(s, 'Monitoring', { jobQueues: [f.queue], probeRate: Duration.seconds(30) })).toThrow(/\[TestStack\/Monitoring\] probeRate \("Duration.seconds\(30\)"\) is too short; allowed: 1 minute or more/);
});

test('rejects a failure rate above 100 percent', () => {
  const { stack: s, fx: f } = fixtureStack();
  expect(() => new BatchMonitoring(s, 'Monitoring', { jobQueues: [f.queue], failureRateThresholdPercent: 150 })).toThrow(/\[TestStack\/Monitoring\] failureRateThresholdPercent \(150\) is out of range; allowed: 0 to 100/);
});
