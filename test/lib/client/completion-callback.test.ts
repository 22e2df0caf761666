import type { APIGatewayProxyEvent } from 'aws-lambda';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { DynamoCompletionStore } from '../../../lambda/webhook/completion-store';
import { createWebhookHandler } from '../../../lambda/webhook/index';
import { BatchJobClient, InvalidRequestError } from '../../../lib/client';
import { addressProblem, CallbackDelivery, parseAllowedCidrs, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyCallbackSignature } from '../../../lib/client/callback';
import { completionRecordKey, CompletionDeps } from '../../../lib/client/completion';
import { createWebhookFixture, TEST_PATH_SECRET, TEST_TOPIC_ARN } from '../../lambda/webhook/webhook-fixture';
import { TestSigner } from '../../lambda/webhook/sns-signer';
import { motoClientConfig } from '../../support/moto';
import { createMotoBatch, MotoBatch } from './moto-batch';

/**
 * The completion path end to end against moto (Batch, S3, Secrets Manager, SQS, DynamoDB) and a real
 * HTTPS receiver on loopback with a throwaway certificate for `receiver.test`. The receiver's name
 * resolves to 127.0.0.1 through the resolver given to the sender (as /etc/hosts would), so the
 * address check runs on a real resolution result.
 */

const TABLE = 'completion-callback-test';
let m: MotoBatch;
let signer: TestSigner;
let ddb: DynamoDBClient;
let sqs: SQSClient;
let secrets: SecretsManagerClient;
let secretArn: string;
let dlqUrl: string;
let certDir: string;
let cert: string;
let server: https.Server;
let port: number;
let answer = 204;
const calls: { headers: Record<string, string | string[] | undefined>; body: string; path: string }[] = [];

const toLoopback = ((_host: string, _opts: unknown, cb: (err: null, addrs: { address: string; family: number }[]) => void) =>
  cb(null, [{ address: '127.0.0.1', family: 4 }])) as unknown as typeof import('dns').lookup;

function delivery(overrides: Partial<CallbackDelivery> = {}): CallbackDelivery {
  return {
    secret: async () => (await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString!,
    deadLetterQueueUrl: dlqUrl,
    sqs,
    backoffMs: 1,
    post: { allowed: parseAllowedCidrs(['127.0.0.0/8']), ca: cert, resolve: toLoopback },
    ...overrides,
  };
}

function client(): BatchJobClient {
  return new BatchJobClient({
    jobQueue: m.jobQueue,
    jobDefinition: m.jobDefinition,
    inputBucket: m.bucket,
    clients: { batch: m.batch, s3: m.s3, logs: m.logs },
    fairShare: false,
    sleep: async () => undefined,
    retryStrategy: new ConfiguredRetryStrategy(9, 1),
  });
}

async function submit(callbackPath: string): Promise<{ jobId: string; batchJobId: string }> {
  const job = await client().submit({ operation: 'aggregate-defects', input: [{ segmentId: 's1' }], retentionDays: 7, tenantId: 'acme', callbackUrl: `https://receiver.test:${port}${callbackPath}` });
  // What the worker would have written: the completion reports its size.
  await m.s3.send(new PutObjectCommand({ Bucket: m.bucket, Key: `jobs/${job.jobId}/output/result.json`, Body: '{"segments":1}' }));
  return { jobId: job.jobId, batchJobId: job.batchJobId };
}

async function dlqMessages(): Promise<Record<string, unknown>[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
  return (res.Messages ?? []).map((msg) => JSON.parse(msg.Body!) as Record<string, unknown>);
}

function notificationEvent(batchJobId: string): APIGatewayProxyEvent {
  const fields = signer.sign({
    Type: 'Notification',
    MessageId: `msg-${batchJobId}-${Date.now()}`,
    TopicArn: TEST_TOPIC_ARN,
    Subject: 'Batch job state change',
    Message: JSON.stringify({ jobId: batchJobId, status: 'SUCCEEDED', tenantId: 'acme' }),
    Timestamp: new Date().toISOString(),
  });
  return { httpMethod: 'POST', pathParameters: { secret: TEST_PATH_SECRET }, body: JSON.stringify(fields), isBase64Encoded: false, headers: {} } as unknown as APIGatewayProxyEvent;
}

function webhook(completion: CompletionDeps) {
  return createWebhookHandler({
    pathSecret: TEST_PATH_SECRET,
    store: new DynamoCompletionStore(ddb, TABLE),
    fetchCertificate: async () => signer.certPem,
    confirmSubscription: async () => undefined,
    allowedTopicArns: [TEST_TOPIC_ARN],
    sink: () => undefined,
    completion: { deps: completion, describe: async (id) => (await m.batch.send(new DescribeJobsCommand({ jobs: [id] }))).jobs?.[0] },
  });
}

beforeAll(async () => {
  m = await createMotoBatch('callbacks');
  ({ signer, ddb } = await createWebhookFixture(TABLE));
  sqs = new SQSClient(motoClientConfig());
  secrets = new SecretsManagerClient(motoClientConfig());
  secretArn = (await secrets.send(new CreateSecretCommand({ Name: `callback-signing-${Date.now()}`, SecretString: 'whsec-test-0123456789abcdef' }))).ARN!;
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'callback-receiver-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=receiver.test', '-addext', 'subjectAltName=DNS:receiver.test'],
    { cwd: certDir, stdio: 'pipe' },
  );
  cert = fs.readFileSync(path.join(certDir, 'cert.pem'), 'utf8');
  server = https.createServer({ key: fs.readFileSync(path.join(certDir, 'key.pem')), cert }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      calls.push({ headers: req.headers, body, path: req.url ?? '' });
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});

