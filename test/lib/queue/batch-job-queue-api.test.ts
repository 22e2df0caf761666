import { Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Duration } from 'aws-cdk-lib';
import { Ec2ComputeEnvironment } from '../../../lib/compute/ec2-compute-environment';
import { ScheduledJob } from '../../../lib/jobs/scheduled-job';
import { WorkerJobDefinition } from '../../../lib/jobs/worker-job-definition';
import { JobNotifications } from '../../../lib/notifications/job-notifications';
import { BatchJobQueue } from '../../../lib/queue/batch-job-queue';
import { stackWithVpc } from '../../support/stacks';

function fixture() {
  const { stack, vpc } = stackWithVpc();
  const spot = new Ec2ComputeEnvironment(stack, 'Spot', { vpc });
  const queue = new BatchJobQueue(stack, 'Queue', { computeEnvironments: [spot] });
  return { stack, vpc, spot, queue };
}

describe('BatchJobQueue and WorkerJobDefinition fit aws-cdk-lib', () => {
  test('a BatchJobQueue is accepted where a batch.IJobQueue is expected (jobQueues: [queue])', () => {
    const { stack, queue } = fixture();
    const asInterface: batch.IJobQueue = queue;
    new JobNotifications(stack, 'Notifications', { jobQueues: [asInterface] });
    const rules = Template.fromStack(stack).findResources('AWS::Events::Rule');
    expect(JSON.stringify(rules)).toContain(JSON.stringify(stack.resolve(queue.jobQueueArn)));
  });

  test('a WorkerJobDefinition is accepted where a batch.IJobDefinition is expected, and both go into the SubmitJob input', () => {
    const { stack, queue } = fixture();
    const definition: batch.IJobDefinition = new WorkerJobDefinition(stack, 'Worker');
    const job = new ScheduledJob(stack, 'Nightly', { jobQueue: queue, jobDefinition: definition, schedule: scheduler.ScheduleExpression.rate(Duration.hours(6)) });
    expect(stack.resolve(job.submitJobInput.jobQueue)).toEqual(stack.resolve(queue.jobQueue.jobQueueArn));
    expect(stack.resolve(job.submitJobInput.jobDefinition)).toEqual(stack.resolve((definition as WorkerJobDefinition).jobDefinition.jobDefinitionArn));
  });

  test('addComputeEnvironment adds the wrapped environment to the queue', () => {
    const { stack, vpc, queue } = fixture();
    const onDemand = new Ec2ComputeEnvironment(stack, 'OnDemand', { vpc, capacity: 'ON_DEMAND' });
    queue.addComputeEnvironment(onDemand, 2);
    const [q] = Object.values(Template.fromStack(stack).findResources('AWS::Batch::JobQueue'));
    expect(q.Properties.ComputeEnvironmentOrder.map((o: { Order: number }) => o.Order)).toEqual([1, 2]);
    expect(queue.computeEnvironments).toHaveLength(2);
  });

  test('addRetryStrategy on a WorkerJobDefinition adds a rule to the job definition', () => {
    const { stack } = fixture();
    const definition = new WorkerJobDefinition(stack, 'Worker');
    const before = definition.retryStrategies.length;
    definition.addRetryStrategy(batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom({ onReason: 'Task failed to start' })));
    const [d] = Object.values(Template.fromStack(stack).findResources('AWS::Batch::JobDefinition'));
    expect(d.Properties.RetryStrategy.EvaluateOnExit).toHaveLength(before + 1);
  });
});
