import { RemovalPolicy, Resource, Token, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { checkInteger, checkRange, checkSubnetSelection, propError } from '../common/validation';
import {
  ComputeArchitecture,
  INSTANCE_PRESETS,
  InstancePreset,
  checkSingleArchitecture,
  isGpuInstance,
  isUnsupportedGpuInstance,
} from './instance-presets';

/** How an EC2 compute environment buys its instances. */
export type Ec2Capacity = 'SPOT' | 'ON_DEMAND';

export const DEFAULT_EC2_CAPACITY: Ec2Capacity = 'SPOT';
export const DEFAULT_ARCHITECTURE: ComputeArchitecture = 'X86_64';
export const DEFAULT_INSTANCE_PRESET: InstancePreset = 'GENERAL';
export const DEFAULT_MIN_VCPUS = 0;
export const DEFAULT_MAX_VCPUS = 256;
export const DEFAULT_ROOT_VOLUME_GIB = 50;
/** The ECS-optimised AL2023 AMI's snapshot is 30 GiB; a smaller root volume cannot launch. */
const MIN_ROOT_VOLUME_GIB = 30;
const MAX_ROOT_VOLUME_GIB = 16384;
/** AL2023 AMIs boot from /dev/xvda. */
const ROOT_DEVICE_NAME = '/dev/xvda';

export interface Ec2ComputeEnvironmentProps {
  /** VPC the instances launch in (e.g. `BatchNetwork.vpc`). */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets the instances launch in.
   * @default - the VPC's private subnets (isolated ones when the VPC has no NAT)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Security groups of the instances.
   * @default - one new security group with egress allowed and no ingress
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * Spot (cheaper, can be reclaimed with two minutes' notice) or On-Demand instances.
   * @default 'SPOT'
   */
  readonly capacity?: Ec2Capacity;
  /**
   * CPU architecture of the instances; x86 and ARM are never mixed in one environment.
   * @default - the architecture of `instanceTypes` when given, else 'X86_64'
   */
  readonly architecture?: ComputeArchitecture;
  /**
   * Named set of instance families (Batch picks the sizes). Cannot be combined with `instanceTypes`
   * or `instanceClasses` (synth fails naming both): those replace the preset.
   * `GPU` selects NVIDIA families and the AL2023 NVIDIA AMI (X86_64 only).
   * @default 'GENERAL' (when neither `instanceTypes` nor `instanceClasses` is given)
   */
  readonly preset?: InstancePreset;
  /**
   * Exact instance types (`new ec2.InstanceType('c6i.xlarge')`, `ec2.InstanceType.of(ec2.InstanceClass.C6I, ec2.InstanceSize.XLARGE)`)
   * or whole families without a size (`new ec2.InstanceType('c6i')`), instead of a preset. With
   * `instanceClasses`, Batch may choose from both. All must be of one architecture; GPU families
   * switch the AMI to AL2023 NVIDIA.
   * @default - none (the families of `preset` when `instanceClasses` is not given either)
   */
  readonly instanceTypes?: ec2.InstanceType[];
  /**
   * Instance families Batch chooses sizes from (`[ec2.InstanceClass.C6I, ec2.InstanceClass.M6I]`),
   * instead of a preset. May be combined with `instanceTypes`; one architecture in all.
   * @default - none (the families of `preset` when `instanceTypes` is not given either)
   */
  readonly instanceClasses?: ec2.InstanceClass[];
  /**
   * vCPUs kept running even with no jobs. Anything above 0 is billed around the clock.
   * @default 0
   */
  readonly minvCpus?: number;
  /**
   * Upper bound of vCPUs the environment scales to (a cost ceiling).
   * @default 256
   */
  readonly maxvCpus?: number;
  /**
   * How Batch chooses instances. `BEST_FIT` is refused: it cannot be updated in place.
   * @default - SPOT_PRICE_CAPACITY_OPTIMIZED for Spot, BEST_FIT_PROGRESSIVE for On-Demand
   */
  readonly allocationStrategy?: batch.AllocationStrategy;
  /**
   * Maximum Spot price as a percentage of the On-Demand price (Spot only). AWS recommends leaving it unset.
   * @default - up to the On-Demand price
   */
  readonly spotBidPercentage?: number;
  /**
   * Size of the encrypted gp3 root volume in GiB (holds the images and the containers' scratch data).
   * @default 50
   */
  readonly rootVolumeSizeGiB?: number;
  /**
   * Let containers reach the instance metadata service (IMDSv2 hop limit 2 instead of 1). Jobs get
   * credentials from their job role through the ECS agent, so by default containers cannot reach IMDS
   * and therefore cannot take the instance role's credentials.
   * @default false
   */
  readonly allowContainerImdsAccess?: boolean;
}

/**
 * A managed EC2 (ECS) compute environment with safe defaults: Spot by default with
 * SPOT_PRICE_CAPACITY_OPTIMIZED, explicit instance families of one architecture (never `optimal`),
 * the AL2023 ECS AMI (NVIDIA variant for GPU families), minvCpus 0, no physical name (so updates
 * never need a replacement), in-place updates to the latest AMI, and a launch template with IMDSv2
 * required and an encrypted gp3 root volume whose version is pinned so template edits reach the
 * environment.
 *
 * Usable wherever aws-cdk-lib expects a `batch.IComputeEnvironment` (e.g. `batch.JobQueue`), and an
 * `ec2.IConnectable` for security-group rules.
 */
export class Ec2ComputeEnvironment extends Resource implements batch.IComputeEnvironment, ec2.IConnectable {
  /** The Batch compute environment. */
  public readonly computeEnvironment: batch.IManagedEc2EcsComputeEnvironment;
  /** The launch template (IMDSv2, encrypted root volume); its latest version is pinned in the environment. */
  public readonly launchTemplate: ec2.ILaunchTemplate;
  /** The role of the EC2 instances (ECS agent only; jobs use their own job role). */
  public readonly instanceRole: iam.IRole;
  public readonly capacity: Ec2Capacity;
  public readonly architecture: ComputeArchitecture;
  /** Whether the environment runs GPU instances (and the AL2023 NVIDIA AMI). */
  public readonly gpu: boolean;
  public readonly minvCpus: number;
  public readonly maxvCpus: number;

  constructor(scope: Construct, id: string, props: Ec2ComputeEnvironmentProps) {
    super(scope, id);
    this.capacity = props.capacity ?? DEFAULT_EC2_CAPACITY;
    if (this.capacity !== 'SPOT' && this.capacity !== 'ON_DEMAND') {
      throw propError(this, 'capacity', this.capacity, "'SPOT' or 'ON_DEMAND'");
    }
    const spot = this.capacity === 'SPOT';
    this.minvCpus = props.minvCpus ?? DEFAULT_MIN_VCPUS;
    this.maxvCpus = props.maxvCpus ?? DEFAULT_MAX_VCPUS;
    checkInteger(this, 'minvCpus', this.minvCpus, 0);
    checkInteger(this, 'maxvCpus', this.maxvCpus, 1);
    if (!Token.isUnresolved(this.minvCpus) && !Token.isUnresolved(this.maxvCpus) && this.maxvCpus < this.minvCpus) {
      throw propError(this, 'maxvCpus', this.maxvCpus, `a whole number >= minvCpus (${this.minvCpus})`, `is less than minvCpus (${this.minvCpus})`);
    }
    const allocationStrategy = this.resolveAllocationStrategy(spot, props.allocationStrategy);
    if (props.spotBidPercentage !== undefined && !spot) {
      throw propError(this, 'spotBidPercentage', props.spotBidPercentage, "unset when capacity is 'ON_DEMAND'", 'only applies to Spot');
    }
    checkRange(this, 'spotBidPercentage', props.spotBidPercentage, 1, 100);
    const rootVolumeSizeGiB = props.rootVolumeSizeGiB ?? DEFAULT_ROOT_VOLUME_GIB;
    checkRange(this, 'rootVolumeSizeGiB', rootVolumeSizeGiB, MIN_ROOT_VOLUME_GIB, MAX_ROOT_VOLUME_GIB);

    checkSubnetSelection(this, 'vpcSubnets', props.vpc, props.vpcSubnets);
    const { instanceTypes, instanceClasses, architecture } = this.resolveInstances(props);
    this.architecture = architecture;
    this.gpu = [...instanceTypes, ...instanceClasses].some((i) => isGpuInstance(i));

    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      requireImdsv2: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpEndpoint: true,
      // Hop limit 1: a container (one hop behind the docker bridge) gets no IMDSv2 token, so it cannot
      // read the instance role's credentials; jobs get theirs from the ECS agent's credential endpoint.
      httpPutResponseHopLimit: props.allowContainerImdsAccess ? 2 : 1,
      blockDevices: [{
        deviceName: ROOT_DEVICE_NAME,
        volume: ec2.BlockDeviceVolume.ebs(rootVolumeSizeGiB, {
          encrypted: true,
          volumeType: ec2.EbsDeviceVolumeType.GP3,
          deleteOnTermination: true,
        }),
      }],
    });
    this.launchTemplate = launchTemplate;

    const environment = new batch.ManagedEc2EcsComputeEnvironment(this, 'Resource', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      spot,
      allocationStrategy,
      spotBidPercentage: props.spotBidPercentage,
      minvCpus: this.minvCpus,
      maxvCpus: this.maxvCpus,
      instanceTypes,
      instanceClasses,
      useOptimalInstanceClasses: false,
      images: [{ imageType: this.gpu ? batch.EcsMachineImageType.ECS_AL2023_NVIDIA : batch.EcsMachineImageType.ECS_AL2023 }],
      launchTemplate,
      // With no physical name and replaceComputeEnvironment false, changes are applied as in-place
      // infrastructure updates instead of a replacement that fails on the name or drains the queue.
      replaceComputeEnvironment: false,
      updateToLatestImageVersion: true,
      terminateOnUpdate: false,
    });
    this.computeEnvironment = environment;
    this.instanceRole = environment.instanceRole!;

    // The L2 passes only the template id, which makes Batch use the template's $Default version
    // forever: pin the latest version number so every template edit reaches the environment.
    const cfn = environment.node.defaultChild as batch.CfnComputeEnvironment;
    cfn.addPropertyOverride('ComputeResources.LaunchTemplate.Version', launchTemplate.latestVersionNumber);

    Validations.of(environment).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]',
      reason: 'The instance role needs exactly what the ECS agent on a Batch instance does (register the container instance, '
        + 'poll for tasks, pull from ECR, write logs); AWS maintains this policy as ECS evolves. Jobs never use it: '
        + 'they run with their own job role and IMDS is unreachable from containers.',
    });
  }

  public get computeEnvironmentRef(): batch.ComputeEnvironmentReference {
    return this.computeEnvironment.computeEnvironmentRef;
  }

  public get computeEnvironmentArn(): string {
    return this.computeEnvironment.computeEnvironmentArn;
  }

  public get computeEnvironmentName(): string {
    return this.computeEnvironment.computeEnvironmentName;
  }

  public get serviceRole(): iam.IRole | undefined {
    return this.computeEnvironment.serviceRole;
  }

  public get enabled(): boolean {
    return this.computeEnvironment.enabled;
  }

  /** The security groups of the instances: `ce.connections.allowTo(database, ec2.Port.tcp(5432))`. */
  public get connections(): ec2.Connections {
    return this.computeEnvironment.connections;
  }

  public applyRemovalPolicy(policy: RemovalPolicy): void {
    this.computeEnvironment.applyRemovalPolicy(policy);
  }

  private resolveAllocationStrategy(spot: boolean, requested?: batch.AllocationStrategy): batch.AllocationStrategy {
    const spotOnly = [batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED, batch.AllocationStrategy.SPOT_CAPACITY_OPTIMIZED];
    const allowed = spot
      ? [...spotOnly, batch.AllocationStrategy.BEST_FIT_PROGRESSIVE]
      : [batch.AllocationStrategy.BEST_FIT_PROGRESSIVE];
    if (requested !== undefined && !allowed.includes(requested)) {
      const problem = requested === batch.AllocationStrategy.BEST_FIT
        ? 'cannot be updated in place (Batch refuses infrastructure updates with BEST_FIT)'
        : `needs capacity 'SPOT'`;
      throw propError(this, 'allocationStrategy', requested, allowed.join(', '), problem);
    }
    return requested ?? (spot ? batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED : batch.AllocationStrategy.BEST_FIT_PROGRESSIVE);
  }

  private resolveInstances(props: Ec2ComputeEnvironmentProps): {
    instanceTypes: ec2.InstanceType[];
    instanceClasses: ec2.InstanceClass[];
    architecture: ComputeArchitecture;
  } {
    if (props.architecture !== undefined && props.architecture !== 'X86_64' && props.architecture !== 'ARM64') {
      throw propError(this, 'architecture', props.architecture, "'X86_64' or 'ARM64'");
    }
    if (props.instanceTypes !== undefined || props.instanceClasses !== undefined) {
      const given = props.instanceTypes !== undefined ? 'instanceTypes' : 'instanceClasses';
      if (props.preset !== undefined) {
        throw propError(this, 'preset', props.preset, 'either preset, or instanceTypes / instanceClasses, not both', `conflicts with ${given}`);
      }
      const types = props.instanceTypes ?? [];
      const classes = props.instanceClasses ?? [];
      for (const [prop, list] of [['instanceTypes', types], ['instanceClasses', classes]] as const) {
        const value = prop === 'instanceTypes' ? props.instanceTypes : props.instanceClasses;
        if (value !== undefined && value.length === 0) {
          throw propError(this, prop, [], 'at least one entry, or leave unset (without instanceTypes and instanceClasses a preset is used)', 'is empty');
        }
        const unsupported = list.filter((t) => isUnsupportedGpuInstance(t)).map(String);
        if (unsupported.length > 0) {
          throw propError(this, prop, list.map(String), 'GPU families supported by the AL2023 NVIDIA AMI (g4dn, g5, g6, g6e, p4d, p5 ...)',
            `contains ${unsupported.join(', ')}, which AL2023 does not support`);
        }
      }
      const all = [...types, ...classes];
      const prop = types.length > 0 && classes.length > 0 ? 'instanceTypes + instanceClasses' : given;
      const architecture = checkSingleArchitecture(this, prop, all, props.architecture) ?? DEFAULT_ARCHITECTURE;
      // A family given as an InstanceType (`new ec2.InstanceType('c6i')`) goes to Batch as a class:
      // the L2 reads every InstanceType's architecture, which needs `<family>.<size>`.
      const sized = types.filter((t) => t.toString().includes('.'));
      const families = types.filter((t) => !t.toString().includes('.')).map((t) => t.toString() as ec2.InstanceClass);
      return { instanceTypes: sized, instanceClasses: [...families, ...classes], architecture };
    }
    const architecture = props.architecture ?? DEFAULT_ARCHITECTURE;
    const preset = props.preset ?? DEFAULT_INSTANCE_PRESET;
    const families = INSTANCE_PRESETS[preset]?.[architecture];
    if (families === undefined) {
      throw propError(this, 'preset', preset, Object.keys(INSTANCE_PRESETS).join(', '));
    }
    if (families.length === 0) {
      throw propError(this, 'preset', preset, `architecture 'X86_64' with preset 'GPU'`, `has no ${architecture} families (the AL2023 NVIDIA AMI is x86 only)`);
    }
    return { instanceTypes: [], instanceClasses: [...families], architecture };
  }
}

