import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, Fn, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { resolveDefinition } from '../../../lib/local/definition';
import { STAGES } from '../../../lib/stacks/stage-config';
import { ChunkedProcessingSettings, ChunkedProcessingStack } from '../../../lib/workflow/chunked-processing-stack';
import { jobDefinitionNameOf } from '../../../lib/common/job-definition-name';
import { ChunkedProcessingWorkflow } from '../../../lib/workflow/chunked-processing-workflow';
import { cfnLintFindings, nagFindings } from '../../support/compliance';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (sep?: string) => string };

const ENV = { account: '123456789012', region: 'eu-west-1' };
const QUEUE_ARN = 'arn:aws:batch:eu-west-1:123456789012:job-queue/workers';
const JOB_DEF_ARN = 'arn:aws:batch:eu-west-1:123456789012:job-definition/worker:7';

function build(settings?: ChunkedProcessingSettings, outdir?: string): { app: App; stack: ChunkedProcessingStack } {
  // Bundling is skipped: these tests look at the template, not the handler assets.
  const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
  const base = new Stack(app, 'Base', { env: ENV });
  const stack = new ChunkedProcessingStack(app, 'ChunkedProcessing-test', {
    env: ENV,
    stage: STAGES.dev,
    jobQueue: batch.JobQueue.fromJobQueueArn(base, 'Queue', QUEUE_ARN),
    jobDefinition: batch.EcsJobDefinition.fromJobDefinitionArn(base, 'JobDef', JOB_DEF_ARN),
    bucket: s3.Bucket.fromBucketName(base, 'Bucket', 'work-bucket'),
    settings,
  });
  return { app, stack };
}

