import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { StateMachine } from 'aws-local-stepfunctions';
import { deliverRunMessage, deliveryRecordKey, kafkaClientConfig, kafkaTargetFromEnv } from '../../../lambda/deliver-kafka/kafka';
import { summaryKey } from '../../../lambda/planner/run-layout';
import { putJson, readJson } from '../../../lambda/shared/s3-objects';
import { AslDefinition, resolveDefinition } from '../../../lib/local/definition';
import { ensurePromiseWithResolvers } from '../../../lib/local/run-local';
import { STAGES } from '../../../lib/stacks/stage-config';
import { ChunkedProcessingStack } from '../../../lib/workflow/chunked-processing-stack';
import { DeliveryTarget, DeliveryTargets } from '../../../lib/workflow/delivery-targets';
import { Kafka } from 'kafkajs';
import { freePort } from '../../support/moto-global-setup';
import { motoClientConfig } from '../../support/moto';

// aws-local-stepfunctions calls Promise.withResolvers (Node 22) on its Catch path: the local runner's polyfill.
ensurePromiseWithResolvers();

const ENV = { account: '123456789012', region: 'eu-west-1' };
const CLUSTER_ARN = 'arn:aws:kafka:eu-west-1:123456789012:cluster/runs-cluster/0a1b2c3d-4e5f-6789-abcd-ef0123456789-2';
// Unique per run: suites share one moto_server in parallel, so nothing here resets it.
const BUCKET = `delivery-run-bucket-${process.pid}`;

