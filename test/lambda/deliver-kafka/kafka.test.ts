import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Kafka } from 'kafkajs';
import {
  ACKS_ALL,
  deliverRunMessage,
  deliveryRecordKey,
  kafkaClientConfig,
  kafkaMessage,
  kafkaTargetFromEnv,
  mskIamTokenProvider,
  PRODUCER_CONFIG,
  runIdOf,
} from '../../../lambda/deliver-kafka/kafka';
import { summaryKey } from '../../../lambda/planner/run-layout';
import { putJson, readJson } from '../../../lambda/shared/s3-objects';
import { freePort } from '../../support/moto-global-setup';
import { motoClientConfig } from '../../support/moto';

// kafkajs's own OAUTHBEARER authenticator (what runs after the SASL handshake with a broker).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const oauthBearerAuthenticator = require('kafkajs/src/broker/saslAuthenticator/oauthBearer') as (sasl: unknown) => (args: {
  host: string;
  port: number;
  logger: unknown;
  saslAuthenticate: (a: { request: { encode: () => Promise<Buffer> } }) => Promise<void>;
}) => { authenticate: () => Promise<void> };

const summary = {
  schemaVersion: 1,
  runId: 'run-42',
  identity: { customerId: 'c1', tenantId: 't1', batchId: 'b1', deployment: 'prod', snapshotId: 's1' },
  status: 'SUCCEEDED',
  operation: 'aggregate-defects',
  chunks: { total: 2, succeeded: 2, failed: 0 },
  records: 10,
  rejected: 0,
  failedChunks: [],
  toleratedFailurePercentage: 0,
  result: { bucket: 'runs-bucket', key: 'runs/run-42/result.json' },
  summary: { bucket: 'runs-bucket', key: 'runs/run-42/summary.json' },
  finishedAt: '2026-11-28T12:00:00.000Z',
};

