import { BatchClient, JobSummary } from '@aws-sdk/client-batch';
import { batchClient, listAllJobs, listFromEnv } from '../shared/batch-list';
import { emfRecord, nameFromArn } from '../shared/emf';
import { LogSink } from '../shared/log';

/**
 * Publishes, per job queue, how many jobs wait in RUNNABLE and how long the oldest has waited:
 * Batch publishes neither, and a growing RUNNABLE backlog is the first sign of a compute environment
 * that cannot place jobs (wrong instance types, no capacity, vCPU limits).
 *
 * The age is measured from the job's createdAt (submission), the only timestamp a RUNNABLE job summary
 * carries; for jobs without dependencies this is within seconds of entering RUNNABLE. `RunningJobs`
 * (jobs in RUNNING) is published alongside, for the workload dashboards (OCR API: runnable / running).
 */
export interface QueueBacklog {
  readonly jobQueue: string;
  readonly runnableJobs: number;
  readonly oldestRunnableAgeSeconds: number;
  /** Jobs in RUNNING (the workload dashboards' "running" line); absent when not counted. */
  readonly runningJobs?: number;
}

export function summarizeBacklog(jobQueue: string, runnable: readonly JobSummary[], now: number, running?: readonly JobSummary[]): QueueBacklog {
  let oldest = now;
  for (const job of runnable) {
    if (typeof job.createdAt === 'number' && job.createdAt < oldest) oldest = job.createdAt;
  }
  return {
    jobQueue: nameFromArn(jobQueue),
    runnableJobs: runnable.length,
    oldestRunnableAgeSeconds: Math.max(0, Math.round((now - oldest) / 1000)),
    ...(running ? { runningJobs: running.length } : {}),
  };
}

export function backlogEmf(backlog: QueueBacklog, now: number): Record<string, unknown> {
  return emfRecord({
    dimensions: [['JobQueue']],
    dimensionValues: { JobQueue: backlog.jobQueue },
    metrics: [
      { name: 'RunnableJobs', unit: 'Count', value: backlog.runnableJobs },
      { name: 'OldestRunnableAgeSeconds', unit: 'Seconds', value: backlog.oldestRunnableAgeSeconds },
      ...(backlog.runningJobs === undefined ? [] : [{ name: 'RunningJobs', unit: 'Count' as const, value: backlog.runningJobs }]),
    ],
    timestamp: now,
  });
}

export interface ProbeOptions {
  readonly client: BatchClient;
  readonly jobQueues: readonly string[];
  readonly now?: () => number;
  readonly sink?: LogSink;
}

export async function probe(options: ProbeOptions): Promise<QueueBacklog[]> {
  if (options.jobQueues.length === 0) throw new Error('backlog-probe: no job queue given; set JOB_QUEUES to a comma separated list of queue ARNs');
  const sink = options.sink ?? ((line: string) => console.log(line));
  const results: QueueBacklog[] = [];
  for (const queue of options.jobQueues) {
    const runnable = await listAllJobs(options.client, queue, 'RUNNABLE');
    const running = await listAllJobs(options.client, queue, 'RUNNING');
    const now = options.now ? options.now() : Date.now();
    const backlog = summarizeBacklog(queue, runnable, now, running);
    sink(JSON.stringify(backlogEmf(backlog, now)));
    results.push(backlog);
  }
  return results;
}

const client = batchClient();

export const handler = async (): Promise<QueueBacklog[]> => probe({ client, jobQueues: listFromEnv('JOB_QUEUES') });
