import { App, Size, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RUN_DIMENSION_SETS, RUN_METRIC_NAMESPACE } from '../../../lambda/aggregate/run-metrics';
import { resolveDefinition } from '../../../lib/local/definition';
import { STAGES } from '../../../lib/stacks/stage-config';
import { ChunkJobDefinition } from '../../../lib/workflow/chunk-job-definition';
import { ChunkedProcessingSettings, ChunkedProcessingStack } from '../../../lib/workflow/chunked-processing-stack';
import { DeliveryTarget, DeliveryTargets } from '../../../lib/workflow/delivery-targets';
import { RUN_DIMENSIONS, WORKFLOW_METRIC_NAMESPACE } from '../../../lib/workflow/workflow-dashboard';
import { cfnLintFindings, nagFindings } from '../../support/compliance';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

const ENV = { account: '123456789012', region: 'eu-west-1' };
const CLUSTER_ARN = 'arn:aws:kafka:eu-west-1:123456789012:cluster/runs-cluster/0a1b2c3d-4e5f-6789-abcd-ef0123456789-2';
const BROKERS = 'b-1.runscluster.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.runscluster.abc123.c2.kafka.eu-west-1.amazonaws.com:9098';

function build(targets?: (base: Stack) => DeliveryTarget[], settings: ChunkedProcessingSettings = {}): { app: App; stack: ChunkedProcessingStack } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const base = new Stack(app, 'Base', { env: ENV });
  const stack = new ChunkedProcessingStack(app, 'ChunkedProcessing-test', {
    env: ENV,
    stage: STAGES.dev,
    jobQueue: batch.JobQueue.fromJobQueueArn(base, 'Queue', 'arn:aws:batch:eu-west-1:123456789012:job-queue/workers'),
    jobDefinition: batch.EcsJobDefinition.fromJobDefinitionArn(base, 'JobDef', 'arn:aws:batch:eu-west-1:123456789012:job-definition/chunk:1'),
    bucket: s3.Bucket.fromBucketName(base, 'Bucket', 'work-bucket'),
    inputBuckets: [s3.Bucket.fromBucketName(base, 'Inputs', 'input-bucket')],
    settings: { ...settings, ...(targets ? { deliveryTargets: targets(base) } : {}) },
  });
  return { app, stack };
}

function kafkaTargets(base: Stack): DeliveryTarget[] {
  const vpc = new ec2.Vpc(base, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  return [
    DeliveryTargets.sqs(),
    DeliveryTargets.eventBridge(),
    DeliveryTargets.kafka({ clusterArn: CLUSTER_ARN, bootstrapBrokers: BROKERS, topic: 'run-summaries', vpc }),
  ];
}

describe('delivery targets', () => {
  const { app, stack } = build(kafkaTargets);
  const template = Template.fromStack(stack);
  const { definition } = resolveDefinition(template.toJSON() as never);
  const deliver = definition.States.DeliverSummary as unknown as { Branches: { StartAt: string; States: Record<string, Record<string, unknown>> }[] };

  test('every target is one branch of the delivery, each catching its own failure', () => {
    expect(deliver.Branches.map((b) => b.StartAt)).toEqual(['SendSummaryToQueue', 'PutSummaryEvent', 'SendSummaryToKafka']);
    for (const b of deliver.Branches) {
      expect(b.States[b.StartAt].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: `${b.StartAt}Failed` }]);
      expect(b.States[`${b.StartAt}Failed`].Parameters).toEqual({ target: b.StartAt, status: 'FAILED', 'error.$': '$.failure.Error', 'cause.$': '$.failure.Cause' });
    }
    expect(aslValidator(definition).isValid).toBe(true);
  });

  test('a failed target ends the execution DeliveryFailed after all targets were tried; otherwise the run status decides', () => {
    expect(definition.States.CheckDeliveries).toMatchObject({ Parameters: { 'anyFailed.$': "States.ArrayContains($.delivery[*].status, 'FAILED')" }, Next: 'AnyDeliveryFailed' });
    expect(definition.States.AnyDeliveryFailed).toMatchObject({
      Choices: [{ Variable: '$.deliveryCheck.anyFailed', BooleanEquals: true, Next: 'DeliveryFailed' }],
      Default: 'CheckRunStatus',
    });
    expect(definition.States.DeliveryFailed).toMatchObject({ Type: 'Fail', Error: 'DeliveryFailed' });
  });

  test('the Kafka target gets the run message unchanged, from a Lambda in the VPC with the brokers and topic in its environment', () => {
    const kafka = deliver.Branches[2].States.SendSummaryToKafka as { Parameters: { Payload: unknown } };
    expect(kafka.Parameters.Payload).toEqual({ 'message.$': '$' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ KAFKA_BROKERS: BROKERS, KAFKA_TOPIC: 'run-summaries', RUNS_BUCKET: 'work-bucket' }) },
      VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }),
    });
  });

  test('the IAM policy allows connecting to the cluster and writing only to the topic', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: ['kafka-cluster:Connect', 'kafka-cluster:WriteDataIdempotently'], Resource: CLUSTER_ARN }),
          Match.objectLike({
            Action: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData'],
            Resource: 'arn:aws:kafka:eu-west-1:123456789012:topic/runs-cluster/0a1b2c3d-4e5f-6789-abcd-ef0123456789-2/run-summaries',
          }),
        ]),
      },
    });
  });

  test('cdk-nag and cfn-lint are clean with a Kafka target', () => {
    expect(nagFindings(app)).toEqual([]);
    expect(cfnLintFindings(template.toJSON())).toBe('');
  });

  test('the default targets keep the summary queue and the default bus', () => {
    const { definition: d } = resolveDefinition(Template.fromStack(build().stack).toJSON() as never);
    const branches = (d.States.DeliverSummary as unknown as { Branches: { StartAt: string }[] }).Branches;
    expect(branches.map((b) => b.StartAt)).toEqual(['SendSummaryToQueue', 'PutSummaryEvent']);
  });
});

