import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';
import { jobDefinitionArnAllRevisions } from '../common/job-definition-name';
import { nagResourceFindingId } from '../common/nag';

/** A queue and the job definition submitted to it, for operations placed elsewhere than the default. */
export interface JobRouteTarget {
  readonly jobQueue: batch.IJobQueue;
  readonly jobDefinition: batch.IJobDefinition;
}

/**
 * Routes by placement key `<EC2|FARGATE>:<image>` (the worker's operations/placement.ts), e.g.
 * `{ 'FARGATE:ocr': { jobQueue: fargateQueue, jobDefinition: ocrJobDefinition } }`. Handlers get them as
 * JSON in `JOB_ROUTES` and send each operation to its placement's route.
 */
export type JobRouteTargets = Readonly<Record<string, JobRouteTarget>>;

/** The same pattern lib/client/routing.ts checks at run time (constructs do not import runtime code). */
const ROUTE_KEY = /^(EC2|FARGATE):[a-z][a-z0-9-]{0,31}$/;

/** Throws, naming the construct, on a route key the handlers would refuse. */
export function checkRouteKeys(scope: IConstruct, routes: JobRouteTargets | undefined): void {
  for (const key of Object.keys(routes ?? {})) {
    if (!ROUTE_KEY.test(key)) {
      throw new Error(`[${scope.node.path}] routes key (${JSON.stringify(key)}) must be "<EC2|FARGATE>:<image>", e.g. "FARGATE:ocr"`);
    }
  }
}

/** What a BatchJobClient-based function may do. */
export interface JobClientGrantProps {
  readonly jobQueue: batch.IJobQueue;
  readonly jobDefinition: batch.IJobDefinition;
  /** Further queues and job definitions the function submits to (and finds jobs in). @default - none */
  readonly routes?: JobRouteTargets;
  readonly inputBucket: s3.IBucket;
  /** Stage inputs and submit. */
  readonly submit?: boolean;
  /** Terminate jobs. */
  readonly terminate?: boolean;
}

/**
 * Least-privilege grants for a function that runs BatchJobClient. Job-definition access is granted on
 * `name:*` (every revision), not one revision, so a new revision never breaks submitters.
 * Wildcards, each needed:
 * - DescribeJobs, ListJobs, DescribeJobQueues, DescribeJobDefinitions support no resource-level
 *   permissions (IAM requires `*`).
 * - TerminateJob and TagResource act on `job/<id>`, and job ids are only known at run time: scoped
 *   to the jobs of this account and region. TagResource (only with batch:CreateAction = SubmitJob) is how IAM authorizes the tags SubmitJob
 *   puts on the new job.
 * - S3 `jobs/*`: one prefix per job (`jobs/{jobId}/...`).
 */
