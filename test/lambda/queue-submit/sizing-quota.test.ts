import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { handleRecords, ORIGINAL_ID_ATTRIBUTE } from '../../../lambda/queue-submit';
import { BatchJobClient, quotaSettings, releaseQuota } from '../../../lib/client';
import { motoClientConfig } from '../../support/moto';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';
import { activeCount, createQuotaTable, recordingBatch } from '../../lib/client/moto-quota';

let m: MotoBatch;
let sqs: SQSClient;
let table: Awaited<ReturnType<typeof createQuotaTable>>;

async function receive(queueUrl: string, max = 10): Promise<SQSRecord[]> {
  const res = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: max, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 0 }),
  );
  return (res.Messages ?? []).map(
    (msg) =>
      ({
        messageId: msg.MessageId!,
        receiptHandle: msg.ReceiptHandle!,
        body: msg.Body!,
        attributes: msg.Attributes ?? {},
        messageAttributes: Object.fromEntries(Object.entries(msg.MessageAttributes ?? {}).map(([k, v]) => [k, { stringValue: v.StringValue, dataType: v.DataType }])),
        md5OfBody: msg.MD5OfBody!,
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:source',
        awsRegion: 'us-east-1',
      }) as SQSRecord,
  );
}

async function queues(name: string): Promise<{ source: string; dlq: string }> {
  const stamp = `${name}-${Date.now().toString(36)}`;
  return {
    // A 1 s visibility timeout, so a message the handler did not hide comes back at once.
    source: (await sqs.send(new CreateQueueCommand({ QueueName: `qs-src-${stamp}`, Attributes: { VisibilityTimeout: '1' } }))).QueueUrl!,
    dlq: (await sqs.send(new CreateQueueCommand({ QueueName: `qs-dlq-${stamp}` }))).QueueUrl!,
  };
}

/** What the Lambda service does after an invocation: deletes every record not reported as a batch item failure. */
async function settle(records: SQSRecord[], queueUrl: string, failures: { itemIdentifier: string }[]): Promise<void> {
  const failed = new Set(failures.map((f) => f.itemIdentifier));
  for (const r of records) if (!failed.has(r.messageId)) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  m = await createMotoBatch('queue-sizing');
  sqs = new SQSClient(motoClientConfig());
  table = await createQuotaTable('queue');
});

test('a message asking for sizing out of bounds goes to the DLQ naming field, value and range; one in bounds is sized', async () => {
  const q = await queues('sizing');
  const rec = recordingBatch();
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: { ...m, batch: rec.batch }, fairShare: false });
  const bad = JSON.stringify({ operation: 'reproject', input: [], vcpus: 32, tenantId: 't1' });
  await sqs.send(new SendMessageCommand({ QueueUrl: q.source, MessageBody: bad }));
  await sqs.send(new SendMessageCommand({ QueueUrl: q.source, MessageBody: JSON.stringify({ operation: 'reproject', input: [], memoryMiB: 6144, tenantId: 't1' }) }));
  const { outcomes } = await handleRecords(await receive(q.source), { client, sqs, deadLetterQueueUrl: q.dlq, maxReceiveCount: 3, concurrency: 1 });
  expect(outcomes.map((o) => o.outcome).sort()).toEqual(['dead-lettered', 'submitted']);
  const dead = await receive(q.dlq);
  expect(dead.map((d) => d.body)).toEqual([bad]);
  expect(dead[0].messageAttributes['failure-reason'].stringValue).toMatch(/vcpus: "32" is not allowed; allowed: 1 to 16 vCPUs for reproject/);
  expect(rec.submitted.map((s) => s.containerOverrides?.resourceRequirements)).toEqual([
    [
      { type: 'VCPU', value: '1' },
      { type: 'MEMORY', value: '6144' },
    ],
  ]);
});

