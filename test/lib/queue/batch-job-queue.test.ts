import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Ec2ComputeEnvironment } from '../../../lib/compute/ec2-compute-environment';
import { FargateComputeEnvironment } from '../../../lib/compute/fargate-compute-environment';
import { BatchJobQueue, BatchJobQueueProps } from '../../../lib/queue/batch-job-queue';
import { expectPropErrorAt, stackWithVpc } from '../../support/stacks';

const PATH = 'Stack/Queue';

interface Fixture {
  stack: Stack;
  spot: Ec2ComputeEnvironment;
  onDemand: Ec2ComputeEnvironment;
  fargate: FargateComputeEnvironment;
  fargateSpot: FargateComputeEnvironment;
  vpc: ec2.Vpc;
}

function fixture(): Fixture {
  const { stack, vpc } = stackWithVpc();
  return {
    stack,
    vpc,
    spot: new Ec2ComputeEnvironment(stack, 'Spot', { vpc }),
    onDemand: new Ec2ComputeEnvironment(stack, 'OnDemand', { vpc, capacity: 'ON_DEMAND' }),
    fargate: new FargateComputeEnvironment(stack, 'Fargate', { vpc }),
    fargateSpot: new FargateComputeEnvironment(stack, 'FargateSpot', { vpc, spot: true }),
  };
}

function queueWith(f: Fixture, props: Partial<BatchJobQueueProps> = {}): BatchJobQueue {
  return new BatchJobQueue(f.stack, 'Queue', { computeEnvironments: [f.spot, f.onDemand], ...props });
}

function ceId(f: Fixture, ce: Ec2ComputeEnvironment | FargateComputeEnvironment): string {
  return f.stack.getLogicalId(ce.computeEnvironment.node.defaultChild as batch.CfnComputeEnvironment);
}

const expectPropError = (fn: () => unknown, ...parts: string[]): void => expectPropErrorAt(PATH, fn, ...parts);

describe('defaults', () => {
  test('orders compute environments as given: Spot first, On-Demand as fallback', () => {
    const f = fixture();
    queueWith(f);
    Template.fromStack(f.stack).hasResourceProperties('AWS::Batch::JobQueue', {
      ComputeEnvironmentOrder: [
        { ComputeEnvironment: { 'Fn::GetAtt': [ceId(f, f.spot), 'ComputeEnvironmentArn'] }, Order: 1 },
        { ComputeEnvironment: { 'Fn::GetAtt': [ceId(f, f.onDemand), 'ComputeEnvironmentArn'] }, Order: 2 },
      ],
    });
  });

  test('has priority 1 and no physical name', () => {
    const f = fixture();
    queueWith(f);
    Template.fromStack(f.stack).hasResourceProperties('AWS::Batch::JobQueue', { Priority: 1, JobQueueName: Match.absent() });
  });

  test('cancels jobs stuck in RUNNABLE for every misconfiguration and capacity reason after 4 hours', () => {
    const f = fixture();
    queueWith(f);
    const action = (reason: string) => ({ Action: 'CANCEL', State: 'RUNNABLE', MaxTimeSeconds: 14400, Reason: reason });
    Template.fromStack(f.stack).hasResourceProperties('AWS::Batch::JobQueue', {
      JobStateTimeLimitActions: Match.arrayWith([
        action('CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY'),
        action('MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE'),
        action('MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT'),
      ]),
    });
  });

  test('runnableTimeout sets when stuck jobs are cancelled', () => {
    const f = fixture();
    queueWith(f, { runnableTimeout: Duration.minutes(30) });
    const [queue] = Object.values(Template.fromStack(f.stack).findResources('AWS::Batch::JobQueue'));
    const times = queue.Properties.JobStateTimeLimitActions.map((a: { MaxTimeSeconds: number }) => a.MaxTimeSeconds);
    expect(times).toEqual([1800, 1800, 1800]);
  });

  test('has no scheduling policy and needs no share identifier by default', () => {
    const f = fixture();
    const queue = queueWith(f);
    Template.fromStack(f.stack).hasResourceProperties('AWS::Batch::JobQueue', { SchedulingPolicyArn: Match.absent() });
    Template.fromStack(f.stack).resourceCountIs('AWS::Batch::SchedulingPolicy', 0);
    expect(queue.requiresShareIdentifier).toBe(false);
  });

  test('fair share creates a scheduling policy and then requires a share identifier', () => {
    const f = fixture();
    const queue = queueWith(f, {
      fairShare: {
        shares: [{ shareIdentifier: 'tenantA', weightFactor: 0.5 }, { shareIdentifier: 'tenantB' }],
        shareDecay: Duration.hours(1),
        computeReservation: 20,
      },
    });
    const template = Template.fromStack(f.stack);
    template.hasResourceProperties('AWS::Batch::SchedulingPolicy', {
      Name: Match.absent(),
      FairsharePolicy: {
        ShareDecaySeconds: 3600,
        ComputeReservation: 20,
        ShareDistribution: [{ ShareIdentifier: 'tenantA', WeightFactor: 0.5 }, { ShareIdentifier: 'tenantB', WeightFactor: 1 }],
      },
    });
    const policyId = f.stack.getLogicalId(queue.schedulingPolicy!.node.defaultChild as batch.CfnSchedulingPolicy);
    template.hasResourceProperties('AWS::Batch::JobQueue', { SchedulingPolicyArn: { 'Fn::GetAtt': [policyId, 'Arn'] } });
    expect(queue.requiresShareIdentifier).toBe(true);
  });

  test('accepts Fargate environments and L2 compute environments', () => {
    const f = fixture();
    const l2 = new batch.FargateComputeEnvironment(f.stack, 'L2', { vpc: f.vpc, spot: true });
    const queue = new BatchJobQueue(f.stack, 'Queue', { computeEnvironments: [l2, f.fargate] });
    expect(queue.platform).toBe('FARGATE');
    expect(queue.jobQueue.computeEnvironments.map((c) => c.order)).toEqual([1, 2]);
  });

  test('exposes the queue and its ARN', () => {
    const f = fixture();
    const queue = queueWith(f);
    expect(queue.jobQueue).toBeInstanceOf(batch.JobQueue);
    expect(f.stack.resolve(queue.jobQueueArn)).toEqual({ 'Fn::GetAtt': [f.stack.getLogicalId(queue.jobQueue.node.defaultChild as batch.CfnJobQueue), 'JobQueueArn'] });
    expect(queue.platform).toBe('EC2');
  });

  test('warns when On-Demand comes before Spot', () => {
    const f = fixture();
    new BatchJobQueue(f.stack, 'Queue', { computeEnvironments: [f.onDemand, f.spot] });
    Annotations.fromStack(f.stack).hasWarning(`/${PATH}`, Match.stringLikeRegexp('On-Demand compute environment comes before a Spot one'));
  });

  test('does not warn when Spot comes first', () => {
    const f = fixture();
    queueWith(f);
    Annotations.fromStack(f.stack).hasNoWarning(`/${PATH}`, Match.anyValue());
  });
});

