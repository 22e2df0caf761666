import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { STAGES } from '../stacks/stage-config';
import { ChunkedProcessingSettings, ChunkedProcessingStack } from '../workflow/chunked-processing-stack';
import { cachedBySources, packageVersion, SourceCacheOptions, sourceFilesOf } from './source-cache';

/** An Amazon States Language document (the parts the local runner touches are typed loosely). */
export type AslDefinition = { StartAt: string; States: Record<string, AslState>; [k: string]: unknown };
export type AslState = { Type: string; Next?: string; End?: boolean; [k: string]: unknown };

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_JOB_QUEUE_ARN = `arn:aws:batch:${LOCAL_REGION}:${LOCAL_ACCOUNT}:job-queue/local-workers`;
export const LOCAL_JOB_DEFINITION_ARN = `arn:aws:batch:${LOCAL_REGION}:${LOCAL_ACCOUNT}:job-definition/local-worker:1`;

export interface SynthesizedWorkflow {
  /** The state machine definition with every CloudFormation reference resolved to a local value. */
  readonly definition: AslDefinition;
  /** The template the definition came from (for tests that compare the two). */
  readonly template: Record<string, unknown>;
  /** Lambda logical id -> the local ARN it was resolved to. */
  readonly functionArns: Record<string, string>;
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

/** Reads the one state machine of a template and resolves its DefinitionString. */
export function resolveDefinition(template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }): SynthesizedWorkflow {
  const machines = Object.values(template.Resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine in the template, found ${machines.length}`);
  const functionArns: Record<string, string> = {};
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type === 'AWS::Lambda::Function') functionArns[id] = `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${id}`;
  }
  const text = resolveValue(machines[0].Properties.DefinitionString, template.Resources, functionArns);
  return { definition: JSON.parse(text) as AslDefinition, template, functionArns };
}

function resolveValue(v: unknown, resources: Record<string, { Type: string }>, functionArns: Record<string, string>): string {
  if (typeof v === 'string') return v;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o['Fn::Join'])) {
    const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => resolveValue(p, resources, functionArns)).join(sep);
  }
  if (o.Ref !== undefined) {
    const ref = o.Ref as string;
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': LOCAL_REGION,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::URLSuffix': 'amazonaws.com',
    };
    if (pseudo[ref]) return pseudo[ref];
    if (resources[ref]) return `local:${ref}`;
  }
  if (Array.isArray(o['Fn::GetAtt'])) {
    const [id, attr] = o['Fn::GetAtt'] as [string, string];
    if (functionArns[id] && attr === 'Arn') return functionArns[id];
    if (resources[id]) return `local:${id}.${attr}`;
  }
  throw new Error(`cannot resolve ${JSON.stringify(v)} in the state machine definition`);
}

/**
 * `synthesizeWorkflow` through the source cache: the synthesized template is reused while the sources
 * that build it (this file's import graph in the package), the versions of aws-cdk-lib and constructs,
 * the CDK context from the environment and the options are unchanged. `hit` says whether it was reused.
 */
export async function synthesizeWorkflowCached(
  options: { bucketName: string; settings?: ChunkedProcessingSettings },
  cache: SourceCacheOptions = {},
): Promise<SynthesizedWorkflow & { readonly hit: boolean }> {
  const key = {
    options: JSON.parse(JSON.stringify(options, (_k, v: unknown) => (v instanceof Duration ? { durationMs: v.toMilliseconds() } : v))) as unknown,
    awsCdkLib: packageVersion('aws-cdk-lib'),
    constructs: packageVersion('constructs'),
    cdkContext: process.env.CDK_CONTEXT_JSON ?? null,
  };
  const lookup = await cachedBySources(
    'workflow-definition',
    key,
    async () => {
      const files = sourceFilesOf(__filename);
      return { value: synthesizeWorkflow(options).template, files };
    },
    cache,
  );
  return { ...resolveDefinition(lookup.value as never), hit: lookup.hit };
}
