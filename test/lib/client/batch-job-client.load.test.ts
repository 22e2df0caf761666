import { ListJobsCommand } from '@aws-sdk/client-batch';
import pLimit from 'p-limit';
import { BatchJobClient } from '../../../lib/client';
import { createMotoBatch, MotoBatch } from './moto-batch';

let m: MotoBatch;

beforeAll(async () => {
  m = await createMotoBatch('load');
});

test('1,000 idempotent submissions with 20 in flight land exactly once', async () => {
  const client = new BatchJobClient({
    jobQueue: m.jobQueue,
    jobDefinition: m.jobDefinition,
    inputBucket: m.bucket,
    clients: { batch: m.batch, s3: m.s3, logs: m.logs },
    fairShare: false,
  });
  const limit = pLimit(20);
  const tokens = Array.from({ length: 1000 }, (_, i) => `load-${i}`);
  const started = Date.now();
  const jobs = await Promise.all(tokens.map((token) => limit(() => client.submit({ operation: 'aggregate-defects', input: { token }, clientToken: token }))));
  // A figure for the report, not an assertion (no timing thresholds in tests).
  process.stdout.write(`load: 1000 idempotent submits in ${Date.now() - started} ms against moto\n`);

  const summaries = [];
  let nextToken: string | undefined;
  do {
    const page = await m.batch.send(new ListJobsCommand({ jobQueue: m.jobQueue, jobStatus: 'SUCCEEDED', nextToken }));
    summaries.push(...(page.jobSummaryList ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  expect(summaries).toHaveLength(1000);
  expect(new Set(summaries.map((s) => s.jobName)).size).toBe(1000);
  expect(jobs.filter((j) => j.created)).toHaveLength(1000);
  expect(new Set(jobs.map((j) => j.batchJobId)).size).toBe(1000);
}, 600_000);
