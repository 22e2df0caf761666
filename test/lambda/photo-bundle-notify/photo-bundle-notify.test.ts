import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { notifyCompletion, NotifyDeps } from '../../../lambda/photo-bundle-notify';
import type { BatchJobStateChangeEvent } from '../../../lambda/shared/batch-event';
import { BundleCompletion, completionRecordKey } from '../../../lambda/shared/photo-bundle-completion';
import { readJson } from '../../../lambda/shared/s3-objects';
import { handleRecords } from '../../../lambda/queue-submit';
import { BatchJobClient } from '../../../lib/client';
import { motoClientConfig } from '../../support/moto';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';

const R2 = 'r2-bundles';
let m: MotoBatch;
let r2: S3Client;
let sns: SNSClient;
let sqs: SQSClient;
let topicArn: string;
let inboxUrl: string;

function event(jobName: string, status: string, statusReason?: string): BatchJobStateChangeEvent {
  return { 'detail-type': 'Batch Job State Change', source: 'aws.batch', detail: { jobId: 'batch-1', jobName, jobQueue: 'q', status, statusReason } };
}

function deps(): NotifyDeps {
  return { staging: m.s3, inputBucket: m.bucket, destination: async () => r2, sns, topicArn, jobNamePrefix: 'bundle', now: () => new Date('2026-06-01T12:00:00Z') };
}

async function inbox(): Promise<BundleCompletion[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: inboxUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  return (res.Messages ?? []).map((x) => JSON.parse(JSON.parse(x.Body!).Message) as BundleCompletion);
}

beforeAll(async () => {
  m = await createMotoBatch('notify');
  r2 = m.s3;
  await r2.send(new CreateBucketCommand({ Bucket: R2 }));
  sns = new SNSClient(motoClientConfig());
  sqs = new SQSClient(motoClientConfig());
  const stamp = Date.now().toString(36);
  topicArn = (await sns.send(new CreateTopicCommand({ Name: `notify-${stamp}` }))).TopicArn!;
  inboxUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `notify-inbox-${stamp}` }))).QueueUrl!;
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: inboxUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn }));
});

async function stageJob(jobId: string, eventId: string, manifest?: object, zipBytes?: number): Promise<void> {
  const input = { files: [{ url: 'https://p/1.jpg', name: '1.jpg' }, { url: 'https://p/2.jpg', name: '2.jpg' }], eventId, destination: { bucket: R2, prefix: 'ev/' }, archiveKey: `ev/${eventId}.zip` };
  await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `jobs/${jobId}/inputs.json`, Body: JSON.stringify(input) }));
  if (manifest) await r2.send(new PutObjectCommand({ Bucket: R2, Key: `ev/${eventId}.zip.manifest.json`, Body: JSON.stringify(manifest) }));
  if (zipBytes !== undefined) await r2.send(new PutObjectCommand({ Bucket: R2, Key: `ev/${eventId}.zip`, Body: Buffer.alloc(zipBytes) }));
}

test('a finished bundle is published with the ZIP location, size, photo count and failures, and recorded', async () => {
  await stageJob('j1', 'party', { files: 2, succeeded: 1, failed: 1, failures: [{ name: '2.jpg', url: 'https://p/2.jpg', error: 'HTTP 404', attempts: 1 }] }, 1234);
  const c = await notifyCompletion(event('bundle-j1', 'SUCCEEDED'), deps());
  expect(c).toEqual({
    type: 'photo-bundle.completed',
    status: 'READY',
    eventId: 'party',
    jobId: 'j1',
    batchJobId: 'batch-1',
    archive: { bucket: R2, key: 'ev/party.zip', bytes: 1234 },
    manifest: { bucket: R2, key: 'ev/party.zip.manifest.json' },
    photos: 2,
    succeeded: 1,
    failed: 1,
    failures: [{ name: '2.jpg', url: 'https://p/2.jpg', error: 'HTTP 404' }],
    failuresTruncated: false,
    completedAt: '2026-06-01T12:00:00.000Z',
  });
  expect(await inbox()).toEqual([c]);
  expect(await readJson(m.s3, m.bucket, completionRecordKey('j1'))).toEqual(c);
});

test('a failed bundle is published as FAILED with the reason and no archive', async () => {
  await stageJob('j2', 'gala');
  const c = await notifyCompletion(event('bundle-j2', 'FAILED', 'Essential container in task exited'), deps());
  expect(c).toMatchObject({ status: 'FAILED', archive: null, manifest: null, photos: 2, succeeded: 0, reason: 'Essential container in task exited' });
  expect((await inbox()).map((x) => x.eventId)).toEqual(['gala']);
});

test('other jobs and non-final states are ignored', async () => {
  expect(await notifyCompletion(event('job-x', 'SUCCEEDED'), deps())).toBeUndefined();
  expect(await notifyCompletion(event('bundle-j1', 'RUNNING'), deps())).toBeUndefined();
});

test('re-sending a finished event publishes the existing ZIP location again instead of a new job', async () => {
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, jobNamePrefix: 'bundle' });
  const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: `notify-dlq-${Date.now().toString(36)}` }))).QueueUrl!;
  const qdeps = {
    client, sqs, deadLetterQueueUrl: dlq, maxReceiveCount: 3, concurrency: 5,
    photoBundle: { destinationBucket: R2, downloadConcurrency: 5, inputBucket: m.bucket, s3: m.s3, completions: { sns, topicArn } },
  };
  const msg = { eventId: 'reunion', photos: [{ url: 'https://p/1.jpg' }], destination: { bucket: R2, prefix: 'ev/' } };
  const rec = (id: string) => ({ messageId: id, body: JSON.stringify(msg), attributes: { ApproximateReceiveCount: '1' } }) as never;
  const first = await handleRecords([rec('a')], qdeps);
  const jobId = first.outcomes[0].jobId!;
  // Still queued: a duplicate, nothing published yet.
  expect((await handleRecords([rec('b')], qdeps)).outcomes[0]).toMatchObject({ outcome: 'duplicate', jobId, republished: false });
  // The job finishes; the notifier records and publishes its completion.
  await r2.send(new PutObjectCommand({ Bucket: R2, Key: 'ev/reunion.zip', Body: Buffer.alloc(10) }));
  await r2.send(new PutObjectCommand({ Bucket: R2, Key: 'ev/reunion.zip.manifest.json', Body: JSON.stringify({ files: 1, succeeded: 1, failed: 0, failures: [] }) }));
  await notifyCompletion(event(`bundle-${jobId}`, 'SUCCEEDED'), deps());
  await inbox();
  const again = await handleRecords([rec('c')], qdeps);
  expect(again.outcomes[0]).toMatchObject({ outcome: 'duplicate', jobId, republished: true });
  const [published] = await inbox();
  expect(published).toMatchObject({ eventId: 'reunion', status: 'READY', archive: { bucket: R2, key: 'ev/reunion.zip', bytes: 10 } });
});
