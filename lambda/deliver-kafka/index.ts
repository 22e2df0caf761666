import { S3Client } from '@aws-sdk/client-s3';
import { Kafka } from 'kafkajs';
import { deliverRunMessage, DeliveryOutcome, kafkaClientConfig, KafkaTarget, kafkaTargetFromEnv } from './kafka';

/** The DeliverSummaryToKafka state's payload: the run message, exactly as the other targets get it. */
export interface DeliverEvent {
  readonly message: Record<string, unknown>;
}

let live: { target: KafkaTarget; kafka: Kafka; s3: S3Client; runsBucket: string } | undefined;

/** One function per Kafka target: KAFKA_BROKERS, KAFKA_TOPIC and RUNS_BUCKET come from the stack. */
export async function handler(event: DeliverEvent): Promise<DeliveryOutcome> {
  if (!live) {
    const runsBucket = process.env.RUNS_BUCKET;
    if (!runsBucket) throw new Error('RUNS_BUCKET is not set: the Kafka delivery does not know where to record its outcome');
    const target = kafkaTargetFromEnv(process.env);
    // Client at module scope: a warm Lambda reuses its token provider and broker metadata.
    live = { target, kafka: new Kafka(kafkaClientConfig(target)), s3: new S3Client({}), runsBucket };
  }
  if (!event || typeof event.message !== 'object' || event.message === null || Array.isArray(event.message)) {
    throw new Error(`event.message (${JSON.stringify(event?.message)}) is invalid; allowed: the run's summary object`);
  }
  return deliverRunMessage(event.message, live.target, live);
}