describe('ChunkedProcessingWorkflow', () => {
  const { stack } = build();
  const template = Template.fromStack(stack);
  const { definition } = resolveDefinition(template.toJSON() as never);
  const states = definition.States as Record<string, Record<string, unknown>>;
  const map = states.ProcessChunks as { ItemProcessor: { States: Record<string, Record<string, unknown>> } } & Record<string, unknown>;
  const inner = map.ItemProcessor.States;

  test('the state machine definition passes asl-validator', () => {
    const result = aslValidator(definition);
    expect({ valid: result.isValid, errors: result.errorsText('\n') }).toEqual({ valid: true, errors: '' });
  });

  test('runs validate -> plan -> distributed map -> aggregate -> deliver', () => {
    expect(definition.StartAt).toBe('ValidateInput');
    expect(states.ValidateInput.Next).toBe('PlanChunks');
    expect(states.PlanChunks.Next).toBe('ProcessChunks');
    expect(map.Next).toBe('AggregateResults');
    expect(states.AggregateResults.Next).toBe('DeliverSummary');
  });

  test('the map reads the manifest as JSON lines from S3 with concurrency 50 and no failure tolerance', () => {
    expect(map).not.toHaveProperty('ToleratedFailurePercentage');
    expect(map).toMatchObject({
      MaxConcurrency: 50,
      ResultPath: null,
      ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { Bucket: 'work-bucket', 'Key.$': '$.plan.manifestKey' } },
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
    });
  });

  test('routes finished chunks to skip, batch-route chunks to Batch and the rest to Lambda', () => {
    expect(inner.RouteChunk).toMatchObject({
      Type: 'Choice',
      Choices: [
        { Variable: '$.chunk.done', BooleanEquals: true, Next: 'ChunkAlreadyDone' },
        { Variable: '$.chunk.route', StringEquals: 'batch', Next: 'ProcessChunkOnBatch' },
      ],
      Default: 'ProcessChunkOnLambda',
    });
  });

  test('a Batch chunk runs the worker job definition with the chunk in the worker environment contract', () => {
    const task = inner.ProcessChunkOnBatch as { Resource: string; Parameters: { JobQueue: string; JobDefinition: string; ContainerOverrides: { Environment: { Name: string }[] } } };
    expect(task.Resource).toBe('arn:aws:states:::batch:submitJob.sync');
    expect(task.Parameters.JobQueue).toBe(QUEUE_ARN);
    expect(task.Parameters.JobDefinition).toBe(JOB_DEF_ARN);
    expect(task.Parameters.ContainerOverrides.Environment.map((e) => e.Name).sort()).toEqual(
      [
        'CHUNK_END_BYTE', 'CHUNK_START_BYTE', 'INPUT_FORMAT', 'INPUT_S3_BUCKET', 'INPUT_S3_KEY', 'JOB_ID', 'OPERATION', 'OPERATION_CONFIG', 'OUTPUT_S3_BUCKET', 'OUTPUT_S3_KEY', 'RETENTION_DAYS',
        'CHUNK_INDEX', 'RUN_BATCH_ID', 'RUN_CUSTOMER_ID', 'RUN_DEPLOYMENT', 'RUN_ID', 'RUN_SNAPSHOT_ID', 'RUN_TENANT_ID',
      ].sort(),
    );
  });

  test("a Batch chunk's run id, index and identifying fields come from the state machine's own input (the planner's manifest line), for the worker's run metrics", () => {
    const env = (inner.ProcessChunkOnBatch as { Parameters: { ContainerOverrides: { Environment: Record<string, string>[] } } }).Parameters.ContainerOverrides.Environment;
    const byName = Object.fromEntries(env.map((e) => [e.Name, e['Value.$']]));
    expect(byName).toMatchObject({
      RUN_ID: '$.runId',
      CHUNK_INDEX: "States.Format('{}', $.chunk.index)",
      RUN_CUSTOMER_ID: '$.chunk.identity.customerId',
      RUN_TENANT_ID: '$.chunk.identity.tenantId',
      RUN_BATCH_ID: '$.chunk.identity.batchId',
      RUN_DEPLOYMENT: '$.chunk.identity.deployment',
      RUN_SNAPSHOT_ID: '$.chunk.identity.snapshotId',
    });
  });

  test('Batch chunks retry Batch API throttling with backoff and jitter, then a failed job once', () => {
    expect(inner.ProcessChunkOnBatch.Retry).toEqual([
      expect.objectContaining({ ErrorEquals: ['Batch.AWSBatchException', 'Batch.TooManyRequestsException', 'Batch.ServerException'], BackoffRate: 2, JitterStrategy: 'FULL', MaxAttempts: 8 }),
      { ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 30, BackoffRate: 2, MaxAttempts: 1, JitterStrategy: 'FULL' },
    ]);
  });

  test('application errors of a chunk are retried once with backoff, as the last retrier of the Lambda task', () => {
    const retry = inner.ProcessChunkOnLambda.Retry as { ErrorEquals: string[] }[];
    expect(retry[retry.length - 1]).toEqual({ ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 30, BackoffRate: 2, MaxAttempts: 1, JitterStrategy: 'FULL' });
  });

  test('a Batch chunk job is tagged with the run id and the input document fields', () => {
    expect((inner.ProcessChunkOnBatch as { Parameters: { Tags: unknown } }).Parameters.Tags).toEqual({
      'RunId.$': '$.runId',
      'CustomerId.$': '$.chunk.identity.customerId',
      'TenantId.$': '$.chunk.identity.tenantId',
      'BatchId.$': '$.chunk.identity.batchId',
      'Deployment.$': '$.chunk.identity.deployment',
      'SnapshotId.$': '$.chunk.identity.snapshotId',
    });
  });

  test('Lambda chunks retry throttling and resume interrupted chunks', () => {
    const errors = (inner.ProcessChunkOnLambda.Retry as { ErrorEquals: string[] }[]).map((r) => r.ErrorEquals);
    expect(errors).toContainEqual(['Lambda.TooManyRequestsException']);
    expect(errors).toContainEqual(['ChunkInterrupted']);
  });

  test('a failing chunk is recorded in S3 and its iteration succeeds, so other chunks continue', () => {
    for (const name of ['ProcessChunkOnLambda', 'ProcessChunkOnBatch', 'MarkBatchChunkDone']) {
      expect(inner[name].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'RecordChunkFailure' }]);
    }
    expect(inner.RecordChunkFailure).toMatchObject({ Resource: 'arn:aws:states:::aws-sdk:s3:putObject', Next: 'ChunkFailed' });
    expect(inner.ChunkFailed.Type).toBe('Pass');
  });

  test('the summary goes to SQS and EventBridge, and a FAILED run fails the execution', () => {
    expect(states.DeliverSummary.Type).toBe('Parallel');
    expect(states.CheckRunStatus).toMatchObject({ Choices: [{ Variable: '$.status', StringEquals: 'FAILED', Next: 'RunFailed' }] });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, RedrivePolicy: Match.anyValue() });
  });

  test('logs every event with retention and traces with X-Ray', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: STAGES.dev.logRetention });
  });

  test('SubmitJob is granted on the worker job definition revisions and the queue only', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const statements = Object.values(policies).flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: { Action: unknown; Resource: unknown }[] } } }).Properties.PolicyDocument.Statement);
    const submit = statements.filter((s) => ([] as unknown[]).concat(s.Action).includes('batch:SubmitJob'));
    expect(submit).toHaveLength(1);
    expect(JSON.stringify(submit[0].Resource)).toContain(':job-definition/worker:*');
    expect(JSON.stringify(submit[0].Resource)).not.toContain(':job-definition/*');
    expect(JSON.stringify(submit[0].Resource)).toContain(QUEUE_ARN);
  });

  test('the chunk Lambda may read inputs and write only under runs/', () => {
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp('WorkflowChunkFunctionServiceRole') }] } });
    const text = JSON.stringify(policies);
    expect(text).toContain('"Action":["s3:GetObject","s3:PutObject","s3:PutObjectTagging","s3:DeleteObject","s3:AbortMultipartUpload"]');
    expect(text).toMatch(/work-bucket\/runs\/\*/);
    expect(text).not.toMatch(/s3:\*|s3:GetObject\*|s3:List\*/);
  });

  test('a retry may delete under runs/ (planner), and the aggregator may read inputs to fingerprint finished chunks', () => {
    const policyOf = (role: string): string =>
      JSON.stringify(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: Match.stringLikeRegexp(role) }] } }));
    const planner = policyOf('WorkflowPlannerFunctionServiceRole');
    expect(planner).toContain('"Action":["s3:GetObject","s3:PutObject","s3:PutObjectTagging","s3:DeleteObject"]');
    expect(planner).not.toMatch(/s3:\*|s3:DeleteObject\*/);
    const aggregate = policyOf('WorkflowAggregateFunctionServiceRole');
    expect(aggregate).toContain('"Action":"s3:GetObject"');
    expect(aggregate).not.toContain('s3:DeleteObject');
  });

  test('chunk sizes and routing come from the construct props', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LAMBDA_MAX_RECORDS: '1000000', DEFAULT_CHUNK_RECORDS: '500000', RUNS_BUCKET: 'work-bucket' }) },
    });
  });
});

