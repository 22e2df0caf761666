import * as fs from 'fs';
import * as path from 'path';
import { App, Duration, Size, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PACKAGE_ROOT } from '../../../lib/common/node-function';
import { RetryPresets } from '../../../lib/jobs/retry-strategies';
import { WorkerJobDefinition, WorkerJobDefinitionProps } from '../../../lib/jobs/worker-job-definition';
import { expectPropErrorAt } from '../../support/stacks';

const PATH = 'Stack/Worker';
const IMAGE = ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/node:22-slim');

function setup(props: WorkerJobDefinitionProps = {}): { app: App; stack: Stack; job: WorkerJobDefinition; template: () => Template } {
  const app = new App();
  const stack = new Stack(app, 'Stack');
  const job = new WorkerJobDefinition(stack, 'Worker', { image: IMAGE, ...props });
  return { app, stack, job, template: () => Template.fromStack(stack) };
}

function containerProperties(template: Template): Record<string, any> {
  const [resource] = Object.values(template.findResources('AWS::Batch::JobDefinition'));
  return resource.Properties.ContainerProperties;
}

function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as iam.CfnRole);
}

/** Statements of the default policy attached to `role`. */
function statementsOf(template: Template, stack: Stack, role: iam.IRole): Record<string, any>[] {
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: logicalId(stack, role) }] } });
  return Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
}

function actionsOf(statements: Record<string, any>[]): string[] {
  return statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
}

const expectPropError = (fn: () => unknown, ...parts: string[]): void => expectPropErrorAt(PATH, fn, ...parts);