describe('delivery target validation', () => {
  const vpcOf = (base: Stack) => new ec2.Vpc(base, 'Vpc', { maxAzs: 2, natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  test.each<[string, (base: Stack) => DeliveryTarget[], string]>([
    ['an empty list', () => [], 'deliveryTargets ("0 targets") is invalid; allowed: 1 to 10 targets of type sqs, eventbridge, kafka'],
    ['an unknown type', () => [{ type: 'kinesis' } as unknown as DeliveryTarget], 'deliveryTargets[0].type ("kinesis") is not a delivery target type; allowed: sqs, eventbridge, kafka'],
    ['the default queue twice', () => [DeliveryTargets.sqs(), DeliveryTargets.sqs()], 'deliveryTargets[1].queue ("the workflow\'s summary queue") is listed twice'],
    ['a bad cluster ARN', (b) => [DeliveryTargets.kafka({ clusterArn: 'arn:aws:kafka:eu-west-1:1:cluster/x', bootstrapBrokers: BROKERS, topic: 't', vpc: vpcOf(b) })], 'deliveryTargets[0].clusterArn ("arn:aws:kafka:eu-west-1:1:cluster/x") is invalid; allowed: a literal MSK cluster ARN'],
    ['a broker without a port', (b) => [DeliveryTargets.kafka({ clusterArn: CLUSTER_ARN, bootstrapBrokers: 'b-1.example', topic: 't', vpc: vpcOf(b) })], 'deliveryTargets[0].bootstrapBrokers ("b-1.example") is invalid; allowed: comma-separated host:port'],
    ['a bad topic', (b) => [DeliveryTargets.kafka({ clusterArn: CLUSTER_ARN, bootstrapBrokers: BROKERS, topic: 'run summaries', vpc: vpcOf(b) })], 'deliveryTargets[0].topic ("run summaries") is invalid; allowed: 1-249 characters'],
  ])('refuses %s, naming the field, the value and what is allowed', (_name, targets, message) => {
    expect(() => build(targets)).toThrow(message);
  });

  test('refuses summaryQueue together with deliveryTargets', () => {
    const app = new App();
    const base = new Stack(app, 'B');
    expect(() => build(() => [DeliveryTargets.sqs()], { summaryQueue: new sqs.Queue(base, 'Q') })).toThrow('summaryQueue/eventBus (set) cannot be combined with deliveryTargets');
  });
});

describe('workflow dashboard', () => {
  const template = Template.fromStack(build().stack);
  const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));

  test('has the seed widgets', () => {
    for (const title of [
      'Execution time (Step Functions)',
      'Lambda duration (p95)',
      'Lambda errors and throttles',
      'Batch jobs (chunk queue)',
      'S3 operations on runs/',
      'Processing progress (all runs, by deployment)',
      'Records processed per run',
      'Error rates',
      'Error types (state machine log)',
      'Resource utilisation: Batch containers (Container Insights)',
    ]) {
      expect(body).toContain(`\\"title\\":\\"${title}`);
    }
  });

  test('reads Step Functions ExecutionTime, the S3 request metrics of the runs/ filter and per-run progress with the identifying fields', () => {
    expect(body).toContain('\\"AWS/States\\",\\"ExecutionTime\\"');
    expect(body).toContain('\\"AWS/S3\\",\\"GetRequests\\",\\"BucketName\\",\\"work-bucket\\",\\"FilterId\\",\\"RunsPrefix\\"');
    expect(body).toContain(`SEARCH('{${WORKFLOW_METRIC_NAMESPACE},Deployment,CustomerId,TenantId,BatchId,SnapshotId,RunId} MetricName=\\\\\\"RecordsProcessed\\\\\\"'`);
    expect(body).toContain('\\"AWS/Lambda\\",\\"Duration\\"');
  });

  test('uses the namespace and per-run dimensions the runtime writes', () => {
    expect(WORKFLOW_METRIC_NAMESPACE).toBe(RUN_METRIC_NAMESPACE);
    expect(RUN_DIMENSION_SETS).toContainEqual([...RUN_DIMENSIONS]);
  });
});

