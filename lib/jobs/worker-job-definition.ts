import * as path from 'path';
import { Duration, RemovalPolicy, Resource, Size, Stack, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, IConstruct } from 'constructs';
import { PACKAGE_ROOT } from '../common/node-function';
import { checkInteger, checkRange, propError } from '../common/validation';
import { ComputeArchitecture } from '../compute/instance-presets';
import { jobDefinitionArnAllRevisions } from '../common/job-definition-name';
import { nagResourceFindingId } from '../common/nag';
import { DEFAULT_RETRY_ATTEMPTS, RetryPresets, checkRetryAttempts, checkRetryStrategies } from './retry-strategies';
import type { WorkerImage } from './worker-image';

/** Where a worker job runs: on EC2 compute environments or on Fargate ones. */
export type WorkerPlatform = 'EC2' | 'FARGATE';

export const DEFAULT_WORKER_PLATFORM: WorkerPlatform = 'EC2';
export const DEFAULT_WORKER_CPU = 1;
export const DEFAULT_WORKER_MEMORY = Size.mebibytes(2048);
export const DEFAULT_WORKER_TIMEOUT = Duration.hours(1);
export const DEFAULT_WORKER_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;
export const DEFAULT_JOBS_PREFIX = 'jobs/';
export const DEFAULT_SCRATCH_PATH = '/tmp';
const SCRATCH_VOLUME = 'scratch';
/** Batch refuses attempt timeouts under 60 seconds. */
const MIN_TIMEOUT_SECONDS = 60;
/** Batch's minimum memory for a container on EC2. */
const MIN_EC2_MEMORY_MIB = 4;
/** Fargate ephemeral storage limits (GiB). */
const MIN_EPHEMERAL_GIB = 21;
const MAX_EPHEMERAL_GIB = 200;
/** Folder of the worker container (its Dockerfile), named by path: constructs never import it. */
export const WORKER_CONTAINER_DIR = path.join(PACKAGE_ROOT, 'containers', 'worker');
/** Environment variable names that look like they hold a secret (use `secrets` for those). */
const SECRET_LOOKING_NAME = /(SECRET|PASSWORD|TOKEN|API_KEY|PRIVATE_KEY)/i;

/**
 * Valid Fargate memory sizes (MiB) per vCPU value, from the Fargate task size table.
 * @see https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
 */
export const FARGATE_SIZES: readonly { readonly cpu: number; readonly memoryMiB: readonly number[] }[] = [
  { cpu: 0.25, memoryMiB: [512, 1024, 2048] },
  { cpu: 0.5, memoryMiB: steps(1024, 4096, 1024) },
  { cpu: 1, memoryMiB: steps(2048, 8192, 1024) },
  { cpu: 2, memoryMiB: steps(4096, 16384, 1024) },
  { cpu: 4, memoryMiB: steps(8192, 30720, 1024) },
  { cpu: 8, memoryMiB: steps(16384, 61440, 4096) },
  { cpu: 16, memoryMiB: steps(32768, 122880, 8192) },
];

function steps(from: number, to: number, step: number): number[] {
  const values: number[] = [];
  for (let v = from; v <= to; v += step) values.push(v);
  return values;
}

