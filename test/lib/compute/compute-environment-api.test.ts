import { Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Ec2ComputeEnvironment } from '../../../lib/compute/ec2-compute-environment';
import { FargateComputeEnvironment } from '../../../lib/compute/fargate-compute-environment';
import { expectPropErrorAt, stackWithVpc } from '../../support/stacks';

describe('compute environments fit aws-cdk-lib', () => {
  test('an Ec2ComputeEnvironment is accepted by aws-cdk-lib batch.JobQueue as an IComputeEnvironment', () => {
    const { stack, vpc } = stackWithVpc();
    const ce: batch.IComputeEnvironment = new Ec2ComputeEnvironment(stack, 'Compute', { vpc });
    new batch.JobQueue(stack, 'Queue', { computeEnvironments: [{ computeEnvironment: ce, order: 1 }] });
    Template.fromStack(stack).hasResourceProperties('AWS::Batch::JobQueue', {
      ComputeEnvironmentOrder: [{ ComputeEnvironment: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Compute'), 'ComputeEnvironmentArn'] }, Order: 1 }],
    });
  });

  test('a FargateComputeEnvironment is accepted by aws-cdk-lib batch.JobQueue as an IComputeEnvironment', () => {
    const { stack, vpc } = stackWithVpc();
    const ce: batch.IComputeEnvironment = new FargateComputeEnvironment(stack, 'Fargate', { vpc });
    new batch.JobQueue(stack, 'Queue', { computeEnvironments: [{ computeEnvironment: ce, order: 1 }] });
    Template.fromStack(stack).hasResourceProperties('AWS::Batch::JobQueue', {
      ComputeEnvironmentOrder: [{ ComputeEnvironment: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Fargate'), 'ComputeEnvironmentArn'] }, Order: 1 }],
    });
  });

  test('connections of an Ec2ComputeEnvironment are its security groups (ec2.IConnectable)', () => {
    const { stack, vpc } = stackWithVpc();
    const sg = new ec2.SecurityGroup(stack, 'Sg', { vpc });
    const ce = new Ec2ComputeEnvironment(stack, 'Compute', { vpc, securityGroups: [sg] });
    expect(ce.connections.securityGroups).toEqual([sg]);
  });
});

describe('Ec2ComputeEnvironment instance selection', () => {
  test("instanceTypes accepts a family without a size, as the JSDoc shows: new ec2.InstanceType('c6i')", () => {
    const { stack, vpc } = stackWithVpc();
    new Ec2ComputeEnvironment(stack, 'Compute', { vpc, instanceTypes: [new ec2.InstanceType('c6i')] });
    Template.fromStack(stack).hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ InstanceTypes: ['c6i'] }),
    });
  });

  test('a family of Graviton (m7g) given as instanceTypes sets the architecture to ARM64', () => {
    const { stack, vpc } = stackWithVpc();
    const ce = new Ec2ComputeEnvironment(stack, 'Compute', { vpc, instanceTypes: [new ec2.InstanceType('m7g')] });
    expect(ce.architecture).toBe('ARM64');
  });

  test('instanceClasses replaces the preset with the given families', () => {
    const { stack, vpc } = stackWithVpc();
    new Ec2ComputeEnvironment(stack, 'Compute', { vpc, instanceClasses: [ec2.InstanceClass.C6I, ec2.InstanceClass.M6I] });
    Template.fromStack(stack).hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ InstanceTypes: ['c6i', 'm6i'] }),
    });
  });

  test('instanceTypes and instanceClasses together give Batch the union', () => {
    const { stack, vpc } = stackWithVpc();
    new Ec2ComputeEnvironment(stack, 'Compute', {
      vpc,
      instanceTypes: [ec2.InstanceType.of(ec2.InstanceClass.R6I, ec2.InstanceSize.XLARGE2)],
      instanceClasses: [ec2.InstanceClass.C6I],
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({ InstanceTypes: Match.arrayWith(['r6i.2xlarge', 'c6i']) }),
    });
  });

  test('instanceTypes and instanceClasses of different architectures are refused', () => {
    const { stack, vpc } = stackWithVpc();
    expectPropErrorAt('Stack/Compute', () => new Ec2ComputeEnvironment(stack, 'Compute', {
      vpc, instanceTypes: [new ec2.InstanceType('c6i.large')], instanceClasses: [ec2.InstanceClass.M7G],
    }), 'instanceTypes + instanceClasses', 'mixes X86_64 (c6i.large) and ARM64 (m7g)');
  });

  test('preset together with instanceClasses is refused, as the preset JSDoc says', () => {
    const { stack, vpc } = stackWithVpc();
    expectPropErrorAt('Stack/Compute', () => new Ec2ComputeEnvironment(stack, 'Compute', {
      vpc, preset: 'GENERAL', instanceClasses: [ec2.InstanceClass.C6I],
    }), 'preset ("GENERAL") conflicts with instanceClasses', 'either preset, or instanceTypes / instanceClasses, not both');
  });

  test('an empty instanceClasses list is refused', () => {
    const { stack, vpc } = stackWithVpc();
    expectPropErrorAt('Stack/Compute', () => new Ec2ComputeEnvironment(stack, 'Compute', { vpc, instanceClasses: [] }),
      'instanceClasses ([]) is empty');
  });
});

describe('subnet selection of compute environments', () => {
  test('vpcSubnets with an empty subnets list is refused instead of emitting Subnets: []', () => {
    const { stack, vpc } = stackWithVpc();
    expectPropErrorAt('Stack/Compute', () => new Ec2ComputeEnvironment(stack, 'Compute', { vpc, vpcSubnets: { subnets: [] } }),
      'vpcSubnets.subnets ([]) is empty', "allowed: at least one subnet, or leave vpcSubnets unset");
  });

  test('vpcSubnets naming a subnet group the VPC lacks is refused with the groups it has', () => {
    const { stack, vpc } = stackWithVpc();
    expectPropErrorAt('Stack/Fargate', () => new FargateComputeEnvironment(stack, 'Fargate', { vpc, vpcSubnets: { subnetGroupName: 'Batch' } }),
      'vpcSubnets ({"subnetGroupName":"Batch"}) selects no subnet', 'Available names: private');
  });

  test('vpcSubnets of a Fargate environment with an empty subnets list is refused', () => {
    const { stack, vpc } = stackWithVpc();
    expectPropErrorAt('Stack/Fargate', () => new FargateComputeEnvironment(stack, 'Fargate', { vpc, vpcSubnets: { subnets: [] } }),
      'vpcSubnets.subnets ([]) is empty');
  });

  test('a valid subnet group is accepted', () => {
    const { stack, vpc } = stackWithVpc();
    expect(() => new Ec2ComputeEnvironment(stack, 'Compute', { vpc, vpcSubnets: { subnetGroupName: 'private' } })).not.toThrow();
  });
});
