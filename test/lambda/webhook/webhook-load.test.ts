import type { APIGatewayProxyEvent } from 'aws-lambda';
import { DynamoDBClient, ScanCommand, ScanCommandOutput } from '@aws-sdk/client-dynamodb';
import { DynamoCompletionStore } from '../../../lambda/webhook/completion-store';
import { createWebhookHandler } from '../../../lambda/webhook/index';
import { TestSigner } from './sns-signer';
import { createWebhookFixture, TEST_PATH_SECRET, TEST_TOPIC_ARN } from './webhook-fixture';

const TABLE = 'webhook-load-test-completions';
const TOPIC = TEST_TOPIC_ARN;
const JOBS = 1000;
const DUPLICATES = 150;

let signer: TestSigner;
let ddb: DynamoDBClient;

beforeAll(async () => {
  ({ signer, ddb } = await createWebhookFixture(TABLE));
});

afterAll(() => signer.cleanup());

async function scanAll(): Promise<Array<Record<string, { S?: string }>>> {
  const items: Array<Record<string, { S?: string }>> = [];
  let start: ScanCommandOutput['LastEvaluatedKey'];
  do {
    const page = await ddb.send(new ScanCommand({ TableName: TABLE, ExclusiveStartKey: start }));
    items.push(...((page.Items ?? []) as Array<Record<string, { S?: string }>>));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

test('1,000 notifications delivered concurrently, some twice, are each recorded exactly once', async () => {
  let certFetches = 0;
  const handler = createWebhookHandler({
    pathSecret: TEST_PATH_SECRET,
    store: new DynamoCompletionStore(ddb, TABLE),
    fetchCertificate: async () => {
      certFetches += 1;
      return signer.certPem;
    },
    confirmSubscription: async () => undefined,
    allowedTopicArns: [TOPIC],
    outputBucket: 'staging',
    sink: () => undefined,
  });
  const messages = Array.from({ length: JOBS }, (_, i) =>
    signer.sign({
      Type: 'Notification',
      MessageId: `load-${i}`,
      TopicArn: TOPIC,
      Message: JSON.stringify({ jobId: `load-job-${i}`, status: i % 10 === 0 ? 'FAILED' : 'SUCCEEDED' }),
      Timestamp: new Date().toISOString(),
    }),
  );
  // The same messages again (SNS at-least-once redelivery), interleaved with the originals.
  const deliveries = [...messages, ...messages.slice(0, DUPLICATES)].map((m, i) => ({ m, order: (i * 7919) % (JOBS + DUPLICATES) }));
  deliveries.sort((a, b) => a.order - b.order);

  const responses = await Promise.all(
    deliveries.map(({ m }) => handler({ httpMethod: 'POST', pathParameters: { secret: TEST_PATH_SECRET }, body: JSON.stringify(m), isBase64Encoded: false, headers: {} } as unknown as APIGatewayProxyEvent)),
  );

  expect(responses.every((r) => r.statusCode === 200)).toBe(true);
  const outcomes = responses.map((r) => JSON.parse(r.body).outcome);
  expect(outcomes.filter((o) => o === 'recorded')).toHaveLength(JOBS);
  expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(DUPLICATES);
  const items = await scanAll();
  expect(items).toHaveLength(JOBS);
  expect(new Set(items.map((i) => i.jobId.S)).size).toBe(JOBS);
  expect(certFetches).toBe(1);
});
