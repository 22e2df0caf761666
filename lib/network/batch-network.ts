import { Annotations, Aspects, IAspect, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { checkRange, propError, checkSubnetSelection } from '../common/validation';

/** Default number of Availability Zones of a new VPC. */
export const DEFAULT_MAX_AZS = 2;
/** Default address range of a new VPC. */
export const DEFAULT_VPC_CIDR = '10.0.0.0/16';
/** Default number of NAT gateways: none, so no hourly NAT bill; the endpoints carry the traffic. */
export const DEFAULT_NAT_GATEWAYS = 0;
/** Default retention of the VPC flow-log group. */
export const DEFAULT_FLOW_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

const MAX_AZS_LIMIT = 6;
/** Name of the subnet group with a route to the internet through NAT (egress mode only). */
export const EGRESS_SUBNET_GROUP = 'BatchEgress';
/** The only port the egress security group opens outbound: HTTPS. */
export const EGRESS_HTTPS_PORT = 443;

/** How many NAT gateways the egress mode creates: one (cheapest; the internet route lives in one AZ) or one per AZ. */
export type NatGatewayMode = 'ONE' | 'PER_AZ';
export const NAT_GATEWAY_MODES: readonly NatGatewayMode[] = ['ONE', 'PER_AZ'];

/** Internet egress for the workloads that must reach the internet (photo downloads, third-party object stores, callbacks). */
export interface BatchNetworkEgress {
  /** One NAT gateway for all AZs, or one per AZ (survives an AZ outage; costs that many times more). */
  readonly natGateways: NatGatewayMode;
}

/** Keys of `BatchNetwork.interfaceEndpoints`. */
export type BatchInterfaceEndpointKey =
  | 'ecrApi'
  | 'ecrDocker'
  | 'logs'
  | 'ecs'
  | 'ecsAgent'
  | 'ecsTelemetry'
  | 'ssm'
  | 'ssmMessages'
  | 'ec2Messages';

interface EndpointSpec {
  readonly key: BatchInterfaceEndpointKey;
  readonly id: string;
  readonly service: ec2.InterfaceVpcEndpointAwsService;
  /** Last part of the service name (`com.amazonaws.<region>.<suffix>`). */
  readonly suffix: string;
}

/** What a Batch host in a subnet without a NAT route needs: pull images, ship logs, talk to ECS. */
const REQUIRED_ENDPOINTS: readonly EndpointSpec[] = [
  { key: 'ecrApi', id: 'EcrApiEndpoint', service: ec2.InterfaceVpcEndpointAwsService.ECR, suffix: 'ecr.api' },
  { key: 'ecrDocker', id: 'EcrDockerEndpoint', service: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER, suffix: 'ecr.dkr' },
  { key: 'logs', id: 'LogsEndpoint', service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, suffix: 'logs' },
  { key: 'ecs', id: 'EcsEndpoint', service: ec2.InterfaceVpcEndpointAwsService.ECS, suffix: 'ecs' },
  { key: 'ecsAgent', id: 'EcsAgentEndpoint', service: ec2.InterfaceVpcEndpointAwsService.ECS_AGENT, suffix: 'ecs-agent' },
  {
    key: 'ecsTelemetry',
    id: 'EcsTelemetryEndpoint',
    service: ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
    suffix: 'ecs-telemetry',
  },
];

/** Session Manager access to hosts without a bastion or NAT. */
const SSM_ENDPOINTS: readonly EndpointSpec[] = [
  { key: 'ssm', id: 'SsmEndpoint', service: ec2.InterfaceVpcEndpointAwsService.SSM, suffix: 'ssm' },
  { key: 'ssmMessages', id: 'SsmMessagesEndpoint', service: ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES, suffix: 'ssmmessages' },
  { key: 'ec2Messages', id: 'Ec2MessagesEndpoint', service: ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES, suffix: 'ec2messages' },
];

export interface BatchNetworkProps {
  /**
   * Bring your own VPC instead of creating one. Then no endpoints are made unless `createEndpoints`
   * is true, and the VPC is checked for the endpoints or the NAT route Batch needs (a warning if not).
   * @default - a new VPC with isolated private subnets, endpoints and flow logs
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of a brought VPC where Batch runs.
   * @default - the VPC's private subnets with egress if it has any, else its isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Availability Zones of a new VPC (1 to 6). An environment-agnostic stack gets at most 2.
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * Address range of a new VPC.
   * @default ec2.IpAddresses.cidr('10.0.0.0/16')
   */
  readonly ipAddresses?: ec2.IIpAddresses;
  /**
   * NAT gateways of a new VPC. With 0 the Batch subnets are PRIVATE_ISOLATED and reach AWS only
   * through the endpoints; with more, public subnets are added and the Batch subnets are
   * PRIVATE_WITH_EGRESS (needed to pull images from outside ECR or call the internet).
   * @default 0
   */
  readonly natGateways?: number;
  /**
   * Create interface endpoints for SSM, SSM messages and EC2 messages (Session Manager on hosts).
   * @default false
   */
  readonly enableSsmEndpoints?: boolean;
  /**
   * Retention of the flow-log group of a new VPC.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly flowLogRetention?: logs.RetentionDays;
  /**
   * Removal policy of the flow-log group (only made for a new VPC).
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Remove the rules of a new VPC's default security group (Security Hub EC2.2). Nothing here uses
   * that group, and closing it needs a Lambda-backed custom resource (a singleton per stack whose
   * log group has no retention, and which cfn-lint flags with W3005), so it is off by default.
   * @default false
   */
  readonly restrictDefaultSecurityGroup?: boolean;
  /**
   * Create the interface endpoints (ECR API, ECR Docker, CloudWatch Logs, ECS, ECS agent, ECS
   * telemetry), their security group and the S3 gateway endpoint.
   * @default - true for a new VPC, false for a brought VPC
   */
  readonly createEndpoints?: boolean;
  /**
   * Egress mode of a new VPC: adds public subnets with NAT gateway(s), a separate `BatchEgress`
   * subnet group routed through them and a security group whose only outbound rule is HTTPS (443).
   * Only the workloads placed with `egressSubnetSelection` and `egressSecurityGroup` reach the
   * internet; the `Batch` subnets stay isolated. Cannot be combined with `natGateways` (which gives
   * every Batch subnet a NAT route).
   * @default - none: no NAT gateway, no internet route
   */
  readonly egress?: BatchNetworkEgress;
}

/**
 * The network AWS Batch runs in: by default a VPC with isolated private subnets and no NAT gateway,
 * reaching ECR, CloudWatch Logs, ECS and S3 through VPC endpoints (so private hosts can pull images
 * without a NAT bill), with flow logs, and one security group for the compute environments.
 */
export class BatchNetwork extends Construct {
  /** The VPC (created or brought). */
  public readonly vpc: ec2.IVpc;
  /** Subnets where Batch compute runs. */
  public readonly subnetSelection: ec2.SubnetSelection;
  /** Security group for Batch compute: no ingress, all egress (to the endpoints or the NAT). */
  public readonly batchSecurityGroup: ec2.ISecurityGroup;
  /** Security group shared by the interface endpoints: HTTPS from the VPC CIDR only. */
  public readonly endpointSecurityGroup?: ec2.ISecurityGroup;
  /** Interface endpoints created, by key (`ecrApi`, `ecrDocker`, `logs`, `ecs`, `ecsAgent`, `ecsTelemetry`, `ssm`, ...). */
  public readonly interfaceEndpoints: Record<string, ec2.InterfaceVpcEndpoint> = {};
  /** S3 gateway endpoint, when endpoints are created. */
  public readonly s3Endpoint?: ec2.IGatewayVpcEndpoint;
  /** Subnets with a NAT route, for workloads that must reach the internet (egress mode only). */
  public readonly egressSubnetSelection?: ec2.SubnetSelection;
  /**
   * Security group for those workloads (egress mode only): no ingress, outbound HTTPS (443) only, to the
   * internet through the NAT, the interface endpoints and S3. DNS needs no rule: security groups do not
   * filter traffic to the Amazon-provided resolver.
   */
  public readonly egressSecurityGroup?: ec2.ISecurityGroup;
  /** NAT gateways created (0 without egress). */
  public readonly natGatewayCount: number;
  /** Flow-log group of a new VPC. */
  public readonly flowLogGroup?: logs.ILogGroup;
  /** The flow log of a new VPC. */
  public readonly flowLog?: ec2.FlowLog;

  constructor(scope: Construct, id: string, props: BatchNetworkProps = {}) {
    super(scope, id);
    const brought = props.vpc !== undefined;
    const createEndpoints = props.createEndpoints ?? !brought;
    const maxAzs = props.maxAzs ?? DEFAULT_MAX_AZS;
    const egressMode = props.egress?.natGateways;
    this.validate(props, brought, createEndpoints);
    const natGateways = egressMode === 'ONE' ? 1 : egressMode === 'PER_AZ' ? maxAzs : (props.natGateways ?? DEFAULT_NAT_GATEWAYS);

    // The literal CIDR of a new VPC, when known, keeps the endpoint rule readable and checkable.
    let newVpcCidr: string | undefined;
    if (props.vpc) {
      this.vpc = props.vpc;
      // An unknown subnetGroupName or an empty list fails here, naming the prop, instead of surfacing
      // as a misleading "no NAT route" warning at synth.
      checkSubnetSelection(this, 'vpcSubnets', props.vpc, props.vpcSubnets);
      this.subnetSelection = props.vpcSubnets ?? defaultBroughtSubnets(props.vpc);
    } else {
      // Without the egress mode, natGateways > 0 routes every Batch subnet through NAT (the older, all-or-nothing choice).
      const egress = natGateways > 0;
      const batchSubnets: ec2.SubnetConfiguration = {
        name: 'Batch',
        subnetType: egress && !egressMode ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED,
      };
      const ipAddresses = props.ipAddresses ?? ec2.IpAddresses.cidr(DEFAULT_VPC_CIDR);
      newVpcCidr = ipAddresses.allocateVpcCidr().cidrBlock;
      this.vpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses,
        maxAzs,
        natGateways,
        subnetConfiguration: egress
          ? [
            { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
            batchSubnets,
            ...(egressMode ? [{ name: EGRESS_SUBNET_GROUP, subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }] : []),
          ]
          : [batchSubnets],
        // Explicit so the result does not depend on the app's feature flags.
        restrictDefaultSecurityGroup: props.restrictDefaultSecurityGroup ?? false,
      });
      this.subnetSelection = { subnetGroupName: 'Batch' };

      this.flowLogGroup = new logs.LogGroup(this, 'FlowLogGroup', {
        retention: props.flowLogRetention ?? DEFAULT_FLOW_LOG_RETENTION,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      });
      this.flowLog = new ec2.FlowLog(this, 'FlowLog', {
        resourceType: ec2.FlowLogResourceType.fromVpc(this.vpc),
        destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
        trafficType: ec2.FlowLogTrafficType.ALL,
      });
    }

    this.batchSecurityGroup = new ec2.SecurityGroup(this, 'BatchSecurityGroup', {
      vpc: this.vpc,
      description: 'AWS Batch compute: no inbound, outbound to the VPC endpoints or NAT',
      allowAllOutbound: true,
    });
    this.natGatewayCount = brought ? 0 : natGateways;

    if (egressMode) {
      this.egressSubnetSelection = { subnetGroupName: EGRESS_SUBNET_GROUP };
      const egressSecurityGroup = new ec2.SecurityGroup(this, 'EgressSecurityGroup', {
        vpc: this.vpc,
        description: 'Batch compute that must reach the internet: no inbound, outbound HTTPS only',
        allowAllOutbound: false,
      });
      // HTTPS to anywhere covers the internet (through NAT), the interface endpoints (VPC CIDR) and the
      // S3 gateway endpoint (a prefix list). Plain HTTP and every other port stay closed.
      egressSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(EGRESS_HTTPS_PORT), 'HTTPS to the internet, the VPC endpoints and S3');
      this.egressSecurityGroup = egressSecurityGroup;
    }

    if (createEndpoints) {
      const endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'Interface VPC endpoints: HTTPS from inside the VPC only',
        allowAllOutbound: false,
      });
      const cidr = newVpcCidr ?? vpcCidr(this, this.vpc);
      endpointSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from the VPC CIDR');
      if (Token.isUnresolved(cidr)) {
        Validations.of(endpointSecurityGroup).acknowledge({
          id: 'AwsSolutions-EC23',
          reason: 'The only ingress rule is TCP 443 from the VPC\'s own CIDR block, which is a CloudFormation attribute cdk-nag cannot evaluate; it is never 0.0.0.0/0.',
        });
      }
      this.endpointSecurityGroup = endpointSecurityGroup;

      const specs = props.enableSsmEndpoints ? [...REQUIRED_ENDPOINTS, ...SSM_ENDPOINTS] : REQUIRED_ENDPOINTS;
      for (const spec of specs) {
        this.interfaceEndpoints[spec.key] = new ec2.InterfaceVpcEndpoint(this, spec.id, {
          vpc: this.vpc,
          service: spec.service,
          subnets: this.subnetSelection,
          securityGroups: [endpointSecurityGroup],
          privateDnsEnabled: true,
          // The shared security group above already carries the one ingress rule.
          open: false,
        });
      }
      this.s3Endpoint = new ec2.GatewayVpcEndpoint(this, 'S3Endpoint', {
        vpc: this.vpc,
        service: ec2.GatewayVpcEndpointAwsService.S3,
        // Egress subnets too: S3 traffic of internet-facing jobs must not pay NAT data processing.
        subnets: this.egressSubnetSelection ? [this.subnetSelection, this.egressSubnetSelection] : [this.subnetSelection],
      });
    } else if (!brought && natGateways === 0) {
      Annotations.of(this).addWarningV2(
        'cdk-batch-platform:vpcWithoutEgress',
        `VPC has neither a NAT gateway nor endpoints (createEndpoints is false): Batch hosts cannot pull images or ship logs. Missing endpoints: ${[...REQUIRED_ENDPOINTS.map((e) => e.suffix), 's3'].join(', ')}`,
      );
    }

    if (brought && !createEndpoints) {
      // Checked late (at synth) so endpoints or NAT routes added to the VPC after this construct count.
      Aspects.of(this).add(new BroughtVpcEgressCheck(this, props.vpc!, this.subnetSelection));
    }
  }

  private validate(props: BatchNetworkProps, brought: boolean, createEndpoints: boolean): void {
    checkRange(this, 'maxAzs', props.maxAzs, 1, MAX_AZS_LIMIT);
    if (props.maxAzs !== undefined && !Token.isUnresolved(props.maxAzs) && !Number.isInteger(props.maxAzs)) {
      throw propError(this, 'maxAzs', props.maxAzs, `a whole number from 1 to ${MAX_AZS_LIMIT}`);
    }
    if (props.natGateways !== undefined && !Token.isUnresolved(props.natGateways)) {
      if (!Number.isInteger(props.natGateways) || props.natGateways < 0) {
        throw propError(this, 'natGateways', props.natGateways, 'a whole number >= 0');
      }
    }
    if (props.egress !== undefined) {
      const mode = (props.egress as Partial<BatchNetworkEgress>).natGateways;
      if (!NAT_GATEWAY_MODES.includes(mode as NatGatewayMode)) {
        throw propError(this, 'egress.natGateways', mode, NAT_GATEWAY_MODES.map((m) => `'${m}'`).join(' or '));
      }
      if (props.natGateways !== undefined && props.natGateways !== 0) {
        throw propError(this, 'natGateways', props.natGateways, "0 or unset with `egress` (egress creates its own NAT gateways for the BatchEgress subnets only)", 'conflicts with egress');
      }
    }
    if (brought) {
      const newVpcOnly: Array<[keyof BatchNetworkProps, unknown]> = [
        ['maxAzs', props.maxAzs],
        ['ipAddresses', props.ipAddresses],
        ['natGateways', props.natGateways],
        ['flowLogRetention', props.flowLogRetention],
        ['restrictDefaultSecurityGroup', props.restrictDefaultSecurityGroup],
        ['egress', props.egress],
      ];
      for (const [prop, value] of newVpcOnly) {
        if (value !== undefined) {
          throw propError(this, prop, value, 'only without `vpc` (it configures a new VPC)', 'conflicts with a brought vpc');
        }
      }
    } else if (props.vpcSubnets !== undefined) {
      throw propError(this, 'vpcSubnets', props.vpcSubnets, 'only with `vpc` (a new VPC runs Batch in its Batch subnets)', 'needs a brought vpc');
    }
    if (props.enableSsmEndpoints && !createEndpoints) {
      throw propError(
        this,
        'enableSsmEndpoints',
        props.enableSsmEndpoints,
        'true only when endpoints are created (createEndpoints true; the default for a new VPC)',
        'has no effect without createEndpoints',
      );
    }
  }
}