export interface WorkerJobDefinitionProps {
  /**
   * Run on EC2 or on Fargate compute environments (submit to a queue of the same kind).
   * @default 'EC2'
   */
  readonly platform?: WorkerPlatform;
  /**
   * Container image.
   * @default - the worker container built from `containers/worker` of this package (a Docker image asset)
   */
  readonly image?: ecs.ContainerImage;
  /**
   * The image from a `WorkerImage`: the worker in an ECR repository of our own (scan on push,
   * lifecycle, immutable tag); the job definition waits for the image's deploy-time copy. Its
   * architecture must be this job definition's. Ignored when `image` is given.
   * @default - a Docker image asset in the CDK bootstrap repository (see `image`)
   */
  readonly workerImage?: WorkerImage;
  /**
   * Build stage of `containers/worker/Dockerfile` for the default image, e.g. `'ocr'` (the worker plus
   * the OCR engine). Ignored when `image` or `workerImage` is given.
   * @default - the Dockerfile's last stage: the streaming worker
   */
  readonly imageTarget?: string;
  /**
   * Command (overrides the image's CMD).
   * @default - the image's CMD
   */
  readonly command?: string[];
  /**
   * vCPUs per job: on EC2 a whole number >= 1; on Fargate 0.25, 0.5, 1, 2, 4, 8 or 16.
   * @default 1
   */
  readonly cpu?: number;
  /**
   * Memory per job: on EC2 at least 4 MiB (leave room for the ECS agent, or jobs stay RUNNABLE); on
   * Fargate one of the sizes allowed for `cpu`.
   * @default Size.mebibytes(2048)
   */
  readonly memory?: Size;
  /**
   * NVIDIA GPUs per job (EC2 only; the queue needs a GPU compute environment).
   * @default - none
   */
  readonly gpu?: number;
  /**
   * CPU architecture: the Fargate runtime platform, and the platform the default worker image is built for.
   * On EC2, the compute environment's instances must match.
   * @default 'X86_64'
   */
  readonly architecture?: ComputeArchitecture;
  /**
   * Time limit of one attempt; Batch terminates attempts that run longer. At least 60 seconds.
   * @default Duration.hours(1)
   */
  readonly timeout?: Duration;
  /**
   * Attempts per job (1-10), spent only on failures the retry strategies retry.
   * @default 3
   */
  readonly attempts?: number;
  /**
   * Retry rules, at most 5, evaluated in order; the first match decides.
   * @default RetryPresets.infrastructureOnly()
   */
  readonly retryStrategies?: batch.RetryStrategy[];
  /**
   * Retention of this job definition's own log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the log group when it is removed from the stack.
   * @default RemovalPolicy.DESTROY
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Role the job's code runs with.
   * @default - a new role assumable by ECS tasks, with only the bucket grants below
   */
  readonly jobRole?: iam.IRole;
  /**
   * Bucket the worker reads inputs from (read on `inputPrefix` is granted to the job role).
   * @default - no input grant
   */
  readonly inputBucket?: s3.IBucket;
  /**
   * Key prefix the job may read in `inputBucket`.
   * @default 'jobs/'
   */
  readonly inputPrefix?: string;
  /**
   * Bucket the worker writes outputs to (write on `outputPrefix` is granted to the job role).
   * @default - no output grant
   */
  readonly outputBucket?: s3.IBucket;
  /**
   * Key prefix the job may write in `outputBucket`.
   * @default 'jobs/'
   */
  readonly outputPrefix?: string;
  /**
   * Also let the job read what it wrote under `outputPrefix` (checkpoints, resuming).
   * @default false
   */
  readonly allowOutputRead?: boolean;
  /**
   * Plain environment variables. Names that look like secrets (SECRET, PASSWORD, TOKEN, API_KEY,
   * PRIVATE_KEY) are refused: pass those through `secrets`.
   * @default - INPUT_S3_BUCKET / OUTPUT_S3_BUCKET when the buckets are given
   */
  readonly environment?: Record<string, string>;
  /**
   * Secrets injected as environment variables at start (`batch.Secret.fromSecretsManager(...)`,
   * `batch.Secret.fromSsmParameter(...)`); the execution role gets read access to each.
   * @default - none
   */
  readonly secrets?: Record<string, batch.Secret>;
  /**
   * Read-only root filesystem; the container gets a writable scratch volume at `scratchPath`.
   * @default true
   */
  readonly readonlyRootFilesystem?: boolean;
  /**
   * Writable scratch directory when the root filesystem is read-only.
   * @default '/tmp'
   */
  readonly scratchPath?: string;
  /**
   * Fargate ephemeral storage (21-200 GiB).
   * @default - Fargate's default (20 GiB)
   */
  readonly ephemeralStorage?: Size;
}

/**
 * A job definition for the worker container on EC2 or Fargate: validated vCPU/memory, infrastructure-only
 * retries, a timeout, its own log group with retention, a job role with prefix-scoped bucket grants, a
 * minimal execution role, typed secrets, read-only root filesystem, non-privileged, no physical name.
 * Usable wherever aws-cdk-lib expects a `batch.IJobDefinition`.
 */
export class WorkerJobDefinition extends Resource implements batch.IJobDefinition {
  /** The aws-cdk-lib job definition inside (this construct delegates to it). */
  public readonly jobDefinition: batch.IJobDefinition;
  public readonly jobRole: iam.IRole;
  public readonly executionRole: iam.IRole;
  public readonly logGroup: logs.ILogGroup;
  public readonly container: batch.IEcsContainerDefinition;
  public readonly platform: WorkerPlatform;
  public readonly architecture: ComputeArchitecture;

