import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { FargateComputeEnvironment, FargateComputeEnvironmentProps } from '../../../lib/compute/fargate-compute-environment';
import { expectPropErrorAt, stackWithVpc } from '../../support/stacks';

const PATH = 'Stack/Fargate';

function setup(props: Partial<FargateComputeEnvironmentProps> = {}): { env: FargateComputeEnvironment; template: () => Template } {
  const { stack, vpc } = stackWithVpc();
  const env = new FargateComputeEnvironment(stack, 'Fargate', { vpc, ...props });
  return { env, template: () => Template.fromStack(stack) };
}

const expectPropError = (fn: () => unknown, ...parts: string[]): void => expectPropErrorAt(PATH, fn, ...parts);

test('runs on regular Fargate by default', () => {
  const { env, template } = setup();
  template().hasResourceProperties('AWS::Batch::ComputeEnvironment', { ComputeResources: Match.objectLike({ Type: 'FARGATE' }) });
  expect(env.spot).toBe(false);
});

test('spot runs on Fargate Spot', () => {
  const { env, template } = setup({ spot: true });
  template().hasResourceProperties('AWS::Batch::ComputeEnvironment', { ComputeResources: Match.objectLike({ Type: 'FARGATE_SPOT' }) });
  expect(env.spot).toBe(true);
});

test('scales to 256 vCPUs by default', () => {
  setup().template().hasResourceProperties('AWS::Batch::ComputeEnvironment', { ComputeResources: Match.objectLike({ MaxvCpus: 256 }) });
});

test('maxvCpus sets the ceiling', () => {
  setup({ maxvCpus: 32 }).template().hasResourceProperties('AWS::Batch::ComputeEnvironment', { ComputeResources: Match.objectLike({ MaxvCpus: 32 }) });
});

test('sets no physical name and updates in place', () => {
  setup().template().hasResourceProperties('AWS::Batch::ComputeEnvironment', {
    ComputeEnvironmentName: Match.absent(),
    ReplaceComputeEnvironment: false,
  });
});

test('rejects a GPU on Fargate', () => {
  expectPropError(() => setup({ gpu: 1 }), 'gpu (1) is not supported: Fargate has no GPUs', 'allowed: unset on Fargate; use Ec2ComputeEnvironment with preset GPU');
});

test('rejects instance types on Fargate', () => {
  expectPropError(() => setup({ instanceTypes: [new ec2.InstanceType('g5.xlarge')] }),
    'instanceTypes (["g5.xlarge"]) is not supported', 'allowed: unset on Fargate; use Ec2ComputeEnvironment');
});

test('rejects maxvCpus of 0', () => {
  expectPropError(() => setup({ maxvCpus: 0 }), 'maxvCpus (0)', 'allowed: a whole number >= 1');
});
