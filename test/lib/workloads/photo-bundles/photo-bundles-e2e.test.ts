import { BatchClient, ListJobsCommand, RegisterJobDefinitionCommand } from '@aws-sdk/client-batch';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { notifyCompletion } from '../../../../lambda/photo-bundle-notify';
import { handleRecords, QueueSubmitDeps } from '../../../../lambda/queue-submit';
import type { BundleCompletion } from '../../../../lambda/shared/photo-bundle-completion';
import { BatchJobClient } from '../../../../lib/client';
import { runBatchJob } from '../../../../lib/local/run-batch-job';
import { photoSha256, PhotoServer, startPhotoServer } from '../../../containers/worker/support/photo-server';
import { startS3rver } from '../../../containers/worker/support/s3rver';
import { zipEntries, zipEntryData } from '../../../containers/worker/support/zip';
import { motoClientConfig, motoEnv } from '../../../support/moto';
import { createMotoBatch, MotoBatch } from '../../client/moto-batch';

/**
 * The photo-bundle workload end to end, locally: a message on (moto) SQS -> the real queue-submit handler
 * in photo-bundle mode -> a Batch job (moto) -> run by the local job runner with the real worker,
 * downloading 200 photos from a local HTTP server and writing the ZIP to an S3-compatible server that
 * stands in for R2 (s3rver: its own endpoint, its own credentials from Secrets Manager) -> the real
 * completion notifier publishing on (moto) SNS. `npm run e2e:photo-bundles` runs this file.
 */
jest.setTimeout(600_000);

const R2_BUCKET = 'photo-bundles-e2e';
const R2_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const MB = 1024 * 1024;

let m: MotoBatch;
let photos: PhotoServer;
let r2Server: { endpoint: string; close(): Promise<void> };
let r2: S3Client;
let sqs: SQSClient;
let sns: SNSClient;
let secrets: SecretsManagerClient;
let queueUrl: string;
let dlqUrl: string;
let topicArn: string;
let inboxUrl: string;
let jobDefinition: string;

interface Photo {
  url: string;
  name?: string;
  /** The ZIP entry name and bytes expected for a good photo; undefined for one that must fail. */
  expect?: { entry: string; size: number; sha256: string };
}

/** 200 photos: 1-3 MB (Content-Length or chunked), some slow, some 404 and some 500. */
function photoList(base: string): Photo[] {
  const list: Photo[] = [];
  for (let i = 0; i < 200; i++) {
    const name = `img${String(i).padStart(3, '0')}.jpg`;
    if (i % 25 === 7) list.push({ url: `${base}/missing/${name}` });
    else if (i % 40 === 13) list.push({ url: `${base}/broken/${name}` });
    else if (i % 30 === 3) list.push({ url: `${base}/slow/${name}`, name: `slow-${name}`, expect: { entry: `slow-${name}`, size: 20_000, sha256: photoSha256(name, 20_000) } });
    else {
      const size = MB + ((i * 7919) % (2 * MB));
      const kind = i % 2 === 0 ? 'ok' : 'chunked';
      // Every third photo is named by the message; the others by their URL's last segment.
      const given = i % 3 === 0 ? `Wedding ${i}.jpg` : undefined;
      list.push({ url: `${base}/${kind}/${name}?size=${size}`, name: given, expect: { entry: given ?? name, size, sha256: photoSha256(name, size) } });
    }
  }
  return list;
}

async function toRecords(url: string): Promise<SQSRecord[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 1 }));
  return (res.Messages ?? []).map(
    (x) => ({ messageId: x.MessageId!, receiptHandle: x.ReceiptHandle!, body: x.Body!, attributes: x.Attributes ?? {}, messageAttributes: {} }) as unknown as SQSRecord,
  );
}

/** What the Lambda SQS event source does: receive a batch, invoke the handler, delete what it did not report as failed. */
async function deliver(deps: QueueSubmitDeps): Promise<Awaited<ReturnType<typeof handleRecords>>> {
  const records = await toRecords(queueUrl);
  const result = await handleRecords(records, deps);
  const failed = new Set(result.response.batchItemFailures.map((f) => f.itemIdentifier));
  for (const r of records.filter((x) => !failed.has(x.messageId))) {
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
  }
  return result;
}

