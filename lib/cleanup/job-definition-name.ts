import { Arn, ArnFormat, Fn, Stack, Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import { IConstruct } from 'constructs';

/**
 * Name of a job definition without its revision. `EcsJobDefinition.jobDefinitionName` of a definition
 * created in the same stack resolves to `name:revision` (the L2 splits the token string in JS, where
 * it has no colon yet), so the revision is cut off in CloudFormation as well.
 */
export function jobDefinitionBaseName(def: batch.IJobDefinition): string {
  const name = def.jobDefinitionName;
  return Token.isUnresolved(name) ? Fn.select(0, Fn.split(':', name)) : name.split(':')[0];
}

/** `arn:...:job-definition/<name>:*`: every revision, so grants survive re-registration. */
export function jobDefinitionArnAllRevisions(scope: IConstruct, def: batch.IJobDefinition): string {
  return Arn.format(
    { service: 'batch', resource: 'job-definition', resourceName: `${jobDefinitionBaseName(def)}:*`, arnFormat: ArnFormat.SLASH_RESOURCE_NAME },
    Stack.of(scope),
  );
}
