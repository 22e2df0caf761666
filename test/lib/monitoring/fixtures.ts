import { App, Size, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { Construct } from 'constructs';

export const ENV = { account: '123456789012', region: 'eu-central-1' };

/** A dummy queue + job definition built with the aws-cdk-lib Batch L2, standing in for the platform's. */
export class BatchFixture extends Construct {
  public readonly queue: batch.JobQueue;
  public readonly secondQueue: batch.JobQueue;
  public readonly jobDefinition: batch.EcsJobDefinition;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-central-1a', 'eu-central-1b'],
      privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    });
    const ce = new batch.FargateComputeEnvironment(this, 'Compute', { vpc, maxvCpus: 16 });
    this.queue = new batch.JobQueue(this, 'Queue', { computeEnvironments: [{ computeEnvironment: ce, order: 1 }] });
    this.secondQueue = new batch.JobQueue(this, 'SecondQueue', { computeEnvironments: [{ computeEnvironment: ce, order: 1 }] });
    this.jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      container: new batch.EcsFargateContainerDefinition(this, 'Container', {
        image: ecs.ContainerImage.fromRegistry('public.ecr.aws/amazonlinux/amazonlinux:2023'),
        cpu: 1,
        memory: Size.gibibytes(2),
      }),
    });
  }
}

export function fixtureStack(): { app: App; stack: Stack; fx: BatchFixture } {
  const app = new App();
  const stack = new Stack(app, 'TestStack', { env: ENV });
  const fx = new BatchFixture(stack, 'Fixture');
  return { app, stack, fx };
}
