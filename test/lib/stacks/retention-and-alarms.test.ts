import { Match, Template } from 'aws-cdk-lib/assertions';
import { FALLBACK_RETENTION_DAYS, JOB_ID_TAG as RUNTIME_JOB_ID_TAG, RETENTION_DAYS_ENV as RUNTIME_ENV, RETENTION_TAG as RUNTIME_TAG } from '../../../containers/worker/src/retention';
import { DEFAULT_OBJECT_RETENTION_DAYS, JOB_ID_TAG, RETENTION_DAYS_ENV, RETENTION_TAG } from '../../../lib/storage/staging-buckets';
import { EXPECTED_OPERATION_DURATION_MINUTES } from '../../../lib/stacks/operation-durations';
import { addPlatformStacks, PlatformStacks } from '../../../lib/stacks/platform-app';
import { STAGES } from '../../../lib/stacks/stage-config';
import { ROAD_METRICS_RETENTION_DAYS } from '../../../lib/workloads/road-metrics/road-metrics-stack';
import { appWithCdkJson } from '../../support/app';

type Props = Record<string, any>;
const built = new Map<string, PlatformStacks>();
function stacksFor(stage: 'dev' | 'prod'): PlatformStacks {
  if (!built.has(stage)) built.set(stage, addPlatformStacks(appWithCdkJson({ stage }), STAGES[stage]));
  return built.get(stage)!;
}

const resources = (t: Template, type: string): Props[] => Object.values(t.findResources(type)).map((r) => r.Properties as Props);
const envOf = (p: Props): Record<string, unknown> =>
  Object.fromEntries(((p.ContainerProperties?.Environment ?? []) as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));

test('constructs and runtime name the same tag, job-id tag, variable and default', () => {
  expect([RETENTION_TAG, JOB_ID_TAG, RETENTION_DAYS_ENV, DEFAULT_OBJECT_RETENTION_DAYS]).toEqual([RUNTIME_TAG, RUNTIME_JOB_ID_TAG, RUNTIME_ENV, FALLBACK_RETENTION_DAYS]);
});

