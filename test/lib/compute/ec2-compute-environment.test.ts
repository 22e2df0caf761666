import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Ec2ComputeEnvironment, Ec2ComputeEnvironmentProps } from '../../../lib/compute/ec2-compute-environment';
import { expectPropErrorAt, stackWithVpc } from '../../support/stacks';

const PATH = 'Stack/Compute';

function setup(props: Partial<Ec2ComputeEnvironmentProps> = {}): { stack: Stack; env: Ec2ComputeEnvironment; template: () => Template } {
  const { stack, vpc } = stackWithVpc();
  const env = new Ec2ComputeEnvironment(stack, 'Compute', { vpc, ...props });
  return { stack, env, template: () => Template.fromStack(stack) };
}

function build(props: Partial<Ec2ComputeEnvironmentProps>): () => unknown {
  return () => setup(props);
}

const expectPropError = (fn: () => unknown, ...parts: string[]): void => expectPropErrorAt(PATH, fn, ...parts);

function computeResources(template: Template): Record<string, unknown> {
  const [resource] = Object.values(template.findResources('AWS::Batch::ComputeEnvironment'));
  return resource.Properties.ComputeResources;
}

describe('defaults', () => {
  test('uses Spot capacity with SPOT_PRICE_CAPACITY_OPTIMIZED', () => {
    const { template, env } = setup();
    template().hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ Type: 'SPOT', AllocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED' }),
    });
    expect(env.capacity).toBe('SPOT');
  });

  test('On-Demand capacity uses EC2 instances with BEST_FIT_PROGRESSIVE', () => {
    const { template } = setup({ capacity: 'ON_DEMAND' });
    template().hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ Type: 'EC2', AllocationStrategy: 'BEST_FIT_PROGRESSIVE' }),
    });
  });

  test('launches the x86 general families and never the implicit optimal class', () => {
    const { template, env } = setup();
    expect(computeResources(template()).InstanceTypes).toEqual(['c6i', 'm6i', 'r6i', 'c7i', 'm7i']);
    expect(env.architecture).toBe('X86_64');
  });

  test('ARM64 architecture launches the Graviton general families', () => {
    const { template } = setup({ architecture: 'ARM64' });
    expect(computeResources(template()).InstanceTypes).toEqual(['c7g', 'm7g', 'r7g']);
  });

  test('network-optimised preset launches the n families of the architecture', () => {
    expect(computeResources(setup({ preset: 'NETWORK_OPTIMIZED' }).template()).InstanceTypes).toEqual(['c5n', 'm5n', 'c6in', 'm6in', 'r6in']);
    expect(computeResources(setup({ preset: 'NETWORK_OPTIMIZED', architecture: 'ARM64' }).template()).InstanceTypes).toEqual(['c6gn', 'c7gn']);
  });

  test('runs the AL2023 ECS AMI', () => {
    const { template, env } = setup();
    expect(computeResources(template()).Ec2Configuration).toEqual([{ ImageType: 'ECS_AL2023' }]);
    expect(env.gpu).toBe(false);
  });

  test('GPU preset launches NVIDIA families on the AL2023 NVIDIA AMI', () => {
    const { template, env } = setup({ preset: 'GPU' });
    const resources = computeResources(template());
    expect(resources.Ec2Configuration).toEqual([{ ImageType: 'ECS_AL2023_NVIDIA' }]);
    expect(resources.InstanceTypes).toEqual(['g5', 'g6', 'g6e', 'p4d']);
    expect(env.gpu).toBe(true);
  });

  test('explicit GPU instance types switch the AMI to AL2023 NVIDIA', () => {
    const { template } = setup({ instanceTypes: [new ec2.InstanceType('g5.2xlarge')] });
    const resources = computeResources(template());
    expect(resources.Ec2Configuration).toEqual([{ ImageType: 'ECS_AL2023_NVIDIA' }]);
    expect(resources.InstanceTypes).toEqual(['g5.2xlarge']);
  });

  test('takes the architecture from explicit instance types', () => {
    const { env } = setup({ instanceTypes: [new ec2.InstanceType('m7g.large'), new ec2.InstanceType('c7g.xlarge')] });
    expect(env.architecture).toBe('ARM64');
  });

  test('scales from 0 to 256 vCPUs', () => {
    const resources = computeResources(setup().template());
    expect(resources.MinvCpus).toBe(0);
    expect(resources.MaxvCpus).toBe(256);
  });

  test('sets no physical name', () => {
    setup().template().hasResourceProperties('AWS::Batch::ComputeEnvironment', { ComputeEnvironmentName: Match.absent() });
  });

  test('updates in place to the latest AMI without terminating running jobs', () => {
    setup().template().hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ReplaceComputeEnvironment: false,
      ComputeResources: Match.objectLike({ UpdateToLatestImageVersion: true }),
      UpdatePolicy: { TerminateJobsOnUpdate: false },
    });
  });

  test('launch template requires IMDSv2 with hop limit 1 so containers cannot reach IMDS', () => {
    setup().template().hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: { HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
      }),
    });
  });

  test('allowContainerImdsAccess raises the hop limit to 2', () => {
    setup({ allowContainerImdsAccess: true }).template().hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ MetadataOptions: Match.objectLike({ HttpPutResponseHopLimit: 2, HttpTokens: 'required' }) }),
    });
  });

  test('launch template has an encrypted 50 GiB gp3 root volume', () => {
    setup().template().hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        BlockDeviceMappings: [{
          DeviceName: '/dev/xvda',
          Ebs: { Encrypted: true, VolumeSize: 50, VolumeType: 'gp3', DeleteOnTermination: true },
        }],
      }),
    });
  });

  test('rootVolumeSizeGiB sets the root volume size', () => {
    setup({ rootVolumeSizeGiB: 200 }).template().hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({ BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ VolumeSize: 200 }) })] }),
    });
  });

  test('pins the launch template latest version number in the environment', () => {
    const { template, stack, env } = setup();
    const templateId = stack.getLogicalId(env.launchTemplate.node.defaultChild as ec2.CfnLaunchTemplate);
    expect(computeResources(template()).LaunchTemplate).toEqual({
      LaunchTemplateId: { Ref: templateId },
      Version: { 'Fn::GetAtt': [templateId, 'LatestVersionNumber'] },
    });
  });

  test('instance role only has the ECS-for-EC2 managed policy', () => {
    const { template, stack, env } = setup();
    const roleId = stack.getLogicalId(env.instanceRole.node.defaultChild as iam.CfnRole);
    template().hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })] }),
      ManagedPolicyArns: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role']] }],
    });
    expect(Object.keys(template().findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }))).toEqual([]);
  });

  test('passes the given subnets and security groups through', () => {
    const { stack, vpc } = stackWithVpc();
    const sg = new ec2.SecurityGroup(stack, 'Sg', { vpc });
    new Ec2ComputeEnvironment(stack, 'Compute', { vpc, securityGroups: [sg], vpcSubnets: { subnets: [vpc.isolatedSubnets[0]] } });
    const resources = computeResources(Template.fromStack(stack));
    expect(resources.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [stack.getLogicalId(sg.node.defaultChild as ec2.CfnSecurityGroup), 'GroupId'] }]);
    expect(resources.Subnets).toEqual([{ Ref: stack.getLogicalId(vpc.isolatedSubnets[0].node.defaultChild as ec2.CfnSubnet) }]);
  });

  test('spotBidPercentage is passed to Spot environments', () => {
    setup({ spotBidPercentage: 60 }).template().hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ BidPercentage: 60 }),
    });
  });

  test('exposes the L2 compute environment', () => {
    const { env } = setup({ maxvCpus: 64 });
    expect(env.computeEnvironment).toBeInstanceOf(batch.ManagedEc2EcsComputeEnvironment);
    expect(env.computeEnvironment.maxvCpus).toBe(64);
  });
});

