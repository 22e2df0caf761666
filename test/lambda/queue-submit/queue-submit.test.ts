import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { BatchClient } from '@aws-sdk/client-batch';
import { handleRecords } from '../../../lambda/queue-submit';
import { BatchJobClient } from '../../../lib/client';
import { motoClientConfig } from '../../support/moto';
import { createMotoBatch, MotoBatch } from '../../lib/client/moto-batch';

let m: MotoBatch;
let sqs: SQSClient;
let sourceUrl: string;
let dlqUrl: string;

/** Receives messages from moto SQS and shapes them as the Lambda SQS event records. */
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
        messageAttributes: Object.fromEntries(
          Object.entries(msg.MessageAttributes ?? {}).map(([k, v]) => [k, { stringValue: v.StringValue, dataType: v.DataType }]),
        ),
        md5OfBody: msg.MD5OfBody!,
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:source',
        awsRegion: 'us-east-1',
      }) as SQSRecord,
  );
}

function deps(client: BatchJobClient) {
  return { client, sqs, deadLetterQueueUrl: dlqUrl, maxReceiveCount: 3, concurrency: 5 };
}

beforeAll(async () => {
  m = await createMotoBatch('queue');
  sqs = new SQSClient(motoClientConfig());
  const stamp = Date.now().toString(36);
  sourceUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `queue-submit-src-${stamp}` }))).QueueUrl!;
  dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `queue-submit-dlq-${stamp}` }))).QueueUrl!;
});

test('valid messages become jobs and bad ones end in the DLQ with their reason', async () => {
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false });
  await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: JSON.stringify({ operation: 'aggregate-defects', input: [{ a: 1 }], tenantId: 't1' }) }));
  await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: 'not json' }));
  await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: JSON.stringify({ operation: 'Bad Op', input: {} }) }));
  const records = await receive(sourceUrl);
  expect(records).toHaveLength(3);

  const { response, outcomes } = await handleRecords(records, deps(client));
  expect(response.batchItemFailures).toEqual([]);
  const submitted = outcomes.filter((o) => o.outcome === 'submitted');
  expect(submitted).toHaveLength(1);
  expect((await client.status(submitted[0].jobId!)).tenantId).toBe('t1');

  const dead = await receive(dlqUrl);
  expect(dead.map((d) => d.body).sort()).toEqual([JSON.stringify({ operation: 'Bad Op', input: {} }), 'not json'].sort());
  const reasons = Object.fromEntries(dead.map((d) => [d.body, d.messageAttributes['failure-reason'].stringValue]));
  expect(reasons['not json']).toMatch(/must be a JSON object/);
  expect(reasons[JSON.stringify({ operation: 'Bad Op', input: {} })]).toMatch(/operation: operation must be a lower-case name/);
});

test('a redelivered message does not create a second job (the message id is the client token)', async () => {
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: m, fairShare: false });
  await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: JSON.stringify({ operation: 'aggregate-defects', input: {} }) }));
  const records = await receive(sourceUrl, 1);
  const first = await handleRecords(records, deps(client));
  const again = await handleRecords(records, deps(client));
  expect(first.outcomes[0]).toMatchObject({ outcome: 'submitted' });
  expect(again.outcomes[0]).toMatchObject({ outcome: 'duplicate', jobId: first.outcomes[0].jobId });
});

test('a transient failure is retried by SQS, and on the last receive goes to the DLQ with its reason', async () => {
  // Batch unreachable: every SubmitJob fails with a network error.
  const dead = new BatchClient({ ...motoClientConfig(), endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
  const client = new BatchJobClient({ jobQueue: m.jobQueue, jobDefinition: m.jobDefinition, inputBucket: m.bucket, clients: { ...m, batch: dead }, fairShare: false, maxRetries: 0 });
  await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: JSON.stringify({ operation: 'aggregate-defects', input: {}, clientToken: 'transient' }) }));
  const [record] = await receive(sourceUrl, 1);
  const early = await handleRecords([{ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: '1' } }], deps(client));
  expect(early.response.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
  const last = await handleRecords([{ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: '3' } }], deps(client));
  expect(last.response.batchItemFailures).toEqual([]);
  const [dlq] = await receive(dlqUrl, 1);
  expect(dlq.body).toBe(record.body);
  expect(dlq.messageAttributes['failure-reason'].stringValue).toMatch(/gave up after 3 receives/);
  expect(dlq.messageAttributes['source-message-id'].stringValue).toBe(record.messageId);
});
