import { BatchJobStateChangeEvent } from '../../../lambda/shared/batch-event';
import { metricsForEvent, processEvent } from '../../../lambda/job-metrics/index';
import { DOCS_RUNNABLE_EVENT, terminalEvent } from './events';

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [key: string]: unknown;
}

async function emit(event: BatchJobStateChangeEvent): Promise<Emf[]> {
  const lines: string[] = [];
  await processEvent(event, (l) => lines.push(l));
  return lines.map((l) => JSON.parse(l)).filter((o) => o._aws) as Emf[];
}

/** Checks the EMF specification's structural rules: every metric and dimension named has a root value. */
function expectValidEmf(doc: Emf): void {
  expect(typeof doc._aws.Timestamp).toBe('number');
  for (const directive of doc._aws.CloudWatchMetrics) {
    expect(directive.Namespace).toBe('CdkBatchPlatform');
    for (const set of directive.Dimensions) for (const dim of set) expect(typeof doc[dim]).toBe('string');
    for (const m of directive.Metrics) expect(typeof doc[m.Name]).toBe('number');
  }
}

test('counts the docs example (first RUNNABLE, no attempt) as one submitted job per queue and job definition', async () => {
  const [doc] = await emit(DOCS_RUNNABLE_EVENT);
  expectValidEmf(doc);
  expect(doc._aws.CloudWatchMetrics[0].Dimensions).toEqual([['JobQueue'], ['JobQueue', 'JobDefinition']]);
  expect(doc._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: 'JobsSubmitted', Unit: 'Count' }]);
  expect(doc).toMatchObject({ JobQueue: 'PexjEHappyPathCanary2JobQueue', JobDefinition: 'first-run-job-definition', JobsSubmitted: 1, jobId: '4c7599ae-0a82-49aa-ba5a-4727fcce14a8' });
  expect(doc._aws.Timestamp).toBe(Date.parse('2022-01-11T23:36:40Z'));
});

test('a SUCCEEDED event yields JobsSucceeded and the run time in seconds', async () => {
  const [doc] = await emit(terminalEvent('SUCCEEDED', 0));
  expectValidEmf(doc);
  expect(doc._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: 'JobsSucceeded', Unit: 'Count' }, { Name: 'JobRunTimeSeconds', Unit: 'Seconds' }]);
  expect(doc).toMatchObject({ JobsSucceeded: 1, JobRunTimeSeconds: 200 });
  expect(doc).not.toHaveProperty('JobsFailed');
});

test('a FAILED event yields JobsFailed and the run time', async () => {
  const [doc] = await emit(terminalEvent('FAILED', 1));
  expectValidEmf(doc);
  expect(doc).toMatchObject({ JobsFailed: 1, JobRunTimeSeconds: 200 });
  expect(doc).not.toHaveProperty('JobsSucceeded');
});

test('a RUNNABLE event after a failed attempt (a retry) is not counted as a new submission', async () => {
  const retry = { ...DOCS_RUNNABLE_EVENT, detail: { ...DOCS_RUNNABLE_EVENT.detail, attempts: [{ container: { exitCode: 137 } }] } } as BatchJobStateChangeEvent;
  expect(await emit(retry)).toEqual([]);
});

test('a FAILED event without startedAt (cancelled before running) has no run time', async () => {
  const cancelled = terminalEvent('FAILED', 1);
  const { startedAt: _s, ...detail } = cancelled.detail;
  const [doc] = await emit({ ...cancelled, detail } as BatchJobStateChangeEvent);
  expect(doc).toMatchObject({ JobsFailed: 1 });
  expect(doc).not.toHaveProperty('JobRunTimeSeconds');
});

test('RUNNING and STARTING events produce no metric line', async () => {
  for (const status of ['RUNNING', 'STARTING']) {
    expect(await emit({ ...DOCS_RUNNABLE_EVENT, detail: { ...DOCS_RUNNABLE_EVENT.detail, status } } as BatchJobStateChangeEvent)).toEqual([]);
  }
});

test('ignores events that are not Batch Job State Changes', () => {
  expect(metricsForEvent({ ...DOCS_RUNNABLE_EVENT, 'detail-type': 'Batch Service Job State Change' })).toBeUndefined();
});

test('throws an actionable error for an event without a queue', () => {
  const broken = { ...DOCS_RUNNABLE_EVENT, detail: { jobId: 'x', status: 'FAILED' } } as unknown as BatchJobStateChangeEvent;
  expect(() => metricsForEvent(broken)).toThrow(/without detail.status or detail.jobQueue/);
});
