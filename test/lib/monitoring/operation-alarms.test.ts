import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { BatchMonitoring } from '../../../lib/monitoring/batch-monitoring';
import { cfnLintFindings } from '../../support/compliance';
import { fixtureStack } from './fixtures';

type Props = Record<string, any>;

function synth(extra: Partial<ConstructorParameters<typeof BatchMonitoring>[2]>): { template: Template; monitoring: BatchMonitoring; resolve: (x: unknown) => unknown } {
  const { stack, fx } = fixtureStack();
  const monitoring = new BatchMonitoring(stack, 'Monitoring', { jobQueues: [fx.queue], ...extra });
  return { template: Template.fromStack(stack), monitoring, resolve: (x) => stack.resolve(x) };
}

function durationAlarms(template: Template): Props[] {
  return Object.values(template.findResources('AWS::CloudWatch::Alarm'))
    .map((a) => a.Properties as Props)
    .filter((p) => p.MetricName === 'DurationMs');
}

describe('P95 duration alarm per operation', () => {
  const { template, monitoring } = synth({ operationDurations: { 'transform-records': Duration.minutes(30), ocr: Duration.minutes(15) } });

  test('one alarm per operation on the worker DurationMs p95 over an hour, above the expected duration', () => {
    const alarms = durationAlarms(template);
    expect(alarms).toHaveLength(2);
    for (const [operation, minutes] of [['transform-records', 30], ['ocr', 15]] as const) {
      const alarm = alarms.find((a) => a.Dimensions?.[0]?.Value === operation);
      expect(alarm).toMatchObject({
        Namespace: 'CdkBatchPlatform/Worker',
        MetricName: 'DurationMs',
        ExtendedStatistic: 'p95',
        Period: 3600,
        Threshold: minutes * 60_000,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        Dimensions: [{ Name: 'Operation', Value: operation }],
      });
    }
    expect(Object.keys(monitoring.durationAlarms).sort()).toEqual(['ocr', 'transform-records']);
  });

  test('the duration alarms notify the operations topic', () => {
    const alarm = durationAlarms(template)[0];
    expect(alarm.AlarmActions).toHaveLength(1);
    expect(alarm.OKActions).toEqual(alarm.AlarmActions);
  });

  test('no operationDurations, no duration alarm', () => {
    expect(durationAlarms(synth({}).template)).toHaveLength(0);
  });

  test('refuses an expected duration under a second, naming the operation', () => {
    expect(() => synth({ operationDurations: { ocr: Duration.millis(10) } })).toThrow(/operationDurations\.ocr \("10 millis"\) is too short; allowed: 1 second or more/);
  });

  test('refuses an operation name that is no operation name', () => {
    expect(() => synth({ operationDurations: { 'Bad Name': Duration.minutes(1) } })).toThrow(/operationDurations \("?Bad Name"?\) has an invalid key/);
  });
});

describe('failure-rate threshold', () => {
  const rateOf = (template: Template): number | undefined =>
    (Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Props }>)
      .find((a) => JSON.stringify(a.Properties.Metrics ?? '').includes('100 * failed'))?.Properties.Threshold;

  test('defaults to 5 %', () => {
    expect(rateOf(synth({}).template)).toBe(5);
  });

  test('stays a prop', () => {
    expect(rateOf(synth({ failureRateThresholdPercent: 12 }).template)).toBe(12);
  });
});

describe('Cost Anomaly Detection', () => {
  test('is off unless asked for', () => {
    const { template } = synth({});
    template.resourceCountIs('AWS::CE::AnomalyMonitor', 0);
    template.resourceCountIs('AWS::CE::AnomalySubscription', 0);
  });

  const { template, monitoring, resolve } = synth({ costAnomalyDetection: { tag: { key: 'stage', value: 'prod' }, thresholdUsd: 250 } });

  test('monitors the costs of the resources tagged with the stage', () => {
    const monitor = Object.values(template.findResources('AWS::CE::AnomalyMonitor'))[0].Properties as Props;
    expect(monitor.MonitorType).toBe('CUSTOM');
    expect(JSON.parse(monitor.MonitorSpecification)).toEqual({ Tags: { Key: 'stage', Values: ['prod'], MatchOptions: ['EQUALS'] } });
  });

  test('sends anomalies of at least the threshold to the operations topic, immediately', () => {
    const sub = Object.values(template.findResources('AWS::CE::AnomalySubscription'))[0].Properties as Props;
    expect(sub).toMatchObject({
      Frequency: 'IMMEDIATE',
      MonitorArnList: [resolve(monitoring.costAnomalyMonitor!.attrMonitorArn)],
      Subscribers: [{ Type: 'SNS', Address: resolve(monitoring.operationsTopic.topicArn) }],
    });
    expect(JSON.parse(sub.ThresholdExpression)).toEqual({
      Dimensions: { Key: 'ANOMALY_TOTAL_IMPACT_ABSOLUTE', MatchOptions: ['GREATER_THAN_OR_EQUAL'], Values: ['250'] },
    });
  });

  test('lets costalerts.amazonaws.com publish to the topic and use its key', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sns:Publish', Principal: { Service: 'costalerts.amazonaws.com' } })]) },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Action: ['kms:GenerateDataKey*', 'kms:Decrypt'], Principal: { Service: 'costalerts.amazonaws.com' } })]) },
    });
  });

  test('refuses a threshold out of range', () => {
    expect(() => synth({ costAnomalyDetection: { tag: { key: 'stage', value: 'dev' }, thresholdUsd: 0 } })).toThrow(/costAnomalyDetection\.thresholdUsd \(0\) is out of range/);
  });
});

test('cfn-lint reports nothing on duration alarms plus Cost Anomaly Detection (cdk-nag: test/compliance/stages.test.ts)', () => {
  const { app, stack, fx } = fixtureStack();
  new BatchMonitoring(stack, 'Monitoring', {
    jobQueues: [fx.queue],
    operationDurations: { ocr: Duration.minutes(15) },
    costAnomalyDetection: { tag: { key: 'stage', value: 'prod' } },
  });
  expect(cfnLintFindings(app.synth().getStackByName(stack.stackName).template)).toBe('');
});
