import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BatchNetwork } from '../../../../lib/network/batch-network';
import { PhotoBundlesStack, PhotoBundlesStackProps } from '../../../../lib/workloads/photo-bundles/photo-bundles-stack';

function build(overrides: Partial<PhotoBundlesStackProps> = {}): { stack: PhotoBundlesStack; template: Template } {
  const app = new App();
  const platform = new Stack(app, 'Platform');
  const network = new BatchNetwork(platform, 'Net', { egress: { natGateways: 'ONE' } });
  const stack = new PhotoBundlesStack(app, 'PhotoBundles-test', {
    stage: 'test',
    vpc: network.vpc,
    egressSubnets: network.egressSubnetSelection!,
    egressSecurityGroup: network.egressSecurityGroup!,
    inputBucket: new s3.Bucket(platform, 'Input'),
    notificationTopic: new sns.Topic(platform, 'Topic'),
    r2Bucket: 'photo-bundles-test',
    ...overrides,
  });
  return { stack, template: Template.fromStack(stack) };
}

let built: { stack: PhotoBundlesStack; template: Template };
beforeAll(() => {
  built = build();
});

test('Spot first, On-Demand fallback, both on the network-optimised x86 preset from 0 to 100 vCPUs', () => {
  const { template } = built;
  const ces = template.findResources('AWS::Batch::ComputeEnvironment');
  const byType = (type: string) => Object.entries(ces).find(([, r]) => r.Properties.ComputeResources.Type === type)!;
  const [spotId, spot] = byType('SPOT');
  const [onDemandId, onDemand] = byType('EC2');
  for (const ce of [spot, onDemand]) {
    expect(ce.Properties.ComputeResources).toMatchObject({ MinvCpus: 0, MaxvCpus: 100 });
    expect(ce.Properties.ComputeResources.InstanceTypes).toEqual(expect.arrayContaining(['c5n', 'm5n']));
  }
  template.hasResourceProperties('AWS::Batch::JobQueue', {
    ComputeEnvironmentOrder: [
      { ComputeEnvironment: { 'Fn::GetAtt': [spotId, 'ComputeEnvironmentArn'] }, Order: 1 },
      { ComputeEnvironment: { 'Fn::GetAtt': [onDemandId, 'ComputeEnvironmentArn'] }, Order: 2 },
    ],
  });
});

test('the ARM variant uses the ARM network-optimised families', () => {
  const { template } = build({ architecture: 'ARM64' });
  template.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
    ComputeResources: Match.objectLike({ Type: 'SPOT', InstanceTypes: Match.arrayWith(['c6gn', 'c7gn']) }),
  });
  // Its worker image is built and copied for ARM into the stack's own repository.
  template.hasResourceProperties('Custom::CDKECRDeployment', { ImageArch: 'arm64' });
});

test('the bundle job runs the worker image from the stack\'s own repository, retained by default', () => {
  const { stack, template } = built;
  const repositoryId = stack.getLogicalId(stack.workerImage.repository.node.defaultChild as never);
  template.hasResource('AWS::ECR::Repository', { DeletionPolicy: 'Retain' });
  const [definition] = Object.values(template.findResources('AWS::Batch::JobDefinition'));
  const image = JSON.stringify(definition.Properties.ContainerProperties.Image);
  expect(image).toContain(`{"Ref":"${repositoryId}"}`);
  expect(image).toContain(`:${stack.workerImage.tag}`);
  expect(build({ removalPolicy: RemovalPolicy.DESTROY }).template.findResources('AWS::ECR::Repository')).toEqual({
    [repositoryId]: expect.objectContaining({ DeletionPolicy: 'Delete' }),
  });
});

test('compute runs in the egress subnets with the HTTPS-only security group', () => {
  const { template } = built;
  const ce = Object.values(template.findResources('AWS::Batch::ComputeEnvironment'))[0];
  expect(JSON.stringify(ce.Properties.ComputeResources.SecurityGroupIds)).toMatch(/EgressSecurityGroup/);
  expect(JSON.stringify(ce.Properties.ComputeResources.Subnets)).toMatch(/BatchEgressSubnet/);
});

