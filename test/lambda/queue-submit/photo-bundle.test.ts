import { DescribeJobsCommand, ListJobsCommand } from '@aws-sdk/client-batch';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { handleRecords, QueueSubmitDeps } from '../../../lambda/queue-submit';
import { parsePhotoBundleMessage, photoName } from '../../../lambda/queue-submit/photo-bundle';
import { BatchJobClient, InvalidRequestError } from '../../../lib/client';
import { motoClientConfig } from '../../support/moto';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';

const R2_BUCKET = 'photo-bundles-test';
let m: MotoBatch;
let sqs: SQSClient;
let dlqUrl: string;
let client: BatchJobClient;
let seq = 0;

function record(body: unknown): SQSRecord {
  seq += 1;
  return {
    messageId: `msg-${seq}-${Date.now()}`,
    receiptHandle: 'r',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { ApproximateReceiveCount: '1' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:bundles',
    awsRegion: 'us-east-1',
  } as unknown as SQSRecord;
}

function deps(): QueueSubmitDeps {
  return {
    client,
    sqs,
    deadLetterQueueUrl: dlqUrl,
    maxReceiveCount: 3,
    concurrency: 5,
    photoBundle: { destinationBucket: R2_BUCKET, downloadConcurrency: 5, inputBucket: m.bucket, s3: m.s3 },
  };
}

const message = (eventId: string, extra: Record<string, unknown> = {}) => ({
  eventId,
  photos: [{ url: 'https://photos.example.com/a/IMG_0001.jpg' }, { url: 'https://photos.example.com/a/2.jpg', name: 'kiss.jpg' }],
  destination: { bucket: R2_BUCKET, prefix: 'events/2026/' },
  ...extra,
});

async function environmentOf(batchJobId: string): Promise<Record<string, string>> {
  const res = await m.batch.send(new DescribeJobsCommand({ jobs: [batchJobId] }));
  const env = res.jobs?.[0]?.container?.environment ?? [];
  return Object.fromEntries(env.map((e) => [e.name!, e.value!]));
}

async function dlqReasons(): Promise<string[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
  return (res.Messages ?? []).map((x) => x.MessageAttributes!['failure-reason'].StringValue!);
}

beforeAll(async () => {
  m = await createMotoBatch('bundles');
  sqs = new SQSClient(motoClientConfig());
  dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `bundle-dlq-${Date.now().toString(36)}` }))).QueueUrl!;
  client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, jobNamePrefix: 'bundle' });
});

test('a message becomes a bundle-photos job writing <prefix><eventId>.zip to the stack bucket with 5 downloads', async () => {
  const { outcomes } = await handleRecords([record(message('wedding-1'))], deps());
  expect(outcomes[0]).toMatchObject({ outcome: 'submitted' });
  const job = await client.status(outcomes[0].jobId!);
  const env = await environmentOf(job.batchJobId);
  expect(env).toMatchObject({ OPERATION: 'bundle-photos', OUTPUT_S3_BUCKET: R2_BUCKET, OUTPUT_S3_KEY: 'events/2026/wedding-1.zip' });
  expect(JSON.parse(env.OPERATION_CONFIG)).toEqual({ concurrency: 5 });
  const staged = await m.s3.send(new GetObjectCommand({ Bucket: m.bucket, Key: env.INPUT_S3_KEY }));
  const input = JSON.parse(await staged.Body!.transformToString());
  expect(input.files).toEqual([
    { url: 'https://photos.example.com/a/IMG_0001.jpg', name: 'IMG_0001.jpg' },
    { url: 'https://photos.example.com/a/2.jpg', name: 'kiss.jpg' },
  ]);
  expect(input).toMatchObject({ eventId: 'wedding-1', archiveKey: 'events/2026/wedding-1.zip' });
});

test('the same eventId sent twice (two message ids) makes one job', async () => {
  const first = await handleRecords([record(message('wedding-2'))], deps());
  const second = await handleRecords([record(message('wedding-2'))], deps());
  expect(first.outcomes[0].outcome).toBe('submitted');
  expect(second.outcomes[0]).toMatchObject({ outcome: 'duplicate', jobId: first.outcomes[0].jobId });
  const jobs = await m.batch.send(new ListJobsCommand({ jobQueue: m.jobQueue, filters: [{ name: 'JOB_NAME', values: [`bundle-${first.outcomes[0].jobId}`] }] }));
  expect(jobs.jobSummaryList).toHaveLength(1);
});