describe('defaults', () => {
  test('runs on EC2 with 1 vCPU and 2048 MiB', () => {
    const { template } = setup();
    template().hasResourceProperties('AWS::Batch::JobDefinition', { PlatformCapabilities: ['EC2'], Type: 'container' });
    expect(containerProperties(template()).ResourceRequirements).toEqual([
      { Type: 'MEMORY', Value: '2048' },
      { Type: 'VCPU', Value: '1' },
    ]);
  });

  test('times attempts out after one hour', () => {
    setup().template().hasResourceProperties('AWS::Batch::JobDefinition', { Timeout: { AttemptDurationSeconds: 3600 } });
  });

  test('makes 3 attempts and retries only infrastructure failures', () => {
    setup().template().hasResourceProperties('AWS::Batch::JobDefinition', {
      RetryStrategy: {
        Attempts: 3,
        EvaluateOnExit: [
          { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
          { Action: 'RETRY', OnStatusReason: 'Your Spot Task was interrupted*' },
          { Action: 'RETRY', OnReason: 'CannotPullContainerError:*' },
          { Action: 'EXIT', OnStatusReason: '*' },
        ],
      },
    });
  });

  test('logs to its own log group kept for one month, stream prefix worker', () => {
    const { template, stack, job } = setup();
    template().hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30, LogGroupName: Match.absent() });
    expect(containerProperties(template()).LogConfiguration).toEqual({
      LogDriver: 'awslogs',
      Options: {
        'awslogs-group': { Ref: logicalId(stack, job.logGroup) },
        'awslogs-stream-prefix': 'worker',
        'awslogs-region': { Ref: 'AWS::Region' },
      },
    });
  });

  test('logRetention sets the log group retention', () => {
    setup({ logRetention: logs.RetentionDays.ONE_WEEK }).template().hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  test('each job definition gets a log group of its own', () => {
    const { stack, template } = setup();
    new WorkerJobDefinition(stack, 'Other', { image: IMAGE });
    template().resourceCountIs('AWS::Logs::LogGroup', 2);
  });

  test('runs non-privileged with a read-only root filesystem and a scratch volume at /tmp', () => {
    const props = containerProperties(setup().template());
    expect(props.Privileged).toBe(false);
    expect(props.ReadonlyRootFilesystem).toBe(true);
    expect(props.MountPoints).toEqual([{ ContainerPath: '/tmp', SourceVolume: 'scratch' }]);
    expect(props.Volumes).toEqual([{ Host: {}, Name: 'scratch' }]);
  });

  test('readonlyRootFilesystem false drops the scratch volume', () => {
    const props = containerProperties(setup({ readonlyRootFilesystem: false }).template());
    expect(props.ReadonlyRootFilesystem).toBe(false);
    expect(props.Volumes ?? []).toEqual([]);
  });

  test('job and execution roles are assumed by ECS tasks and carry no managed policy', () => {
    const { template, stack, job } = setup();
    for (const role of [job.jobRole, job.executionRole]) {
      template().hasResource('AWS::IAM::Role', Match.objectLike({
        Properties: Match.objectLike({
          AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 'ecs-tasks.amazonaws.com' } })] }),
          ManagedPolicyArns: Match.absent(),
        }),
      }));
      expect(template().findResources('AWS::IAM::Role')[logicalId(stack, role)].Properties.ManagedPolicyArns).toBeUndefined();
    }
    const props = containerProperties(template());
    expect(props.JobRoleArn).toEqual({ 'Fn::GetAtt': [logicalId(stack, job.jobRole), 'Arn'] });
    expect(props.ExecutionRoleArn).toEqual({ 'Fn::GetAtt': [logicalId(stack, job.executionRole), 'Arn'] });
  });

  test('execution role may write to the job definition log group only', () => {
    const { template, stack, job } = setup();
    expect(statementsOf(template(), stack, job.executionRole)).toEqual([{
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Effect: 'Allow',
      Resource: { 'Fn::GetAtt': [logicalId(stack, job.logGroup), 'Arn'] },
    }]);
  });

  test('job role gets no permissions without buckets', () => {
    const { template, stack, job } = setup();
    expect(statementsOf(template(), stack, job.jobRole)).toEqual([]);
  });

  test('sets no physical name and propagates submission tags', () => {
    setup().template().hasResourceProperties('AWS::Batch::JobDefinition', { JobDefinitionName: Match.absent(), PropagateTags: true });
  });

  test('uses the worker container built from containers/worker by default', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    new WorkerJobDefinition(stack, 'Worker');
    const image = containerProperties(Template.fromStack(stack)).Image;
    expect(JSON.stringify(image)).toContain('container-assets');
    const assembly = app.synth();
    const manifestFile = fs.readdirSync(assembly.directory).find((f) => f.endsWith('.assets.json'))!;
    const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, manifestFile), 'utf8'));
    const [docker] = Object.values<any>(manifest.dockerImages);
    expect(docker.source.platform).toBe('linux/amd64');
    const stagedDockerfile = fs.readFileSync(path.join(assembly.directory, docker.source.directory, 'Dockerfile'), 'utf8');
    expect(stagedDockerfile).toBe(fs.readFileSync(path.join(PACKAGE_ROOT, 'containers', 'worker', 'Dockerfile'), 'utf8'));
  });

  test('exposes the job definition, roles, log group and container', () => {
    const { job } = setup();
    expect(job.jobDefinition).toBeInstanceOf(batch.EcsJobDefinition);
    expect(job.container).toBeInstanceOf(batch.EcsEc2ContainerDefinition);
    expect(job.platform).toBe('EC2');
  });
});