beforeEach(async () => {
  calls.length = 0;
  answer = 204;
  dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `callback-dlq-${Date.now()}-${Math.floor(Math.random() * 1e6)}` }))).QueueUrl!;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(certDir, { recursive: true, force: true });
  signer.cleanup();
});

test('the polling fallback and the webhook together call the receiver exactly once, signed with the Secrets Manager key', async () => {
  const { jobId, batchJobId } = await submit('/jobs/done');
  const deps: CompletionDeps = { s3: m.s3, callback: delivery() };
  const info = await client().wait(jobId, { pollMs: 1, completion: deps });
  expect(info.status).toBe('SUCCEEDED');
  // The notification arrives after the poll already completed the job: recorded, not called again.
  const res = await webhook(deps)(notificationEvent(batchJobId));
  expect(res.statusCode).toBe(200);

  expect(calls).toHaveLength(1);
  const call = calls[0];
  expect(call.path).toBe('/jobs/done');
  const key = 'whsec-test-0123456789abcdef';
  expect(verifyCallbackSignature(key, call.headers[TIMESTAMP_HEADER] as string, call.headers[SIGNATURE_HEADER] as string, call.body)).toBe(true);
  expect(verifyCallbackSignature('another-key', call.headers[TIMESTAMP_HEADER] as string, call.headers[SIGNATURE_HEADER] as string, call.body)).toBe(false);
  expect(verifyCallbackSignature(key, call.headers[TIMESTAMP_HEADER] as string, call.headers[SIGNATURE_HEADER] as string, call.body.replace('SUCCEEDED', 'FAILED'))).toBe(false);
  const body = JSON.parse(call.body);
  expect(body).toMatchObject({
    type: 'job.completed',
    jobId,
    batchJobId,
    status: 'SUCCEEDED',
    tenantId: 'acme',
    resultLocation: `s3://${m.bucket}/jobs/${jobId}/output/`,
    result: { objects: 1, bytes: 14, listed: [{ key: `jobs/${jobId}/output/result.json`, bytes: 14 }] },
  });
  expect(await dlqMessages()).toEqual([]);
});

test('the webhook first: records location, size and summary in the job record and the completions table, then the poll adds nothing', async () => {
  const { jobId, batchJobId } = await submit('/hook');
  const deps: CompletionDeps = { s3: m.s3, callback: delivery() };
  // Let the moto job finish without completing it, then deliver the notification first.
  await client().wait(jobId, { pollMs: 1 });
  expect(calls).toHaveLength(0);
  expect((await webhook(deps)(notificationEvent(batchJobId))).statusCode).toBe(200);
  await client().wait(jobId, { pollMs: 1, completion: deps });
  expect(calls).toHaveLength(1);

  const record = JSON.parse(await (await m.s3.send(new GetObjectCommand({ Bucket: m.bucket, Key: completionRecordKey(jobId) }))).Body!.transformToString());
  expect(record).toMatchObject({ jobId, status: 'SUCCEEDED', resultLocation: `s3://${m.bucket}/jobs/${jobId}/output/`, result: { objects: 1, bytes: 14 } });
  const tags = await m.s3.send(new GetObjectTaggingCommand({ Bucket: m.bucket, Key: completionRecordKey(jobId) }));
  expect(Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key, t.Value]))).toEqual({ 'retention-days': '7', 'job-id': jobId });
  const item = (await ddb.send(new GetItemCommand({ TableName: TABLE, Key: { jobId: { S: batchJobId }, status: { S: 'SUCCEEDED' } } }))).Item!;
  expect(item.platformJobId).toEqual({ S: jobId });
  expect(item.resultBytes).toEqual({ N: '14' });
  expect(item.callbackDelivered).toEqual({ S: 'true' });
});