test('a message over its tenant\'s quota stays in the queue, hidden for the Retry-After, and becomes a job once a slot is free', async () => {
  const q = await queues('quota');
  const settings = quotaSettings({ tableName: table.tableName, dynamodb: table.dynamodb, config: { default: { maxActiveJobs: 1, submissionsPerMinute: 100 } }, activeRetryAfterSeconds: 4 });
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, quota: settings });
  const deps = { client, sqs, deadLetterQueueUrl: q.dlq, maxReceiveCount: 3, concurrency: 1, sourceQueueUrl: q.source };
  const body = (n: number) => JSON.stringify({ operation: 'aggregate-defects', input: [n], tenantId: 'queue-tenant' });
  await sqs.send(new SendMessageCommand({ QueueUrl: q.source, MessageBody: body(1) }));
  const firstRecords = await receive(q.source);
  const first = await handleRecords(firstRecords, deps);
  expect(first.outcomes[0]).toMatchObject({ outcome: 'submitted' });
  await settle(firstRecords, q.source, first.response.batchItemFailures);

  await sqs.send(new SendMessageCommand({ QueueUrl: q.source, MessageBody: body(2) }));
  const [second] = await receive(q.source);
  const refused = await handleRecords([second], deps);
  expect(refused.outcomes[0]).toMatchObject({ outcome: 'deferred', retryAfterSeconds: 4, reason: expect.stringMatching(/queue-tenant may have at most 1 active jobs/) });
  // Reported as a batch item failure (SQS keeps it), never dead-lettered.
  expect(refused.response.batchItemFailures).toEqual([{ itemIdentifier: second.messageId }]);
  expect(await receive(q.dlq)).toEqual([]);
  // Hidden for the Retry-After (4 s) rather than the queue's 1 s visibility timeout.
  await sleep(1500);
  expect(await receive(q.source)).toEqual([]);
  await sleep(3000);
  const again = await receive(q.source);
  expect(again.map((r) => r.body)).toEqual([body(2)]);

  expect(await releaseQuota(settings, 'queue-tenant', first.outcomes[0].jobId!)).toBe(true);
  const done = await handleRecords(again, deps);
  expect(done.outcomes[0]).toMatchObject({ outcome: 'submitted' });
  expect(await activeCount(table, 'queue-tenant')).toBe(1);
});

test('on its last receive a message over quota is sent again with a delay (same client token), not dead-lettered', async () => {
  const q = await queues('requeue');
  const settings = quotaSettings({ tableName: table.tableName, dynamodb: table.dynamodb, config: { default: { maxActiveJobs: 0, submissionsPerMinute: 100 } }, activeRetryAfterSeconds: 1 });
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false, quota: settings });
  const deps = { client, sqs, deadLetterQueueUrl: q.dlq, maxReceiveCount: 1, concurrency: 1, sourceQueueUrl: q.source };
  const message = JSON.stringify({ operation: 'aggregate-defects', input: [], tenantId: 'blocked' });
  await sqs.send(new SendMessageCommand({ QueueUrl: q.source, MessageBody: message }));
  const [original] = await receive(q.source);
  const res = await handleRecords([original], deps);
  expect(res.outcomes[0]).toMatchObject({ outcome: 'deferred', requeued: true, retryAfterSeconds: 1 });
  await settle([original], q.source, res.response.batchItemFailures);
  // Not a batch item failure: the original is deleted, its copy waits in the queue.
  expect(res.response.batchItemFailures).toEqual([]);
  expect(await receive(q.dlq)).toEqual([]);
  await sleep(1500);
  const copies = await receive(q.source);
  expect(copies.map((c) => c.body)).toEqual([message]);
  expect(copies[0].messageId).not.toBe(original.messageId);
  expect(copies[0].messageAttributes[ORIGINAL_ID_ATTRIBUTE].stringValue).toBe(original.messageId);
});

test('a re-sent copy keeps the original message id as its client token: both can never make two jobs', async () => {
  const q = await queues('token');
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false });
  const deps = { client, sqs, deadLetterQueueUrl: q.dlq, maxReceiveCount: 3, concurrency: 1, sourceQueueUrl: q.source };
  const message = JSON.stringify({ operation: 'aggregate-defects', input: [], tenantId: 'tok' });
  await sqs.send(new SendMessageCommand({ QueueUrl: q.source, MessageBody: message }));
  const [original] = await receive(q.source);
  await sqs.send(
    new SendMessageCommand({ QueueUrl: q.source, MessageBody: message, MessageAttributes: { [ORIGINAL_ID_ATTRIBUTE]: { DataType: 'String', StringValue: original.messageId } } }),
  );
  await sleep(1100);
  const both = await receive(q.source);
  const { outcomes } = await handleRecords(both, deps);
  expect(outcomes.map((o) => o.outcome).sort()).toEqual(['duplicate', 'submitted']);
  expect(new Set(outcomes.map((o) => o.jobId)).size).toBe(1);
});
