import {
  BatchClient,
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  RegisterJobDefinitionCommand,
} from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'child_process';
import { motoClientConfig, motoEnv } from '../../support/moto';

/** A Batch queue + job definition + staging bucket in moto, named after the suite so suites never collide. */
export interface MotoBatch {
  readonly batch: BatchClient;
  readonly s3: S3Client;
  readonly logs: CloudWatchLogsClient;
  readonly jobQueue: string;
  readonly jobQueueArn: string;
  readonly jobDefinition: string;
  readonly jobDefinitionArn: string;
  readonly bucket: string;
  readonly logGroup: string;
}

export async function createMotoBatch(suite: string, options: { schedulingPolicyArn?: string } = {}): Promise<MotoBatch> {
  const name = `${suite}-${Date.now().toString(36)}`.toLowerCase();
  const batch = new BatchClient({ ...motoClientConfig(), maxAttempts: 1 });
  const s3 = new S3Client({ ...motoClientConfig(), maxAttempts: 1 });
  const logs = new CloudWatchLogsClient({ ...motoClientConfig(), maxAttempts: 1 });
  // moto checks that the service role exists; the SDK's IAM client is not a dependency, the aws CLI is.
  const role = JSON.parse(
    execFileSync(
      'aws',
      ['iam', 'create-role', '--role-name', `${name}-batch`, '--assume-role-policy-document', '{"Version":"2012-10-17","Statement":[]}', '--output', 'json'],
      { env: { ...process.env, ...motoEnv() }, encoding: 'utf8' },
    ),
  ) as { Role: { Arn: string } };
  const ce = await batch.send(
    new CreateComputeEnvironmentCommand({
      computeEnvironmentName: `${name}-ce`,
      type: 'UNMANAGED',
      state: 'ENABLED',
      serviceRole: role.Role.Arn,
    }),
  );
  const queue = await batch.send(
    new CreateJobQueueCommand({
      jobQueueName: `${name}-queue`,
      state: 'ENABLED',
      priority: 1,
      schedulingPolicyArn: options.schedulingPolicyArn,
      computeEnvironmentOrder: [{ order: 1, computeEnvironment: ce.computeEnvironmentArn! }],
    }),
  );
  const logGroup = `/cdk-batch-platform/${name}`;
  const def = await batch.send(
    new RegisterJobDefinitionCommand({
      jobDefinitionName: `${name}-worker`,
      type: 'container',
      containerProperties: {
        image: 'worker:latest',
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '2048' },
        ],
        environment: [{ name: 'FROM_DEFINITION', value: 'yes' }],
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': logGroup } },
      },
    }),
  );
  const bucket = `${name}-staging`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    batch,
    s3,
    logs,
    jobQueue: `${name}-queue`,
    jobQueueArn: queue.jobQueueArn!,
    jobDefinition: `${name}-worker`,
    jobDefinitionArn: def.jobDefinitionArn!,
    bucket,
    logGroup,
  };
}
