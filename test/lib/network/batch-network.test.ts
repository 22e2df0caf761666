import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { BatchNetwork, BatchNetworkProps } from '../../../lib/network/batch-network';
import { cfnLintFindings, stackNagFindings } from '../../support/compliance';

const ENV = { account: '123456789012', region: 'us-east-1' };
const AZ_CONTEXT = {
  [`availability-zones:account=${ENV.account}:region=${ENV.region}`]: ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1d'],
};

function newStack(withEnv = false): Stack {
  const app = new App({ context: AZ_CONTEXT });
  return new Stack(app, 'Stack', withEnv ? { env: ENV } : {});
}

function synth(props: BatchNetworkProps = {}): { stack: Stack; network: BatchNetwork; template: Template } {
  const stack = newStack();
  const network = new BatchNetwork(stack, 'Net', props);
  return { stack, network, template: Template.fromStack(stack) };
}

function serviceName(suffix: string) {
  return { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, `.${suffix}`]] };
}

function logicalIdOf(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as ec2.CfnSecurityGroup);
}

function warningsOf(stack: Stack, id: string) {
  return Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(id));
}

/** An in-app VPC with isolated subnets only: no NAT, no endpoints. */
function isolatedVpc(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'OwnVpc', {
    natGateways: 0,
    subnetConfiguration: [{ name: 'Private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
}

const REQUIRED = ['ecr.api', 'ecr.dkr', 'logs', 'ecs', 'ecs-agent', 'ecs-telemetry'];
const SSM = ['ssm', 'ssmmessages', 'ec2messages'];

describe('BatchNetwork with defaults', () => {
  let stack: Stack;
  let network: BatchNetwork;
  let template: Template;
  beforeAll(() => {
    ({ stack, network, template } = synth());
  });

  test('creates no NAT gateway and no internet gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
  });

  test('creates only isolated subnets without a default route', () => {
    const subnets = template.findResources('AWS::EC2::Subnet');
    expect(Object.keys(subnets)).toHaveLength(2);
    for (const subnet of Object.values(subnets)) {
      expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
      expect(subnet.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'aws-cdk:subnet-type', Value: 'Isolated' }]));
    }
    template.resourceCountIs('AWS::EC2::Route', 0);
  });

  test('uses 10.0.0.0/16 across two Availability Zones', () => {
    template.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.0.0.0/16' });
    expect(network.vpc.availabilityZones).toHaveLength(2);
  });

  test('selects the isolated Batch subnets for compute', () => {
    expect(network.subnetSelection).toEqual({ subnetGroupName: 'Batch' });
    expect(network.vpc.selectSubnets(network.subnetSelection).subnets).toEqual(network.vpc.isolatedSubnets);
  });

  test.each(REQUIRED)('creates the %s interface endpoint with private DNS in the Batch subnets', (suffix) => {
    const subnetIds = network.vpc.isolatedSubnets.map((s) => stack.resolve(s.subnetId));
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: serviceName(suffix),
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      SubnetIds: subnetIds,
    });
  });

  test('creates no SSM endpoints unless asked', () => {
    for (const suffix of SSM) {
      expect(template.findResources('AWS::EC2::VPCEndpoint', { Properties: { ServiceName: serviceName(suffix) } })).toEqual({});
    }
    expect(Object.keys(network.interfaceEndpoints).sort()).toEqual(['ecrApi', 'ecrDocker', 'ecs', 'ecsAgent', 'ecsTelemetry', 'logs']);
  });

  test('attaches every interface endpoint to the one endpoint security group', () => {
    const endpoints = template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } });
    const sgId = logicalIdOf(stack, network.endpointSecurityGroup as ec2.SecurityGroup);
    expect(Object.keys(endpoints)).toHaveLength(6);
    for (const endpoint of Object.values(endpoints)) {
      expect(endpoint.Properties.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [sgId, 'GroupId'] }]);
    }
  });

  test('endpoint security group allows only TCP 443 from the VPC CIDR', () => {
    const sgId = logicalIdOf(stack, network.endpointSecurityGroup as ec2.SecurityGroup);
    const sg = template.toJSON().Resources[sgId];
    expect(sg.Properties.SecurityGroupIngress).toEqual([
      { CidrIp: '10.0.0.0/16', Description: 'HTTPS from the VPC CIDR', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 },
    ]);
    // No separate ingress resources may open it further.
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  test('endpoint security group allows no outbound traffic', () => {
    const sgId = logicalIdOf(stack, network.endpointSecurityGroup as ec2.SecurityGroup);
    const egress = template.toJSON().Resources[sgId].Properties.SecurityGroupEgress;
    expect(egress).toEqual([expect.objectContaining({ CidrIp: '255.255.255.255/32', IpProtocol: 'icmp' })]);
  });

  test('creates an S3 gateway endpoint on the Batch subnets route tables', () => {
    const routeTables = network.vpc.isolatedSubnets.map((s) => stack.resolve(s.routeTable.routeTableId));
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: serviceName('s3'),
      VpcEndpointType: 'Gateway',
      RouteTableIds: routeTables,
    });
    expect(network.s3Endpoint).toBeDefined();
  });

  test('logs ALL VPC traffic to the flow-log group', () => {
    template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
      LogGroupName: stack.resolve((network.flowLogGroup as logs.LogGroup).logGroupName),
      ResourceId: stack.resolve(network.vpc.vpcId),
    });
  });

  test('keeps flow logs one month and deletes them with the stack', () => {
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Delete',
    });
  });

  test('Batch security group has no ingress and allows all egress', () => {
    const sgId = logicalIdOf(stack, network.batchSecurityGroup as ec2.SecurityGroup);
    const sg = template.toJSON().Resources[sgId];
    expect(sg.Properties.SecurityGroupIngress).toBeUndefined();
    expect(sg.Properties.SecurityGroupEgress).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: '-1' })]);
  });

  test('leaves the unused VPC default security group alone, so no custom-resource Lambda is added', () => {
    template.resourceCountIs('Custom::VpcRestrictDefaultSG', 0);
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  test('adds no warnings', () => {
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });
});