describe('validation', () => {
  test('rejects more than 3 compute environments', () => {
    const f = fixture();
    const extra = new Ec2ComputeEnvironment(f.stack, 'Extra', { vpc: f.vpc });
    const more = new Ec2ComputeEnvironment(f.stack, 'More', { vpc: f.vpc });
    expectPropError(() => queueWith(f, { computeEnvironments: [f.spot, f.onDemand, extra, more] }),
      'computeEnvironments ("4 environments")', "allowed: 1 to 3 compute environments (Batch's limit per queue)");
  });

  test('rejects a queue without compute environments', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { computeEnvironments: [] }), 'computeEnvironments ("0 environments")', 'allowed: 1 to 3 compute environments');
  });

  test('rejects EC2 and Fargate environments mixed in one queue', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { computeEnvironments: [f.spot, f.fargate] }),
      'computeEnvironments (["Stack/Spot (EC2)", "Stack/Fargate (FARGATE)"]) mixes EC2 and Fargate',
      'allowed: all EC2 or all Fargate environments');
  });

  test('rejects a priority above 1000', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { priority: 1001 }), 'priority (1001) is out of range', 'allowed: 0 to 1000');
  });

  test('rejects a runnableTimeout under 10 minutes', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { runnableTimeout: Duration.minutes(5) }), 'runnableTimeout ("300 seconds") is out of range', 'allowed: 600 to 86400 seconds (10 minutes to 24 hours');
  });

  test('rejects a runnableTimeout over 24 hours', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { runnableTimeout: Duration.hours(25) }), 'runnableTimeout ("90000 seconds") is out of range', 'allowed: 600 to 86400 seconds');
  });

  test('rejects a fair-share weight factor out of range', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { fairShare: { shares: [{ shareIdentifier: 'a', weightFactor: 1000 }] } }),
      'fairShare.shares[a].weightFactor (1000) is out of range', 'allowed: 0.0001 to 999.9999');
  });

  test('rejects a fair-share compute reservation of 100', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { fairShare: { shares: [], computeReservation: 100 } }),
      'fairShare.computeReservation (100) is out of range', 'allowed: 0 to 99');
  });

  test('rejects a share identifier Batch does not accept', () => {
    const f = fixture();
    expectPropError(() => queueWith(f, { fairShare: { shares: [{ shareIdentifier: 'tenant-a' }] } }),
      'fairShare.shares.shareIdentifier ("tenant-a")', 'allowed: letters, digits and underscores');
  });
});
