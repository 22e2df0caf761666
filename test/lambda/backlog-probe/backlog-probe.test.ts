import * as http from 'http';
import { AddressInfo } from 'net';
import { BatchClient, JobSummary, ListJobsCommand } from '@aws-sdk/client-batch';
import { motoClientConfig } from '../../support/moto';
import { backlogEmf, probe, summarizeBacklog } from '../../../lambda/backlog-probe/index';
import { listAllJobs } from '../../../lambda/shared/batch-list';
import { createMotoBatch, MotoBatch, submit } from './moto-batch';

/*
 * moto's Batch in no-Docker mode (the mode the shared moto_server runs in) marks every job SUCCEEDED
 * inside SubmitJob: there is no state in which a job can be held RUNNABLE (a DISABLED queue or compute
 * environment and dependsOn are ignored by that backend). So the probe runs end to end against moto
 * (real ListJobs, pagination included) and the aggregation is a pure function fed with real job
 * summaries moto returned, placed in RUNNABLE for the computation.
 */
let m: MotoBatch;

beforeAll(async () => {
  m = await createMotoBatch('backlog-probe-test');
  for (let i = 0; i < 5; i++) await submit(m, `probe-job-${i}`);
});

async function realSummaries(): Promise<JobSummary[]> {
  const res = await m.client.send(new ListJobsCommand({ jobQueue: m.queueArn, filters: [{ name: 'JOB_NAME', values: ['probe-job-*'] }] }));
  return res.jobSummaryList ?? [];
}

test('moto cannot hold a job in RUNNABLE: submitted jobs are already SUCCEEDED', async () => {
  const summaries = await realSummaries();
  expect(summaries.map((s) => s.status)).toEqual(Array(5).fill('SUCCEEDED'));
});

test('counts RUNNABLE jobs and the age of the oldest from real job summaries', async () => {
  const summaries = (await realSummaries()).map((s, i) => ({ ...s, status: 'RUNNABLE' as const, createdAt: 1_000_000 + i * 60_000 }));
  const now = 1_000_000 + 45 * 60_000;
  expect(summarizeBacklog(m.queueArn, summaries, now)).toEqual({ jobQueue: 'backlog-probe-test-queue', runnableJobs: 5, oldestRunnableAgeSeconds: 2700 });
});

test('an empty queue has 0 RUNNABLE jobs and age 0', () => {
  expect(summarizeBacklog('arn:aws:batch:us-east-1:123456789012:job-queue/q', [], 5000)).toEqual({ jobQueue: 'q', runnableJobs: 0, oldestRunnableAgeSeconds: 0 });
});

test('writes RunnableJobs and OldestRunnableAgeSeconds per queue as EMF', () => {
  const doc = backlogEmf({ jobQueue: 'q', runnableJobs: 7, oldestRunnableAgeSeconds: 600 }, 1700000000000) as Record<string, any>;
  expect(doc._aws.CloudWatchMetrics).toEqual([
    { Namespace: 'CdkBatchPlatform', Dimensions: [['JobQueue']], Metrics: [{ Name: 'RunnableJobs', Unit: 'Count' }, { Name: 'OldestRunnableAgeSeconds', Unit: 'Seconds' }] },
  ]);
  expect(doc).toMatchObject({ JobQueue: 'q', RunnableJobs: 7, OldestRunnableAgeSeconds: 600 });
  const withRunning = backlogEmf({ jobQueue: 'q', runnableJobs: 7, oldestRunnableAgeSeconds: 600, runningJobs: 3 }, 1700000000000) as Record<string, any>;
  expect(withRunning._aws.CloudWatchMetrics[0].Metrics).toContainEqual({ Name: 'RunningJobs', Unit: 'Count' });
  expect(withRunning.RunningJobs).toBe(3);
});

test('the probe lists RUNNABLE and RUNNING jobs of each queue in moto and prints one EMF line per queue', async () => {
  const lines: string[] = [];
  const result = await probe({ client: m.client, jobQueues: [m.queueArn], now: () => 1_700_000_000_000, sink: (l) => lines.push(l) });
  expect(result).toEqual([{ jobQueue: 'backlog-probe-test-queue', runnableJobs: 0, oldestRunnableAgeSeconds: 0, runningJobs: 0 }]);
  expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ JobQueue: 'backlog-probe-test-queue', RunnableJobs: 0, RunningJobs: 0 })]);
});

test('listing follows nextToken across pages (moto does not paginate ListJobs: a local server pages moto\'s real answer)', async () => {
  const summaries = await realSummaries();
  const seenTokens: Array<string | undefined> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const token: string | undefined = JSON.parse(body || '{}').nextToken;
      seenTokens.push(token);
      const start = token ? Number(token) : 0;
      const page = { jobSummaryList: summaries.slice(start, start + 2), ...(start + 2 < summaries.length ? { nextToken: String(start + 2) } : {}) };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(page));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (server.address() as AddressInfo).port;
    const client = new BatchClient({ ...motoClientConfig(), endpoint: `http://127.0.0.1:${port}` });
    const all = await listAllJobs(client, m.queueArn, 'RUNNABLE');
    expect(all.map((j) => j.jobId)).toEqual(summaries.map((j) => j.jobId));
    expect(seenTokens).toEqual([undefined, '2', '4']);
  } finally {
    server.close();
  }
});

test('refuses to run without queues', async () => {
  await expect(probe({ client: m.client, jobQueues: [] })).rejects.toThrow(/set JOB_QUEUES/);
});