describe('Fargate', () => {
  test('runs on Fargate LATEST without a public IP, x86 by default', () => {
    const { template, job } = setup({ platform: 'FARGATE' });
    template().hasResourceProperties('AWS::Batch::JobDefinition', { PlatformCapabilities: ['FARGATE'] });
    const props = containerProperties(template());
    expect(props.NetworkConfiguration).toEqual({ AssignPublicIp: 'DISABLED' });
    expect(props.FargatePlatformConfiguration).toEqual({ PlatformVersion: 'LATEST' });
    expect(props.RuntimePlatform).toEqual({ CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' });
    expect(job.container).toBeInstanceOf(batch.EcsFargateContainerDefinition);
  });

  test('architecture ARM64 runs on Graviton Fargate', () => {
    const props = containerProperties(setup({ platform: 'FARGATE', architecture: 'ARM64' }).template());
    expect(props.RuntimePlatform).toEqual({ CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
  });

  test('the scratch volume is a bind mount without a host block', () => {
    const props = containerProperties(setup({ platform: 'FARGATE' }).template());
    expect(props.Volumes).toEqual([{ Name: 'scratch' }]);
    expect(props.MountPoints).toEqual([{ ContainerPath: '/tmp', SourceVolume: 'scratch' }]);
  });

  test('ephemeralStorage sets the task storage', () => {
    const props = containerProperties(setup({ platform: 'FARGATE', ephemeralStorage: Size.gibibytes(50) }).template());
    expect(props.EphemeralStorage).toEqual({ SizeInGiB: 50 });
  });

  test('accepts the smallest and the largest Fargate sizes', () => {
    expect(() => setup({ platform: 'FARGATE', cpu: 0.25, memory: Size.mebibytes(512) })).not.toThrow();
    expect(() => setup({ platform: 'FARGATE', cpu: 16, memory: Size.mebibytes(122880) })).not.toThrow();
  });
});

describe('bucket grants', () => {
  function withBuckets(props: WorkerJobDefinitionProps = {}) {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const input = new s3.Bucket(stack, 'Input');
    const output = new s3.Bucket(stack, 'Output');
    const job = new WorkerJobDefinition(stack, 'Worker', { image: IMAGE, inputBucket: input, outputBucket: output, ...props });
    const template = Template.fromStack(stack);
    return { stack, job, template, input, output, statements: statementsOf(template, stack, job.jobRole) };
  }

  function resourcesFor(statements: Record<string, any>[], action: string): unknown[] {
    return statements.filter((s) => actionsOf([s]).includes(action)).flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]));
  }

  test('job role reads inputs under jobs/ only', () => {
    const { statements, stack, input } = withBuckets();
    expect(resourcesFor(statements, 's3:GetObject*')).toEqual([
      { 'Fn::GetAtt': [logicalId(stack, input), 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, input), 'Arn'] }, '/jobs/*']] },
    ]);
  });

  test('job role writes outputs under jobs/ only and cannot read them back', () => {
    const { statements, stack, output } = withBuckets();
    expect(resourcesFor(statements, 's3:PutObject')).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, output), 'Arn'] }, '/jobs/*']] },
    ]);
    const readable = resourcesFor(statements, 's3:GetObject*');
    expect(JSON.stringify(readable)).not.toContain(logicalId(stack, output));
  });

  test('job role cannot write inputs', () => {
    const { statements, stack, input } = withBuckets();
    expect(JSON.stringify(resourcesFor(statements, 's3:PutObject'))).not.toContain(logicalId(stack, input));
  });

  test('inputPrefix and outputPrefix scope the grants', () => {
    const { statements, stack, input, output } = withBuckets({ inputPrefix: 'in/', outputPrefix: 'out/' });
    expect(resourcesFor(statements, 's3:GetObject*')).toContainEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, input), 'Arn'] }, '/in/*']] });
    expect(resourcesFor(statements, 's3:PutObject')).toEqual([{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, output), 'Arn'] }, '/out/*']] }]);
  });

  test('allowOutputRead lets the job read back under the output prefix', () => {
    const { statements, stack, output } = withBuckets({ allowOutputRead: true });
    expect(resourcesFor(statements, 's3:GetObject*')).toContainEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack, output), 'Arn'] }, '/jobs/*']] });
  });

  test('passes the bucket names as INPUT_S3_BUCKET and OUTPUT_S3_BUCKET', () => {
    const { template, stack, input, output } = withBuckets({ environment: { OPERATION: 'count' } });
    expect(containerProperties(template).Environment).toEqual([
      { Name: 'INPUT_S3_BUCKET', Value: { Ref: logicalId(stack, input) } },
      { Name: 'OUTPUT_S3_BUCKET', Value: { Ref: logicalId(stack, output) } },
      { Name: 'OPERATION', Value: 'count' },
    ]);
  });

  test('a given jobRole receives the grants', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const role = new iam.Role(stack, 'Mine', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const job = new WorkerJobDefinition(stack, 'Worker', { image: IMAGE, jobRole: role, inputBucket: new s3.Bucket(stack, 'Input') });
    expect(job.jobRole).toBe(role);
    expect(actionsOf(statementsOf(Template.fromStack(stack), stack, role))).toContain('s3:GetObject*');
  });
});