describe('validation', () => {
  test('rejects maxvCpus below minvCpus', () => {
    expectPropError(build({ minvCpus: 16, maxvCpus: 8 }), 'maxvCpus (8) is less than minvCpus (16)', 'allowed: a whole number >= minvCpus (16)');
  });

  test('rejects maxvCpus of 0', () => {
    expectPropError(build({ maxvCpus: 0 }), 'maxvCpus (0)', 'allowed: a whole number >= 1');
  });

  test('rejects negative minvCpus', () => {
    expectPropError(build({ minvCpus: -1 }), 'minvCpus (-1)', 'allowed: a whole number >= 0');
  });

  test('rejects x86 and ARM instance types mixed, naming the offending types', () => {
    expectPropError(build({ instanceTypes: [new ec2.InstanceType('c6i.large'), new ec2.InstanceType('m7g.large')] }),
      'instanceTypes (["c6i.large", "m7g.large"]) mixes X86_64 (c6i.large) and ARM64 (m7g.large)',
      'allowed: instance types of one architecture (all X86_64 or all ARM64)');
  });

  test('rejects instance types of another architecture than the architecture prop', () => {
    expectPropError(build({ architecture: 'ARM64', instanceTypes: [new ec2.InstanceType('c6i.large')] }),
      'instanceTypes (["c6i.large"]) are X86_64, but architecture is ARM64', 'allowed: ARM64 instance types');
  });

  test('rejects preset together with instanceTypes', () => {
    expectPropError(build({ preset: 'GENERAL', instanceTypes: [new ec2.InstanceType('c6i.large')] }),
      'preset ("GENERAL") conflicts with instanceTypes', 'allowed: either preset, or instanceTypes / instanceClasses, not both');
  });

  test('rejects an empty instanceTypes list', () => {
    expectPropError(build({ instanceTypes: [] }), 'instanceTypes ([]) is empty', 'allowed: at least one entry');
  });

  test('rejects the GPU preset on ARM64', () => {
    expectPropError(build({ preset: 'GPU', architecture: 'ARM64' }), 'preset ("GPU") has no ARM64 families', "allowed: architecture 'X86_64' with preset 'GPU'");
  });

  test('rejects GPU families the AL2023 NVIDIA AMI does not support', () => {
    expectPropError(build({ instanceTypes: [new ec2.InstanceType('p3.2xlarge')] }),
      'instanceTypes (["p3.2xlarge"]) contains p3.2xlarge', 'allowed: GPU families supported by the AL2023 NVIDIA AMI');
  });

  test('rejects spotBidPercentage on On-Demand capacity', () => {
    expectPropError(build({ capacity: 'ON_DEMAND', spotBidPercentage: 50 }), 'spotBidPercentage (50) only applies to Spot', "allowed: unset when capacity is 'ON_DEMAND'");
  });

  test('rejects spotBidPercentage outside 1 to 100', () => {
    expectPropError(build({ spotBidPercentage: 0 }), 'spotBidPercentage (0) is out of range', 'allowed: 1 to 100');
    expectPropError(build({ spotBidPercentage: 101 }), 'spotBidPercentage (101) is out of range', 'allowed: 1 to 100');
  });

  test('rejects the BEST_FIT allocation strategy, which cannot be updated in place', () => {
    expectPropError(build({ allocationStrategy: batch.AllocationStrategy.BEST_FIT }),
      'allocationStrategy ("BEST_FIT") cannot be updated in place', 'allowed: SPOT_PRICE_CAPACITY_OPTIMIZED, SPOT_CAPACITY_OPTIMIZED, BEST_FIT_PROGRESSIVE');
  });

  test('rejects a Spot allocation strategy on On-Demand capacity', () => {
    expectPropError(build({ capacity: 'ON_DEMAND', allocationStrategy: batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED }),
      "allocationStrategy (\"SPOT_PRICE_CAPACITY_OPTIMIZED\") needs capacity 'SPOT'", 'allowed: BEST_FIT_PROGRESSIVE');
  });

  test('rejects a root volume smaller than the AMI snapshot', () => {
    expectPropError(build({ rootVolumeSizeGiB: 20 }), 'rootVolumeSizeGiB (20) is out of range', 'allowed: 30 to 16384');
  });

  test('rejects an unknown capacity', () => {
    expectPropError(build({ capacity: 'RESERVED' as never }), 'capacity ("RESERVED")', "allowed: 'SPOT' or 'ON_DEMAND'");
  });
});