function defaultBroughtSubnets(vpc: ec2.IVpc): ec2.SubnetSelection {
  return {
    subnetType: vpc.privateSubnets.length > 0 ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED,
  };
}

function vpcCidr(scope: IConstruct, vpc: ec2.IVpc): string {
  try {
    return vpc.vpcCidrBlock;
  } catch {
    // Imported VPCs without `vpcCidrBlock` throw here; the endpoint rule cannot be scoped without it.
    throw propError(scope, 'vpc', vpc.node.path, 'a VPC with a known CIDR (Vpc.fromLookup or fromVpcAttributes with vpcCidrBlock)', 'has no vpcCidrBlock for the endpoint security group');
  }
}

/** Service-name suffixes of the endpoints in the app that belong to `vpc`. */
function endpointSuffixes(vpc: ec2.IVpc): Set<string> {
  const found = new Set<string>();
  for (const node of vpc.node.root.node.findAll()) {
    if (!(node instanceof ec2.CfnVPCEndpoint) || node.vpcId !== vpc.vpcId) continue;
    const name = flattenJoin(Stack.of(node).resolve(node.serviceName));
    // Names are `com.amazonaws.<region>.<suffix>`; the region is a token in env-agnostic stacks.
    for (const spec of [...REQUIRED_ENDPOINTS, ...SSM_ENDPOINTS]) {
      if (name.endsWith(`.${spec.suffix}`)) found.add(spec.suffix);
    }
    if (name.endsWith('.s3')) found.add('s3');
  }
  return found;
}