describe('BatchNetwork options for a new VPC', () => {
  test('enableSsmEndpoints adds the SSM, SSM messages and EC2 messages endpoints', () => {
    const { network, template } = synth({ enableSsmEndpoints: true });
    for (const suffix of SSM) {
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: serviceName(suffix), PrivateDnsEnabled: true });
    }
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 10);
    expect(Object.keys(network.interfaceEndpoints)).toEqual(expect.arrayContaining(['ssm', 'ssmMessages', 'ec2Messages']));
  });

  test('natGateways adds public subnets and a NAT route for the Batch subnets', () => {
    const { network, template } = synth({ natGateways: 1 });
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    expect(network.vpc.publicSubnets).toHaveLength(2);
    expect(network.vpc.isolatedSubnets).toHaveLength(0);
    expect(network.vpc.selectSubnets(network.subnetSelection).subnets).toEqual(network.vpc.privateSubnets);
    template.hasResourceProperties('AWS::EC2::Route', {
      DestinationCidrBlock: '0.0.0.0/0',
      NatGatewayId: Match.anyValue(),
    });
  });

  test('maxAzs spreads the subnets over more zones when the stack has an environment', () => {
    const stack = newStack(true);
    new BatchNetwork(stack, 'Net', { maxAzs: 3 });
    Template.fromStack(stack).resourceCountIs('AWS::EC2::Subnet', 3);
  });

  test('ipAddresses sets the VPC CIDR and the endpoint ingress', () => {
    const { template } = synth({ ipAddresses: ec2.IpAddresses.cidr('172.20.0.0/16') });
    template.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '172.20.0.0/16' });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [Match.objectLike({ CidrIp: '172.20.0.0/16', FromPort: 443, ToPort: 443 })],
    });
  });

  test('flowLogRetention and removalPolicy apply to the flow-log group', () => {
    const { template } = synth({ flowLogRetention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN });
    template.hasResource('AWS::Logs::LogGroup', { Properties: { RetentionInDays: 365 }, DeletionPolicy: 'Retain' });
  });

  test('restrictDefaultSecurityGroup closes the default security group', () => {
    const { template } = synth({ restrictDefaultSecurityGroup: true });
    template.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });

  test('createEndpoints false without NAT creates no endpoints and warns vpcWithoutEgress', () => {
    const { stack, network, template } = synth({ createEndpoints: false });
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    expect(network.endpointSecurityGroup).toBeUndefined();
    expect(network.s3Endpoint).toBeUndefined();
    const warnings = warningsOf(stack, 'vpcWithoutEgress');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].id).toBe('/Stack/Net');
    expect(warnings[0].entry.data).toMatch(/ecr\.api, ecr\.dkr, logs, ecs, ecs-agent, ecs-telemetry, s3/);
  });

  test('createEndpoints false with a NAT gateway adds no warning', () => {
    const { stack } = synth({ createEndpoints: false, natGateways: 1 });
    expect(warningsOf(stack, 'vpcWithoutEgress')).toHaveLength(0);
  });
});