  constructor(scope: Construct, id: string, props: WorkerJobDefinitionProps = {}) {
    super(scope, id);
    this.platform = props.platform ?? DEFAULT_WORKER_PLATFORM;
    if (this.platform !== 'EC2' && this.platform !== 'FARGATE') {
      throw propError(this, 'platform', this.platform, "'EC2' or 'FARGATE'");
    }
    this.architecture = props.architecture ?? 'X86_64';
    if (this.architecture !== 'X86_64' && this.architecture !== 'ARM64') {
      throw propError(this, 'architecture', this.architecture, "'X86_64' or 'ARM64'");
    }
    const cpu = props.cpu ?? DEFAULT_WORKER_CPU;
    const memory = props.memory ?? DEFAULT_WORKER_MEMORY;
    checkKeyPrefix(this, 'inputPrefix', props.inputPrefix);
    checkKeyPrefix(this, 'outputPrefix', props.outputPrefix);
    this.checkResources(cpu, memory, props.gpu);
    const timeout = props.timeout ?? DEFAULT_WORKER_TIMEOUT;
    if (!Token.isUnresolved(timeout.toSeconds()) && timeout.toSeconds() < MIN_TIMEOUT_SECONDS) {
      throw propError(this, 'timeout', `${timeout.toSeconds()} seconds`, `at least ${MIN_TIMEOUT_SECONDS} seconds`, 'is too short');
    }
    const attempts = props.attempts ?? DEFAULT_RETRY_ATTEMPTS;
    checkRetryAttempts(this, attempts);
    const retryStrategies = props.retryStrategies ?? RetryPresets.infrastructureOnly();
    checkRetryStrategies(this, retryStrategies);
    const environment = this.buildEnvironment(props);
    if (props.ephemeralStorage !== undefined) {
      if (this.platform !== 'FARGATE') {
        throw propError(this, 'ephemeralStorage', `${props.ephemeralStorage.toGibibytes()} GiB`, "unset unless platform is 'FARGATE' (size EC2 disks with rootVolumeSizeGiB)");
      }
      checkRange(this, 'ephemeralStorage (GiB)', props.ephemeralStorage.toGibibytes(), MIN_EPHEMERAL_GIB, MAX_EPHEMERAL_GIB);
    }

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? DEFAULT_WORKER_LOG_RETENTION,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.jobRole = props.jobRole ?? new iam.Role(this, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Role the worker job code runs with',
    });
    // Built here, without the AmazonECSTaskExecutionRolePolicy managed policy: the image, log driver and
    // secrets each grant exactly what they need to it.
    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Role ECS uses to start the worker job (image pull, logs, secrets)',
    });
    this.grantBuckets(props);

    if (props.image === undefined && props.workerImage !== undefined && props.workerImage.architecture !== this.architecture) {
      throw propError(this, 'workerImage', `${props.workerImage.node.path} (${props.workerImage.architecture})`,
        `an image built for this job definition's architecture, ${this.architecture}`);
    }
    const image = props.image ?? props.workerImage?.image ?? ecs.ContainerImage.fromAsset(WORKER_CONTAINER_DIR, {
      target: props.imageTarget,
      platform: this.architecture === 'ARM64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
    });
    const readonlyRootFilesystem = props.readonlyRootFilesystem ?? true;
    const common = {
      image,
      command: props.command,
      cpu,
      memory,
      environment,
      secrets: props.secrets,
      jobRole: this.jobRole,
      executionRole: this.executionRole,
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'worker' }),
      readonlyRootFilesystem,
      // A volume without a host path is an empty, job-private directory (Docker volume on EC2, bind
      // mount on Fargate's ephemeral storage): the one writable place when the root is read-only.
      volumes: readonlyRootFilesystem
        ? [batch.EcsVolume.host({ name: SCRATCH_VOLUME, containerPath: props.scratchPath ?? DEFAULT_SCRATCH_PATH })]
        : undefined,
    };
    this.container = this.platform === 'FARGATE'
      ? new batch.EcsFargateContainerDefinition(this, 'Container', {
        ...common,
        assignPublicIp: false,
        fargatePlatformVersion: ecs.FargatePlatformVersion.LATEST,
        fargateCpuArchitecture: this.architecture === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        fargateOperatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        ephemeralStorageSize: props.ephemeralStorage,
      })
      : new batch.EcsEc2ContainerDefinition(this, 'Container', {
        ...common,
        gpu: props.gpu,
        privileged: false,
      });

    this.jobDefinition = new batch.EcsJobDefinition(this, 'Resource', {
      container: this.container,
      timeout,
      retryAttempts: attempts,
      retryStrategies,
      // Tags given at submission reach the ECS task (cost allocation per job or tenant).
      propagateTags: true,
    });
    if (props.image === undefined && props.workerImage !== undefined) props.workerImage.requiredBy(this.jobDefinition);
    if (this.platform === 'FARGATE' && readonlyRootFilesystem) {
      // Fargate refuses a `host` block on volumes; a volume with only a name is a bind mount on the
      // task's ephemeral storage. The L2's EcsVolume.host always renders `Host: {}`.
      const cfn = this.jobDefinition.node.defaultChild as batch.CfnJobDefinition;
      cfn.addPropertyOverride('ContainerProperties.Volumes', [{ Name: SCRATCH_VOLUME }]);
    }

    if (image instanceof ecs.AssetImage || image instanceof ecs.EcrImage) {
      Validations.of(this.executionRole).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'ecr:GetAuthorizationToken, granted by the image to pull it from ECR, supports no resource-level permissions; '
          + 'the pull actions themselves are scoped to the image repository.',
      });
    }
  }

  /**
   * Lets `grantee` submit jobs with this job definition, at any revision (`<name>:*`, so a new revision
   * deployed later needs no new grant), to `queue`. Also grants `batch:TagResource` on jobs at
   * submission only (condition `batch:CreateAction = SubmitJob`), which submissions with tags need.
   */
  public grantSubmit(grantee: iam.IGrantable, queue: batch.IJobQueue): iam.Grant {
    const stack = Stack.of(this);
    const allRevisions = jobDefinitionArnAllRevisions(this, this.jobDefinition);
    const jobs = stack.formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    const submit = iam.Grant.addToPrincipal({
      grantee,
      actions: ['batch:SubmitJob'],
      resourceArns: [allRevisions, queue.jobQueueArn],
    });
    const tag = iam.Grant.addToPrincipal({
      grantee,
      actions: ['batch:TagResource'],
      resourceArns: [jobs],
      conditions: { StringEquals: { 'batch:CreateAction': 'SubmitJob' } },
    });
    const principal = grantee.grantPrincipal as unknown as IConstruct;
    if (principal.node !== undefined) {
      Validations.of(principal).acknowledge(
        {
          id: `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, allRevisions)}]`,
          reason: 'Submitting with any revision of this one job definition (name:*) keeps the grant valid after a new revision is deployed.',
        },
        {
          id: `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, jobs)}]`,
          reason: 'Job ids do not exist before submission; TagResource is limited to tag-on-create by SubmitJob (batch:CreateAction condition).',
        },
      );
    }
    return submit.combine(tag);
  }

  public get jobDefinitionRef(): batch.JobDefinitionReference {
    return this.jobDefinition.jobDefinitionRef;
  }

  public get jobDefinitionArn(): string {
    return this.jobDefinition.jobDefinitionArn;
  }

  public get jobDefinitionName(): string {
    return this.jobDefinition.jobDefinitionName;
  }

  public get parameters(): { [key: string]: unknown } | undefined {
    return this.jobDefinition.parameters;
  }

  public get retryAttempts(): number | undefined {
    return this.jobDefinition.retryAttempts;
  }

  public get retryStrategies(): batch.RetryStrategy[] {
    return this.jobDefinition.retryStrategies;
  }

  public get schedulingPriority(): number | undefined {
    return this.jobDefinition.schedulingPriority;
  }

  public get timeout(): Duration | undefined {
    return this.jobDefinition.timeout;
  }

  /** Adds a retry rule (Batch allows 5 in all; the infrastructure-only preset uses 4). */
  public addRetryStrategy(strategy: batch.RetryStrategy): void {
    this.jobDefinition.addRetryStrategy(strategy);
  }

  public applyRemovalPolicy(policy: RemovalPolicy): void {
    this.jobDefinition.applyRemovalPolicy(policy);
  }

  private checkResources(cpu: number, memory: Size, gpu: number | undefined): void {
    const memoryMiB = memory.toMebibytes();
    if (this.platform === 'FARGATE') {
      if (gpu !== undefined) {
        throw propError(this, 'gpu', gpu, "unset on Fargate (no GPUs); use platform 'EC2' with a GPU compute environment", 'is not supported on Fargate');
      }
      if (Token.isUnresolved(cpu) || Token.isUnresolved(memoryMiB)) return;
      const allowedMemory = FARGATE_SIZES.find((size) => size.cpu === cpu)?.memoryMiB;
      if (allowedMemory === undefined) {
        throw propError(this, 'cpu', cpu, FARGATE_SIZES.map((size) => size.cpu).join(', '), 'is not a Fargate vCPU value');
      }
      if (!allowedMemory.includes(memoryMiB)) {
        throw propError(this, 'memory', `${memoryMiB} MiB`, `for cpu ${cpu} on Fargate: ${describeMemory(allowedMemory)} MiB`,
          `is not a Fargate size for cpu ${cpu}`);
      }
      return;
    }
    checkInteger(this, 'cpu', cpu, 1);
    if (!Token.isUnresolved(memoryMiB) && (!Number.isInteger(memoryMiB) || memoryMiB < MIN_EC2_MEMORY_MIB)) {
      throw propError(this, 'memory', `${memoryMiB} MiB`, `a whole number of MiB >= ${MIN_EC2_MEMORY_MIB}`);
    }
    checkInteger(this, 'gpu', gpu, 1);
  }

  private buildEnvironment(props: WorkerJobDefinitionProps): Record<string, string> {
    const given = props.environment ?? {};
    for (const name of Object.keys(given)) {
      if (SECRET_LOOKING_NAME.test(name)) {
        throw propError(this, `environment.${name}`, '<redacted>',
          'names without SECRET, PASSWORD, TOKEN, API_KEY or PRIVATE_KEY; pass secret values through the `secrets` prop '
          + '(batch.Secret.fromSecretsManager / fromSsmParameter)', 'looks like a secret in a plain environment variable');
      }
      if (/^AWS_BATCH/.test(name)) {
        throw propError(this, `environment.${name}`, given[name], 'names not starting with AWS_BATCH (reserved by Batch)', 'is reserved');
      }
    }
    const defaults: Record<string, string> = {};
    if (props.inputBucket) defaults.INPUT_S3_BUCKET = props.inputBucket.bucketName;
    if (props.outputBucket) defaults.OUTPUT_S3_BUCKET = props.outputBucket.bucketName;
    return { ...defaults, ...given };
  }

  private grantBuckets(props: WorkerJobDefinitionProps): void {
    const stack = Stack.of(this);
    const acknowledgements: { id: string; reason: string }[] = [];
    if (props.inputBucket) {
      const pattern = `${props.inputPrefix ?? DEFAULT_JOBS_PREFIX}*`;
      props.inputBucket.grantRead(this.jobRole, pattern);
      acknowledgements.push(
        { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: 'Read access to the input prefix (GetObject and its version/tagging/ACL variants) as bucket.grantRead grants it.' },
        { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: 'Bucket metadata reads that bucket.grantRead includes (location, versioning) for SDK clients.' },
        { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: 'Listing the input prefix to find chunk files; scoped to the bucket by bucket.grantRead.' },
        { id: `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, props.inputBucket.arnForObjects(pattern))}]`, reason: `Job inputs are any object under the input prefix ${pattern}.` },
      );
    }
    if (props.outputBucket) {
      const pattern = `${props.outputPrefix ?? DEFAULT_JOBS_PREFIX}*`;
      if (props.allowOutputRead) {
        props.outputBucket.grantReadWrite(this.jobRole, pattern);
        acknowledgements.push(
          { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: 'Reading back checkpoints under the output prefix (allowOutputRead).' },
          { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: 'Bucket metadata reads that bucket.grantReadWrite includes.' },
          { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: 'Listing checkpoints under the output prefix (allowOutputRead).' },
          { id: 'AwsSolutions-IAM5[Action::s3:DeleteObject*]', reason: 'Replacing checkpoints under the output prefix (allowOutputRead).' },
        );
      } else {
        props.outputBucket.grantPut(this.jobRole, pattern);
      }
      acknowledgements.push(
        { id: 'AwsSolutions-IAM5[Action::s3:Abort*]', reason: 'Aborting the worker\'s own multipart uploads of large outputs.' },
        { id: `AwsSolutions-IAM5[Resource::${nagResourceFindingId(stack, props.outputBucket.arnForObjects(pattern))}]`, reason: `Job outputs are written under the output prefix ${pattern}, keyed by job id.` },
      );
    }
    // Only on a role this construct created: a role brought by the user is theirs to acknowledge.
    if (acknowledgements.length > 0 && props.jobRole === undefined) {
      Validations.of(this.jobRole).acknowledge(...acknowledgements);
    }
  }
}

/**
 * A key prefix the job role is granted on (`<prefix>*`): '' (the whole bucket) or ending in '/', so
 * 'data' cannot silently grant 'data-private/...' too.
 */
function checkKeyPrefix(scope: IConstruct, prop: string, prefix: string | undefined): void {
  if (prefix === undefined || Token.isUnresolved(prefix) || prefix === '' || prefix.endsWith('/')) return;
  throw propError(scope, prop, prefix, `'' (the whole bucket) or a prefix ending in '/' (e.g. '${prefix}/')`,
    `does not end in '/', so the grant on '${prefix}*' would also cover keys like '${prefix}-other/...'`);
}

function describeMemory(values: readonly number[]): string {
  if (values.length <= 3) return values.join(', ');
  const step = values[1] - values[0];
  return `${values[0]} to ${values[values.length - 1]} in steps of ${step}`;
}
