import { Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';

/**
 * The X-Ray wildcard every job-lifecycle PlatformFunction's role carries (PutTraceSegments and
 * PutTelemetryRecords take no resource), plus that function's own `Resource: *` reasons in
 * `extraWildcards`, as cdk-nag reports one `Resource::*` finding per policy. The runtime, the basic
 * execution policy and cfn-lint W3005 are acknowledged once by PlatformFunction itself.
 */
export function acknowledgeLambdaBasics(fn: lambda.Function, extraWildcards?: string): void {
  if (!fn.role) return;
  Validations.of(fn.role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: `X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions${extraWildcards ? `; ${extraWildcards}` : ''}.`,
  });
}

/**
 * Acknowledges the cdk-nag IAM5 finding of one wildcard resource ARN on `scope` (a role or policy).
 * cdk-nag names the finding after the resolved ARN, flattened like its `flattenCfnReference`, so the
 * id is computed the same way here.
 */
export function acknowledgeWildcardResource(scope: IConstruct, arn: string, reason: string): void {
  const flat = flattenCfnReference(Stack.of(scope).resolve(arn));
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${flat}]`, reason });
}

function flattenCfnReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  const o = node as Record<string, unknown>;
  if (o['Fn::Join']) {
    const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
    return items.map(flattenCfnReference).join(delimiter);
  }
  if (o['Fn::Sub']) return flattenCfnReference(o['Fn::Sub']);
  if (o['Fn::GetAtt']) {
    const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenCfnReference(resource)}.${flattenCfnReference(attribute)}>`;
  }
  if (o['Fn::ImportValue']) return flattenCfnReference(o['Fn::ImportValue']);
  if (o.Ref) return `<${flattenCfnReference(o.Ref)}>`;
  return JSON.stringify(node);
}