describe('BatchNetwork with a brought VPC', () => {
  test('creates no VPC, no endpoints and no flow log by default', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'OwnVpc');
    const network = new BatchNetwork(stack, 'Net', { vpc });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    template.resourceCountIs('AWS::EC2::FlowLog', 0);
    expect(network.vpc).toBe(vpc);
    expect(network.flowLogGroup).toBeUndefined();
    expect(network.interfaceEndpoints).toEqual({});
  });

  test('puts the Batch security group in the brought VPC', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'OwnVpc');
    new BatchNetwork(stack, 'Net', { vpc });
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('AWS Batch compute'),
      VpcId: stack.resolve(vpc.vpcId),
    });
  });

  test('selects private subnets with egress when the VPC has them, and does not warn', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'OwnVpc', { natGateways: 1 });
    const network = new BatchNetwork(stack, 'Net', { vpc });
    expect(network.subnetSelection).toEqual({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS });
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  test('selects isolated subnets when the VPC has no private subnets with egress', () => {
    const stack = newStack();
    const network = new BatchNetwork(stack, 'Net', { vpc: isolatedVpc(stack) });
    expect(network.subnetSelection).toEqual({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED });
  });

  test('warns vpcWithoutEgress naming every missing endpoint when there is neither NAT nor endpoint', () => {
    const stack = newStack();
    new BatchNetwork(stack, 'Net', { vpc: isolatedVpc(stack) });
    const warnings = warningsOf(stack, 'cdk-batch-platform:vpcWithoutEgress');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].id).toBe('/Stack/Net');
    expect(warnings[0].entry.data).toMatch(/lacks endpoints for: ecr\.api, ecr\.dkr, logs, ecs, ecs-agent, ecs-telemetry, s3\./);
  });

  test('names only the endpoints that are still missing', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    vpc.addInterfaceEndpoint('Ecr', { service: ec2.InterfaceVpcEndpointAwsService.ECR });
    vpc.addInterfaceEndpoint('EcrDocker', { service: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER });
    vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    new BatchNetwork(stack, 'Net', { vpc });
    const warnings = warningsOf(stack, 'vpcWithoutEgress');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].entry.data).toMatch(/lacks endpoints for: logs, ecs, ecs-agent, ecs-telemetry\./);
  });

  test('counts endpoints added after the network and outside the VPC scope', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    new BatchNetwork(stack, 'Net', { vpc });
    const services = [
      ec2.InterfaceVpcEndpointAwsService.ECR,
      ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
      ec2.InterfaceVpcEndpointAwsService.ECS,
      ec2.InterfaceVpcEndpointAwsService.ECS_AGENT,
      ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
    ];
    services.forEach((service, i) => new ec2.InterfaceVpcEndpoint(stack, `Endpoint${i}`, { vpc, service }));
    new ec2.GatewayVpcEndpoint(stack, 'S3', { vpc, service: ec2.GatewayVpcEndpointAwsService.S3 });
    expect(warningsOf(stack, 'vpcWithoutEgress')).toHaveLength(0);
  });

  test('ignores endpoints that belong to another VPC', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const other = new ec2.Vpc(stack, 'Other', { natGateways: 0, subnetConfiguration: [{ name: 'P', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    other.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    new BatchNetwork(stack, 'Net', { vpc });
    expect(warningsOf(stack, 'vpcWithoutEgress')[0].entry.data).toMatch(/ecs-telemetry, s3\./);
  });

  test('warns vpcEgressUnverified for an imported VPC', () => {
    const stack = newStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Imported', {
      vpcId: 'vpc-1234',
      availabilityZones: ['us-east-1a', 'us-east-1b'],
      isolatedSubnetIds: ['subnet-1', 'subnet-2'],
    });
    new BatchNetwork(stack, 'Net', { vpc });
    const warnings = warningsOf(stack, 'cdk-batch-platform:vpcEgressUnverified');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].id).toBe('/Stack/Net');
    expect(warningsOf(stack, 'vpcWithoutEgress')).toHaveLength(0);
  });

  test('createEndpoints true adds the endpoints to the brought VPC, allowing 443 from its CIDR', () => {
    const stack = newStack();
    const vpc = isolatedVpc(stack);
    const network = new BatchNetwork(stack, 'Net', { vpc, createEndpoints: true, enableSsmEndpoints: true });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 10);
    template.allResourcesProperties('AWS::EC2::VPCEndpoint', { VpcId: stack.resolve(vpc.vpcId) });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: [{ CidrIp: stack.resolve(vpc.vpcCidrBlock), Description: 'HTTPS from the VPC CIDR', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 }],
    });
    expect(Object.keys(network.interfaceEndpoints)).toHaveLength(9);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  test('vpcSubnets chooses where Batch runs and where endpoints go', () => {
    const stack = newStack();
    const vpc = new ec2.Vpc(stack, 'OwnVpc', {
      natGateways: 0,
      subnetConfiguration: [
        { name: 'Other', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        { name: 'Jobs', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      ],
    });
    const network = new BatchNetwork(stack, 'Net', { vpc, vpcSubnets: { subnetGroupName: 'Jobs' }, createEndpoints: true });
    const jobSubnets = vpc.selectSubnets({ subnetGroupName: 'Jobs' }).subnets;
    expect(network.subnetSelection).toEqual({ subnetGroupName: 'Jobs' });
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: serviceName('ecr.api'),
      SubnetIds: jobSubnets.map((s) => stack.resolve(s.subnetId)),
    });
  });
});