test('a failing receiver is retried, then the signed body ends in the dead-letter queue with the reason', async () => {
  answer = 503;
  const { jobId } = await submit('/broken');
  await client().wait(jobId, { pollMs: 1, completion: { s3: m.s3, callback: delivery({ attempts: 3 }) } });
  expect(calls).toHaveLength(3);
  // Every attempt carries the same signed body.
  expect(new Set(calls.map((c) => c.headers[SIGNATURE_HEADER])).size).toBe(1);
  const dead = await dlqMessages();
  expect(dead).toHaveLength(1);
  expect(dead[0]).toMatchObject({ url: `https://receiver.test:${port}/broken`, reason: 'receiver answered HTTP 503', attempts: 3, body: { jobId, status: 'SUCCEEDED' } });
});

test('a host that resolves to a loopback address is refused at call time unless the stage allows it, and dead-lettered', async () => {
  const { jobId } = await submit('/private');
  await client().wait(jobId, { pollMs: 1, completion: { s3: m.s3, callback: delivery({ post: { ca: cert, resolve: toLoopback } }) } });
  expect(calls).toHaveLength(0);
  const dead = await dlqMessages();
  expect(dead).toHaveLength(1);
  expect(dead[0]).toMatchObject({ attempts: 1, reason: expect.stringContaining('127.0.0.1 is a private, loopback, link-local or reserved address') });
});

test('a receiver answering 4xx is not retried', async () => {
  answer = 410;
  const { jobId } = await submit('/gone');
  await client().wait(jobId, { pollMs: 1, completion: { s3: m.s3, callback: delivery({ attempts: 3 }) } });
  expect(calls).toHaveLength(1);
  expect(await dlqMessages()).toEqual([expect.objectContaining({ reason: 'receiver answered HTTP 410', attempts: 1 })]);
});

test.each([
  ['https://127.0.0.1/hook', '127.0.0.1'],
  ['https://10.1.2.3/hook', '10.1.2.3'],
  ['https://169.254.169.254/latest/meta-data', '169.254.169.254'],
  ['https://[::1]/hook', '::1'],
  ['https://[::ffff:192.168.0.1]/hook', '::ffff:c0a8:1'],
  ['https://[fe80::1]/hook', 'fe80::1'],
  ['https://localhost:8443/hook', 'localhost'],
  ['https://metadata.google.internal/x', 'metadata.google.internal'],
])('submit refuses callback URL %s naming the field and the address', async (url, shown) => {
  const err = await client()
    .submit({ operation: 'aggregate-defects', input: [], callbackUrl: url })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InvalidRequestError);
  const e = (err as InvalidRequestError).errors.find((x) => x.field === 'callbackUrl')!;
  expect(e.message).toContain(shown);
  expect(e.message).toContain('public address or name');
});

test('address rules: private, loopback, link-local, mapped and reserved refused; public allowed; an allowed CIDR opens only its range', () => {
  for (const a of ['10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', '127.0.0.53', '169.254.169.254', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1', '224.0.0.1']) {
    expect([a, addressProblem(a)]).toEqual([a, expect.stringContaining('private, loopback, link-local or reserved')]);
  }
  for (const a of ['93.184.216.34', '2606:4700::1111', '8.8.8.8']) expect([a, addressProblem(a)]).toEqual([a, undefined]);
  const allowed = parseAllowedCidrs(['127.0.0.0/8']);
  expect(addressProblem('127.0.0.1', allowed)).toBeUndefined();
  expect(addressProblem('10.0.0.1', allowed)).toContain('private');
  expect(() => parseAllowedCidrs(['10.0.0.0/33'])).toThrow('callbackAllowedCidrs ("10.0.0.0/33") is not a CIDR');
});