test('the job definition has 2 vCPU / 4 GiB, the R2 endpoint in its environment and the key pair only as secrets', () => {
  const { template } = built;
  const def = Object.values(template.findResources('AWS::Batch::JobDefinition'))[0];
  const container = def.Properties.ContainerProperties;
  expect(container.ResourceRequirements).toEqual(expect.arrayContaining([{ Type: 'VCPU', Value: '2' }, { Type: 'MEMORY', Value: '4096' }]));
  const envNames = container.Environment.map((e: { Name: string }) => e.Name);
  expect(envNames).toEqual(expect.arrayContaining(['OUTPUT_S3_ENDPOINT', 'OUTPUT_S3_REGION']));
  // A bundle with a few dead links is still delivered: up to 25% failed photos by default.
  expect(container.Environment).toContainEqual({ Name: 'MAX_REJECT_RATIO', Value: '0.25' });
  expect(envNames.some((n: string) => /ACCESS_KEY/.test(n))).toBe(false);
  expect(container.Secrets.map((s: { Name: string }) => s.Name).sort()).toEqual(['OUTPUT_S3_ACCESS_KEY_ID', 'OUTPUT_S3_SECRET_ACCESS_KEY']);
  expect(container.Environment.find((e: { Name: string }) => e.Name === 'OUTPUT_S3_ENDPOINT').Value).toEqual({ Ref: 'R2Endpoint' });
});

test('the message queue has a DLQ and its handler runs in photo-bundle mode with the stack bucket and 5 downloads', () => {
  const { template } = built;
  template.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }) });
  template.hasResourceProperties('AWS::Lambda::Function', {
    Environment: { Variables: Match.objectLike({ MESSAGE_FORMAT: 'photo-bundle', BUNDLE_DESTINATION_BUCKET: 'photo-bundles-test', BUNDLE_DOWNLOAD_CONCURRENCY: '5', JOB_NAME_PREFIX: 'bundle' }) },
  });
});

test('finished jobs of the bundle queue trigger the notifier, which publishes on the platform topic; no e-mail by default', () => {
  const { template } = built;
  template.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'], detail: { status: ['SUCCEEDED', 'FAILED'], jobQueue: Match.anyValue() } },
  });
  template.hasResourceProperties('AWS::Lambda::Function', {
    Environment: { Variables: Match.objectLike({ NOTIFICATION_TOPIC_ARN: Match.anyValue(), R2_CREDENTIALS_SECRET_ARN: Match.anyValue() }) },
  });
  expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toMatch(/ses:SendEmail/);
});

test('emailFrom enables SES, limited to that sender', () => {
  const { template } = build({ emailFrom: 'bundles@example.com' });
  template.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'ses:SendEmail', Condition: { StringEquals: { 'ses:FromAddress': 'bundles@example.com' } } })]) },
  });
  template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ EMAIL_FROM: 'bundles@example.com' }) } });
});

test('a dashboard row and alarms on failures, bundle time and both DLQs', () => {
  const { stack, template } = built;
  template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
  for (const metric of ['Bundles', 'BundleFailures', 'BundleSeconds', 'DownloadBytesPerSecond']) expect(body).toContain(metric);
  expect(body).toContain('p95');
  expect(body).toContain('p50');
  expect(stack.alarms).toHaveLength(6);
  const stat = (metricName: string, s: string) =>
    Match.arrayWith([Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: metricName, Namespace: 'CdkBatchPlatform/PhotoBundles' }), Stat: s }) })]);
  template.hasResourceProperties('AWS::CloudWatch::Alarm', { Metrics: stat('BundleFailures', 'Sum'), Threshold: 1 });
  // 80% of the one-hour job timeout.
  template.hasResourceProperties('AWS::CloudWatch::Alarm', { Metrics: stat('BundleSeconds', 'p95'), Threshold: 2880 });
});

test('a literal R2 endpoint replaces the parameter', () => {
  const { template } = build({ r2Endpoint: 'https://abc123.r2.cloudflarestorage.com' });
  expect(template.toJSON().Parameters?.R2Endpoint).toBeUndefined();
  template.hasResourceProperties('AWS::Batch::JobDefinition', {
    ContainerProperties: Match.objectLike({ Environment: Match.arrayWith([{ Name: 'OUTPUT_S3_ENDPOINT', Value: 'https://abc123.r2.cloudflarestorage.com' }]) }),
  });
});

test('refuses a bad R2 endpoint, bucket or download concurrency, naming value and what is allowed', () => {
  expect(() => build({ r2Endpoint: 'http://plain.example.com' })).toThrow(/r2Endpoint \("http:\/\/plain.example.com"\) is invalid; allowed: an https:\/\/ endpoint/);
  expect(() => build({ r2Bucket: 'Bad_Bucket' })).toThrow(/r2Bucket \("Bad_Bucket"\) is invalid; allowed: an R2 bucket name/);
  expect(() => build({ downloadConcurrency: 0 })).toThrow(/downloadConcurrency \(0\) is invalid; allowed: a whole number >= 1/);
});
