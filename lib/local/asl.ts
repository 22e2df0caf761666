/**
 * What the local runner needs of a synthesized workflow, without aws-cdk-lib: the ASL types and the
 * resolution of the template's DefinitionString against local names. The orchestrating process uses
 * this module; only the synthesis child (synth-child.ts) and tests load the CDK side (definition.ts).
 */
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