async function inbox(): Promise<BundleCompletion[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: inboxUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  return (res.Messages ?? []).map((x) => JSON.parse(JSON.parse(x.Body!).Message) as BundleCompletion);
}

function submitDeps(client: BatchJobClient): QueueSubmitDeps {
  return {
    client,
    sqs,
    deadLetterQueueUrl: dlqUrl,
    maxReceiveCount: 3,
    concurrency: 5,
    photoBundle: { destinationBucket: R2_BUCKET, downloadConcurrency: 5, inputBucket: m.bucket, s3: m.s3, completions: { sns, topicArn } },
  };
}

/** An independent ZIP reader (Python's zipfile): every entry's CRC-32 checked. */
function pythonZipTest(zip: Buffer): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bundle-zip-'));
  try {
    const file = path.join(dir, 'b.zip');
    writeFileSync(file, zip);
    const r = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.testzip() or "OK", len(z.namelist()))', file], { encoding: 'utf8' });
    return (r.stdout + r.stderr).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  m = await createMotoBatch('bundle-e2e');
  photos = await startPhotoServer();
  r2Server = await startS3rver([R2_BUCKET]);
  r2 = new S3Client({ endpoint: r2Server.endpoint, region: 'auto', forcePathStyle: true, credentials: R2_CREDENTIALS });
  sqs = new SQSClient(motoClientConfig());
  sns = new SNSClient(motoClientConfig());
  secrets = new SecretsManagerClient(motoClientConfig());
  const stamp = Date.now().toString(36);
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `bundles-${stamp}` }))).QueueUrl!;
  dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `bundles-dlq-${stamp}` }))).QueueUrl!;
  topicArn = (await sns.send(new CreateTopicCommand({ Name: `platform-notifications-${stamp}` }))).TopicArn!;
  inboxUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `requester-${stamp}` }))).QueueUrl!;
  const inboxArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: inboxUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: inboxArn }));
  // What PhotoBundlesStack puts in the job definition: the R2 endpoint in the environment, the key pair as secrets.
  const secretArn = (await secrets.send(new CreateSecretCommand({ Name: `r2-${stamp}`, SecretString: JSON.stringify(R2_CREDENTIALS) }))).ARN!;
  const def = await m.batch.send(
    new RegisterJobDefinitionCommand({
      jobDefinitionName: `bundle-${stamp}`,
      type: 'container',
      containerProperties: {
        image: 'worker:latest',
        resourceRequirements: [{ type: 'VCPU', value: '2' }, { type: 'MEMORY', value: '4096' }],
        environment: [
          { name: 'OUTPUT_S3_ENDPOINT', value: r2Server.endpoint },
          { name: 'OUTPUT_S3_REGION', value: 'auto' },
          { name: 'MAX_REJECT_RATIO', value: '0.25' },
        ],
        secrets: [
          { name: 'OUTPUT_S3_ACCESS_KEY_ID', valueFrom: `${secretArn}:accessKeyId::` },
          { name: 'OUTPUT_S3_SECRET_ACCESS_KEY', valueFrom: `${secretArn}:secretAccessKey::` },
        ],
      },
    }),
  );
  jobDefinition = def.jobDefinitionArn!;
});

afterAll(async () => {
  r2?.destroy();
  await photos?.close();
  await r2Server?.close();
});

