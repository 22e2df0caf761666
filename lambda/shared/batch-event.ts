/**
 * The parts of an EventBridge "Batch Job State Change" event this library reads. `detail` resembles
 * the JobDetail of DescribeJobs: https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html
 */
export interface BatchJobStateChangeDetail {
  readonly jobArn?: string;
  readonly jobId: string;
  readonly jobName?: string;
  readonly jobQueue: string;
  readonly jobDefinition?: string;
  readonly status: string;
  readonly statusReason?: string;
  readonly attempts?: unknown[];
  readonly createdAt?: number;
  readonly startedAt?: number;
  readonly stoppedAt?: number;
  readonly container?: { readonly exitCode?: number; readonly logStreamName?: string };
  readonly tags?: Record<string, string>;
}

export interface BatchJobStateChangeEvent {
  readonly 'detail-type': string;
  readonly source: string;
  readonly time?: string;
  readonly detail: BatchJobStateChangeDetail;
}

/** Batch job statuses, in lifecycle order (https://docs.aws.amazon.com/batch/latest/userguide/job_states.html). */
export const BATCH_JOB_STATUSES = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED'] as const;
export type BatchJobStatus = (typeof BATCH_JOB_STATUSES)[number];