test('the same eventId with other photos is a conflict, dead-lettered with its reason', async () => {
  await handleRecords([record(message('wedding-3'))], deps());
  const other = await handleRecords([record(message('wedding-3', { photos: [{ url: 'https://photos.example.com/other.jpg' }] }))], deps());
  expect(other.outcomes[0]).toMatchObject({ outcome: 'dead-lettered' });
  expect(other.outcomes[0].reason).toMatch(/^conflict:/);
});

test('a manifestKey in the input bucket gives the same job input as inline photos', async () => {
  await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: 'photo-manifests/wedding-4.json', Body: JSON.stringify([{ url: 'https://photos.example.com/x/a.jpg' }]) }));
  const { outcomes } = await handleRecords([record({ eventId: 'wedding-4', manifestKey: 'photo-manifests/wedding-4.json', destination: { bucket: R2_BUCKET, prefix: '' } })], deps());
  expect(outcomes[0]).toMatchObject({ outcome: 'submitted' });
  const env = await environmentOf((await client.status(outcomes[0].jobId!)).batchJobId);
  expect(env.OUTPUT_S3_KEY).toBe('wedding-4.zip');
  const staged = await m.s3.send(new GetObjectCommand({ Bucket: m.bucket, Key: env.INPUT_S3_KEY }));
  expect(JSON.parse(await staged.Body!.transformToString()).files).toEqual([{ url: 'https://photos.example.com/x/a.jpg', name: 'a.jpg' }]);
});

test('invalid messages go to the DLQ naming field, value and what is allowed; nothing is submitted', async () => {
  await dlqReasons(); // drain
  const bad = [
    message('wedding-5', { destination: { bucket: 'someone-elses-bucket', prefix: 'x/' } }),
    message('../etc', {}),
    message('wedding-6', { destination: { bucket: R2_BUCKET, prefix: '../up/' } }),
    message('wedding-7', { endpoint: 'https://evil.example.com' }),
    { eventId: 'wedding-8', destination: { bucket: R2_BUCKET, prefix: '' } },
    { eventId: 'wedding-9', manifestKey: 'photo-manifests/missing.json', destination: { bucket: R2_BUCKET, prefix: '' } },
  ];
  const { outcomes } = await handleRecords(bad.map(record), deps());
  expect(outcomes.map((o) => o.outcome)).toEqual(bad.map(() => 'dead-lettered'));
  const reasons = outcomes.map((o) => o.reason!);
  expect(reasons[0]).toMatch(/destination\.bucket: "someone-elses-bucket" is not the bundle bucket of this deployment; allowed: "photo-bundles-test"/);
  expect(reasons[1]).toMatch(/eventId: eventId must be 1-128 letters, digits, - or _.* \(got "\.\.\/etc"\)/);
  expect(reasons[2]).toMatch(/destination\.prefix: destination\.prefix must .* \(got "\.\.\/up\/"\)/);
  expect(reasons[3]).toMatch(/Unrecognized key.*endpoint/);
  expect(reasons[4]).toMatch(/photos: give either photos/);
  expect(reasons[5]).toMatch(/manifestKey: no such object in s3:\/\//);
  expect((await dlqReasons()).length).toBe(bad.length);
});

test('parsePhotoBundleMessage refuses a manifestKey outside the manifests prefix and a non-http URL', () => {
  const settings = { destinationBucket: R2_BUCKET };
  expect(() => parsePhotoBundleMessage({ eventId: 'e', manifestKey: 'jobs/x/inputs.json', destination: { bucket: R2_BUCKET, prefix: '' } }, settings)).toThrow(
    /manifestKey: manifestKey must be a key under photo-manifests\//,
  );
  let err: InvalidRequestError | undefined;
  try {
    parsePhotoBundleMessage({ eventId: 'e', photos: [{ url: 'file:///etc/passwd' }], destination: { bucket: R2_BUCKET, prefix: '' } }, settings);
  } catch (e) {
    err = e as InvalidRequestError;
  }
  expect(err?.errors).toEqual([expect.objectContaining({ field: 'photos.0.url', value: 'file:///etc/passwd' })]);
});

test('a photo without a name is named after its URL, or numbered', () => {
  expect(photoName({ url: 'https://h.example/p/IMG%201.jpg' }, 0)).toBe('IMG 1.jpg');
  expect(photoName({ url: 'https://h.example/' }, 4)).toBe('photo-5');
});