test('one message -> one valid ZIP in the R2 stand-in with every good photo once, a completion listing the failures; sent twice -> still one ZIP', async () => {
  const list = photoList(photos.base);
  const good = list.filter((p) => p.expect);
  const bad = list.filter((p) => !p.expect);
  const message = {
    eventId: 'wedding-2026-06-01',
    photos: list.map((p) => (p.name ? { url: p.url, name: p.name } : { url: p.url })),
    destination: { bucket: R2_BUCKET, prefix: 'events/2026/' },
  };
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition, inputBucket: m.bucket, clients: { batch: m.batch as BatchClient, s3: m.s3, logs: m.logs }, fairShare: false, jobNamePrefix: 'bundle' });

  // The caller sends the message; the queue's Lambda (the real handler) turns it into a job.
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
  const first = await deliver(submitDeps(client));
  expect(first.outcomes).toEqual([expect.objectContaining({ outcome: 'submitted' })]);
  const jobId = first.outcomes[0].jobId!;
  const job = await client.status(jobId);

  // Batch would start the container now: the local runner runs the worker with the job's environment.
  const run = await runBatchJob({
    batch: m.batch,
    secrets,
    batchJobId: job.batchJobId,
    // The photo server is on loopback: the operator's switch (never settable by a message) allows it here.
    hostEnvironment: { ...(motoEnv() as Record<string, string>), OUTPUT_S3_FORCE_PATH_STYLE: 'true', PHOTOS_ALLOW_PRIVATE_HOSTS: 'true' },
  });
  expect({ exitCode: run.exitCode, stderr: run.exitCode === 0 ? '' : run.stderr }).toEqual({ exitCode: 0, stderr: '' });
  const emf = run.stdout.split('\n').filter((l) => l.includes('"CdkBatchPlatform/PhotoBundles"')).map((l) => JSON.parse(l));
  expect(emf).toEqual([expect.objectContaining({ JobQueue: m.jobQueue, Bundles: 1, Photos: good.length, PhotoFailures: bad.length })]);

  // The ZIP: valid for an independent reader, every good photo exactly once with its bytes, in message order.
  const zipKey = 'events/2026/wedding-2026-06-01.zip';
  const zip = Buffer.from(await (await r2.send(new GetObjectCommand({ Bucket: R2_BUCKET, Key: zipKey }))).Body!.transformToByteArray());
  expect(pythonZipTest(zip)).toBe(`OK ${good.length}`);
  const entries = zipEntries(zip);
  expect(entries.map((e) => e.name)).toEqual(good.map((p) => p.expect!.entry));
  for (const [i, e] of entries.entries()) {
    const sha = createHash('sha256').update(zipEntryData(zip, e)).digest('hex');
    expect({ name: e.name, size: e.size, sha }).toEqual({ name: good[i].expect!.entry, size: good[i].expect!.size, sha: good[i].expect!.sha256 });
  }

  // The completion notifier (on the job's state-change event) tells the requester, listing the failures.
  await notifyCompletion(run.event, {
    staging: m.s3,
    inputBucket: m.bucket,
    destination: async () => r2,
    sns,
    topicArn,
    jobNamePrefix: 'bundle',
  });
  const [completion] = await inbox();
  expect(completion).toMatchObject({
    status: 'READY',
    eventId: 'wedding-2026-06-01',
    archive: { bucket: R2_BUCKET, key: zipKey, bytes: zip.length },
    photos: 200,
    succeeded: good.length,
    failed: bad.length,
  });
  expect(completion.failures.map((f) => f.url).sort()).toEqual(bad.map((p) => p.url).sort());
  expect(new Set(completion.failures.map((f) => f.error))).toEqual(new Set(['HTTP 404', 'HTTP 500']));

  // The same event again: no second job, no second ZIP; the existing ZIP's location is published again.
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
  const again = await deliver(submitDeps(client));
  expect(again.outcomes).toEqual([expect.objectContaining({ outcome: 'duplicate', jobId, republished: true })]);
  const jobs = await m.batch.send(new ListJobsCommand({ jobQueue: m.jobQueue, filters: [{ name: 'JOB_NAME', values: [`bundle-${jobId}`] }] }));
  expect(jobs.jobSummaryList).toHaveLength(1);
  const zips = (await r2.send(new ListObjectsV2Command({ Bucket: R2_BUCKET }))).Contents!.map((o) => o.Key).filter((k) => k!.endsWith('.zip'));
  expect(zips).toEqual([zipKey]);
  expect(await inbox()).toEqual([completion]);
});
