import { RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { checkInteger, checkSubnetSelection, propError } from '../common/validation';

export const DEFAULT_FARGATE_MAX_VCPUS = 256;

export interface FargateComputeEnvironmentProps {
  /** VPC the tasks run in (e.g. `BatchNetwork.vpc`). */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets the tasks run in.
   * @default - the VPC's private subnets (isolated ones when the VPC has no NAT)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Security groups of the tasks.
   * @default - one new security group with egress allowed and no ingress
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * Run on Fargate Spot (cheaper, tasks can be interrupted with two minutes' notice).
   * @default false
   */
  readonly spot?: boolean;
  /**
   * Upper bound of vCPUs the environment runs at once (a cost ceiling).
   * @default 256
   */
  readonly maxvCpus?: number;
  /**
   * Not supported: Fargate has no GPUs. Present so that a configuration shared with
   * `Ec2ComputeEnvironment` fails synth instead of silently running GPU jobs without GPUs.
   * @default - no GPU (any value fails)
   */
  readonly gpu?: number | boolean;
  /**
   * Not supported: Fargate chooses its own hosts. Present so that a shared configuration fails synth.
   * @default - none (any value fails)
   */
  readonly instanceTypes?: ec2.InstanceType[];
}

/**
 * A Fargate or Fargate Spot compute environment: no instances to manage, no physical name (so it can
 * be updated in place), maxvCpus 256 by default. Usable wherever aws-cdk-lib expects a
 * `batch.IComputeEnvironment`, and an `ec2.IConnectable` for security-group rules.
 */
export class FargateComputeEnvironment extends Resource implements batch.IComputeEnvironment, ec2.IConnectable {
  /** The Batch compute environment. */
  public readonly computeEnvironment: batch.IFargateComputeEnvironment;
  /** Whether the environment runs on Fargate Spot. */
  public readonly spot: boolean;
  public readonly maxvCpus: number;

  constructor(scope: Construct, id: string, props: FargateComputeEnvironmentProps) {
    super(scope, id);
    if (props.gpu !== undefined && props.gpu !== false && props.gpu !== 0) {
      throw propError(this, 'gpu', props.gpu, 'unset on Fargate; use Ec2ComputeEnvironment with preset GPU', 'is not supported: Fargate has no GPUs');
    }
    if (props.instanceTypes !== undefined) {
      throw propError(this, 'instanceTypes', props.instanceTypes.map(String), 'unset on Fargate; use Ec2ComputeEnvironment to choose instance types',
        'is not supported: Fargate chooses its hosts');
    }
    checkSubnetSelection(this, 'vpcSubnets', props.vpc, props.vpcSubnets);
    this.spot = props.spot ?? false;
    this.maxvCpus = props.maxvCpus ?? DEFAULT_FARGATE_MAX_VCPUS;
    if (!Token.isUnresolved(this.maxvCpus)) checkInteger(this, 'maxvCpus', this.maxvCpus, 1);
    this.computeEnvironment = new batch.FargateComputeEnvironment(this, 'Resource', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      spot: this.spot,
      maxvCpus: this.maxvCpus,
      replaceComputeEnvironment: false,
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

  /** The security groups of the tasks: `ce.connections.allowTo(database, ec2.Port.tcp(5432))`. */
  public get connections(): ec2.Connections {
    return this.computeEnvironment.connections;
  }

  public applyRemovalPolicy(policy: RemovalPolicy): void {
    this.computeEnvironment.applyRemovalPolicy(policy);
  }
}
