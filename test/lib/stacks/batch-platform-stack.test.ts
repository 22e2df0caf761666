import { STACK_OUTPUT_KEYS } from '../../../lib/client';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { BatchPlatformStack } from '../../../lib/stacks/batch-platform-stack';
import { addPlatformStacks, PlatformStacks } from '../../../lib/stacks/platform-app';
import { STAGES } from '../../../lib/stacks/stage-config';
import { appWithCdkJson } from '../../support/app';

// Synthesizing a stage bundles every Lambda: each stage is built once and shared by the tests.
const built = new Map<string, PlatformStacks>();
function stacksFor(stage: 'dev' | 'prod'): PlatformStacks {
  if (!built.has(stage)) built.set(stage, addPlatformStacks(appWithCdkJson({ stage }), STAGES[stage]));
  return built.get(stage)!;
}
function platformFor(stage: 'dev' | 'prod'): BatchPlatformStack {
  return stacksFor(stage).platform;
}

describe('BatchPlatformStack', () => {
  const dev = platformFor('dev');
  const devTemplate = Template.fromStack(dev);
  const prodTemplate = Template.fromStack(platformFor('prod'));

  test('is named BatchPlatform-<stage>', () => {
    expect(dev.stackName).toBe('BatchPlatform-dev');
    expect(platformFor('prod').stackName).toBe('BatchPlatform-prod');
  });

  test('the EC2 queue tries Spot first and falls back to On-Demand', () => {
    const ces = devTemplate.findResources('AWS::Batch::ComputeEnvironment');
    const spotId = Object.keys(ces).find((id) => ces[id].Properties.ComputeResources?.Type === 'SPOT');
    const onDemandId = Object.keys(ces).find((id) => ces[id].Properties.ComputeResources?.Type === 'EC2');
    expect(spotId).toBeDefined();
    expect(onDemandId).toBeDefined();
    devTemplate.hasResourceProperties('AWS::Batch::JobQueue', {
      ComputeEnvironmentOrder: [
        { ComputeEnvironment: { 'Fn::GetAtt': [spotId, 'ComputeEnvironmentArn'] }, Order: 1 },
        { ComputeEnvironment: { 'Fn::GetAtt': [onDemandId, 'ComputeEnvironmentArn'] }, Order: 2 },
      ],
    });
  });

  test('compute environments are sized by the stage', () => {
    devTemplate.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ Type: 'SPOT', MaxvCpus: STAGES.dev.maxvCpus, MinvCpus: 0 }),
    });
    prodTemplate.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ Type: 'SPOT', MaxvCpus: STAGES.prod.maxvCpus }),
    });
  });

  test('prod has no NAT gateway: Batch reaches AWS through VPC endpoints', () => {
    prodTemplate.resourceCountIs('AWS::EC2::NatGateway', 0);
    prodTemplate.resourceCountIs('AWS::EC2::VPCEndpoint', 10);
  });

  test("dev's one NAT gateway (egress for photo bundles) leaves the platform's own Batch subnets isolated", () => {
    devTemplate.resourceCountIs('AWS::EC2::NatGateway', 1);
    devTemplate.resourceCountIs('AWS::EC2::VPCEndpoint', 7);
    const natTables = Object.values(devTemplate.findResources('AWS::EC2::Route', { Properties: { NatGatewayId: Match.anyValue() } })).map(
      (r) => (r.Properties.RouteTableId as { Ref: string }).Ref,
    );
    const batchSubnets = dev.network.vpc.selectSubnets(dev.network.subnetSelection).subnets;
    expect(batchSubnets.length).toBeGreaterThan(0);
    for (const subnet of batchSubnets) {
      expect(natTables).not.toContain(dev.getLogicalId(subnet.node.findChild('RouteTable') as never));
    }
    expect(natTables).toHaveLength(dev.network.vpc.selectSubnets(dev.network.egressSubnetSelection!).subnets.length);
  });

  test('a Fargate queue with Fargate Spot first and its own job definition', () => {
    devTemplate.resourceCountIs('AWS::Batch::JobQueue', 2);
    devTemplate.hasResourceProperties('AWS::Batch::JobDefinition', { PlatformCapabilities: ['FARGATE'] });
    devTemplate.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ Type: 'FARGATE_SPOT' }),
    });
  });

  test('prod retains its buckets; dev deletes them with the stack', () => {
    const retained = Object.values(prodTemplate.findResources('AWS::S3::Bucket')).map((b) => b.DeletionPolicy);
    const deleted = Object.values(devTemplate.findResources('AWS::S3::Bucket')).map((b) => b.DeletionPolicy);
    expect(new Set(retained)).toEqual(new Set(['Retain']));
    expect(new Set(deleted)).toEqual(new Set(['Delete']));
  });

  test('prod adds the SSM endpoints; dev does not', () => {
    prodTemplate.resourceCountIs('AWS::EC2::VPCEndpoint', 10);
  });

  test('exports the outputs batchctl --stack reads', () => {
    const outputs = Object.keys(devTemplate.findOutputs('*'));
    expect(outputs).toEqual(
      expect.arrayContaining([
        'JobQueueArn', 'JobDefinitionArn', 'FargateJobQueueArn', 'FargateJobDefinitionArn', 'InputBucketName', 'OutputBucketName',
        'SubmitApiUrl', 'NotificationTopicArn', 'WebhookUrl', 'OperationsTopicArn',
      ]),
    );
  });

  test('no stage schedules a job on the platform stack: the nightly road-defect job lives in RoadMetrics-<stage>', () => {
    // The old prod schedule read inputs/road-defects/latest.jsonl, which nothing writes.
    expect(STAGES.prod.schedules).toEqual([]);
    expect(STAGES.dev.schedules).toEqual([]);
    prodTemplate.resourceCountIs('AWS::Scheduler::Schedule', 0);
    devTemplate.resourceCountIs('AWS::Scheduler::Schedule', 0);
  });

  test('the worker may read back its own checkpoints in the output bucket', () => {
    devTemplate.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['s3:GetObject*', 's3:PutObject']), Effect: 'Allow' }),
        ]),
      },
      Roles: Match.arrayWith([{ Ref: Match.stringLikeRegexp('^WorkerJobJobRole') }]),
    });
  });

  test('worker images live in repositories of our own, one per image, retained or destroyed with the stage', () => {
    for (const [stage, template, deletion, kept] of [['dev', devTemplate, 'Delete', 5], ['prod', prodTemplate, 'Retain', 10]] as const) {
      const stack = platformFor(stage);
      const repositories = template.findResources('AWS::ECR::Repository');
      expect(Object.keys(repositories).sort()).toEqual([
        stack.getLogicalId(stack.ocrImage!.repository.node.defaultChild as never),
        stack.getLogicalId(stack.workerImage.repository.node.defaultChild as never),
      ].sort());
      for (const repository of Object.values(repositories)) {
        expect(repository.DeletionPolicy).toBe(deletion);
        expect(repository.Properties).toMatchObject({ ImageScanningConfiguration: { ScanOnPush: true }, ImageTagMutability: 'IMMUTABLE' });
        expect(JSON.parse(repository.Properties.LifecyclePolicy.LifecyclePolicyText).rules[1].selection.countNumber).toBe(kept);
      }
    }
    expect(platformFor('dev').ocrImage!.target).toBe('ocr');
    expect(platformFor('dev').workerImage.target).toBeUndefined();
  });

  test('every job definition runs an image of our repositories, by its immutable tag', () => {
    const images = [dev.workerImage, dev.ocrImage!];
    const expected: Record<string, (typeof images)[number]> = {
      [dev.getLogicalId(dev.jobDefinition.jobDefinition.node.defaultChild as never)]: dev.workerImage,
      [dev.getLogicalId(dev.fargateJobDefinition!.jobDefinition.node.defaultChild as never)]: dev.workerImage,
      [dev.getLogicalId(dev.ocrJobDefinition!.jobDefinition.node.defaultChild as never)]: dev.ocrImage!,
      [dev.getLogicalId(dev.chunkJobDefinition.jobDefinition.node.defaultChild as never)]: dev.workerImage,
    };
    const definitions = devTemplate.findResources('AWS::Batch::JobDefinition');
    expect(Object.keys(definitions).sort()).toEqual(Object.keys(expected).sort());
    for (const [id, definition] of Object.entries(definitions)) {
      const image = JSON.stringify(definition.Properties.ContainerProperties.Image);
      const repositoryId = dev.getLogicalId(expected[id].repository.node.defaultChild as never);
      expect({ id, image }).toEqual({ id, image: expect.stringContaining(`{"Ref":"${repositoryId}"}`) });
      expect(image).toContain(`:${expected[id].tag}`);
      expect(image).not.toContain('container-assets');
    }
    expect(dev.ocrImage!.tag).not.toBe(dev.workerImage.tag);
  });

  test('every Lambda and dead-letter queue has an alarm', () => {
    const functions = Object.keys(devTemplate.findResources('AWS::Lambda::Function'));
    const alarms = Object.values(devTemplate.findResources('AWS::CloudWatch::Alarm'));
    const watchedFunctions = alarms
      .filter((a) => a.Properties.MetricName === 'Errors')
      .map((a) => a.Properties.Dimensions[0].Value.Ref);
    // CDK's own singleton Lambdas (custom-resource providers) are not ours to alarm on.
    // cdk-ecr-deployment's copy Lambda runs only inside deployments: a failure fails the deployment.
    const ours = functions.filter((id) => !/^(AWS|CustomS3AutoDeleteObjects|CustomCDKECRDeployment|LogRetention)/.test(id));
    expect(new Set(watchedFunctions)).toEqual(new Set(ours));
    const queues = Object.entries(devTemplate.findResources('AWS::SQS::Queue'))
      .filter(([, q]) => q.Properties.RedrivePolicy === undefined)
      .map(([id]) => id);
    const watchedQueues = alarms
      .filter((a) => a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible')
      .map((a) => a.Properties.Dimensions[0].Value['Fn::GetAtt'][0]);
    expect(new Set(watchedQueues)).toEqual(new Set(queues));
  });

  test('matches the snapshot (asset hashes masked)', () => {
    expect(devTemplate.toJSON()).toMatchSnapshot();
  });
});