/** A resolved string or `Fn::Join` as text, with any other intrinsic as `?`. */
function flattenJoin(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] } | undefined)?.['Fn::Join'];
  if (join) return join[1].map(flattenJoin).join(join[0]);
  return '?';
}

/** True when every selected subnet has a default route through a NAT gateway, instance or transit gateway. */
function hasNatRoute(vpc: ec2.IVpc, selection: ec2.SubnetSelection): boolean {
  let subnets: ec2.ISubnet[];
  try {
    subnets = vpc.selectSubnets(selection).subnets;
  } catch {
    return false;
  }
  if (subnets.length === 0) return false;
  return subnets.every((subnet) =>
    subnet.node
      .findAll()
      .some(
        (c) =>
          c instanceof ec2.CfnRoute &&
          c.destinationCidrBlock === '0.0.0.0/0' &&
          (c.natGatewayId !== undefined || c.instanceId !== undefined || c.transitGatewayId !== undefined || c.networkInterfaceId !== undefined),
      ),
  );
}

/** Warns when a brought VPC gives Batch hosts no way to reach ECR, CloudWatch Logs, ECS and S3. */
class BroughtVpcEgressCheck implements IAspect {
  private done = false;

  constructor(
    private readonly network: BatchNetwork,
    private readonly vpc: ec2.IVpc,
    private readonly selection: ec2.SubnetSelection,
  ) {}

  public visit(node: IConstruct): void {
    if (node !== this.network || this.done) return;
    this.done = true;
    if (!(this.vpc instanceof ec2.Vpc)) {
      Annotations.of(this.network).addWarningV2(
        'cdk-batch-platform:vpcEgressUnverified',
        `VPC ${this.vpc.node.path} is imported, so its endpoints and NAT routes cannot be checked: make sure the Batch subnets reach ECR API, ECR Docker, CloudWatch Logs, ECS, ECS agent, ECS telemetry and S3 through endpoints or a NAT gateway, or set createEndpoints: true`,
      );
      return;
    }
    if (hasNatRoute(this.vpc, this.selection)) return;
    const present = endpointSuffixes(this.vpc);
    const missing = [...REQUIRED_ENDPOINTS.map((e) => e.suffix), 's3'].filter((s) => !present.has(s));
    if (missing.length === 0) return;
    Annotations.of(this.network).addWarningV2(
      'cdk-batch-platform:vpcWithoutEgress',
      `VPC ${this.vpc.node.path} has no NAT route for the Batch subnets and lacks endpoints for: ${missing.join(', ')}. Batch hosts will fail to pull images or ship logs; add the endpoints, a NAT gateway, or set createEndpoints: true`,
    );
  }
}