/** The synthesized workflow's delivery part: DeliverSummary and every state after it. */
function deliveryDefinition(kafkaBrokers?: string): AslDefinition {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const base = new Stack(app, 'Base', { env: ENV });
  const targets = (): DeliveryTarget[] | undefined => {
    if (!kafkaBrokers) return undefined;
    const vpc = new ec2.Vpc(base, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    return [DeliveryTargets.sqs(), DeliveryTargets.kafka({ clusterArn: CLUSTER_ARN, bootstrapBrokers: kafkaBrokers, topic: 'run-summaries', vpc })];
  };
  const deliveryTargets = targets();
  const stack = new ChunkedProcessingStack(app, 'ChunkedProcessing-test', {
    env: ENV,
    stage: STAGES.dev,
    jobQueue: batch.JobQueue.fromJobQueueArn(base, 'Queue', 'arn:aws:batch:eu-west-1:123456789012:job-queue/workers'),
    jobDefinition: batch.EcsJobDefinition.fromJobDefinitionArn(base, 'JobDef', 'arn:aws:batch:eu-west-1:123456789012:job-definition/chunk:1'),
    bucket: s3.Bucket.fromBucketName(base, 'Bucket', BUCKET),
    settings: deliveryTargets ? { deliveryTargets } : {},
  });
  const { definition } = resolveDefinition(Template.fromStack(stack).toJSON() as never);
  const names = ['DeliverSummary', 'CheckDeliveries', 'AnyDeliveryFailed', 'DeliveryFailed', 'CheckRunStatus', 'RunFailed', 'RunFinished'];
  return { StartAt: 'DeliverSummary', States: Object.fromEntries(names.map((n) => [n, definition.States[n]])) };
}

const summary = {
  schemaVersion: 1,
  runId: 'run-7',
  identity: { customerId: 'c1', tenantId: 't1', batchId: 'b1', deployment: 'prod', snapshotId: 's1' },
  status: 'SUCCEEDED',
  operation: 'aggregate-defects',
  chunks: { total: 1, succeeded: 1, failed: 0 },
  records: 3,
  rejected: 0,
  failedChunks: [],
  toleratedFailurePercentage: 0,
  result: { bucket: BUCKET, key: 'runs/run-7/result.json' },
  summary: { bucket: BUCKET, key: 'runs/run-7/summary.json' },
  finishedAt: '2026-11-28T12:00:00.000Z',
};

describe('delivery states of the synthesized workflow, run by a local ASL interpreter', () => {
  const s3c = new S3Client(motoClientConfig());
  const sqs = new SQSClient(motoClientConfig());
  let queueUrl: string;
  let defaultTargets: AslDefinition;
  let withKafka: AslDefinition;
  let brokers: string;

  beforeAll(async () => {
    // Synthesized first: the interpreter runs need moto only afterwards.
    brokers = `127.0.0.1:${await freePort()}`; // nothing listens there
    defaultTargets = deliveryDefinition();
    withKafka = deliveryDefinition(brokers);
    await s3c.send(new CreateBucketCommand({ Bucket: BUCKET }));
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `run-summaries-${process.pid}-${Date.now() % 1000000}` }))).QueueUrl!;
  });

  // SendSummaryToQueue's Parameters, as the definition builds them, sent to a moto queue.
  const sendToMoto = async (params: unknown) => {
    const { MessageBody } = params as { MessageBody: unknown };
    const res = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: typeof MessageBody === 'string' ? MessageBody : JSON.stringify(MessageBody) }));
    return { MessageId: res.MessageId };
  };
  const receive = async (): Promise<unknown[]> => {
    const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    return (res.Messages ?? []).map((m) => JSON.parse(m.Body!));
  };

  test('the SQS target delivers the versioned run message, received and parsed from moto', async () => {
    const machine = new StateMachine(defaultTargets as never, { validationOptions: { checkArn: false } });
    const events: unknown[] = [];
    const out = await machine.run({ ...summary }, {
      overrides: {
        taskResourceLocalHandlers: {
          SendSummaryToQueue: sendToMoto,
          PutSummaryEvent: async (params: unknown) => {
            events.push((params as { Entries: { Detail: unknown }[] }).Entries[0].Detail);
            return { Entries: [{ EventId: 'e-1' }], FailedEntryCount: 0 };
          },
        } as never,
      },
    }).result;
    expect(await receive()).toEqual([summary]);
    expect(events).toEqual([summary]);
    expect((out as { delivery: unknown[] }).delivery).toEqual([
      expect.objectContaining({ target: 'SendSummaryToQueue', status: 'DELIVERED' }),
      expect.objectContaining({ target: 'PutSummaryEvent', status: 'DELIVERED', failedEntryCount: 0 }),
    ]);
  });

  test('an unreachable Kafka broker marks that delivery failed, SQS still gets the message, the summary stays, the execution ends DeliveryFailed', async () => {
    await putJson(s3c, BUCKET, summaryKey('run-7'), summary);
    const machine = new StateMachine(withKafka as never, { validationOptions: { checkArn: false } });
    const run = machine.run(summary, {
      overrides: {
        taskResourceLocalHandlers: {
          SendSummaryToQueue: sendToMoto,
          // The Kafka task's payload, handed to the real delivery code with the function's environment.
          SendSummaryToKafka: async (params: unknown) => {
            const target = kafkaTargetFromEnv({ KAFKA_BROKERS: brokers, KAFKA_TOPIC: 'run-summaries', AWS_REGION: 'eu-west-1' });
            const kafka = new Kafka(kafkaClientConfig(target, async () => ({ value: 'token' })));
            const { message } = (params as { Payload: { message: Record<string, unknown> } }).Payload;
            return { Payload: await deliverRunMessage(message, target, { s3: s3c, runsBucket: BUCKET, kafka }) };
          },
        } as never,
      },
    });
    const failure = await run.result.then(() => undefined, (err: Error & { cause?: Error }) => err);
    expect(failure?.cause?.name).toBe('DeliveryFailed');
    expect(await receive()).toEqual([summary]);
    const record = await readJson<{ status: string; error: string }>(s3c, BUCKET, deliveryRecordKey('run-7', 'run-summaries'));
    expect(record?.status).toBe('FAILED');
    expect(record?.error).toContain(`ECONNREFUSED ${brokers}`);
    expect(await readJson(s3c, BUCKET, summaryKey('run-7'))).toEqual(summary);
  });
});
