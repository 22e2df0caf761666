import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { RoadMetricsDatabase, RoadMetricsStack } from '../../../../lib/workloads/road-metrics/road-metrics-stack';
import { isolatedVpc } from '../../../support/stacks';

function build(database: (platform: Stack) => RoadMetricsDatabase, monthlyBudgetUsd = 200): Template {
  const app = new App();
  const platform = new Stack(app, 'Platform');
  const vpc = isolatedVpc(platform);
  const workers = new ec2.SecurityGroup(platform, 'Workers', { vpc });
  const stack = new RoadMetricsStack(app, 'RoadMetrics-test', {
    stage: 'test',
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    workerSecurityGroup: workers,
    jobQueue: batch.JobQueue.fromJobQueueArn(platform, 'Queue', 'arn:aws:batch:eu-central-1:123456789012:job-queue/q'),
    outputBucket: s3.Bucket.fromBucketName(platform, 'Out', 'out-bucket'),
    database: database(platform),
    monthlyBudgetUsd,
  });
  return Template.fromStack(stack);
}

const aurora = () => ({ kind: 'aurora' as const, minCapacity: 0, maxCapacity: 2 });

test('the aurora option creates an encrypted Serverless v2 PostgreSQL cluster that forces TLS', () => {
  const t = build(aurora);
  t.hasResourceProperties('AWS::RDS::DBCluster', {
    Engine: 'aurora-postgresql',
    StorageEncrypted: true,
    ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 2 },
    DatabaseName: 'roads',
  });
  t.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
  t.resourceCountIs('AWS::RDS::DBInstance', 1);
});

test('the database is reachable on 5432 from the worker security group only', () => {
  const t = build(aurora);
  const ingress = t.findResources('AWS::EC2::SecurityGroupIngress', { Properties: { FromPort: 5432 } });
  expect(Object.values(ingress)).toHaveLength(1);
  expect(Object.values(ingress)[0].Properties).toMatchObject({
    IpProtocol: 'tcp',
    ToPort: 5432,
    SourceSecurityGroupId: { 'Fn::ImportValue': expect.stringContaining('Workers') },
  });
  const dbSg = Object.values(t.findResources('AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('Aurora') } }));
  expect(dbSg).toHaveLength(1);
  expect(dbSg[0].Properties.SecurityGroupIngress).toBeUndefined();
  expect(JSON.stringify(t.toJSON())).not.toContain('0.0.0.0/0');
});

test('an existing database gets one ingress rule on its own security group and no cluster', () => {
  const t = build((platform) => ({
    kind: 'existing',
    securityGroup: ec2.SecurityGroup.fromSecurityGroupId(platform, 'DbSg', 'sg-0123456789abcdef0'),
    secret: secretsmanager.Secret.fromSecretCompleteArn(platform, 'DbSecret', 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:roads-AbCdEf'),
    port: 6432,
  }));
  t.resourceCountIs('AWS::RDS::DBCluster', 0);
  t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { GroupId: 'sg-0123456789abcdef0', FromPort: 6432, ToPort: 6432 });
  t.hasResourceProperties('AWS::Batch::JobDefinition', {
    ContainerProperties: Match.objectLike({
      Environment: Match.arrayWith([{ Name: 'DB_CREDENTIALS_ARN', Value: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:roads-AbCdEf' }]),
    }),
  });
  t.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'] })]) },
  });
});

test('the nightly job runs road-metrics.js and gets the scheduled time to compute yesterday from', () => {
  const t = build(aurora);
  t.hasResourceProperties('AWS::Batch::JobDefinition', {
    ContainerProperties: Match.objectLike({ Command: ['node', '/app/road-metrics.js', 'run'] }),
  });
  const schedules = Object.values(t.findResources('AWS::Scheduler::Schedule'));
  expect(schedules).toHaveLength(1);
  const props = schedules[0].Properties;
  expect(props.ScheduleExpression).toBe('cron(30 2 * * ? *)');
  expect(props.ScheduleExpressionTimezone).toBe('Europe/Berlin');
  expect(JSON.stringify(props.Target.Input)).toContain('{\\"name\\":\\"RUN_AS_OF\\",\\"value\\":\\"<aws.scheduler.scheduled-time>\\"}');
});

test('Secrets Manager is reached through an interface endpoint open to the workers on 443', () => {
  const t = build(aurora);
  const endpoints = Object.values(t.findResources('AWS::EC2::VPCEndpoint'));
  expect(endpoints).toHaveLength(1);
  expect(endpoints[0].Properties).toMatchObject({ VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
  expect(JSON.stringify(endpoints[0].Properties.ServiceName)).toContain('.secretsmanager');
  t.hasResourceProperties('AWS::EC2::SecurityGroup', {
    GroupDescription: 'Secrets Manager endpoint: HTTPS from the Batch workers',
    SecurityGroupIngress: [Match.objectLike({ FromPort: 443, ToPort: 443, SourceSecurityGroupId: Match.anyValue(), CidrIp: Match.absent() })],
  });
});

test("a budget alarms on the stage's monthly spend through an SNS topic Budgets may publish to", () => {
  const t = build(aurora, 250);
  t.hasResourceProperties('AWS::Budgets::Budget', {
    Budget: { BudgetLimit: { Amount: 250, Unit: 'USD' }, TimeUnit: 'MONTHLY', BudgetType: 'COST', CostFilters: { TagKeyValue: ['user:stage$test'] } },
    NotificationsWithSubscribers: [
      Match.objectLike({ Notification: Match.objectLike({ NotificationType: 'ACTUAL', Threshold: 80 }) }),
      Match.objectLike({ Notification: Match.objectLike({ NotificationType: 'FORECASTED', Threshold: 100 }) }),
    ],
  });
  t.hasResourceProperties('AWS::SNS::TopicPolicy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'budgets.amazonaws.com' }, Action: 'sns:Publish' })]) },
  });
});

test('a budget that is not a positive amount is refused with the value', () => {
  expect(() => build(aurora, 0)).toThrow(/monthlyBudgetUsd.*0.*a number > 0 \(USD\)/);
});

test('the job may list and read the daily results it renders the published dashboard from, and nothing else outside its pointer', () => {
  const t = build(aurora);
  const statements = Object.values(t.findResources('AWS::IAM::Policy'))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown; Condition?: unknown }[]);
  const list = statements.find((s) => s.Action === 's3:ListBucket');
  expect(list?.Condition).toEqual({ StringEquals: { 's3:prefix': ['results/road-defects/latest.json', 'results/road-defects/daily/'] } });
  const get = statements.find((s) => s.Action === 's3:GetObject');
  expect(JSON.stringify(get?.Resource)).toContain('/results/road-defects/daily/*');
  expect(JSON.stringify(get?.Resource)).toContain('/results/road-defects/latest.json');
});
