import { App, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as s3 from 'aws-cdk-lib/aws-s3';

/** A stack with an imported queue, job definition and bucket: what the API constructs receive. */
export function apiTestStack(app = new App()): {
  app: App;
  stack: Stack;
  jobQueue: batch.IJobQueue;
  jobDefinition: batch.IJobDefinition;
  inputBucket: s3.IBucket;
} {
  const stack = new Stack(app, 'ApiTest', { env: { account: '123456789012', region: 'eu-west-1' } });
  return {
    app,
    stack,
    jobQueue: batch.JobQueue.fromJobQueueArn(stack, 'Queue', 'arn:aws:batch:eu-west-1:123456789012:job-queue/platform-queue'),
    jobDefinition: batch.EcsJobDefinition.fromJobDefinitionArn(stack, 'JobDefinition', 'arn:aws:batch:eu-west-1:123456789012:job-definition/worker:3'),
    inputBucket: s3.Bucket.fromBucketName(stack, 'Staging', 'platform-staging'),
  };
}
