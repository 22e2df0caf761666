import { BatchJobStateChangeEvent } from '../../../lambda/shared/batch-event';

/**
 * The "Example Job State Change Event" of the AWS Batch user guide
 * (https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html), trimmed of container fields
 * the handlers do not read. The doc's example is the RUNNABLE transition; the terminal variants below
 * add the JobDetail fields DescribeJobs documents for finished jobs (startedAt, stoppedAt, statusReason,
 * container.exitCode / logStreamName, attempts).
 */
export const DOCS_RUNNABLE_EVENT: BatchJobStateChangeEvent = {
  version: '0',
  id: 'c8f9c4b5-76e5-d76a-f980-7011e206042b',
  'detail-type': 'Batch Job State Change',
  source: 'aws.batch',
  account: '123456789012',
  time: '2022-01-11T23:36:40Z',
  region: 'us-east-1',
  resources: ['arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8'],
  detail: {
    jobArn: 'arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8',
    jobName: 'event-test',
    jobId: '4c7599ae-0a82-49aa-ba5a-4727fcce14a8',
    jobQueue: 'arn:aws:batch:us-east-1:123456789012:job-queue/PexjEHappyPathCanary2JobQueue',
    status: 'RUNNABLE',
    attempts: [],
    createdAt: 1641944200058,
    retryStrategy: { attempts: 2, evaluateOnExit: [] },
    dependsOn: [],
    jobDefinition: 'arn:aws:batch:us-east-1:123456789012:job-definition/first-run-job-definition:1',
    parameters: {},
    container: { image: '137112412989.dkr.ecr.us-east-1.amazonaws.com/amazonlinux:latest', command: ['sleep', '600'] },
    tags: { resourceArn: 'arn:aws:batch:us-east-1:123456789012:job/4c7599ae-0a82-49aa-ba5a-4727fcce14a8' },
    propagateTags: false,
    platformCapabilities: [],
  },
} as unknown as BatchJobStateChangeEvent;

export function terminalEvent(status: 'SUCCEEDED' | 'FAILED', exitCode: number): BatchJobStateChangeEvent {
  const logStreamName = 'first-run-job-definition/default/4c7599ae0a8249aaba5a4727fcce14a8';
  return {
    ...DOCS_RUNNABLE_EVENT,
    time: '2022-01-11T23:41:40Z',
    detail: {
      ...DOCS_RUNNABLE_EVENT.detail,
      status,
      statusReason: status === 'SUCCEEDED' ? 'Essential container in task exited' : 'Essential container in task exited',
      startedAt: 1641944300058,
      stoppedAt: 1641944500058,
      attempts: [{ container: { exitCode, logStreamName }, startedAt: 1641944300058, stoppedAt: 1641944500058, statusReason: 'Essential container in task exited' }],
      container: { ...(DOCS_RUNNABLE_EVENT.detail.container as object), exitCode, logStreamName },
      tags: { ...DOCS_RUNNABLE_EVENT.detail.tags, 'tenant-id': 'tenant-a' },
    },
  } as BatchJobStateChangeEvent;
}
