import { BatchJobStateChangeEvent } from '../shared/batch-event';
import { emfRecord, EmfMetric, jobDefinitionName, nameFromArn } from '../shared/emf';
import { createLogger, LogSink } from '../shared/log';

/**
 * Turns each "Batch Job State Change" event into CloudWatch metrics via EMF, because Batch itself
 * publishes no metric for job counts or run times.
 *
 * - JobsSubmitted: Batch sends no event for the initial submission (AWS docs, "Events aren't created
 *   for the initial job submission"), so a job counts as submitted when it first becomes RUNNABLE
 *   with no attempt yet, or on a SUBMITTED event should Batch ever send one.
 * - JobsSucceeded / JobsFailed: terminal states.
 * - JobRunTimeSeconds: stoppedAt - startedAt of a terminal event that carries both.
 */
export const DIMENSIONS = [['JobQueue'], ['JobQueue', 'JobDefinition']];

export function metricsForEvent(event: BatchJobStateChangeEvent): Record<string, unknown> | undefined {
  if (event.source !== 'aws.batch' || event['detail-type'] !== 'Batch Job State Change') return undefined;
  const d = event.detail;
  if (!d || typeof d.status !== 'string' || typeof d.jobQueue !== 'string') {
    throw new Error('Batch Job State Change event without detail.status or detail.jobQueue');
  }
  const metrics: EmfMetric[] = [];
  const attempts = Array.isArray(d.attempts) ? d.attempts.length : 0;
  if (d.status === 'SUBMITTED' || (d.status === 'RUNNABLE' && attempts === 0)) {
    metrics.push({ name: 'JobsSubmitted', unit: 'Count', value: 1 });
  }
  if (d.status === 'SUCCEEDED') metrics.push({ name: 'JobsSucceeded', unit: 'Count', value: 1 });
  if (d.status === 'FAILED') metrics.push({ name: 'JobsFailed', unit: 'Count', value: 1 });
  if ((d.status === 'SUCCEEDED' || d.status === 'FAILED') && typeof d.startedAt === 'number' && typeof d.stoppedAt === 'number' && d.stoppedAt >= d.startedAt) {
    metrics.push({ name: 'JobRunTimeSeconds', unit: 'Seconds', value: (d.stoppedAt - d.startedAt) / 1000 });
  }
  if (metrics.length === 0) return undefined;
  const timestamp = event.time ? Date.parse(event.time) : NaN;
  return emfRecord({
    dimensions: DIMENSIONS,
    dimensionValues: {
      JobQueue: nameFromArn(d.jobQueue),
      JobDefinition: d.jobDefinition ? jobDefinitionName(d.jobDefinition) : 'unknown',
    },
    metrics,
    properties: { jobId: d.jobId, jobName: d.jobName, status: d.status, attempts },
    timestamp: Number.isFinite(timestamp) ? timestamp : Date.now(),
  });
}

/** Prints one EMF line per event that yields a metric; returns how many lines it printed. */
export async function processEvent(event: BatchJobStateChangeEvent, sink: LogSink = (line) => console.log(line)): Promise<number> {
  const record = metricsForEvent(event);
  if (!record) {
    createLogger({ handler: 'job-metrics' }, sink).info('no metric for this event', { status: event.detail?.status, jobId: event.detail?.jobId });
    return 0;
  }
  sink(JSON.stringify(record));
  return 1;
}

export const handler = async (event: BatchJobStateChangeEvent): Promise<number> => processEvent(event);