describe('secrets', () => {
  test('injects typed secrets and lets only the execution role read them', () => {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const secret = new secretsmanager.Secret(stack, 'ApiKey');
    const job = new WorkerJobDefinition(stack, 'Worker', { image: IMAGE, secrets: { CALLBACK_API_KEY: batch.Secret.fromSecretsManager(secret) } });
    const template = Template.fromStack(stack);
    expect(containerProperties(template).Secrets).toEqual([{ Name: 'CALLBACK_API_KEY', ValueFrom: { Ref: logicalId(stack, secret) } }]);
    expect(actionsOf(statementsOf(template, stack, job.executionRole))).toContain('secretsmanager:GetSecretValue');
    expect(actionsOf(statementsOf(template, stack, job.jobRole))).not.toContain('secretsmanager:GetSecretValue');
  });
});

describe('grantSubmit', () => {
  function granted() {
    const app = new App();
    const stack = new Stack(app, 'Stack');
    const job = new WorkerJobDefinition(stack, 'Worker', { image: IMAGE });
    const queue = batch.JobQueue.fromJobQueueArn(stack, 'Queue', 'arn:aws:batch:eu-west-1:123456789012:job-queue/work');
    const submitter = new iam.Role(stack, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() });
    const grant = job.grantSubmit(submitter, queue);
    return { stack, job, grant, statements: statementsOf(Template.fromStack(stack), stack, submitter) };
  }

  test('covers every revision of the job definition (name:*) and the queue', () => {
    const { statements, stack, job } = granted();
    const submit = statements.find((s) => s.Action === 'batch:SubmitJob')!;
    const [definition, queue] = submit.Resource;
    expect(queue).toBe('arn:aws:batch:eu-west-1:123456789012:job-queue/work');
    const parts = definition['Fn::Join'][1];
    expect(parts[parts.length - 1]).toMatch(/:\*$/);
    expect(JSON.stringify(definition)).toContain(':job-definition/');
    expect(JSON.stringify(definition)).toContain(JSON.stringify({ Ref: logicalId(stack, job.jobDefinition) }));
  });

  test('strips the revision from the job definition ARN to get its name', () => {
    const { statements } = granted();
    const submit = statements.find((s) => s.Action === 'batch:SubmitJob')!;
    const name = submit.Resource[0]['Fn::Join'][1].find((p: any) => p['Fn::Select']);
    expect(name['Fn::Select'][0]).toBe(0);
    expect(name['Fn::Select'][1]['Fn::Split'][0]).toBe(':');
    expect(name['Fn::Select'][1]['Fn::Split'][1]['Fn::Select'][0]).toBe(1);
    expect(name['Fn::Select'][1]['Fn::Split'][1]['Fn::Select'][1]['Fn::Split'][0]).toBe('/');
  });

  test('allows tagging jobs only at submission', () => {
    const { statements } = granted();
    const tag = statements.find((s) => s.Action === 'batch:TagResource')!;
    expect(tag.Condition).toEqual({ StringEquals: { 'batch:CreateAction': 'SubmitJob' } });
    expect(JSON.stringify(tag.Resource)).toContain(':job/*');
  });

  test('returns a successful grant', () => {
    expect(granted().grant.success).toBe(true);
  });
});

