import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { STAGES } from '../stacks/stage-config';
import { ChunkedProcessingSettings, ChunkedProcessingStack } from '../workflow/chunked-processing-stack';
import { LOCAL_ACCOUNT, LOCAL_JOB_DEFINITION_ARN, LOCAL_JOB_QUEUE_ARN, LOCAL_REGION, resolveDefinition, SynthesizedWorkflow } from './asl';

export * from './asl';

/**
 * The settings of a local synthesis as plain JSON (they cross a process boundary and key the cache):
 * what the local runner varies of `ChunkedProcessingSettings`.
 */
export interface LocalWorkflowOptions {
  readonly bucketName: string;
  readonly settings?: {
    readonly lambdaMaxRecords?: number;
    readonly toleratedFailurePercentage?: number;
    /** Seconds between a failed chunk and its one retry. @default the stack's default (30 s) */
    readonly chunkRetryIntervalSeconds?: number;
  };
}

/** The stack settings of plain local options. */
export function toStackSettings(settings: LocalWorkflowOptions['settings'] = {}): ChunkedProcessingSettings {
  return {
    ...(settings.lambdaMaxRecords !== undefined ? { lambdaMaxRecords: settings.lambdaMaxRecords } : {}),
    ...(settings.toleratedFailurePercentage !== undefined ? { toleratedFailurePercentage: settings.toleratedFailurePercentage } : {}),
    ...(settings.chunkRetryIntervalSeconds !== undefined ? { chunkRetry: { interval: Duration.seconds(settings.chunkRetryIntervalSeconds) } } : {}),
  };
}

/**
 * Synthesizes `ChunkedProcessingStack` in-process, exactly as `cdk synth` would build it (only
 * Lambda bundling is skipped: the handlers run in-process, not from assets), and returns its state
 * machine definition with Ref/GetAtt/Fn::Join resolved against local names.
 */
export function synthesizeWorkflow(options: { bucketName: string; settings?: ChunkedProcessingSettings }): SynthesizedWorkflow {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'chunked-local-synth-'));
  try {
    // No Lambda bundling (the handlers run in-process) and no built-in CloudFormation validation (cfn-lint
    // compiled to WebAssembly, about 2.4 s of a 3.7 s synthesis): the compliance tests lint this stack's
    // template; a local run only reads its state machine definition.
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
    const env = { account: LOCAL_ACCOUNT, region: LOCAL_REGION };
    const imports = new Stack(app, 'LocalImports', { env });
    const stack = new ChunkedProcessingStack(app, 'ChunkedProcessing-local', {
      env,
      stage: STAGES.dev,
      jobQueue: batch.JobQueue.fromJobQueueArn(imports, 'Queue', LOCAL_JOB_QUEUE_ARN),
      jobDefinition: batch.EcsJobDefinition.fromJobDefinitionArn(imports, 'JobDefinition', LOCAL_JOB_DEFINITION_ARN),
      bucket: s3.Bucket.fromBucketName(imports, 'Bucket', options.bucketName),
      settings: options.settings,
    });
    const assembly = app.synth();
    const template = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    return resolveDefinition(template);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}
