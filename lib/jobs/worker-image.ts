import { CfnResource, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { DockerImageName, ECRDeployment } from 'cdk-ecr-deployment';
import { Construct } from 'constructs';
import { checkInteger, propError } from '../common/validation';
import { ComputeArchitecture } from '../compute/instance-presets';
import { WORKER_CONTAINER_DIR } from './worker-job-definition';

/** Tagged images a worker repository keeps (the newest; older ones expire). */
export const DEFAULT_KEPT_IMAGES = 10;
/** Untagged images (layers of replaced tags, failed pushes) expire after this many days. */
export const UNTAGGED_IMAGE_EXPIRY_DAYS = 1;
/** ECR lifecycle rules count at most this many images per rule. */
const MAX_KEPT_IMAGES = 10_000;
/** Construct id of the role the copy Lambda runs with: one per stack, as the Lambda is (a singleton). */
const COPY_ROLE_ID = 'WorkerImageCopyRole';

export interface WorkerImageProps {
  /**
   * Build stage of `containers/worker/Dockerfile`, e.g. `'ocr'`.
   * @default - the Dockerfile's last stage: the streaming worker
   */
  readonly target?: string;
  /**
   * CPU architecture the image is built for (and copied as).
   * @default 'X86_64'
   */
  readonly architecture?: ComputeArchitecture;
  /**
   * Tagged images to keep: each deployment of a changed image adds one (tagged with its asset hash);
   * the oldest beyond this number expire, so a rollback to one of the last N deployments finds its image.
   * @default 10
   */
  readonly keptImages?: number;
  /**
   * KMS key the repository encrypts images with.
   * @default - the AWS-managed key for ECR (`aws/ecr`)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the repository when it leaves the stack. With DESTROY its images are deleted too
   * (`EmptyOnDelete`); with RETAIN the repository and its images stay.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A worker image in an ECR repository of our own: built from `containers/worker/Dockerfile` (a Docker
 * image asset, built and pushed to the CDK bootstrap repository by `cdk deploy`), then copied at deploy
 * time by cdk-ecr-deployment into this repository under an immutable tag, the asset hash. The repository
 * scans on push, keeps the last `keptImages` tagged images, expires untagged ones after a day, refuses to
 * overwrite a tag, and encrypts with KMS. Nothing here needs Docker at synth time.
 */
export class WorkerImage extends Construct {
  public readonly repository: ecr.Repository;
  /** The image as built (in the bootstrap repository): the source of the copy. */
  public readonly asset: ecrAssets.DockerImageAsset;
  /** Immutable tag of the image in `repository`: the asset hash, so a changed build gets a new tag. */
  public readonly tag: string;
  /** The image in `repository`, for a container definition (grants pull to its execution role). */
  public readonly image: ecs.ContainerImage;
  /** The deploy-time copy; anything that starts containers from `image` should depend on it. */
  public readonly deployment: ECRDeployment;
  public readonly architecture: ComputeArchitecture;
  public readonly target?: string;

  constructor(scope: Construct, id: string, props: WorkerImageProps = {}) {
    super(scope, id);
    this.architecture = props.architecture ?? 'X86_64';
    if (this.architecture !== 'X86_64' && this.architecture !== 'ARM64') {
      throw propError(this, 'architecture', this.architecture, "'X86_64' or 'ARM64'");
    }
    const keptImages = props.keptImages ?? DEFAULT_KEPT_IMAGES;
    checkInteger(this, 'keptImages', keptImages, 1);
    if (!Token.isUnresolved(keptImages) && keptImages > MAX_KEPT_IMAGES) {
      throw propError(this, 'keptImages', keptImages, `a whole number from 1 to ${MAX_KEPT_IMAGES}`);
    }
    if (props.target !== undefined && !/^[a-z0-9][a-z0-9_.-]*$/i.test(props.target)) {
      throw propError(this, 'target', props.target, 'a Dockerfile stage name (letters, digits, _ . -)');
    }
    this.target = props.target;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.repository = new ecr.Repository(this, 'Repository', {
      imageScanOnPush: true,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      encryption: ecr.RepositoryEncryption.KMS,
      encryptionKey: props.encryptionKey,
      removalPolicy,
      emptyOnDelete: removalPolicy === RemovalPolicy.DESTROY,
      lifecycleRules: [
        {
          rulePriority: 1,
          description: `Untagged images expire after ${UNTAGGED_IMAGE_EXPIRY_DAYS} day`,
          tagStatus: ecr.TagStatus.UNTAGGED,
          maxImageAge: Duration.days(UNTAGGED_IMAGE_EXPIRY_DAYS),
        },
        {
          rulePriority: 2,
          description: `Keep the last ${keptImages} tagged images`,
          tagStatus: ecr.TagStatus.TAGGED,
          tagPatternList: ['*'],
          maxImageCount: keptImages,
        },
      ],
    });

    this.asset = new ecrAssets.DockerImageAsset(this, 'Asset', {
      directory: WORKER_CONTAINER_DIR,
      target: props.target,
      platform: this.architecture === 'ARM64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
    });
    this.tag = this.asset.assetHash;

    const role = copyRole(this);
    this.asset.repository.grantPull(role);
    this.repository.grantPullPush(role);
    this.deployment = new ECRDeployment(this, 'Copy', {
      src: new DockerImageName(this.asset.imageUri),
      dest: new DockerImageName(this.repository.repositoryUriForTag(this.tag)),
      imageArch: [this.architecture === 'ARM64' ? 'arm64' : 'amd64'],
      // The library adds ecr:* and s3:GetObject on '*' to the role it is given: an immutable view of
      // ours keeps the grants above (the bootstrap repository to pull, this repository to push) exact.
      role: role.withoutPolicyUpdates(),
    });
    // The copy runs only once the role's policy (the grants above) exists.
    this.deployment.node.addDependency(role);
    this.image = ecs.ContainerImage.fromEcrRepository(this.repository, this.tag);
    acknowledgeCopyFunction(Stack.of(this));
  }

  /** Makes `dependent` (e.g. a job definition) wait until the image is in the repository. */
  public requiredBy(dependent: Construct): void {
    dependent.node.addDependency(this.deployment);
  }
}

/**
 * The copy Lambda's role, one per stack (cdk-ecr-deployment's Lambda is a singleton per stack, created
 * with the role of the first copy): logs through the basic execution policy, ECR grants added per image.
 */
function copyRole(scope: Construct): iam.Role {
  const stack = Stack.of(scope);
  const existing = stack.node.tryFindChild(COPY_ROLE_ID);
  if (existing instanceof iam.Role) return existing;
  const role = new iam.Role(stack, COPY_ROLE_ID, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Copies worker images from the CDK asset repository into their own repositories at deploy',
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
  });
  Validations.of(role).acknowledge(
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWS-managed basic execution policy: CloudWatch Logs writes only; kept managed so AWS maintains it.',
    },
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken (registry login for the copy) supports no resource-level permissions; '
        + 'pull is scoped to the CDK asset repository and push to the worker image repositories.',
    },
  );
  return role;
}

/**
 * cdk-ecr-deployment's copy Lambda (a singleton in the stack, `Custom::CDKECRDeployment...`) runs a Go
 * binary shipped in the npm package on `provided.al2023`, which cdk-nag's L1 cannot compare with a
 * "latest" Node/Python runtime.
 */
function acknowledgeCopyFunction(stack: Stack): void {
  for (const child of stack.node.children) {
    if (child.node.id.startsWith('Custom::CDKECRDeployment')) {
      // aws-lambda makes the function DependsOn its role besides the GetAtt; cfn-lint reports the
      // redundant DependsOn as W3005. Harmless, so skipped on this resource only.
      (child.node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });
      Validations.of(child).acknowledge({
        id: 'AwsSolutions-L1',
        reason: "cdk-ecr-deployment's copy handler is a Go binary on provided.al2023, the current OS-only Lambda runtime; it runs only during deployments.",
      });
    }
  }
}
