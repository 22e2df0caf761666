import { Stack, Validations } from 'aws-cdk-lib';
import { nagResourceFindingId } from '../common/nag';
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

/** Acknowledges the cdk-nag IAM5 finding of exactly one wildcard resource ARN on `scope` (a role or policy). */
export function acknowledgeWildcardResource(scope: IConstruct, arn: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagResourceFindingId(Stack.of(scope), arn)}]`, reason });
}
