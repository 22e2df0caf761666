import {
  BatchClient,
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
} from '@aws-sdk/client-batch';
import { motoClientConfig, motoEndpoint, REGION } from '../../support/moto';

/**
 * Real Batch resources in moto: an IAM service role (created through moto's IAM query API, as no IAM
 * SDK client is installed), an UNMANAGED compute environment, a queue and a job definition.
 */
export interface MotoBatch {
  client: BatchClient;
  queueArn: string;
  jobDefinitionArn: string;
  jobDefinitionName: string;
}

async function createRole(name: string): Promise<string> {
  const body = new URLSearchParams({
    Action: 'CreateRole',
    Version: '2010-05-08',
    RoleName: name,
    AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'batch.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
  });
  const res = await fetch(`${motoEndpoint()}/`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${REGION}/iam/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body,
  });
  const text = await res.text();
  if (!res.ok && !text.includes('EntityAlreadyExists')) throw new Error(`moto CreateRole failed: HTTP ${res.status} ${text}`);
  return `arn:aws:iam::123456789012:role/${name}`;
}

export async function createMotoBatch(prefix: string): Promise<MotoBatch> {
  const client = new BatchClient(motoClientConfig());
  const role = await createRole(`${prefix}-batch-service`);
  const ce = await client.send(
    new CreateComputeEnvironmentCommand({ computeEnvironmentName: `${prefix}-ce`, type: 'UNMANAGED', state: 'ENABLED', serviceRole: role }),
  );
  const queue = await client.send(
    new CreateJobQueueCommand({ jobQueueName: `${prefix}-queue`, state: 'ENABLED', priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: ce.computeEnvironmentArn! }] }),
  );
  const def = await registerRevision(client, `${prefix}-worker`);
  return { client, queueArn: queue.jobQueueArn!, jobDefinitionArn: def, jobDefinitionName: `${prefix}-worker` };
}

export async function registerRevision(client: BatchClient, name: string): Promise<string> {
  const res = await client.send(
    new RegisterJobDefinitionCommand({
      jobDefinitionName: name,
      type: 'container',
      containerProperties: { image: 'public.ecr.aws/amazonlinux/amazonlinux:2023', command: ['true'], resourceRequirements: [{ type: 'VCPU', value: '1' }, { type: 'MEMORY', value: '512' }] },
    }),
  );
  return res.jobDefinitionArn!;
}

export async function submit(m: MotoBatch, jobName: string): Promise<string> {
  const res = await m.client.send(new SubmitJobCommand({ jobName, jobQueue: m.queueArn, jobDefinition: m.jobDefinitionArn }));
  return res.jobId!;
}