describe('BatchNetwork validation', () => {
  function build(props: BatchNetworkProps, withVpc = false): () => BatchNetwork {
    const stack = newStack();
    const vpc = withVpc ? isolatedVpc(stack) : undefined;
    return () => new BatchNetwork(stack, 'Net', { vpc, ...props });
  }

  test.each([0, 7])('rejects maxAzs %d', (maxAzs) => {
    expect(build({ maxAzs })).toThrow(new RegExp(`^\\[Stack/Net\\] maxAzs \\(${maxAzs}\\) is out of range; allowed: 1 to 6$`));
  });

  test('rejects a fractional maxAzs', () => {
    expect(build({ maxAzs: 2.5 })).toThrow(/^\[Stack\/Net\] maxAzs \(2\.5\) is invalid; allowed: a whole number from 1 to 6$/);
  });

  test('rejects negative natGateways', () => {
    expect(build({ natGateways: -1 })).toThrow(/^\[Stack\/Net\] natGateways \(-1\) is invalid; allowed: a whole number >= 0$/);
  });

  test.each<[string, BatchNetworkProps]>([
    ['natGateways', { natGateways: 1 }],
    ['maxAzs', { maxAzs: 3 }],
    ['ipAddresses', { ipAddresses: ec2.IpAddresses.cidr('10.1.0.0/16') }],
    ['flowLogRetention', { flowLogRetention: logs.RetentionDays.ONE_DAY }],
    ['restrictDefaultSecurityGroup', { restrictDefaultSecurityGroup: true }],
  ])('rejects %s with a brought vpc', (prop, props) => {
    expect(build(props, true)).toThrow(new RegExp(`^\\[Stack/Net\\] ${prop} \\(.*\\) conflicts with a brought vpc; allowed: only without \`vpc\``));
  });

  test('rejects vpcSubnets without a brought vpc', () => {
    expect(build({ vpcSubnets: { subnetGroupName: 'Batch' } })).toThrow(/^\[Stack\/Net\] vpcSubnets \(\{"subnetGroupName":"Batch"\}\) needs a brought vpc/);
  });

  test('rejects enableSsmEndpoints with a brought vpc when endpoints are not created', () => {
    expect(build({ enableSsmEndpoints: true }, true)).toThrow(
      /^\[Stack\/Net\] enableSsmEndpoints \(true\) has no effect without createEndpoints; allowed: true only when endpoints are created/,
    );
  });

  test('rejects enableSsmEndpoints with createEndpoints false on a new VPC', () => {
    expect(build({ enableSsmEndpoints: true, createEndpoints: false })).toThrow(/^\[Stack\/Net\] enableSsmEndpoints \(true\) has no effect/);
  });

  test('rejects createEndpoints on an imported VPC whose CIDR is unknown', () => {
    const stack = newStack();
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Imported', {
      vpcId: 'vpc-1234',
      availabilityZones: ['us-east-1a'],
      isolatedSubnetIds: ['subnet-1'],
    });
    expect(() => new BatchNetwork(stack, 'Net', { vpc, createEndpoints: true })).toThrow(
      /^\[Stack\/Net\] vpc \("Stack\/Imported"\) has no vpcCidrBlock for the endpoint security group; allowed: a VPC with a known CIDR/,
    );
  });
});

describe('BatchNetwork compliance', () => {
  test('cdk-nag AwsSolutions reports nothing for the default network', () => {
    expect(stackNagFindings((stack) => new BatchNetwork(stack, 'Net'))).toEqual([]);
  });

  test('cdk-nag AwsSolutions reports nothing when endpoints are added to a brought VPC', () => {
    const findings = stackNagFindings((stack) => {
      const vpc = new ec2.Vpc(stack, 'OwnVpc', { natGateways: 0, subnetConfiguration: [{ name: 'P', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
      // The brought VPC's own flow logs are its owner's business; this test checks what BatchNetwork adds.
      vpc.addFlowLog('FlowLog');
      new BatchNetwork(stack, 'Net', { vpc, createEndpoints: true });
    });
    expect(findings).toEqual([]);
  });

  test('cfn-lint reports nothing for default, NAT and SSM variants', () => {
    const stack = newStack();
    new BatchNetwork(stack, 'Default');
    new BatchNetwork(stack, 'WithNat', { natGateways: 2, enableSsmEndpoints: true, ipAddresses: ec2.IpAddresses.cidr('10.1.0.0/16') });
    expect(cfnLintFindings(Template.fromStack(stack).toJSON())).toBe('');
  });
});