describe('ChunkedProcessingStack of a stage', () => {
  const { platform, workflow } = stacksFor('dev');
  const template = Template.fromStack(workflow);

  test('is named ChunkedProcessing-<stage> and deploys after the platform it uses', () => {
    expect(workflow.stackName).toBe('ChunkedProcessing-dev');
    expect(workflow.dependencies).toContain(platform);
  });

  test('submits Batch chunks to the platform queue and job definition only', () => {
    const json = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(json).toContain('batch:SubmitJob');
    expect(json).toMatch(/Fn::ImportValue.*JobQueue/);
    expect(json).not.toMatch(/"Action":"batch:SubmitJob","Effect":"Allow","Resource":"\*"/);
  });

  test('alarms on every workflow Lambda, failed runs and the summary DLQ, to the operations topic', () => {
    const functions = Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) => !/^(AWS|LogRetention)/.test(id));
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    const watched = alarms.filter((a) => a.Properties.MetricName === 'Errors').map((a) => a.Properties.Dimensions[0].Value.Ref);
    expect(new Set(watched)).toEqual(new Set(functions));
    expect(alarms.map((a) => a.Properties.MetricName)).toEqual(expect.arrayContaining(['ExecutionsFailed', 'ApproximateNumberOfMessagesVisible']));
    for (const a of alarms) {
      expect(JSON.stringify(a.Properties.AlarmActions)).toMatch(/Fn::ImportValue.*OperationsTopic/);
    }
  });

  test('outputs the state machine under the key `batchctl runs --stack` reads; the runs bucket is the platform\'s OutputBucketName (no re-exported import, cfn-lint W6001)', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.StateMachineArn.Value).toEqual({ Ref: expect.stringMatching(/^WorkflowStateMachine/) });
    expect(outputs.RunsBucketName).toBeUndefined();
    // The workflow's work bucket is the platform's output bucket, which the platform stack outputs.
    expect(JSON.stringify(template.toJSON())).toContain(`BatchPlatform-dev:ExportsOutputRef${platform.getLogicalId(platform.buckets.outputBucket.node.defaultChild as never)}`);
    expect(Template.fromStack(platform).toJSON().Outputs.OutputBucketName).toBeDefined();
    expect(STACK_OUTPUT_KEYS).toMatchObject({ OutputBucketName: 'outputBucket', StateMachineArn: 'stateMachineArn' });
  });

  test('matches the snapshot (asset hashes masked)', () => {
    expect(template.toJSON()).toMatchSnapshot();
  });
});