describe('ChunkJobDefinition', () => {
  const jobIo = (stack: Stack) => ({ inputBucket: s3.Bucket.fromBucketName(stack, 'In', 'in-bucket'), outputBucket: s3.Bucket.fromBucketName(stack, 'Out', 'out-bucket') });

  test('defaults to 4 vCPU / 8 GiB on EC2 with WORKER_THREADS = 4', () => {
    const stack = new Stack(new App(), 'S');
    const def = new ChunkJobDefinition(stack, 'Chunk', jobIo(stack));
    expect(def.vCpus).toBe(4);
    const [jd] = Object.values(Template.fromStack(stack).findResources('AWS::Batch::JobDefinition')) as { Properties: { PlatformCapabilities?: string[]; ContainerProperties: { ResourceRequirements: unknown[]; Environment: unknown[] } } }[];
    expect(jd.Properties.PlatformCapabilities ?? ['EC2']).toEqual(['EC2']);
    expect(jd.Properties.ContainerProperties.ResourceRequirements).toEqual(expect.arrayContaining([{ Type: 'VCPU', Value: '4' }, { Type: 'MEMORY', Value: '8192' }]));
    expect(jd.Properties.ContainerProperties.Environment).toContainEqual({ Name: 'WORKER_THREADS', Value: '4' });
  });

  test('threads follow the vCPUs given', () => {
    const stack = new Stack(new App(), 'S');
    new ChunkJobDefinition(stack, 'Chunk', { ...jobIo(stack), vCpus: 8, memory: Size.gibibytes(16) });
    Template.fromStack(stack).hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({ Environment: Match.arrayWith([{ Name: 'WORKER_THREADS', Value: '8' }]) }),
    });
  });

  test.each<[string, object, string]>([
    ['fractional vCPUs', { vCpus: 2.5 }, '[S/Chunk] vCpus (2.5) is invalid; allowed: a whole number >= 1'],
    ['too little memory per vCPU', { vCpus: 8, memory: Size.gibibytes(2) }, '[S/Chunk] memory (2048 MiB) is too small for 8 engine threads; allowed: at least 512 MiB per vCPU (4096 MiB)'],
    ['a WORKER_THREADS that disagrees', { environment: { WORKER_THREADS: '16' } }, '[S/Chunk] environment.WORKER_THREADS ("16") would disagree with the job\'s vCPUs'],
  ])('refuses %s', (_n, props, message) => {
    const stack = new Stack(new App(), 'S');
    expect(() => new ChunkJobDefinition(stack, 'Chunk', { ...jobIo(stack), ...props })).toThrow(message);
  });
});