describe.each(['dev', 'prod'] as const)('stage %s', (stage) => {
  const stacks = stacksFor(stage);
  const platform = Template.fromStack(stacks.platform);
  const workflow = Template.fromStack(stacks.workflow);
  const days = STAGES[stage].retentionDays!;

  test('the staging buckets expire objects on exactly the retention-days tag with the stage default among the rule values', () => {
    const buckets = resources(platform, 'AWS::S3::Bucket').filter((b) => b.VersioningConfiguration);
    expect(buckets).toHaveLength(2);
    for (const b of buckets) {
      const rules = b.LifecycleConfiguration.Rules as Props[];
      const rule = rules.find((r) => r.Id === `expire-retention-days-${days}`);
      expect(rule).toEqual({ Id: `expire-retention-days-${days}`, Status: 'Enabled', ExpirationInDays: days, TagFilters: [{ Key: 'retention-days', Value: String(days) }] });
      // Every tag-filtered rule filters on retention-days only, and expires after exactly its value.
      for (const r of rules.filter((x) => x.TagFilters)) {
        expect(r.TagFilters).toEqual([{ Key: 'retention-days', Value: String(r.ExpirationInDays) }]);
      }
    }
    expect(stacks.platform.buckets.objectRetentionDays).toBe(days);
  });

  test('every worker job definition of the platform gives its jobs RETENTION_DAYS = the stage default', () => {
    const defs = resources(platform, 'AWS::Batch::JobDefinition');
    expect(defs.length).toBeGreaterThanOrEqual(1);
    for (const d of defs) expect(envOf(d).RETENTION_DAYS).toBe(String(days));
  });

  test('the workflow Lambdas that write runs/ objects get RETENTION_DAYS and may tag', () => {
    const fns = resources(workflow, 'AWS::Lambda::Function').filter((f) => f.Environment?.Variables?.RUNS_BUCKET);
    expect(fns).toHaveLength(3);
    for (const f of fns) expect(f.Environment.Variables.RETENTION_DAYS).toBe(String(days));
    const tagging = resources(workflow, 'AWS::IAM::Policy').filter((p) => JSON.stringify(p.PolicyDocument).includes('s3:PutObjectTagging'));
    // planner, chunk, aggregate and the state machine's S3 states
    expect(tagging.length).toBeGreaterThanOrEqual(4);
  });

  test("the state machine's own S3 writes (done-markers, failure records) and Batch chunks carry the tag", () => {
    const sm = resources(workflow, 'AWS::StepFunctions::StateMachine')[0];
    const definition = JSON.stringify(sm.DefinitionString);
    expect(definition.match(/\\"Tagging\\":\\"retention-days=(\d+)\\"/g)).toHaveLength(2);
    expect(definition).toContain(`\\"Tagging\\":\\"retention-days=${days}\\"`);
    expect(definition).toMatch(new RegExp(`\\\\"Name\\\\":\\\\"RETENTION_DAYS\\\\",\\\\"Value\\\\":\\\\"${days}\\\\"`));
  });

  test('the completion webhook tags records of untagged inputs with the stage default', () => {
    const fns = resources(platform, 'AWS::Lambda::Function').filter((f) => f.Environment?.Variables?.PATH_SECRET_ARN);
    expect(fns).toHaveLength(1);
    expect(fns[0].Environment.Variables.RETENTION_DAYS).toBe(String(days));
  });

  test('road-metrics keeps its results longer than its 30-day trend', () => {
    const road = Template.fromStack(stacks.roadMetrics!);
    const defs = resources(road, 'AWS::Batch::JobDefinition');
    expect(defs.map((d) => envOf(d).RETENTION_DAYS)).toEqual([String(ROAD_METRICS_RETENTION_DAYS)]);
    expect(ROAD_METRICS_RETENTION_DAYS).toBeGreaterThan(30);
  });

  test('one P95 duration alarm per operation, threshold its expected duration', () => {
    const alarms = resources(platform, 'AWS::CloudWatch::Alarm').filter((a) => a.MetricName === 'DurationMs');
    expect(alarms.map((a) => a.Dimensions[0].Value).sort()).toEqual(Object.keys(EXPECTED_OPERATION_DURATION_MINUTES).sort());
    for (const a of alarms) {
      expect(a).toMatchObject({ Namespace: 'CdkBatchPlatform/Worker', ExtendedStatistic: 'p95', Dimensions: [{ Name: 'Operation', Value: expect.any(String) }] });
      expect(a.Threshold).toBe(EXPECTED_OPERATION_DURATION_MINUTES[a.Dimensions[0].Value] * 60_000);
    }
  });

  test('the failure-rate alarms fire above 5 %', () => {
    const rates = resources(platform, 'AWS::CloudWatch::Alarm').filter((a) => JSON.stringify(a.Metrics ?? '').includes('100 * failed'));
    expect(rates.length).toBeGreaterThanOrEqual(1);
    for (const r of rates) expect(r.Threshold).toBe(5);
  });

  test(`Cost Anomaly Detection is ${stage === 'prod' ? 'on (100 USD) for the stage tag' : 'off'}`, () => {
    if (stage === 'dev') {
      platform.resourceCountIs('AWS::CE::AnomalyMonitor', 0);
      return;
    }
    platform.hasResourceProperties('AWS::CE::AnomalyMonitor', { MonitorType: 'CUSTOM', MonitorSpecification: JSON.stringify({ Tags: { Key: 'stage', Values: ['prod'], MatchOptions: ['EQUALS'] } }) });
    platform.hasResourceProperties('AWS::CE::AnomalySubscription', { Frequency: 'IMMEDIATE', ThresholdExpression: Match.stringLikeRegexp('"Values":\\["100"\\]') });
  });
});
