import { Arn, ArnFormat, Fn, Stack, Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import { IConstruct } from 'constructs';

/**
 * The name of a job definition from its ARN (`...:job-definition/<name>:<revision>`). Taken from the
 * ARN, not the L2's `jobDefinitionName`: that keeps the revision for a definition whose ARN is a token
 * (the L2 splits the token string in JS, where it has no colon yet), and a grant on
 * `<name>:<revision>:*` would match nothing.
 */
export function jobDefinitionNameOf(arn: string): string {
  if (Token.isUnresolved(arn)) return Fn.select(0, Fn.split(':', Fn.select(1, Fn.split('/', arn))));
  const resource = arn.split('/')[1];
  if (!resource) throw new Error(`job definition ARN ${JSON.stringify(arn)} has no job-definition/<name> part`);
  return resource.split(':')[0];
}

/** `arn:...:job-definition/<name>:*`: every revision, so grants survive re-registration. */
export function jobDefinitionArnAllRevisions(scope: IConstruct, def: batch.IJobDefinition): string {
  return Arn.format(
    {
      service: 'batch',
      resource: 'job-definition',
      resourceName: `${jobDefinitionNameOf(def.jobDefinitionArn)}:*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    },
    Stack.of(scope),
  );
}