describe('validation', () => {
  test('rejects a Fargate memory size that does not fit the cpu, naming the allowed sizes', () => {
    expectPropError(() => setup({ platform: 'FARGATE', cpu: 1, memory: Size.mebibytes(1024) }),
      'memory ("1024 MiB") is not a Fargate size for cpu 1', 'allowed: for cpu 1 on Fargate: 2048 to 8192 in steps of 1024 MiB');
  });

  test('rejects 4096 MiB with 0.25 vCPU on Fargate', () => {
    expectPropError(() => setup({ platform: 'FARGATE', cpu: 0.25, memory: Size.mebibytes(4096) }),
      'memory ("4096 MiB")', 'allowed: for cpu 0.25 on Fargate: 512, 1024, 2048 MiB');
  });

  test('rejects a Fargate memory size off the 4096 MiB steps of 8 vCPU', () => {
    expectPropError(() => setup({ platform: 'FARGATE', cpu: 8, memory: Size.mebibytes(17408) }),
      'memory ("17408 MiB")', 'allowed: for cpu 8 on Fargate: 16384 to 61440 in steps of 4096 MiB');
  });

  test('rejects a vCPU value Fargate does not offer', () => {
    expectPropError(() => setup({ platform: 'FARGATE', cpu: 3 }), 'cpu (3) is not a Fargate vCPU value', 'allowed: 0.25, 0.5, 1, 2, 4, 8, 16');
  });

  test('rejects a GPU on Fargate', () => {
    expectPropError(() => setup({ platform: 'FARGATE', gpu: 1 }), 'gpu (1) is not supported on Fargate', "allowed: unset on Fargate (no GPUs); use platform 'EC2'");
  });

  test('rejects a fractional vCPU on EC2', () => {
    expectPropError(() => setup({ cpu: 0.5 }), 'cpu (0.5)', 'allowed: a whole number >= 1');
  });

  test('rejects less than 4 MiB of memory on EC2', () => {
    expectPropError(() => setup({ memory: Size.mebibytes(2) }), 'memory ("2 MiB")', 'allowed: a whole number of MiB >= 4');
  });

  test('rejects a GPU count below 1 on EC2', () => {
    expectPropError(() => setup({ gpu: 0 }), 'gpu (0)', 'allowed: a whole number >= 1');
  });

  test('rejects environment variables that look like secrets, without echoing the value', () => {
    for (const name of ['DB_PASSWORD', 'github_token', 'CALLBACK_API_KEY', 'SIGNING_PRIVATE_KEY', 'CLIENT_SECRET']) {
      let message = '';
      try {
        setup({ environment: { [name]: 'hunter2' } });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toContain(`[${PATH}] environment.${name} ("<redacted>") looks like a secret`);
      expect(message).toContain('pass secret values through the `secrets` prop');
      expect(message).not.toContain('hunter2');
    }
  });

  test('rejects environment variables in the AWS_BATCH namespace', () => {
    expectPropError(() => setup({ environment: { AWS_BATCH_JOB_ID: 'x' } }), 'environment.AWS_BATCH_JOB_ID ("x") is reserved', 'allowed: names not starting with AWS_BATCH');
  });

  test('rejects a timeout under 60 seconds', () => {
    expectPropError(() => setup({ timeout: Duration.seconds(30) }), 'timeout ("30 seconds") is too short', 'allowed: at least 60 seconds');
  });

  test('rejects more than 10 attempts', () => {
    expectPropError(() => setup({ attempts: 11 }), 'attempts (11) is out of range', 'allowed: 1 to 10');
  });

  test('rejects more than 5 retry rules', () => {
    const six = [...RetryPresets.infrastructureOnly(), ...RetryPresets.infrastructureOnly().slice(0, 2)];
    expectPropError(() => setup({ retryStrategies: six }), 'retryStrategies ("6 rules") has too many rules', "allowed: at most 5 rules (Batch's limit)");
  });

  test('rejects ephemeralStorage on EC2', () => {
    expectPropError(() => setup({ ephemeralStorage: Size.gibibytes(50) }), 'ephemeralStorage ("50 GiB")', "allowed: unset unless platform is 'FARGATE'");
  });

  test('rejects Fargate ephemeral storage over 200 GiB', () => {
    expectPropError(() => setup({ platform: 'FARGATE', ephemeralStorage: Size.gibibytes(300) }), 'ephemeralStorage (GiB) (300) is out of range', 'allowed: 21 to 200');
  });

  test('rejects an unknown platform', () => {
    expectPropError(() => setup({ platform: 'LAMBDA' as never }), 'platform ("LAMBDA")', "allowed: 'EC2' or 'FARGATE'");
  });
});