export function grantJobClient(scope: IConstruct, grantee: iam.IGrantable & IConstruct, props: JobClientGrantProps): void {
  const stack = Stack.of(scope);
  const ack = (finding: string) => Validations.of(grantee).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason: JOB_CLIENT_WILDCARD_REASON });
  const ackResource = (arn: string) => ack(`Resource::${nagResourceFindingId(stack, arn)}`);
  ack('Resource::*');
  ['s3:GetObject*', 's3:GetBucket*', 's3:List*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'].forEach((a) => ack(`Action::${a}`));
  ackResource(props.inputBucket.arnForObjects('jobs/*'));
  const jobArns = stack.formatArn({ service: 'batch', resource: 'job', resourceName: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  iam.Grant.addToPrincipal({
    grantee,
    actions: ['batch:DescribeJobs', 'batch:ListJobs', 'batch:DescribeJobQueues', 'batch:DescribeJobDefinitions'],
    resourceArns: ['*'],
  });
  props.inputBucket.grantRead(grantee, 'jobs/*');
  if (props.submit) {
    const targets = [{ jobQueue: props.jobQueue, jobDefinition: props.jobDefinition }, ...Object.values(props.routes ?? {})];
    const definitions = targets.map((t) => jobDefinitionArnAllRevisions(scope, t.jobDefinition));
    const queues = targets.map((t) => t.jobQueue.jobQueueArn);
    iam.Grant.addToPrincipal({ grantee, actions: ['batch:SubmitJob'], resourceArns: [...new Set([...queues, ...definitions])] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['batch:TagResource'],
      resourceArns: [jobArns],
      conditions: { StringEquals: { 'batch:CreateAction': 'SubmitJob' } },
    });
    [...new Set(definitions)].forEach(ackResource);
    ackResource(jobArns);
    ackResource(props.inputBucket.arnForObjects('jobs/*/submit.lock'));
    ['s3:Abort*', 's3:DeleteObject*'].forEach((a) => ack(`Action::${a}`));
    // PutObject with tags (retention-days, job-id) needs s3:PutObjectTagging, which grantPut includes.
    props.inputBucket.grantPut(grantee, 'jobs/*');
    // Only the idempotency lock is ever deleted.
    props.inputBucket.grantDelete(grantee, 'jobs/*/submit.lock');
  }
  if (props.terminate) {
    iam.Grant.addToPrincipal({ grantee, actions: ['batch:TerminateJob'], resourceArns: [jobArns] });
    ackResource(jobArns);
  }
}

/** Environment that lambda handlers read to build their BatchJobClient. */
export function jobClientEnvironment(props: {
  jobQueue: batch.IJobQueue;
  jobDefinition: batch.IJobDefinition;
  inputBucket: s3.IBucket;
  outputBucket?: s3.IBucket;
  fairShare?: boolean;
  jobNamePrefix?: string;
  routes?: JobRouteTargets;
}): Record<string, string> {
  const fairShare = props.fairShare ?? (props.jobQueue.schedulingPolicy ? true : undefined);
  return {
    JOB_QUEUE: props.jobQueue.jobQueueArn,
    JOB_DEFINITION: props.jobDefinition.jobDefinitionArn,
    INPUT_BUCKET: props.inputBucket.bucketName,
    OUTPUT_BUCKET: (props.outputBucket ?? props.inputBucket).bucketName,
    ...(fairShare === undefined ? {} : { FAIR_SHARE: String(fairShare) }),
    ...(props.jobNamePrefix ? { JOB_NAME_PREFIX: props.jobNamePrefix } : {}),
    ...(props.routes && Object.keys(props.routes).length ? { JOB_ROUTES: jobRoutesJson(props.jobQueue, props.routes) } : {}),
  };
}

/** The stack's ceiling on what one submit may ask for (lib/client/policy/sizing.ts reads it at run time). */
export interface JobSizingLimits {
  /** Most vCPUs one job may ask for. @default - no ceiling beyond the operation's bounds */
  readonly maxVcpus?: number;
  /** Most memory (MiB) one job may ask for. @default - no ceiling beyond the operation's bounds */
  readonly maxMemoryMiB?: number;
}

/** MAX_JOB_VCPUS / MAX_JOB_MEMORY_MIB (the names lib/client/policy/sizing.ts SIZING_ENV reads), validated. */
export function sizingEnvironment(scope: IConstruct, limits: JobSizingLimits | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, name] of [['maxVcpus', 'MAX_JOB_VCPUS'], ['maxMemoryMiB', 'MAX_JOB_MEMORY_MIB']] as const) {
    const v = limits?.[key];
    if (v === undefined) continue;
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new Error(`[${scope.node.path}] sizingLimits.${key} (${v}) must be a number > 0`);
    env[name] = String(v);
  }
  return env;
}

/** The route table as the JSON lib/client/routing.ts parses (ARNs resolved at deploy). */
export function jobRoutesJson(scope: IConstruct, routes: JobRouteTargets): string {
  const table = Object.fromEntries(
    Object.entries(routes).map(([key, t]) => [key, { jobQueue: t.jobQueue.jobQueueArn, jobDefinition: t.jobDefinition.jobDefinitionArn }]),
  );
  // toJsonString renders plain JSON for literal values and an Fn::Join for tokens (ARNs of this stack).
  return Stack.of(scope).toJsonString(table);
}

/** Why the grants above use wildcards, for cdk-nag (IAM5). */
export const JOB_CLIENT_WILDCARD_REASON =
  'BatchJobClient needs: batch:DescribeJobs/ListJobs/DescribeJobQueues/DescribeJobDefinitions, which support no resource-level ' +
  'permissions (Resource *); TerminateJob/TagResource on job/* of this account and region (job ids exist only at run time); ' +
  'SubmitJob on job-definition/<name>:* (every revision of the one job definition); S3 object actions of grantRead/grantPut ' +
  '(GetObject*, List*, Abort*, DeleteObject* of the submit lock only) on the jobs/* prefix, one folder per job.';