describe('ChunkedProcessingWorkflow props', () => {
  test('maxConcurrency and toleratedFailurePercentage reach the map', () => {
    const { definition } = resolveDefinition(Template.fromStack(build({ maxConcurrency: 7, toleratedFailurePercentage: 12 }).stack).toJSON() as never);
    expect(definition.States.ProcessChunks).toMatchObject({ MaxConcurrency: 7, ToleratedFailurePercentage: 12 });
  });

  test.each([
    [{ maxConcurrency: 0 }, /\[ChunkedProcessing-test\/Workflow\] maxConcurrency \(0\) is invalid; allowed: a whole number >= 1/],
    [{ maxConcurrency: 20_000 }, /\[ChunkedProcessing-test\/Workflow\] maxConcurrency \(20000\) is out of range; allowed: 1 to 10000/],
    [{ toleratedFailurePercentage: 101 }, /\[ChunkedProcessing-test\/Workflow\] toleratedFailurePercentage \(101\) is out of range; allowed: 0 to 100/],
    [{ lambdaMaxRecords: -1 }, /\[ChunkedProcessing-test\/Workflow\] lambdaMaxRecords \(-1\) is invalid; allowed: a whole number >= 0/],
    [{ defaultChunkRecords: 0 }, /\[ChunkedProcessing-test\/Workflow\] defaultChunkRecords \(0\) is invalid; allowed: a whole number >= 1/],
    [{ chunkRetry: { maxAttempts: 11 } }, /\[ChunkedProcessing-test\/Workflow\] chunkRetry.maxAttempts \(11\) is out of range; allowed: 0 to 10/],
  ])('rejects %p', (settings, message) => {
    expect(() => build(settings as ChunkedProcessingSettings)).toThrow(message);
  });

  test('the chunk retry is configurable and 0 turns it off', () => {
    const { stack } = build({ chunkRetry: { maxAttempts: 3, interval: Duration.seconds(5), backoffRate: 3 } });
    const { definition } = resolveDefinition(Template.fromStack(stack).toJSON() as never);
    const batchRetry = (definition.States.ProcessChunks as unknown as { ItemProcessor: { States: Record<string, { Retry: unknown[] }> } }).ItemProcessor.States.ProcessChunkOnBatch.Retry;
    expect(batchRetry[batchRetry.length - 1]).toEqual({ ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 5, BackoffRate: 3, MaxAttempts: 3, JitterStrategy: 'FULL' });
    const off = resolveDefinition(Template.fromStack(build({ chunkRetry: { maxAttempts: 0 } }).stack).toJSON() as never).definition;
    const lambdaRetry = (off.States.ProcessChunks as unknown as { ItemProcessor: { States: Record<string, { Retry: unknown[] }> } }).ItemProcessor.States.ProcessChunkOnLambda.Retry as { ErrorEquals: string[] }[];
    expect(lambdaRetry.map((r) => r.ErrorEquals[0])).not.toContain('States.TaskFailed');
  });

  test('warns when chunks too large for Lambda are routed to it', () => {
    const { stack } = build({ lambdaMaxRecords: 10_000_000 });
    Annotations.fromStack(stack).hasWarning('/ChunkedProcessing-test/Workflow', Match.stringLikeRegexp('lambdaMaxRecords \\(10000000\\).*15-minute'));
  });

  test('a job definition name drops the revision, also for a token ARN', () => {
    expect(jobDefinitionNameOf(JOB_DEF_ARN)).toBe('worker');
    const stack = new Stack();
    const resolved = stack.resolve(jobDefinitionNameOf(Fn.importValue('Platform:WorkerJobDefinitionArn')));
    expect(resolved).toEqual({
      'Fn::Select': [0, { 'Fn::Split': [':', { 'Fn::Select': [1, { 'Fn::Split': ['/', { 'Fn::ImportValue': 'Platform:WorkerJobDefinitionArn' }] }] }] }],
    });
  });

  test('exposes the state machine for grants', () => {
    const { stack } = build();
    const wf = stack.workflow;
    expect(wf).toBeInstanceOf(ChunkedProcessingWorkflow);
    expect(wf.stateMachine).toBeDefined();
    expect(wf.summaryQueue).toBeDefined();
  });
});

describe('ChunkedProcessingStack compliance', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunked-compliance-'));
  afterAll(() => fs.rmSync(outdir, { recursive: true, force: true }));

  test('cdk-nag AwsSolutions reports no unacknowledged finding', () => {
    const { app } = build(undefined, outdir);
    expect(nagFindings(app)).toEqual([]);
  });

  test('cfn-lint reports nothing on the synthesized template', () => {
    const template = JSON.parse(fs.readFileSync(path.join(outdir, 'ChunkedProcessing-test.template.json'), 'utf8'));
    expect(cfnLintFindings(template)).toBe('');
  });
});
