import { S3Client } from '@aws-sdk/client-s3';
import { generateAuthToken } from 'aws-msk-iam-sasl-signer-js';
import { Kafka, KafkaConfig, logLevel, Message, OauthbearerProviderResponse, ProducerConfig, RecordMetadata } from 'kafkajs';
import { RUN_ID_PATTERN, runPrefix } from '../planner/run-layout';
import { putJson } from '../shared/s3-objects';

/**
 * The run-finished message on Kafka: the same document as the SQS message body and the EventBridge detail
 * (the aggregator's RunSummary, `schemaVersion: 1`, or the failure summary of a run that failed before
 * aggregation), as UTF-8 JSON. Key: the run id, so every message of a run lands on one partition in order.
 */
export const DELIVERY_SCHEMA_VERSION = 1;
export const CONTENT_TYPE = 'application/json';

/** Bounds of one delivery: how long a dead broker can hold the run's last state. */
export const CONNECTION_TIMEOUT_MS = 3_000;
export const REQUEST_TIMEOUT_MS = 10_000;
export const DELIVERY_RETRIES = 2;

/** Where one Kafka target delivers, from the function's environment (set by the stack, never by a message). */
export interface KafkaTarget {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly region: string;
  readonly clientId: string;
}

const BROKER = /^[A-Za-z0-9.-]+:\d{1,5}$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/** Reads KAFKA_BROKERS (comma-separated host:port), KAFKA_TOPIC and AWS_REGION; errors name the variable, value and what is allowed. */
export function kafkaTargetFromEnv(env: NodeJS.ProcessEnv): KafkaTarget {
  const brokers = (env.KAFKA_BROKERS ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length === 0 || brokers.some((b) => !BROKER.test(b))) {
    throw new Error(`KAFKA_BROKERS (${JSON.stringify(env.KAFKA_BROKERS ?? '')}) is invalid; allowed: comma-separated host:port (the cluster's BootstrapBrokerStringSaslIam)`);
  }
  const topic = env.KAFKA_TOPIC ?? '';
  if (!TOPIC.test(topic)) throw new Error(`KAFKA_TOPIC (${JSON.stringify(topic)}) is invalid; allowed: 1-249 characters of A-Z a-z 0-9 . _ -`);
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('AWS_REGION is not set; allowed: the region of the MSK cluster (Lambda sets it)');
  return { brokers, topic, region, clientId: env.KAFKA_CLIENT_ID || 'cdk-batch-platform-delivery' };
}

/**
 * SASL/OAUTHBEARER token for MSK IAM auth: a SigV4-presigned `kafka-cluster:Connect` request, signed with
 * the credentials of the SDK's default provider chain (the Lambda role's, from its environment).
 */
export function mskIamTokenProvider(region: string): () => Promise<OauthbearerProviderResponse> {
  return async () => {
    const { token } = await generateAuthToken({ region });
    return { value: token };
  };
}

/** Client settings: TLS + SASL/OAUTHBEARER (MSK IAM), and short timeouts and few retries so a dead broker fails the delivery quickly. */
export function kafkaClientConfig(target: KafkaTarget, oauthBearerProvider = mskIamTokenProvider(target.region)): KafkaConfig {
  return {
    clientId: target.clientId,
    brokers: [...target.brokers],
    ssl: true,
    sasl: { mechanism: 'oauthbearer', oauthBearerProvider },
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { retries: DELIVERY_RETRIES, initialRetryTime: 300, maxRetryTime: 2_000 },
    logLevel: logLevel.ERROR,
  };
}

/**
 * Idempotent producer (the broker drops a duplicate of a retried batch): acks from all in-sync replicas
 * (send's `acks: -1`), one request in flight (kafkajs keeps sequence numbers in order only with one), and
 * no topic auto-creation (a mistyped topic fails instead of creating one). Retries are bounded so the
 * state machine gets an answer; a rerun of the delivery may then repeat the message (consumers dedupe by
 * runId + finishedAt).
 */
export const PRODUCER_CONFIG: ProducerConfig = {
  idempotent: true,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  retry: { retries: DELIVERY_RETRIES, initialRetryTime: 300, maxRetryTime: 2_000 },
};
export const ACKS_ALL = -1;

/** The key of a message: the run id (or the execution name of a run that failed before it had one). */
export function runIdOf(message: Record<string, unknown>): string {
  const id = message.runId ?? message.executionName;
  if (typeof id !== 'string' || !RUN_ID_PATTERN.test(id)) {
    throw new Error(`message runId (${JSON.stringify(id)}) is invalid; allowed: ${RUN_ID_PATTERN.source}`);
  }
  return id;
}

/** The Kafka record of a run message. */
export function kafkaMessage(message: Record<string, unknown>): Message {
  return {
    key: runIdOf(message),
    value: JSON.stringify(message),
    headers: { 'content-type': CONTENT_TYPE, 'schema-version': String(message.schemaVersion ?? DELIVERY_SCHEMA_VERSION) },
  };
}

export interface DeliveryOutcome {
  readonly target: string;
  readonly status: 'DELIVERED' | 'FAILED';
  readonly at: string;
  readonly partition?: number;
  readonly offset?: string;
  readonly error?: string;
}

/** Sends one message; any failure (connect, auth, produce) is thrown with the brokers and topic named. */
export async function sendToKafka(message: Record<string, unknown>, target: KafkaTarget, kafka: Kafka = new Kafka(kafkaClientConfig(target))): Promise<RecordMetadata> {
  const record = kafkaMessage(message);
  const producer = kafka.producer(PRODUCER_CONFIG);
  try {
    await producer.connect();
    const [meta] = await producer.send({ topic: target.topic, acks: ACKS_ALL, messages: [record] });
    return meta;
  } catch (err) {
    const e = err as Error;
    throw new KafkaDeliveryError(`delivery of run ${record.key as string} to Kafka topic ${target.topic} at ${target.brokers.join(',')} failed: ${e.name}: ${e.message}`);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

export class KafkaDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KafkaDeliveryFailed';
  }
}

/** Where a delivery outcome is recorded next to the run's summary (which it never touches). */
export const deliveryRecordKey = (runId: string, topic: string): string => `${runPrefix(runId)}deliveries/kafka-${topic}.json`;

export interface DeliverDeps {
  readonly s3: S3Client;
  readonly runsBucket: string;
  readonly kafka?: Kafka;
  readonly now?: () => Date;
}

/**
 * Delivers a run message and records the outcome in `runs/{runId}/deliveries/kafka-{topic}.json`. A failed
 * delivery is recorded FAILED and rethrown (KafkaDeliveryFailed), so the state machine marks that target
 * failed; the run's summary.json and result stay as the aggregator wrote them.
 */
export async function deliverRunMessage(message: Record<string, unknown>, target: KafkaTarget, deps: DeliverDeps): Promise<DeliveryOutcome> {
  const runId = runIdOf(message);
  const name = `kafka:${target.topic}`;
  const at = (): string => (deps.now ?? (() => new Date()))().toISOString();
  let outcome: DeliveryOutcome;
  try {
    const meta = await sendToKafka(message, target, deps.kafka);
    outcome = { target: name, status: 'DELIVERED', at: at(), partition: meta.partition, offset: meta.baseOffset ?? meta.offset };
  } catch (err) {
    outcome = { target: name, status: 'FAILED', at: at(), error: (err as Error).message };
    await putJson(deps.s3, deps.runsBucket, deliveryRecordKey(runId, target.topic), outcome);
    throw err;
  }
  await putJson(deps.s3, deps.runsBucket, deliveryRecordKey(runId, target.topic), outcome);
  return outcome;
}