describe('Kafka delivery message and producer', () => {
  test('the record is keyed by run id and carries the same versioned JSON as SQS and EventBridge', () => {
    const m = kafkaMessage(summary);
    expect(m.key).toBe('run-42');
    expect(JSON.parse(String(m.value))).toEqual(summary);
    expect(m.headers).toEqual({ 'content-type': 'application/json', 'schema-version': '1' });
  });

  test('a failure summary (no runId yet) is keyed by its execution name; an unsafe id is refused', () => {
    expect(runIdOf({ status: 'FAILED', executionName: 'exec-1' })).toBe('exec-1');
    expect(() => runIdOf({ runId: '../other-tenant' })).toThrow('message runId ("../other-tenant") is invalid; allowed:');
  });

  test('the producer is idempotent with acks from all replicas and one request in flight, and kafkajs accepts it', () => {
    expect(PRODUCER_CONFIG).toMatchObject({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    expect(ACKS_ALL).toBe(-1);
    const target = { brokers: ['127.0.0.1:9098'], topic: 'runs', region: 'eu-west-1', clientId: 'test' };
    const producer = new Kafka(kafkaClientConfig(target)).producer(PRODUCER_CONFIG);
    expect(typeof producer.send).toBe('function');
    // kafkajs itself refuses an idempotent producer without retries: the flag reaches its real code.
    expect(() => new Kafka(kafkaClientConfig(target)).producer({ ...PRODUCER_CONFIG, retry: { retries: 0 } })).toThrow(/Idempotent producer must allow retries/);
  });

  test('target settings come from the environment, with errors naming variable, value and what is allowed', () => {
    expect(kafkaTargetFromEnv({ KAFKA_BROKERS: 'b-1.x.kafka.eu-west-1.amazonaws.com:9098,b-2.x:9098', KAFKA_TOPIC: 'runs.v1', AWS_REGION: 'eu-west-1' })).toEqual({
      brokers: ['b-1.x.kafka.eu-west-1.amazonaws.com:9098', 'b-2.x:9098'],
      topic: 'runs.v1',
      region: 'eu-west-1',
      clientId: 'cdk-batch-platform-delivery',
    });
    expect(() => kafkaTargetFromEnv({ KAFKA_BROKERS: 'http://b-1:9098', KAFKA_TOPIC: 'runs', AWS_REGION: 'eu-west-1' })).toThrow(
      'KAFKA_BROKERS ("http://b-1:9098") is invalid; allowed: comma-separated host:port',
    );
    expect(() => kafkaTargetFromEnv({ KAFKA_BROKERS: 'b:9098', KAFKA_TOPIC: 'a topic', AWS_REGION: 'eu-west-1' })).toThrow('KAFKA_TOPIC ("a topic") is invalid');
  });
});

describe('MSK IAM token (SASL/OAUTHBEARER)', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test('is a SigV4-presigned kafka-cluster:Connect request signed with the SDK credential chain, and kafkajs sends it as the bearer token', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIDMOTOSTYLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    const target = { brokers: ['127.0.0.1:9098'], topic: 'runs', region: 'eu-west-1', clientId: 'test' };
    const config = kafkaClientConfig(target);
    const sasl = config.sasl as { mechanism: string; oauthBearerProvider: () => Promise<{ value: string }> };
    expect(sasl.mechanism).toBe('oauthbearer');
    expect(config.ssl).toBe(true);

    const { value } = await sasl.oauthBearerProvider();
    const url = new URL(Buffer.from(value, 'base64url').toString('utf8'));
    expect(url.hostname).toBe('kafka.eu-west-1.amazonaws.com');
    expect(url.searchParams.get('Action')).toBe('kafka-cluster:Connect');
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^AKIDMOTOSTYLE\/\d{8}\/eu-west-1\/kafka-cluster\/aws4_request$/);
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);

    let sent = '';
    await oauthBearerAuthenticator(sasl)({
      host: '127.0.0.1',
      port: 9098,
      logger: { debug: () => undefined },
      saslAuthenticate: async ({ request }) => {
        sent = (await request.encode()).toString('utf8');
      },
    }).authenticate();
    expect(sent).toContain(`n,,\u0001auth=Bearer ${value}\u0001\u0001`);
  });

  test('fails clearly when the credential chain has no credentials', async () => {
    process.env.AWS_ACCESS_KEY_ID = '';
    process.env.AWS_SECRET_ACCESS_KEY = '';
    process.env.AWS_CONFIG_FILE = '/nonexistent';
    process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    delete process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
    delete process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
    await expect(mskIamTokenProvider('eu-west-1')()).rejects.toThrow(/credential/i);
  });
});

describe('delivery to an unreachable broker', () => {
  const s3 = new S3Client(motoClientConfig());
  // Unique per run: suites share one moto_server in parallel, so nothing here resets it.
  const bucket = `kafka-delivery-runs-${process.pid}-${Date.now() % 1000000}`;

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  test('fails with the brokers and topic named, records the delivery FAILED and leaves the summary as it was', async () => {
    await putJson(s3, bucket, summaryKey('run-42'), summary);
    const port = await freePort(); // closed: nothing listens on it
    const target = { brokers: [`127.0.0.1:${port}`], topic: 'runs', region: 'eu-west-1', clientId: 'test' };
    const kafka = new Kafka(kafkaClientConfig(target, async () => ({ value: 'unused' })));
    const now = () => new Date('2026-11-28T12:01:00.000Z');

    await expect(deliverRunMessage(summary, target, { s3, runsBucket: bucket, kafka, now })).rejects.toThrow(
      new RegExp(`^delivery of run run-42 to Kafka topic runs at 127\\.0\\.0\\.1:${port} failed: KafkaJS\\w+: Connection error: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`),
    );
    const record = await readJson<Record<string, unknown>>(s3, bucket, deliveryRecordKey('run-42', 'runs'));
    expect(record).toMatchObject({ target: 'kafka:runs', status: 'FAILED', at: '2026-11-28T12:01:00.000Z' });
    expect(String(record?.error)).toContain(`127.0.0.1:${port}`);
    expect(await readJson(s3, bucket, summaryKey('run-42'))).toEqual(summary);
  });
});
