import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';

/**
 * cfn-lint and cdk-nag acknowledgements every PlatformFunction of the job-lifecycle constructs shares, each on the
 * narrowest construct: the function (runtime) and its role (AWS-managed basic execution policy,
 * X-Ray's `Resource: *`). `extraWildcards` adds that function's own `Resource: *` reasons, as
 * cdk-nag reports one `Resource::*` finding per policy.
 */
export function acknowledgeLambdaBasics(fn: lambda.Function, extraWildcards?: string): void {
  // aws-cdk-lib makes the function DependsOn its role besides the GetAtt, which cfn-lint reports as
  // W3005; the extra dependency is harmless, so the check is skipped on this resource only.
  (fn.node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason: 'Runtime chosen once for the whole library by PlatformFunction (lib/common/node-function.ts): Node.js 22, the LTS the handlers are built and tested for.',
  });
  if (!fn.role) return;
  Validations.of(fn.role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: 'AWS-managed basic execution policy: writes to the function log group only; kept managed so AWS maintains it.',
  });
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
