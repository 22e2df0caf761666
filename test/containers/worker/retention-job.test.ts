import { S3Client } from '@aws-sdk/client-s3';
import { objectTags } from '../../support/object-tags';
import { createBucket, motoS3, put, uniqueBucket } from './support/s3';
import { runWorkerProcess } from './support/worker-process';

/**
 * A worker job as Batch runs it (the entrypoint as a child process) against moto: every object it
 * leaves (result, rejects) carries the retention tag from RETENTION_DAYS and the job id; without
 * RETENTION_DAYS the fallback (30), never no tag. Its stdout carries the EMF duration record.
 */
const BUCKET = uniqueBucket('retention-job');
let s3: S3Client;

beforeAll(async () => {
  s3 = motoS3();
  await createBucket(s3, BUCKET);
  // One malformed line, so the job also writes a rejects object.
  await put(s3, BUCKET, 'in/t.jsonl', '{"id":1}\n{"id":2}\nnot json\n{"id":3}\n');
});
afterAll(() => s3.destroy());

const job = (jobId: string, extra: Record<string, string>): Record<string, string> => ({
  JOB_ID: jobId,
  OPERATION: 'transform-records',
  OPERATION_CONFIG: JSON.stringify({ set: { ok: true } }),
  INPUT_S3_BUCKET: BUCKET,
  INPUT_S3_KEY: 'in/t.jsonl',
  OUTPUT_S3_BUCKET: BUCKET,
  MAX_REJECT_RATIO: '0.5',
  ...extra,
});

test('every object a worker job writes carries retention-days from RETENTION_DAYS and its job id', async () => {
  const run = await runWorkerProcess(job('job-ret-90', { OUTPUT_S3_KEY: 'out90/result.jsonl', RETENTION_DAYS: '90', TENANT_ID: 'acme' }));
  expect(run.code).toBe(0);
  const tags = await objectTags(s3, BUCKET, 'out90/');
  expect(Object.keys(tags)).toEqual(expect.arrayContaining(['out90/result.jsonl', 'out90/result.jsonl.rejects.jsonl']));
  for (const [key, t] of Object.entries(tags)) expect({ key, ...t }).toEqual({ key, 'retention-days': '90', 'job-id': 'job-ret-90' });

  // The EMF record: DurationMs by Operation alone (what the P95 alarm reads) and by Operation + TenantId.
  const emf = run.logs.find((l) => '_aws' in l) as Record<string, any>;
  expect(emf._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Operation'], ['Operation', 'TenantId']]);
  expect(emf._aws.CloudWatchMetrics[0].Metrics).toContainEqual({ Name: 'DurationMs', Unit: 'Milliseconds' });
  expect(emf).toMatchObject({ Operation: 'transform-records', TenantId: 'acme', DurationMs: expect.any(Number) });
});

test('without RETENTION_DAYS the objects take the fallback of 30 days, and the EMF record has the Operation set only', async () => {
  const run = await runWorkerProcess(job('job-ret-default', { OUTPUT_S3_KEY: 'outdef/result.jsonl' }));
  expect(run.code).toBe(0);
  const tags = await objectTags(s3, BUCKET, 'outdef/');
  expect(Object.keys(tags).length).toBeGreaterThanOrEqual(2);
  for (const t of Object.values(tags)) expect(t['retention-days']).toBe('30');
  const emf = run.logs.find((l) => '_aws' in l) as Record<string, any>;
  expect(emf._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Operation']]);
});

test('an invalid RETENTION_DAYS is a configuration error naming it (exit 2), before anything is written', async () => {
  const run = await runWorkerProcess(job('job-ret-bad', { OUTPUT_S3_KEY: 'outbad/result.jsonl', RETENTION_DAYS: 'forever' }));
  expect(run.code).toBe(2);
  expect(run.stderr + JSON.stringify(run.logs)).toContain('RETENTION_DAYS');
  expect(await objectTags(s3, BUCKET, 'outbad/')).toEqual({});
});
