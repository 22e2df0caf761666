import { App, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Ec2ComputeEnvironment } from '../../../lib/compute/ec2-compute-environment';
import { FargateComputeEnvironment } from '../../../lib/compute/fargate-compute-environment';
import { WorkerJobDefinition } from '../../../lib/jobs/worker-job-definition';
import { BatchJobQueue } from '../../../lib/queue/batch-job-queue';
import { cfnLintFindings, nagFindings } from '../../support/compliance';
import { isolatedVpc } from '../../support/stacks';

/** A stack with the Batch core of this library: both EC2 environments, Fargate, queues, both job definitions. */
function buildCoreStack(app: App): Stack {
  const stack = new Stack(app, 'BatchCore');
  const vpc = isolatedVpc(stack);
  Validations.of(vpc).acknowledge({ id: 'AwsSolutions-VPC7', reason: 'Test fixture VPC; flow logs belong to BatchNetwork, tested there.' });
  const spot = new Ec2ComputeEnvironment(stack, 'Spot', { vpc });
  const onDemand = new Ec2ComputeEnvironment(stack, 'OnDemand', { vpc, capacity: 'ON_DEMAND' });
  const fargateSpot = new FargateComputeEnvironment(stack, 'FargateSpot', { vpc, spot: true });
  const fargate = new FargateComputeEnvironment(stack, 'Fargate', { vpc });
  const queue = new BatchJobQueue(stack, 'Queue', { computeEnvironments: [spot, onDemand] });
  new BatchJobQueue(stack, 'FargateQueue', {
    computeEnvironments: [fargateSpot, fargate],
    fairShare: { shares: [{ shareIdentifier: 'tenantA', weightFactor: 0.5 }] },
  });
  const staging = new s3.Bucket(stack, 'Staging', {
    enforceSSL: true,
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
  });
  Validations.of(staging).acknowledge({ id: 'AwsSolutions-S1', reason: 'Test fixture bucket; access logs belong to StagingBuckets, tested there.' });
  const ec2Job = new WorkerJobDefinition(stack, 'Ec2Worker', { inputBucket: staging, outputBucket: staging });
  new WorkerJobDefinition(stack, 'FargateWorker', {
    platform: 'FARGATE',
    architecture: 'ARM64',
    inputBucket: staging,
    outputBucket: staging,
    allowOutputRead: true,
  });
  const submitter = new iam.Role(stack, 'Submitter', { assumedBy: new iam.AccountRootPrincipal() });
  ec2Job.grantSubmit(submitter, queue.jobQueue);
  return stack;
}

test('cdk-nag AwsSolutions reports no unacknowledged finding on the Batch core constructs', () => {
  const app = new App();
  buildCoreStack(app);
  expect(nagFindings(app)).toEqual([]);
});

test('cfn-lint reports nothing on a template of the Batch core constructs', () => {
  const app = new App();
  const stack = buildCoreStack(app);
  expect(cfnLintFindings(app.synth().getStackByName(stack.stackName).template)).toBe('');
});
